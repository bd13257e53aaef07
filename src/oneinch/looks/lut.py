"""Colour look-up tables: read .cube (1D, 3D, Resolve shaper variant), HaldCLUT and 8×8-tile
"lookup.png" images; apply with tetrahedral interpolation; write .cube and HaldCLUT.

Formats
    * Adobe *Cube LUT Specification* 1.0 (2013): ``TITLE``, ``LUT_1D_SIZE`` / ``LUT_3D_SIZE``,
      ``DOMAIN_MIN`` / ``DOMAIN_MAX``, data lines of three numbers with red changing fastest
      (index = r + N·g + N²·b). DaVinci Resolve's variant: ``LUT_1D_INPUT_RANGE`` /
      ``LUT_3D_INPUT_RANGE`` and a 1D "shaper" table before the 3D table in the same file.
    * HaldCLUT (Eskil Steenberg's layout, as documented by RawTherapee/G'MIC): a square image of
      level L is L³ × L³ pixels holding L² steps per axis, pixel number ``r + L²·g + L⁴·b`` in
      reading order, value = step / (L² − 1).
    * "tiles" (the 512 × 512 lookup.png of many apps): L × L tiles of L² × L² pixels; tile
      number (row-major) is blue, x in a tile is red, y is green. Same size as Hald level L, so
      ``layout='auto'`` tells them apart by smoothness and refuses when it cannot.

Application: tetrahedral interpolation (Kasson, Nin, Plouffe & Hafner 1995, "Performing color
space conversions with three-dimensional linear interpolation", J. Electronic Imaging 4(3)) in
numba; ``apply_table_trilinear`` is the plain-numpy trilinear reference used by tests.
A LUT has no colour space of its own: the caller declares it (``lut_space``: 'srgb', 'p3',
'rec2020', 'prophoto' with that space's transfer function, or e.g. 'srgb-linear').
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .. import _aot as aot
from .._jit import njit, prange
from ..errors import InputError, OptionError
from ..isp.spaces import SPACES, decode, encode, rgb_to_xyz_d50, xyz_d50_to_rgb
from ..output.atomic import atomic_write_bytes

MAX_CUBE_BYTES = 512 * 2**20
MAX_3D_SIZE = 256
MAX_1D_SIZE = 65536
MAX_HALD_LEVEL = 16  # 4096 × 4096 pixels, 256 steps per axis
LAYOUTS = ("auto", "hald", "tiles")


@dataclass(frozen=True)
class Lut:
    """A 3D table ``table[r, g, b] -> (R, G, B)`` (shape N, N, N, 3) and/or a per-channel 1D
    table (shape M, 3). With both, the 1D table is a shaper applied first (Resolve)."""

    table: np.ndarray | None = None
    domain_min: tuple[float, float, float] = (0.0, 0.0, 0.0)
    domain_max: tuple[float, float, float] = (1.0, 1.0, 1.0)
    shaper: np.ndarray | None = None
    shaper_min: tuple[float, float, float] = (0.0, 0.0, 0.0)
    shaper_max: tuple[float, float, float] = (1.0, 1.0, 1.0)
    title: str = ""
    source: str | None = field(default=None, compare=False)

    @property
    def size(self) -> int:
        return int(self.table.shape[0]) if self.table is not None else 0

    @property
    def kind(self) -> str:
        if self.table is not None:
            return "3d+shaper" if self.shaper is not None else "3d"
        return "1d"


# ----------------------------------------------------------------------------- .cube


def _floats(tokens: list[str], path: str, lineno: int, what: str) -> list[float]:
    try:
        vals = [float(t) for t in tokens]
    except ValueError:
        raise InputError(f"line {lineno}: {what} must be numbers, got {' '.join(tokens)!r}",
                         path) from None
    if not all(math.isfinite(v) for v in vals):
        raise InputError(f"line {lineno}: {what} is not finite", path)
    return vals


def _size(tokens: list[str], path: str, lineno: int, key: str, limit: int) -> int:
    """A size keyword's value: one integer written in ASCII digits (Adobe Cube LUT Specification
    1.0: a size is an integer, 2..256 for 3D). ``str.isdigit`` alone also takes '²' or other
    scripts' digits, which ``int`` refuses or reads, and ``int`` refuses over 4300 digits."""
    tok = tokens[0] if len(tokens) == 1 else ""
    if not (tok.isascii() and tok.isdigit()):
        raise InputError(f"line {lineno}: {key} needs one whole number", path)
    digits = tok.lstrip("0") or "0"
    if len(digits) > len(str(limit)) or not 2 <= int(digits) <= limit:
        shown = digits if len(digits) <= 12 else f"{digits[:6]}... ({len(digits)} digits)"
        raise InputError(f"line {lineno}: {key} {shown} is outside 2..{limit}", path)
    return int(digits)


