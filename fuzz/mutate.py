"""Mutators: generic byte mutations, TIFF/DNG-aware mutations, opcode-list and text mutations.

Everything is a pure function of (seed bytes, random generator), so a case is reproduced from
its seed file and its case number alone.
"""

from __future__ import annotations

import random
import re
import struct
from collections.abc import Callable

INTERESTING8 = (0, 1, 0x7F, 0x80, 0xFF)
INTERESTING32 = (0, 1, 2, 0x7FFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE)
OPCODE_TAGS = (51008, 51009, 51022)
SIZE_TAGS = (256, 257, 322, 323, 277, 258, 33421, 50713, 50829, 50719, 50720)


# ----------------------------------------------------------------------------- generic


def flip_bits(b: bytearray, rng: random.Random) -> None:
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)


def set_bytes(b: bytearray, rng: random.Random) -> None:
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(b))
        b[i] = rng.choice(INTERESTING8) if rng.random() < 0.6 else rng.randrange(256)


def set_word(b: bytearray, rng: random.Random) -> None:
    if len(b) < 4:
        return
    i = rng.randrange(len(b) - 3)
    end = rng.choice("<>")
    v = rng.choice(INTERESTING32)
    if rng.random() < 0.5:
        b[i : i + 2] = struct.pack(end + "H", v & 0xFFFF)
    else:
        b[i : i + 4] = struct.pack(end + "I", v)


