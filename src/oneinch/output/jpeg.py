"""Baseline JPEG encoding with libjpeg-turbo (OpenCV), in parallel bands joined by restart markers.

A baseline JPEG scan is a sequence of restart intervals (ITU-T T.81, §B.2.1, §F.1.2.3,
§E.1.4): each interval is entropy-coded on its own — the DC predictions reset at every RSTm
marker and the coder's bit buffer is padded to a byte — so a scan cut at interval boundaries
can be produced by independent encoders and concatenated. With the restart interval set to one
MCU row, every band of whole MCU rows is encoded by its own libjpeg-turbo call (OpenCV releases
the GIL, so the bands run on both cores), and the bands' entropy-coded segments are joined: the
first band's headers (DQT/SOF/DHT/DRI/SOS) serve for the whole image, the frame height in SOF is
patched to the total, an RSTm is put between bands and the second band's RST numbers are
shifted to continue the modulo-8 sequence (T.81 §B.2.1: RST0..RST7 cycle).

Both bands use the same quality (hence quantisation tables) and the standard Huffman tables
(T.81 Annex K.3), so the joined file decodes exactly as a single-call encode with the same
restart interval. Optimised Huffman tables (one extra pass over the coefficients, ~4 % smaller
files) need statistics of the whole scan, so they are used for images small enough that the
extra pass does not matter (``OPTIMIZE_MAX_PIXELS``). Measured on a 2048 x 1536 preview (4:4:4,
quality 92, one core): optimised 31.5 ms and 705 kB, standard tables 11.3 ms and 738 kB (+4.7 %),
in two bands at once 7.8 ms: a fifth of the whole preview develop's time for 4.7 % of its
bytes, so optimisation stops at 1 MP (until session 15 it went to 8 MP).

APP1 Exif (CIPA DC-008 §4.7) and APP2 ICC_PROFILE chunks (ICC.1:2022 Annex B.4: "ICC_PROFILE\\0",
1-based sequence number, count, at most 65519 bytes of profile per marker) follow the JFIF APP0.
"""

from __future__ import annotations

import struct
import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from ..errors import OutputError

OPTIMIZE_MAX_PIXELS = 1_000_000  # Huffman optimisation (single call) up to this size
PARALLEL_MIN_PIXELS = 1_000_000  # bands in parallel from this size up (2048 x 1536: 11.3 -> 7.8 ms)
_SAMPLING = {
    # libjpeg code, MCU width, MCU height (T.81 §A.2.4: the MCU spans the largest sampling)
    "4:4:4": (cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444, 8, 8),
    "4:2:2": (cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422, 16, 8),
    "4:2:0": (cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420, 16, 16),
}
_ICC_CHUNK = 65519