_CHUNK = 1 << 20  # bytes of text parsed per bulk step: bounds the parser's temporaries
_MAX_LINE = 1 << 20  # no .cube line is anywhere near this long
_BULK_BYTES = b"0123456789+-.eE \t\r\n"  # all that a block of plain table rows holds


class _CubeParser:
    """State of one .cube read. Header lines, comments and anything unusual go line by line
    (:meth:`line`); plain blocks of table rows are parsed in bulk by numpy (:meth:`bulk`), so
    memory is the float32 table plus one block's buffers, not a Python object per number."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.title = ""
        self.n1 = self.n3 = 0
        self.dmin: tuple | None = None
        self.dmax: tuple | None = None
        self.r1: tuple | None = None
        self.r3: tuple | None = None
        self.expected = 0
        self.count = 0
        self.data = np.empty((0, 3), np.float32)

    def line(self, s: str, lineno: int) -> None:
        p = self.path
        s = s.strip()
        if not s or s.startswith("#"):
            return
        if s[0].isalpha() and s[:3].lower() not in ("nan", "inf"):
            self.keyword(s, lineno)
            return
        if not self.expected:
            if not (self.n1 or self.n3):
                raise InputError(f"line {lineno}: table data before LUT_1D_SIZE or LUT_3D_SIZE",
                                 p)
            self.expected = self.n1 + self.n3**3
            self.data = np.empty((self.expected, 3), np.float32)
        toks = s.split(None, 3)
        if len(toks) != 3:
            found = len(s.split()) if len(toks) > 3 else len(toks)
            raise InputError(f"line {lineno}: expected 3 numbers, found {found}", p)
        if self.count >= self.expected:
            raise InputError(f"line {lineno}: more table lines than the {self.expected} "
                             "declared", p)
        try:
            vals = [float(t) for t in toks]
        except ValueError:
            raise InputError(f"line {lineno}: table values must be numbers", p) from None
        if not all(math.isfinite(v) for v in vals):
            raise InputError(f"line {lineno}: table value not finite", p)
        self.data[self.count] = vals
        self.count += 1

    def keyword(self, s: str, lineno: int) -> None:
        p = self.path
        # a keyword ends at any whitespace: tools and editors also write a tab after it
        word = s.split(None, 1)[0]
        key, rest = word.upper(), s[len(word):]
        args = rest.split()
        if self.count:
            raise InputError(f"line {lineno}: keyword {key} after the table data", p)
        if key == "TITLE":
            self.title = rest.strip().strip('"')
        elif key == "LUT_3D_SIZE":
            self.n3 = _size(args, p, lineno, key, MAX_3D_SIZE)
        elif key == "LUT_1D_SIZE":
            self.n1 = _size(args, p, lineno, key, MAX_1D_SIZE)
        elif key in ("DOMAIN_MIN", "DOMAIN_MAX"):
            if len(args) != 3:
                raise InputError(f"line {lineno}: {key} needs 3 numbers", p)
            v = tuple(_floats(args, p, lineno, key))
            if key == "DOMAIN_MIN":
                self.dmin = v
            else:
                self.dmax = v
        elif key in ("LUT_1D_INPUT_RANGE", "LUT_3D_INPUT_RANGE"):
            if len(args) != 2:
                raise InputError(f"line {lineno}: {key} needs 2 numbers", p)
            lo, hi = _floats(args, p, lineno, key)
            if key == "LUT_1D_INPUT_RANGE":
                self.r1 = ((lo,) * 3, (hi,) * 3)
            else:
                self.r3 = ((lo,) * 3, (hi,) * 3)
        # other keywords (e.g. LUT_IN_VIDEO_RANGE) are ignored, as the spec asks

    def bulk(self, block: bytes) -> int | None:
        """Table rows of ``block`` (whole lines ending in a line feed) parsed at once; the number
        of lines, or None when the block is not plain rows of 3 finite numbers that fit the
        declared size (comments, keywords, lone CRs, bad values...): the caller then reads it
        line by line, which finds the exact line and error."""
        if block.translate(None, _BULK_BYTES) or block.count(b"\r") != block.count(b"\r\n"):
            return None
        b = np.frombuffer(block, np.uint8)
        blank = b <= 32  # of the bytes left, the white space (tab, CR, LF, space)
        starts = np.flatnonzero(~blank[1:] & blank[:-1]) + 1  # first byte of each number
        if b.size and not blank[0]:
            starts = np.concatenate([[0], starts])
        newlines = np.flatnonzero(b == 10)
        per_line = np.bincount(np.searchsorted(newlines, starts), minlength=newlines.size)
        if ((per_line != 0) & (per_line != 3)).any():
            return None
        rows = int(np.count_nonzero(per_line))
        if self.count + rows > self.expected:
            return None
        try:
            vals = np.fromstring(block, np.float64, sep=" ")  # whitespace of any kind separates
        except (ValueError, DeprecationWarning):  # stopped at something that is not a number
            return None
        if vals.size != 3 * rows or not np.isfinite(vals).all():
            return None
        self.data[self.count:self.count + rows] = vals.reshape(-1, 3)
        self.count += rows
        return int(newlines.size)

    def block(self, block: bytes, lineno: int) -> int:
        """Parse whole lines following line ``lineno``; the number of the last line read."""
        if self.count and self.count < self.expected:
            n = self.bulk(block if block.endswith(b"\n") else block + b"\n")
            if n is not None:
                return lineno + n
        lines = block.splitlines()
        tried = False
        for i, raw_line in enumerate(lines):
            self.line(raw_line.decode("utf-8", errors="replace"), lineno + i + 1)
            if self.count == 1 and not tried and i + 1 < len(lines):
                tried = True  # the table starts here: the rest of the block in bulk, once
                n = self.bulk(b"\n".join(lines[i + 1:]) + b"\n")
                if n is not None:
                    return lineno + len(lines)
        return lineno + len(lines)

    def lut(self, lineno: int) -> Lut:
        p, n1, n3, count = self.path, self.n1, self.n3, self.count
        if not (n1 or n3):
            raise InputError("no LUT_1D_SIZE or LUT_3D_SIZE: not a .cube LUT", p)
        if not count or count != self.expected:
            raise InputError(f"line {lineno if count else 1}: file ends after {count} of "
                             f"{n1 + n3**3} table lines (truncated?)", p)
        checks = [("DOMAIN", self.dmin, self.dmax)]
        checks += [("LUT_1D_INPUT_RANGE", *self.r1)] if self.r1 else []
        checks += [("LUT_3D_INPUT_RANGE", *self.r3)] if self.r3 else []
        for what, lo, hi in checks:
            if lo is not None and hi is not None and not all(
                    b > a for a, b in zip(lo, hi, strict=True)):
                raise InputError(f"{what}: max must be greater than min", p)
        data, title, r1, r3 = self.data, self.title, self.r1, self.r3
        dom = (self.dmin or (0.0,) * 3, self.dmax or (1.0,) * 3)
        if n3:
            table = np.ascontiguousarray(data[n1:].reshape(n3, n3, n3, 3).transpose(2, 1, 0, 3))
            shaper = np.ascontiguousarray(data[:n1]) if n1 else None
            d3 = r3 or dom if not n1 else r3 or ((0.0,) * 3, (1.0,) * 3)
            s1 = r1 or dom
            return Lut(table, d3[0], d3[1], shaper, s1[0], s1[1], title, p)
        d1 = r1 or dom
        return Lut(None, (0.0,) * 3, (1.0,) * 3, data, d1[0], d1[1], title, p)


def read_cube(path: str | os.PathLike) -> Lut:
    """Read an Adobe/IRIDAS (Adobe Cube LUT Specification 1.0) or Resolve .cube file.
    Malformed files raise InputError naming the file and the line.

    The file is read in blocks of whole lines; runs of plain table rows are parsed by numpy in
    bulk, so memory is about twice the float32 table plus a few MB whatever the file's size."""
    p = str(path)
    try:
        nbytes = os.path.getsize(p)
        if nbytes > MAX_CUBE_BYTES:
            raise InputError(f"{nbytes / 2**20:.0f} MB is too large for a .cube LUT", p)
        f = open(p, "rb")  # closed by the with below, after the read loop
    except FileNotFoundError:
        raise InputError("LUT file not found", p) from None
    except IsADirectoryError:
        raise InputError("is a folder, not a LUT file", p) from None
    except OSError as e:
        raise InputError(f"cannot read LUT ({e.strerror})", p) from None
    parser = _CubeParser(p)
    lineno = 0
    buf = b""
    with f:
        first = True
        while True:
            try:
                piece = f.read(_CHUNK)
            except OSError as e:
                raise InputError(f"cannot read LUT ({e.strerror})", p) from None
            buf += piece
            if first:
                if b"\0" in buf[:4096]:
                    raise InputError("not a text .cube file (binary data)", p)
                if buf.startswith(b"\xef\xbb\xbf"):  # UTF-8 byte-order mark (Windows editors)
                    buf = buf[3:]
                first = False
            if not piece:
                if buf:
                    lineno = parser.block(buf, lineno)
                break
            cut = buf.rfind(b"\n")
            if cut < 0:  # old Mac line ends; a CR at the very end may be half of a CRLF
                cut = buf.rfind(b"\r", 0, len(buf) - 1)
            if cut < 0:
                if len(buf) > _MAX_LINE:
                    raise InputError(f"line {lineno + 1}: longer than {_MAX_LINE // 2**20} MB, "
                                     "not a .cube line", p)
                continue
            block, buf = buf[:cut + 1], buf[cut + 1:]
            lineno = parser.block(block, lineno)
    return parser.lut(lineno)