def truncate(b: bytearray, rng: random.Random) -> None:
    n = len(b)
    cut = rng.choice((rng.randrange(n), rng.randrange(max(1, n // 8)), n - rng.randint(1, 64)))
    del b[max(1, cut) :]


def delete_chunk(b: bytearray, rng: random.Random) -> None:
    i = rng.randrange(len(b))
    del b[i : i + rng.choice((1, 2, 4, 16, 256, 4096))]


def duplicate_chunk(b: bytearray, rng: random.Random) -> None:
    i = rng.randrange(len(b))
    n = rng.choice((4, 12, 64, 512, 4096))
    j = rng.randrange(len(b))
    b[j:j] = b[i : i + n]


def insert_random(b: bytearray, rng: random.Random) -> None:
    j = rng.randrange(len(b) + 1)
    b[j:j] = bytes(rng.randrange(256) for _ in range(rng.choice((1, 4, 16, 100))))


GENERIC: tuple[Callable[[bytearray, random.Random], None], ...] = (
    flip_bits, set_bytes, set_word, truncate, delete_chunk, duplicate_chunk, insert_random,
)  # fmt: skip


# ----------------------------------------------------------------------------- TIFF-aware


class TiffMap:
    """Positions of the IFDs and their 12-byte entries in a classic TIFF (II or MM)."""

    def __init__(self, b: bytes) -> None:
        self.end = "<" if b[:2] == b"II" else ">"
        self.ifds: list[int] = []  # offsets of IFDs
        self.entries: list[tuple[int, int, int, int]] = []  # (pos, tag, type, count)
        self.next_ptrs: list[int] = []  # positions of next-IFD pointers
        if len(b) < 8 or b[:2] not in (b"II", b"MM"):
            return
        (first,) = struct.unpack_from(self.end + "I", b, 4)
        todo = [first]
        while todo and len(self.ifds) < 32:
            off = todo.pop(0)
            if off in self.ifds or off < 8 or off + 2 > len(b):
                continue
            self.ifds.append(off)
            (n,) = struct.unpack_from(self.end + "H", b, off)
            if off + 2 + 12 * n + 4 > len(b) or n > 1000:
                continue
            for k in range(n):
                pos = off + 2 + 12 * k
                tag, typ, cnt = struct.unpack_from(self.end + "HHI", b, pos)
                self.entries.append((pos, tag, typ, cnt))
                if tag in (330, 34665, 34853) and typ in (4, 13) and cnt >= 1:
                    vpos = pos + 8
                    if cnt > 1:
                        (vpos,) = struct.unpack_from(self.end + "I", b, pos + 8)
                    for m in range(min(cnt, 8)):
                        if vpos + 4 * m + 4 <= len(b):
                            todo.append(struct.unpack_from(self.end + "I", b, vpos + 4 * m)[0])
            nptr = off + 2 + 12 * n
            self.next_ptrs.append(nptr)
            todo.append(struct.unpack_from(self.end + "I", b, nptr)[0])

    def value_pos(self, b: bytes, entry: tuple[int, int, int, int]) -> tuple[int, int]:
        """(position, byte length) of an entry's value (inline or at its offset)."""
        pos, _tag, typ, cnt = entry
        size = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8,
                13: 4, 16: 8}.get(typ, 1) * cnt  # fmt: skip
        if size <= 4:
            return pos + 8, size
        (off,) = struct.unpack_from(self.end + "I", b, pos + 8)
        return off, size


def tiff_mutate(b: bytearray, rng: random.Random) -> None:
    m = TiffMap(bytes(b))
    if not m.entries:
        rng.choice(GENERIC)(b, rng)
        return
    e = m.end
    choice = rng.randrange(9)
    entry = rng.choice(m.entries)
    pos = entry[0]
    if choice == 0:  # type
        struct.pack_into(e + "H", b, pos + 2, rng.choice((0, 1, 2, 3, 4, 5, 7, 11, 12, 13, 16, 17,
                                                           18, 99, 0xFFFF)))
    elif choice == 1:  # count
        cnt = entry[3]
        v = rng.choice((0, 1, cnt + 1, max(cnt - 1, 0), cnt * 2, cnt * 1000, 0x7FFFFFFF,
                        0xFFFFFFFF, 0x10000000))
        struct.pack_into(e + "I", b, pos + 4, v & 0xFFFFFFFF)
    elif choice == 2:  # value / offset
        v = rng.choice((0, 8, len(b), len(b) - 2, len(b) + 1000, rng.choice(m.ifds), 0xFFFFFFFF,
                        rng.randrange(len(b))))
        struct.pack_into(e + "I", b, pos + 8, v & 0xFFFFFFFF)
    elif choice == 3 and m.next_ptrs:  # loops in the IFD chain
        struct.pack_into(e + "I", b, rng.choice(m.next_ptrs), rng.choice(m.ifds))
    elif choice == 4:  # huge declared sizes
        cands = [x for x in m.entries if x[1] in SIZE_TAGS] or m.entries
        x = rng.choice(cands)
        vpos, n = m.value_pos(bytes(b), x)
        if 0 <= vpos and vpos + min(n, 4) <= len(b) and n:
            v = rng.choice((0, 1, 3, 0xFFFF, 0x7FFF, 65535, 0xFFFFFFFF, 100000))
            if x[2] == 3:
                struct.pack_into(e + "H", b, vpos + 2 * rng.randrange(max(1, n // 2)), v & 0xFFFF)
            elif n >= 4:
                struct.pack_into(e + "I", b, vpos + 4 * rng.randrange(max(1, n // 4)),
                                 v & 0xFFFFFFFF)
    elif choice == 5:  # opcode list corruption
        ops = [x for x in m.entries if x[1] in OPCODE_TAGS]
        if ops:
            x = rng.choice(ops)
            vpos, n = m.value_pos(bytes(b), x)
            if 0 <= vpos and vpos + n <= len(b) and n >= 4:
                blob = bytearray(b[vpos : vpos + n])
                opcode_mutate(blob, rng)
                blob = blob[:n] + bytes(max(0, n - len(blob)))
                b[vpos : vpos + n] = blob
        else:
            flip_bits(b, rng)
    elif choice == 6:  # tag number (duplicates, unknown tags, out of order)
        struct.pack_into(e + "H", b, pos, rng.choice([x[1] for x in m.entries] + [0, 0xFFFF]))
    elif choice == 7:  # entry count of an IFD
        off = rng.choice(m.ifds)
        struct.pack_into(e + "H", b, off, rng.choice((0, 1, 0xFFFF, 500)))
    else:  # scramble an entry's value bytes
        vpos, n = m.value_pos(bytes(b), entry)
        if 0 <= vpos < len(b):
            for _ in range(rng.randint(1, 4)):
                i = vpos + rng.randrange(max(1, min(n, len(b) - vpos)))
                if i < len(b):
                    b[i] = rng.randrange(256)


def opcode_mutate(blob: bytearray, rng: random.Random) -> None:
    """Corrupt a big-endian DNG opcode list: count, ids, byte counts, parameters."""
    heads = []
    pos = 4
    (count,) = struct.unpack_from(">I", blob, 0)
    for _ in range(min(count, 64)):
        if pos + 16 > len(blob):
            break
        heads.append(pos)
        size = struct.unpack_from(">I", blob, pos + 12)[0]
        pos += 16 + size
    c = rng.randrange(6)
    if c == 0 or not heads:
        struct.pack_into(">I", blob, 0, rng.choice((0, count + 1, 0xFFFFFFFF, 10_000, 10_001)))
    elif c == 1:
        struct.pack_into(">I", blob, rng.choice(heads), rng.choice((0, 15, 99, 1, 9, 14)))
    elif c == 2:
        h = rng.choice(heads)
        size = struct.unpack_from(">I", blob, h + 12)[0]
        struct.pack_into(">I", blob, h + 12, rng.choice((0, size - 1, size + 4, 0xFFFFFFFF)) &
                         0xFFFFFFFF)
    elif c == 3:  # flags: optional / preview-skip
        struct.pack_into(">I", blob, rng.choice(heads) + 8, rng.choice((0, 1, 2, 3, 0xFFFFFFFF)))
    else:  # a parameter word: plane counts, areas, pitches, map sizes, doubles
        h = rng.choice(heads)
        size = struct.unpack_from(">I", blob, h + 12)[0]
        if size >= 4 and h + 16 + size <= len(blob):
            off = h + 16 + 4 * rng.randrange(size // 4)
            if rng.random() < 0.3 and off + 8 <= h + 16 + size:
                struct.pack_into(">d", blob, off, rng.choice((float("nan"), float("inf"), -1e308,
                                                              1e308, 0.0, -1.0, 1e-300)))
            else:
                struct.pack_into(">I", blob, off, rng.choice(INTERESTING32))


# ----------------------------------------------------------------------------- text

_NUM = re.compile(rb"-?\d+(\.\d+)?([eE][-+]?\d+)?")
TEXT_VALUES = (b"0", b"-1", b"1e308", b"-1e308", b"nan", b"inf", b"-inf", b"1e-320", b"65537",
               b"4294967297", b"99999999999999999999999", b"0x10", b"1_000", b"\"x\"", b"true",
               b"[]", b"{}", b"", b"2.5.5", b"1e99999")  # fmt: skip
TEXT_LINES = (b"LUT_3D_SIZE 257", b"LUT_3D_SIZE 1", b"LUT_1D_SIZE 65537", b"LUT_3D_SIZE 256",
              b"DOMAIN_MIN 1 1 1", b"DOMAIN_MAX 0 0 0", b"DOMAIN_MIN nan 0 0", b"TITLE \"",
              b"LUT_3D_INPUT_RANGE 1 0", b"[output]", b"[output]\nsize = 99999999",
              b"[look]\nlut = \"/nonexistent.cube\"", b"[tone]\ncurve = 3", b"x = 1", b"[[a]]",
              b"kind = \"banner\"", b"[geometry]\nbanner = 9.99", b"[slots]\nleft_primary = [1, 2]",
              b"[fonts]\nprimary = 7", b"[colours]\nbackground = \"#zzzzzz\"", b"\x00\xff\xfe",
              b"date_format = \"%Q%%%\"", b"logo = \"/etc/passwd\"", b"separator = \"\\u0000\"",
              b"[output]\nsize = nan", b"[output]\nquality = inf", b"a = \"\"\"",
              b"[frame]\nlayout = \"../../x\"")  # fmt: skip


def text_mutate(b: bytearray, rng: random.Random) -> None:
    lines = bytes(b).split(b"\n")
    c = rng.randrange(9)
    if c == 0 and lines:  # a number -> an odd value
        nums = list(_NUM.finditer(bytes(b)))
        if nums:
            m = rng.choice(nums)
            b[m.start() : m.end()] = rng.choice(TEXT_VALUES)
            return
    if c == 1 and lines:
        del lines[rng.randrange(len(lines))]
    elif c == 2 and lines:
        i = rng.randrange(len(lines))
        lines[i:i] = [lines[i]] * rng.choice((1, 2, 50))
    elif c == 3:
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(TEXT_LINES))
    elif c == 4 and lines:  # swap two lines
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif c == 5:  # deep nesting (parsers that recurse)
        depth = rng.choice((50, 1000, 5000))
        nest = rng.choice(((b"[" * depth) + (b"]" * depth), (b"{a=" * depth) + (b"}" * depth)))
        lines.insert(rng.randrange(len(lines) + 1), b"deep = " + nest)
    elif c == 6 and lines:  # a value -> another type
        i = rng.randrange(len(lines))
        if b"=" in lines[i]:
            k = lines[i].split(b"=", 1)[0]
            lines[i] = k + b"= " + rng.choice(TEXT_VALUES)
    elif c == 7:  # a very long line
        lines.insert(rng.randrange(len(lines) + 1), b"# " + b"x" * rng.choice((10_000, 1_000_000)))
    else:
        rng.choice(GENERIC)(b, rng)
        return
    b[:] = b"\n".join(lines)


# ----------------------------------------------------------------------------- PNG


def png_fix_crcs(b: bytearray) -> None:
    """Recompute chunk CRCs so mutations get past the CRC check into the decoder."""
    import zlib

    pos = 8
    while pos + 12 <= len(b):
        (n,) = struct.unpack_from(">I", b, pos)
        if pos + 12 + n > len(b):
            break
        struct.pack_into(">I", b, pos + 8 + n, zlib.crc32(b[pos + 4 : pos + 8 + n]) & 0xFFFFFFFF)
        pos += 12 + n


def png_mutate(b: bytearray, rng: random.Random) -> None:
    """Corrupt IHDR fields (size, depth, colour type) or chunk lengths of a PNG."""
    if len(b) < 33:
        return
    c = rng.randrange(3)
    if c == 0:  # width / height
        struct.pack_into(">I", b, 16 + 4 * rng.randrange(2),
                         rng.choice((0, 1, 4096, 65535, 100000, 0x7FFFFFFF, 0xFFFFFFFF)))
    elif c == 1:  # bit depth, colour type, interlace
        b[24 + rng.choice((0, 1, 4))] = rng.choice((0, 1, 2, 3, 4, 6, 8, 16, 255))
    else:
        pos = 8
        heads = []
        while pos + 12 <= len(b) and len(heads) < 64:
            heads.append(pos)
            pos += 12 + struct.unpack_from(">I", b, pos)[0]
        struct.pack_into(">I", b, rng.choice(heads), rng.choice(INTERESTING32))


# ----------------------------------------------------------------------------- entry point


def mutate(data: bytes, target: str, rng: random.Random, splice: bytes | None = None) -> bytes:
    """1-4 stacked mutations of ``data`` fitting the target's format."""
    b = bytearray(data)
    is_tiff = data[:4] in (b"II*\x00", b"MM\x00*")
    is_png = data[:8] == b"\x89PNG\r\n\x1a\n"
    text = target in ("cube", "template", "recipe")
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        if not b:
            b = bytearray(b"\x00")
        r = rng.random()
        if text and r < 0.75:
            text_mutate(b, rng)
        elif is_tiff and r < 0.6:
            try:
                tiff_mutate(b, rng)
            except (struct.error, IndexError, ValueError):
                # an earlier mutation left offsets pointing outside the file: flip bytes instead
                rng.choice(GENERIC)(b, rng)
        elif is_png and r < 0.3:
            png_mutate(b, rng)
        elif splice and r > 0.97:
            i = rng.randrange(len(b))
            j = rng.randrange(len(splice))
            b[i:] = splice[j : j + rng.choice((16, 256, 4096))]
        else:
            rng.choice(GENERIC)(b, rng)
    if is_png and rng.random() < 0.8:
        png_fix_crcs(b)
    return bytes(b)