def encode_jpeg(
    pixels: np.ndarray,
    *,
    bgr: bool = False,
    quality: int = 92,
    subsampling: str = "4:4:4",
    icc: bytes | None = None,
    exif: bytes | None = None,
    bands: int | None = None,
    optimize: bool | None = None,
) -> bytes:
    """(H, W, 3) uint8 RGB (``bgr``: BGR) -> JPEG bytes (baseline, libjpeg-turbo).

    ``bands``: encoders run at once (None: 2 from ``PARALLEL_MIN_PIXELS`` up, else 1).
    ``optimize``: Huffman optimisation (None: up to ``OPTIMIZE_MAX_PIXELS``); it needs one
    encoder, so it forces ``bands = 1``. ``exif``: the TIFF structure with or without the
    "Exif\\0\\0" header.
    """
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"encode_jpeg needs (H, W, 3) uint8, got {pixels.dtype} {pixels.shape}")
    h, w = pixels.shape[:2]
    if h > 65535 or w > 65535:
        raise OutputError(f"JPEG is limited to 65535 px a side, the image is {w}x{h}")
    factor, mcu_w, mcu = _SAMPLING[subsampling]
    if optimize is None:
        optimize = h * w <= OPTIMIZE_MAX_PIXELS
    if bands is None:
        bands = 2 if h * w >= PARALLEL_MIN_PIXELS else 1
    if optimize:
        bands = 1
    mcu_rows = -(-h // mcu)
    bands = max(1, min(int(bands), mcu_rows))
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality), cv2.IMWRITE_JPEG_SAMPLING_FACTOR, factor]
    if optimize:
        params += [cv2.IMWRITE_JPEG_OPTIMIZE, 1]
    if bands > 1:
        params += [cv2.IMWRITE_JPEG_RST_INTERVAL, -(-w // mcu_w)]  # one interval per MCU row

    def enc(part: np.ndarray) -> bytes:  # OpenCV wants BGR: reversed per band, in its thread
        # (cvtColor's SIMD swap: ~10x faster than numpy's copy through a reversed view)
        part = np.ascontiguousarray(part) if bgr else cv2.cvtColor(part, cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".jpg", part, params)
        if not ok:
            raise OutputError("the JPEG encoder failed")
        return buf.tobytes()

    if bands == 1:
        data = enc(pixels)
    else:
        per = -(-mcu_rows // bands) * mcu  # rows per band, whole MCU rows
        cuts = [(a, min(h, a + per)) for a in range(0, h, per)]
        with ThreadPoolExecutor(max_workers=len(cuts)) as pool:
            parts = list(pool.map(lambda ab: enc(pixels[ab[0] : ab[1]]), cuts))
        data = _join(parts, [(b - a) // mcu for a, b in cuts[:-1]], h)
    return _with_app_segments(data, icc, exif)


class JpegRows:
    """A baseline JPEG made from rows that arrive in any order, from any thread (develop's
    streamed strips: no full-size 8-bit image). ``start(height, width)`` (True: taken), then
    ``add(rows, first)`` for every row once; each run of whole MCU rows is encoded as it is
    complete (its own libjpeg-turbo call, restart interval one MCU row) and the rows of an MCU
    row cut by two calls wait in a small buffer until both are in. ``finish(icc, exif)``
    joins the runs (see the module docstring): the same bytes as :func:`encode_jpeg` of the
    whole image in bands (no Huffman optimisation: for images over ``OPTIMIZE_MAX_PIXELS``)."""

    def __init__(self, *, quality: int = 92, subsampling: str = "4:4:4") -> None:
        factor, self._mcu_w, self.mcu = _SAMPLING[subsampling]
        self.quality, self.factor = int(quality), factor
        self.height = self.width = 0
        self._parts: dict[int, tuple[bytes, int]] = {}  # first MCU row -> (encode, MCU rows)
        self._edges: dict[int, list] = {}  # MCU row -> [rows buffer, rows filled]
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        return self.height > 0

    def start(self, height: int, width: int) -> bool:
        """Take an image of this size; False (not started) up to ``OPTIMIZE_MAX_PIXELS``,
        where :func:`encode_jpeg` optimises the Huffman tables over the whole image."""
        if height * width <= OPTIMIZE_MAX_PIXELS:
            return False
        if height > 65535 or width > 65535:
            raise OutputError(f"JPEG is limited to 65535 px a side, the image is {width}x{height}")
        self.height, self.width = int(height), int(width)
        return True

    def _rows_of(self, k: int) -> int:
        return min(self.mcu, self.height - k * self.mcu)

    def _encode(self, rows: np.ndarray, k: int) -> None:
        params = [cv2.IMWRITE_JPEG_QUALITY, self.quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                  self.factor, cv2.IMWRITE_JPEG_RST_INTERVAL, -(-self.width // self._mcu_w)]
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rows, cv2.COLOR_RGB2BGR), params)
        if not ok:
            raise OutputError("the JPEG encoder failed")
        self._parts[k] = (buf.tobytes(), -(-rows.shape[0] // self.mcu))

    def add(self, rows: np.ndarray, first: int) -> None:
        """Rows ``first..`` of the image, (n, width, 3) uint8 RGB."""
        m, a, b = self.mcu, int(first), int(first) + rows.shape[0]
        if rows.dtype != np.uint8 or rows.shape[1:] != (self.width, 3) or a < 0 or b > self.height:
            raise ValueError("rows outside the image, or not (n, width, 3) uint8")
        k0 = -(-a // m)  # MCU rows k0..k1-1 lie wholly in this call: one encode
        k1 = -(-b // m) if b == self.height else b // m
        if k1 > k0:
            self._encode(np.ascontiguousarray(rows[k0 * m - a : min(b, k1 * m) - a]), k0)
        shared = {a // m} if a % m else set()  # MCU rows it shares with another call
        if b % m and b < self.height:
            shared.add(b // m)
        for k in sorted(shared):
            lo, hi = max(a, k * m), min(b, k * m + self._rows_of(k))
            with self._lock:
                entry = self._edges.setdefault(
                    k, [np.empty((self._rows_of(k), self.width, 3), np.uint8), 0])
                entry[0][lo - k * m : hi - k * m] = rows[lo - a : hi - a]
                entry[1] += hi - lo
                done = entry[1] == self._rows_of(k)
                if done:
                    del self._edges[k]
            if done:
                self._encode(entry[0], k)

    def finish(self, icc: bytes | None = None, exif: bytes | None = None) -> bytes:
        """The JPEG file's bytes; every row must have been added."""
        keys = sorted(self._parts)
        covered, nxt = [], 0
        for k in keys:
            if k != nxt:
                break
            covered.append(k)
            nxt = k + self._parts[k][1]
        if not self.started or self._edges or nxt * self.mcu < self.height:
            raise ValueError("JpegRows.finish: rows are missing")
        parts = [self._parts[k] for k in covered]
        data = _join([p[0] for p in parts], [p[1] for p in parts[:-1]], self.height)
        return _with_app_segments(data, icc, exif)


def _segments(data: bytes) -> tuple[list[tuple[int, int, int]], int]:
    """Marker segments before the scan: [(marker, start, end)], and the offset of the
    entropy-coded data (just after the SOS segment)."""
    if data[:2] != b"\xff\xd8":
        raise OutputError("the JPEG encoder wrote no SOI")
    pos, segs = 2, []
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise OutputError("malformed JPEG header from the encoder")
        marker = data[pos + 1]
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        segs.append((marker, pos, pos + 2 + length))
        pos += 2 + length
        if marker == 0xDA:  # SOS: entropy-coded data follows
            return segs, pos
    raise OutputError("the JPEG encoder wrote no scan")


def _join(parts: list[bytes], intervals: list[int], height: int) -> bytes:
    """Concatenate band encodes (each ending after whole restart intervals of one MCU row)."""
    segs, scan0 = _segments(parts[0])
    head = bytearray(parts[0][:scan0])
    for marker, start, _end in segs:
        if marker in (0xC0, 0xC1, 0xC2):  # SOFn: P(1) Y(2) X(2) after the length
            head[start + 5 : start + 7] = struct.pack(">H", height)
    out = [bytes(head), _scan(parts[0], scan0)]
    done = 0  # restart intervals before the current band
    for prev_rows, part in zip(intervals, parts[1:], strict=True):
        done += prev_rows
        out.append(bytes((0xFF, 0xD0 + (done - 1) % 8)))  # closes the previous band's last
        _, s0 = _segments(part)
        out.append(_shift_rst(_scan(part, s0), done))
    out.append(b"\xff\xd9")
    return b"".join(out)


def _scan(data: bytes, start: int) -> bytes:
    end = len(data) - 2
    if data[end:] != b"\xff\xd9":
        raise OutputError("the JPEG encoder wrote no EOI")
    return data[start:end]


def _shift_rst(scan: bytes, shift: int) -> bytes:
    """RSTm markers of an entropy-coded segment renumbered m -> (m + shift) mod 8. In scan data
    a 0xFF byte is always followed by 0x00 (stuffing) or a marker (T.81 §B.1.1.5), so
    FF D0..D7 pairs are exactly the restart markers."""
    if shift % 8 == 0:
        return scan
    b = np.frombuffer(scan, np.uint8).copy()
    idx = np.flatnonzero((b[:-1] == 0xFF) & ((b[1:] & 0xF8) == 0xD0)) + 1
    b[idx] = 0xD0 + ((b[idx] - 0xD0 + shift) % 8)
    return b.tobytes()


def _with_app_segments(data: bytes, icc: bytes | None, exif: bytes | None) -> bytes:
    """Insert APP1 Exif and APP2 ICC_PROFILE after SOI and the encoder's APP0 (JFIF)."""
    segs, _ = _segments(data)
    at = 2
    if segs and segs[0][0] == 0xE0:
        at = segs[0][2]
    extra = []
    if exif:
        body = exif if exif.startswith(b"Exif\x00\x00") else b"Exif\x00\x00" + exif
        if len(body) + 2 > 65535:
            raise OutputError(f"EXIF block of {len(body)} bytes does not fit one APP1 segment")
        extra.append(b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body)
    if icc:
        chunks = [icc[i : i + _ICC_CHUNK] for i in range(0, len(icc), _ICC_CHUNK)]
        if len(chunks) > 255:
            raise OutputError("ICC profile too large for JPEG APP2 chunks")
        for i, c in enumerate(chunks, 1):
            body = b"ICC_PROFILE\x00" + bytes((i, len(chunks))) + c
            extra.append(b"\xff\xe2" + struct.pack(">H", len(body) + 2) + body)
    return data[:at] + b"".join(extra) + data[at:]