def cube_text(lut: Lut) -> str:
    """Serialise a 3D Lut as Adobe .cube 1.0 text (red fastest)."""
    if lut.table is None or lut.shaper is not None:
        raise OptionError("only a plain 3D LUT can be written as .cube")
    n = lut.size
    data = lut.table.transpose(2, 1, 0, 3).reshape(-1, 3)
    head = [f'TITLE "{lut.title or "oneinch"}"', "# written by oneinch", f"LUT_3D_SIZE {n}",
            "DOMAIN_MIN " + " ".join(f"{v:.6g}" for v in lut.domain_min),
            "DOMAIN_MAX " + " ".join(f"{v:.6g}" for v in lut.domain_max)]
    body = "\n".join(f"{r:.6f} {g:.6f} {b:.6f}" for r, g, b in data.tolist())
    return "\n".join(head) + "\n" + body + "\n"


def write_cube(path: str | os.PathLike, lut: Lut) -> None:
    atomic_write_bytes(path, cube_text(lut).encode())


# ----------------------------------------------------------------------------- images


_TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")  # classic and BigTIFF


def _tiff_size(p: str) -> tuple[int, int]:
    """Width and height of a TIFF's first image from its header (tifffile: Pillow cannot open
    RGB float32 TIFFs, which HaldCLUT tools write)."""
    import tifffile

    try:
        with tifffile.TiffFile(p) as tif:
            page = tif.pages.first
            return int(page.imagewidth), int(page.imagelength)
    except (tifffile.TiffFileError, OSError, ValueError, IndexError, KeyError) as e:
        raise InputError(f"not a readable TIFF image ({e})", p) from None


def _image_size(p: str) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with open(p, "rb") as f:
            if f.read(4) in _TIFF_MAGIC:
                return _tiff_size(p)
        with Image.open(p) as im:
            return im.size
    except FileNotFoundError:
        raise InputError("LUT file not found", p) from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise InputError(f"not a readable PNG/TIFF image ({e})", p) from None


def _read_pixels(p: str) -> np.ndarray:
    img = cv2.imread(p, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError("cannot decode the LUT image", p)
    if img.ndim == 2 or img.shape[2] < 3:
        raise InputError("a LUT image must be RGB, this one is grey", p)
    img = img[..., 2::-1]  # BGR(A) -> RGB
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535.0
    if img.dtype in (np.float32, np.float64):
        return img.astype(np.float32)
    raise InputError(f"unsupported LUT image sample type {img.dtype}", p)


def _hald_table(px: np.ndarray, level: int) -> np.ndarray:
    n = level * level
    return np.ascontiguousarray(px.reshape(n, n, n, 3).transpose(2, 1, 0, 3))


def _tiles_table(px: np.ndarray, level: int) -> np.ndarray:
    n = level * level
    # px[ty*n + g, tx*n + r] with blue = ty*level + tx
    t = px.reshape(level, n, level, n, 3).transpose(0, 2, 1, 3, 4).reshape(n, n, n, 3)
    return np.ascontiguousarray(t.transpose(2, 1, 0, 3))  # [b, g, r] -> [r, g, b]


def _roughness(table: np.ndarray) -> float:
    return float(sum(np.abs(np.diff(table, axis=a)).mean() for a in range(3)))


def read_image_lut(path: str | os.PathLike, layout: str = "auto") -> Lut:
    """Read a HaldCLUT (any level) or a tiles "lookup.png" image (PNG/TIFF, 8/16-bit or float)."""
    p = str(path)
    if layout not in LAYOUTS:
        raise OptionError(f"unknown LUT image layout {layout!r} (one of {', '.join(LAYOUTS)})")
    w, h = _image_size(p)  # header only: size limits are checked before decoding
    level = round(w ** (1 / 3))
    if w != h or level**3 != w or level < 2:
        raise InputError(f"{w}x{h} px is not a HaldCLUT (level³ × level³ px, e.g. 512x512)", p)
    if level > MAX_HALD_LEVEL:
        raise InputError(f"HaldCLUT level {level} is above the supported {MAX_HALD_LEVEL}", p)
    px = _read_pixels(p)
    if layout == "hald":
        table = _hald_table(px, level)
    elif layout == "tiles":
        table = _tiles_table(px, level)
    else:
        hald, tiles = _hald_table(px, level), _tiles_table(px, level)
        rh, rt = _roughness(hald), _roughness(tiles)
        if rh < 0.5 * rt:
            table = hald
        elif rt < 0.5 * rh:
            table = tiles
        else:
            raise InputError("cannot tell whether this is a HaldCLUT or an 8x8-tile lookup "
                             "image; declare the layout: --lut-layout hald|tiles (the "
                             "recipe's look.lut_layout)", p)
    return Lut(table, title=Path(p).stem, source=p)


def hald_image(lut: Lut, level: int) -> np.ndarray:
    """Render a Lut as a HaldCLUT image of ``level`` (float32 RGB, L³ × L³)."""
    n = level * level
    grid = identity_grid(n, lut.domain_min, lut.domain_max)
    vals = apply_table(grid, lut)  # [r, g, b] order
    return np.ascontiguousarray(vals.transpose(2, 1, 0, 3).reshape(level**3, level**3, 3))


def write_hald(path: str | os.PathLike, lut: Lut, level: int = 8, bits: int = 16) -> None:
    """Write ``lut`` as a HaldCLUT PNG or TIFF (by extension), 16-bit by default."""
    if not 2 <= level <= MAX_HALD_LEVEL:
        raise OptionError(f"Hald level {level} is outside 2..{MAX_HALD_LEVEL}")
    ext = Path(path).suffix.lower()
    if ext not in (".png", ".tif", ".tiff"):
        raise OptionError(f"a HaldCLUT is written as .png or .tif, not {ext or 'no extension'}")
    img = np.clip(hald_image(lut, level), 0, 1)
    arr = (np.round(img * 65535).astype(np.uint16) if bits == 16
           else np.round(img * 255).astype(np.uint8))
    bgr = np.ascontiguousarray(arr[..., ::-1])
    ok, buf = cv2.imencode(".png" if ext == ".png" else ".tiff", bgr)
    if not ok:
        raise OptionError("could not encode the HaldCLUT image")
    atomic_write_bytes(path, buf.tobytes())


def load_lut(path: str | os.PathLike, layout: str = "auto") -> Lut:
    """Read any supported LUT file, chosen by extension (.cube; .png/.tif/.tiff images)."""
    ext = Path(path).suffix.lower()
    if ext == ".cube":
        return read_cube(path)
    if ext in (".png", ".tif", ".tiff"):
        return read_image_lut(path, layout)
    raise InputError(f"unknown LUT type {ext or '(no extension)'} (.cube, .png, .tif)", path)


# ----------------------------------------------------------------------------- apply


def identity_grid(n: int, lo=(0.0, 0.0, 0.0), hi=(1.0, 1.0, 1.0)) -> np.ndarray:
    """(n, n, n, 3) grid with grid[r, g, b] = the input colour of that node."""
    axes = [np.linspace(lo[c], hi[c], n, dtype=np.float64) for c in range(3)]
    r, g, b = np.meshgrid(*axes, indexing="ij")
    return np.stack([r, g, b], axis=-1).astype(np.float32)


@aot.entry
@njit(parallel=True, cache=True)
def _tetra_kernel(x, out, table, lo, hi):  # pragma: no cover - numba
    n = table.shape[0]
    m = x.shape[0]
    for i in prange(m):
        fr = (x[i, 0] - lo[0]) / (hi[0] - lo[0]) * (n - 1)
        fg = (x[i, 1] - lo[1]) / (hi[1] - lo[1]) * (n - 1)
        fb = (x[i, 2] - lo[2]) / (hi[2] - lo[2]) * (n - 1)
        fr = min(max(fr, 0.0), n - 1.0)
        fg = min(max(fg, 0.0), n - 1.0)
        fb = min(max(fb, 0.0), n - 1.0)
        r0 = min(int(fr), n - 2)
        g0 = min(int(fg), n - 2)
        b0 = min(int(fb), n - 2)
        dr = fr - r0
        dg = fg - g0
        db = fb - b0
        r1, g1, b1 = r0 + 1, g0 + 1, b0 + 1
        for c in range(3):
            c000 = table[r0, g0, b0, c]
            c111 = table[r1, g1, b1, c]
            if dr >= dg:
                if dg >= db:
                    v = (1 - dr) * c000 + (dr - dg) * table[r1, g0, b0, c] + \
                        (dg - db) * table[r1, g1, b0, c] + db * c111
                elif dr >= db:
                    v = (1 - dr) * c000 + (dr - db) * table[r1, g0, b0, c] + \
                        (db - dg) * table[r1, g0, b1, c] + dg * c111
                else:
                    v = (1 - db) * c000 + (db - dr) * table[r0, g0, b1, c] + \
                        (dr - dg) * table[r1, g0, b1, c] + dg * c111
            else:
                if db >= dg:
                    v = (1 - db) * c000 + (db - dg) * table[r0, g0, b1, c] + \
                        (dg - dr) * table[r0, g1, b1, c] + dr * c111
                elif db >= dr:
                    v = (1 - dg) * c000 + (dg - db) * table[r0, g1, b0, c] + \
                        (db - dr) * table[r0, g1, b1, c] + dr * c111
                else:
                    v = (1 - dg) * c000 + (dg - dr) * table[r0, g1, b0, c] + \
                        (dr - db) * table[r1, g1, b0, c] + db * c111
            out[i, c] = v


def _apply_1d(x: np.ndarray, table: np.ndarray, lo, hi) -> np.ndarray:
    m = table.shape[0]
    out = np.empty_like(x)
    pos = np.linspace(0.0, 1.0, m)
    for c in range(3):
        t = (x[..., c] - lo[c]) / (hi[c] - lo[c])
        out[..., c] = np.interp(t, pos, table[:, c])
    return out


def apply_table(rgb: np.ndarray, lut: Lut) -> np.ndarray:
    """Evaluate the LUT on values in its own domain (no colour conversion, no strength):
    shaper (per-channel linear), then the 3D table with tetrahedral interpolation."""
    x = np.ascontiguousarray(rgb, dtype=np.float32)
    shape = x.shape
    x = x.reshape(-1, 3)
    if lut.shaper is not None:
        x = _apply_1d(x, lut.shaper, lut.shaper_min, lut.shaper_max).astype(np.float32)
    if lut.table is None:
        return x.reshape(shape)
    out = np.empty_like(x)
    _tetra_kernel(np.ascontiguousarray(x), out, np.ascontiguousarray(lut.table, np.float32),
                  np.asarray(lut.domain_min, np.float64), np.asarray(lut.domain_max, np.float64))
    return out.reshape(shape)


def apply_table_trilinear(rgb: np.ndarray, lut: Lut) -> np.ndarray:
    """Plain-numpy reference: shaper, then trilinear interpolation of the 3D table."""
    x = np.asarray(rgb, np.float64).reshape(-1, 3)
    if lut.shaper is not None:
        x = _apply_1d(x, lut.shaper, lut.shaper_min, lut.shaper_max)
    if lut.table is None:
        return x.reshape(np.shape(rgb)).astype(np.float32)
    t = lut.table.astype(np.float64)
    n = t.shape[0]
    lo, hi = np.asarray(lut.domain_min), np.asarray(lut.domain_max)
    f = np.clip((x - lo) / (hi - lo) * (n - 1), 0, n - 1)
    i0 = np.minimum(f.astype(int), n - 2)
    d = f - i0
    out = np.zeros_like(x)
    for cr in (0, 1):
        for cg in (0, 1):
            for cb in (0, 1):
                w = ((d[:, 0] if cr else 1 - d[:, 0]) * (d[:, 1] if cg else 1 - d[:, 1])
                     * (d[:, 2] if cb else 1 - d[:, 2]))
                out += w[:, None] * t[i0[:, 0] + cr, i0[:, 1] + cg, i0[:, 2] + cb]
    return out.reshape(np.shape(rgb)).astype(np.float32)


def parse_lut_space(lut_space: str) -> tuple[str, str]:
    """'srgb' -> ('srgb', 'srgb' transfer); 'rec2020-linear' -> ('rec2020', 'linear')."""
    name, _, lin = lut_space.partition("-")
    if name not in SPACES or lin not in ("", "linear"):
        raise OptionError(f"unknown LUT colour space {lut_space!r} (e.g. srgb, p3, rec2020, "
                          "prophoto, srgb-linear)")
    return name, ("linear" if lin else SPACES[name].transfer)


def apply_lut(rgb: np.ndarray, lut: Lut, strength: float = 1.0, lut_space: str = "srgb",
              space: str = "srgb") -> np.ndarray:
    """Apply ``lut`` to display-linear RGB in ``space``: convert to the LUT's declared space and
    encoding, look up, convert back, blend with the input by ``strength`` (0..1)."""
    if not 0.0 <= strength <= 1.0:
        raise OptionError(f"LUT strength {strength} is outside 0..1")
    if space not in SPACES:
        raise OptionError(f"unknown colour space {space!r}")
    prim, transfer = parse_lut_space(lut_space)
    x = np.ascontiguousarray(rgb, dtype=np.float32)
    if strength == 0:
        return x.copy()
    m = None
    if prim != space:
        m = (xyz_d50_to_rgb(prim) @ rgb_to_xyz_d50(space)).astype(np.float32)
    v = x @ m.T if m is not None else x
    if transfer != "linear":
        v = encode(v, transfer)
    v = apply_table(v, lut)
    if transfer != "linear":
        v = decode(v, transfer)
    if m is not None:
        v = v @ np.linalg.inv(m).T.astype(np.float32)
    if strength < 1:
        v = x + np.float32(strength) * (v - x)
    return np.ascontiguousarray(v, dtype=np.float32)


def bake(fn: Callable[[np.ndarray], np.ndarray], size: int = 33, lut_space: str = "srgb",
         space: str = "srgb", title: str = "") -> Lut:
    """Sample a per-pixel function on display-linear RGB (in ``space``) into a 3D LUT whose input
    and output are in ``lut_space`` (encoded unless '-linear')."""
    if not 2 <= size <= MAX_3D_SIZE:
        raise OptionError(f"LUT size {size} is outside 2..{MAX_3D_SIZE}")
    prim, transfer = parse_lut_space(lut_space)
    grid = identity_grid(size).reshape(1, -1, 3)
    lin = decode(grid, transfer) if transfer != "linear" else grid
    m = None
    if prim != space:
        m = (xyz_d50_to_rgb(space) @ rgb_to_xyz_d50(prim)).astype(np.float32)
        lin = np.clip(lin @ m.T, 0, 1)
    out = np.asarray(fn(np.ascontiguousarray(lin, np.float32)), np.float32)
    if m is not None:
        out = out @ np.linalg.inv(m).T.astype(np.float32)
    if transfer != "linear":
        out = encode(out, transfer)
    return Lut(np.ascontiguousarray(out.reshape(size, size, size, 3)), title=title)
