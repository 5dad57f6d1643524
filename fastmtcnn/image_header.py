"""Image sizes read from file headers, before anything is decoded (so decompression bombs are refused early).

`read_image_size(data)` returns an `ImageSize` (format, width, height) for every format this package lets
OpenCV decode: JPEG (all SOFn frames, segments walked as libjpeg does, skipping stray bytes), PNG (IHDR),
WebP (VP8, VP8L, VP8X), GIF (screen and every frame), BMP (core and info headers), TIFF (every IFD, both byte
orders, BigTIFF), PNM (P1-P6), PAM (P7), PFM, Sun raster and Radiance HDR. It raises `UnsupportedImage` for
bytes of no known format (AVIF and JPEG 2000 included: their size is not read here, so they are not decoded)
and `ImageSizeUnknown` when the format is known but its header is truncated or inconsistent. Work is linear in
the bytes at most; nothing here allocates more than the input.
"""
from __future__ import annotations

import re
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

from .errors import ImageSizeUnknown, UnsupportedImage

#: Formats whose header is read (and therefore that may be decoded), as named in messages.
KNOWN_FORMATS = "JPEG, PNG, WebP, GIF, BMP, TIFF, PNM/PAM, PFM, Sun raster or Radiance HDR"
#: TIFF: most image file directories (pages) walked.
MAX_TIFF_PAGES = 4096
#: Text headers (PNM, PAM, PFM, HDR): longest header read.
MAX_TEXT_HEADER = 64 * 1024


class ImageSize(NamedTuple):
    """Dimensions from a header: `width` x `height` pixels (the largest page/frame for multi-image files)."""

    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def read_image_size(data: bytes) -> ImageSize:
    """The format and size of encoded image bytes, from their header only.

    Raises UnsupportedImage (not a format listed in KNOWN_FORMATS) or ImageSizeUnknown (a known format whose
    size cannot be read: truncated, no frame header before the pixel data, zero or negative sizes).
    """
    data = bytes(data)  # a no-op for bytes
    for magic_test, name, reader in _READERS:
        if magic_test(data):
            size = reader(data)
            if size is None or size[0] <= 0 or size[1] <= 0:
                raise ImageSizeUnknown(f"the {name} header does not give a valid image size (truncated or corrupt "
                                       "file?): send a complete image")
            return ImageSize(name, int(size[0]), int(size[1]))
    raise UnsupportedImage(f"the bytes are not an image of a supported format: send {KNOWN_FORMATS}")


# ------------------------------------------------------------------------------------------------- JPEG
#: Start-of-frame markers of every JPEG process (not DHT C4, JPG C8, DAC CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
#: Markers without a length field: TEM, RSTn, SOI.
_JPEG_STANDALONE = frozenset([0x01, *range(0xD0, 0xD9)])


def _jpeg_markers(data: bytes) -> Iterator[Tuple[int, int]]:
    """(marker, position after it) of each segment up to the first SOS or EOI, walking as libjpeg does: bytes
    before a marker are skipped (libjpeg warns and goes on), fill bytes 0xFF are skipped, lengths honoured."""
    pos, end = 2, len(data)
    while pos < end:
        pos = data.find(b"\xff", pos)  # stray bytes before a marker: libjpeg skips them too
        if pos < 0:
            return
        while pos < end and data[pos] == 0xFF:
            pos += 1
        if pos >= end:
            return
        marker = data[pos]
        pos += 1
        if marker == 0x00 or marker in _JPEG_STANDALONE:
            continue
        yield marker, pos
        if marker in (0xD9, 0xDA) or pos + 2 > end:  # end of image, start of scan, or a cut length field
            return
        length = int.from_bytes(data[pos:pos + 2], "big")
        if length < 2:
            return
        pos += length


def _jpeg_size(data: bytes) -> Optional[Tuple[int, int]]:
    """The first SOFn's (width, height), or None if a scan or the end comes first."""
    for marker, pos in _jpeg_markers(data):
        if marker in _JPEG_SOF:
            if pos + 7 > len(data) or int.from_bytes(data[pos:pos + 2], "big") < 8:
                return None
            return int.from_bytes(data[pos + 5:pos + 7], "big"), int.from_bytes(data[pos + 3:pos + 5], "big")
    return None


# ------------------------------------------------------------------------------------------------- PNG, WebP
def _png_size(data: bytes) -> Optional[Tuple[int, int]]:
    if len(data) < 24 or bytes(data[12:16]) != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _webp_size(data: bytes) -> Optional[Tuple[int, int]]:
    chunk = bytes(data[12:16])
    if chunk == b"VP8 " and len(data) >= 30 and bytes(data[23:26]) == b"\x9d\x01\x2a":
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


# ------------------------------------------------------------------------------------------------- GIF
def _gif_size(data: bytes) -> Optional[Tuple[int, int]]:
    """Largest of the logical screen and every frame's extent (left + width, top + height)."""
    if len(data) < 13:
        return None
    width, height = int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    pos = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    end = len(data)
    while pos < end:
        block = data[pos]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension: label, then sub-blocks
            pos = _gif_skip_sub_blocks(data, pos + 2)
        elif block == 0x2C:  # image descriptor
            if pos + 10 > end:
                break
            left, top, frame_w, frame_h = (int.from_bytes(data[pos + k:pos + k + 2], "little") for k in (1, 3, 5, 7))
            width, height = max(width, left + frame_w), max(height, top + frame_h)
            flags = data[pos + 9]
            pos += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
            pos = _gif_skip_sub_blocks(data, pos + 1)  # after the LZW minimum code size
        else:
            break  # corrupt: OpenCV stops here too
        if pos < 0:
            break
    return width, height


def _gif_skip_sub_blocks(data: bytes, pos: int) -> int:
    """Position after a chain of GIF sub-blocks starting at `pos`, or -1 if it runs past the end."""
    end = len(data)
    while pos < end:
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos
    return -1


# ------------------------------------------------------------------------------------------------- BMP, Sun
def _bmp_size(data: bytes) -> Optional[Tuple[int, int]]:
    if len(data) < 26:
        return None
    if int.from_bytes(data[14:18], "little") == 12:  # BITMAPCOREHEADER: 16-bit unsigned sizes
        return int.from_bytes(data[18:20], "little"), int.from_bytes(data[20:22], "little")
    width = int.from_bytes(data[18:22], "little", signed=True)
    height = int.from_bytes(data[22:26], "little", signed=True)  # negative: rows stored top-down
    return width, abs(height)


def _sun_raster_size(data: bytes) -> Optional[Tuple[int, int]]:
    if len(data) < 12:
        return None
    return int.from_bytes(data[4:8], "big"), int.from_bytes(data[8:12], "big")


# ------------------------------------------------------------------------------------------------- TIFF
_TIFF_WIDTH, _TIFF_LENGTH = 256, 257
#: TIFF field types holding an unsigned integer: SHORT, LONG, LONG8 (BigTIFF) -> byte size.
_TIFF_UINT_SIZES = {3: 2, 4: 4, 16: 8}


def _tiff_size(data: bytes) -> Optional[Tuple[int, int]]:
    """Largest width and height over every IFD (page) of a classic or Big TIFF, either byte order."""
    order = "little" if bytes(data[:2]) == b"II" else "big"
    version = int.from_bytes(data[2:4], order)
    big = version == 43
    offset_size, count_size, entry_size = (8, 8, 20) if big else (4, 2, 12)
    header = 16 if big else 8
    if len(data) < header:
        return None
    offset = int.from_bytes(data[header - offset_size:header], order)
    width = height = 0
    seen = set()
    entries_left = len(data) // entry_size  # IFDs that overlap could otherwise make this quadratic
    while offset:
        if offset in seen or len(seen) >= MAX_TIFF_PAGES or offset + count_size > len(data):
            return None  # a loop, too many pages, or an IFD past the end: refuse rather than guess
        seen.add(offset)
        count = int.from_bytes(data[offset:offset + count_size], order)
        entries = offset + count_size
        entries_left -= count
        if entries + count * entry_size + offset_size > len(data) or entries_left < 0:
            return None
        page_w = page_h = 0
        for k in range(count):
            entry = entries + k * entry_size
            tag = int.from_bytes(data[entry:entry + 2], order)
            if tag not in (_TIFF_WIDTH, _TIFF_LENGTH):
                continue
            value_size = _TIFF_UINT_SIZES.get(int.from_bytes(data[entry + 2:entry + 4], order))
            if value_size is None:
                return None
            value_at = entry + (12 if big else 8)  # after tag (2), type (2) and the value count (8 or 4)
            value = int.from_bytes(data[value_at:value_at + value_size], order)
            if tag == _TIFF_WIDTH:
                page_w = value
            else:
                page_h = value
        if page_w <= 0 or page_h <= 0:
            return None
        width, height = max(width, page_w), max(height, page_h)
        next_at = entries + count * entry_size
        offset = int.from_bytes(data[next_at:next_at + offset_size], order)
    return (width, height) if seen else None


# ------------------------------------------------------------------------------------------------- text headers
def _text_tokens(data: bytes) -> Iterator[bytes]:
    """Whitespace-separated tokens of a PNM/PFM header, '#' comments skipped (first MAX_TEXT_HEADER bytes)."""
    head = bytes(data[2:MAX_TEXT_HEADER])
    for line in head.split(b"\n"):
        yield from line.split(b"#", 1)[0].split()


def _pnm_size(data: bytes) -> Optional[Tuple[int, int]]:
    """P1-P6 and PFM (Pf/PF): magic, then width and height as decimal tokens."""
    tokens = _text_tokens(data)
    try:
        return int(next(tokens)), int(next(tokens))
    except (StopIteration, ValueError):
        return None


def _pam_fields(data: bytes, limit: int) -> Dict[bytes, bytes]:
    """P7 header fields (name -> first word of its value) of the lines before ENDHDR, comments left out."""
    fields = {}
    for line in bytes(data[3:limit]).split(b"\n"):
        words = line.split(b"#", 1)[0].split()
        if words[:1] == [b"ENDHDR"]:
            break
        if len(words) >= 2:
            fields[words[0]] = words[1]
    return fields


def _pam_size(data: bytes) -> Optional[Tuple[int, int]]:
    """P7: 'WIDTH n' and 'HEIGHT n' lines before ENDHDR."""
    fields = _pam_fields(data, MAX_TEXT_HEADER)
    try:
        return int(fields[b"WIDTH"]), int(fields[b"HEIGHT"])
    except (KeyError, ValueError):
        return None


_HDR_RESOLUTION = re.compile(rb"^([-+])([XY]) (\d+) ([-+])([XY]) (\d+)$")


def _hdr_size(data: bytes) -> Optional[Tuple[int, int]]:
    """Radiance: header lines, an empty line, then e.g. '-Y 480 +X 640' (first axis is the rows)."""
    lines: List[bytes] = bytes(data[:MAX_TEXT_HEADER]).split(b"\n")
    for k, line in enumerate(lines[:-1]):
        if not line.strip():
            match = _HDR_RESOLUTION.match(lines[k + 1].strip())
            if not match or match.group(2) == match.group(5):
                return None
            rows, columns = int(match.group(3)), int(match.group(6))
            return (columns, rows) if match.group(2) == b"Y" else (rows, columns)
    return None


def _starts(*magics: bytes) -> Callable[[bytes], bool]:
    return lambda data: any(bytes(data[:len(magic)]) == magic for magic in magics)


_READERS = (
    (_starts(b"\xff\xd8"), "JPEG", _jpeg_size),
    (_starts(b"\x89PNG\r\n\x1a\n"), "PNG", _png_size),
    (lambda data: bytes(data[:4]) == b"RIFF" and bytes(data[8:12]) == b"WEBP", "WebP", _webp_size),
    (_starts(b"GIF87a", b"GIF89a"), "GIF", _gif_size),
    (_starts(b"BM"), "BMP", _bmp_size),
    (_starts(b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"), "TIFF", _tiff_size),
    (lambda data: len(data) > 2 and data[0] == ord("P") and data[1] in b"123456fF" and data[2] in b" \t\r\n#",
     "PNM", _pnm_size),
    (_starts(b"P7\n", b"P7\r", b"P7 "), "PAM", _pam_size),
    (_starts(b"\x59\xa6\x6a\x95"), "Sun raster", _sun_raster_size),
    (_starts(b"#?RADIANCE", b"#?RGBE"), "Radiance HDR", _hdr_size),
)


# ------------------------------------------------------------------------------------------------- completeness
def truncation(data: bytes, format_name: str) -> Optional[str]:
    """Why `data` (whose header `read_image_size` read as `format_name`) is cut short, or None when the data the
    header announces is all there. OpenCV releases differ on truncated files (some decode them with grey rows,
    some refuse), so this check is what makes them refused alike. Formats with no check here give None."""
    check = _COMPLETENESS.get(format_name)
    return None if check is None else check(bytes(data))


def _jpeg_truncation(data: bytes) -> Optional[str]:
    for marker, pos in _jpeg_markers(data):
        if marker == 0xDA:  # entropy-coded data: 0xFF is stuffed or a RSTn there, so FF D9 is the end of image
            return None if data.find(b"\xff\xd9", pos) >= 0 else "no end-of-image marker after the scan data"
    return "no scan data"


def _png_truncation(data: bytes) -> Optional[str]:
    pos = 8
    while pos + 8 <= len(data):
        length, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        pos += 12 + length  # length, type, data, CRC
        if pos > len(data):
            break
        if kind == b"IEND":
            return None
    return "the chunks end before IEND"


def _webp_truncation(data: bytes) -> Optional[str]:
    announced = int.from_bytes(data[4:8], "little") + 8
    return None if len(data) >= announced else f"{len(data)} of the {announced} bytes its RIFF header announces"


def _gif_truncation(data: bytes) -> Optional[str]:
    pos = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    while pos < len(data):
        block = data[pos]
        if block == 0x3B:
            return None
        if block == 0x21:
            pos = _gif_skip_sub_blocks(data, pos + 2)
        elif block == 0x2C and pos + 10 <= len(data):
            flags = data[pos + 9]
            pos = _gif_skip_sub_blocks(data, pos + 11 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0))
        else:
            return None  # an unknown block: OpenCV stops there too, with the frames before it
        if pos < 0:
            return "a frame's data runs past the end of the file"
    return "no trailer after the last frame"


def _bmp_truncation(data: bytes) -> Optional[str]:
    header = int.from_bytes(data[14:18], "little")
    offset = int.from_bytes(data[10:14], "little")
    if header == 12:
        width, height, bits = (int.from_bytes(data[k:k + 2], "little") for k in (18, 20, 24))
        compressed_size = 0
    else:
        width = abs(int.from_bytes(data[18:22], "little", signed=True))
        height = abs(int.from_bytes(data[22:26], "little", signed=True))
        bits = int.from_bytes(data[28:30], "little")
        compression = int.from_bytes(data[30:34], "little")
        compressed_size = int.from_bytes(data[34:38], "little") if compression not in (0, 3) else 0
    needed = offset + (compressed_size or (width * bits + 31) // 32 * 4 * height)
    return None if len(data) >= needed else f"{len(data)} of the {needed} bytes its header announces"


#: Byte size of each TIFF field type (BYTE, ASCII, SHORT, LONG, RATIONAL, SBYTE, UNDEFINED, SSHORT, SLONG,
#: SRATIONAL, FLOAT, DOUBLE, and BigTIFF's LONG8, SLONG8, IFD8).
_TIFF_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 16: 8, 17: 8, 18: 8}


def _tiff_truncation(data: bytes) -> Optional[str]:
    """Every field value and every strip or tile of the first page lies inside the file."""
    order = "little" if data[:2] == b"II" else "big"
    big = int.from_bytes(data[2:4], order) == 43
    field, count_size, entry_size = (8, 8, 20) if big else (4, 2, 12)  # field: value count / value size
    ifd = int.from_bytes(data[(16 if big else 8) - field:16 if big else 8], order)
    fields = {}
    for k in range(int.from_bytes(data[ifd:ifd + count_size], order)):
        entry = ifd + count_size + k * entry_size
        tag, kind = int.from_bytes(data[entry:entry + 2], order), int.from_bytes(data[entry + 2:entry + 4], order)
        n = int.from_bytes(data[entry + 4:entry + 4 + field], order)
        at = entry + 4 + field
        size = _TIFF_TYPE_SIZES.get(kind, 1)
        if n * size > field:
            at = int.from_bytes(data[at:at + field], order)
            if at + n * size > len(data):
                return f"tag {tag}'s values lie past the end of the file"
        if tag in (273, 279, 324, 325) and kind in _TIFF_UINT_SIZES:  # strip/tile offsets and byte counts
            fields[tag] = [int.from_bytes(data[at + i * size:at + (i + 1) * size], order) for i in range(n)]
    offsets, counts = fields.get(273) or fields.get(324), fields.get(279) or fields.get(325)
    if not offsets or not counts:
        return None
    end = max(o + c for o, c in zip(offsets, counts))
    return None if len(data) >= end else f"{len(data)} of the {end} bytes its strips or tiles need"


_PNM_TOKEN = re.compile(rb"(?:\s+|#[^\n]*\n)*(\S+)")


def _pnm_truncation(data: bytes) -> Optional[str]:
    """Binary P4/P5/P6 and PFM: header tokens, one whitespace byte, then the raster."""
    kind = data[1:2]
    if kind not in (b"4", b"5", b"6", b"f", b"F"):
        return None  # ASCII formats: no fixed size
    pos, values = 2, []
    for _ in range(2 if kind == b"4" else 3):
        match = _PNM_TOKEN.match(data, pos)
        if not match:
            return "the header ends early"
        values.append(match.group(1))
        pos = match.end()
    try:
        width, height = int(values[0]), int(values[1])
        wide = kind in (b"5", b"6") and int(values[2]) > 255
    except ValueError:
        return "its header has a size or maxval that is not a number"
    if kind == b"4":
        needed = (width + 7) // 8 * height
    elif kind in (b"f", b"F"):
        needed = width * height * (3 if kind == b"F" else 1) * 4
    else:
        needed = width * height * (3 if kind == b"6" else 1) * (2 if wide else 1)
    have = len(data) - pos - 1
    return None if have >= needed else f"{max(have, 0)} of the {needed} raster bytes its header announces"


def _pam_truncation(data: bytes) -> Optional[str]:
    end = data.find(b"ENDHDR\n")
    fields = _pam_fields(data, max(end, 0))
    try:
        width, height, depth, maxval = (int(fields[k]) for k in (b"WIDTH", b"HEIGHT", b"DEPTH", b"MAXVAL"))
    except (KeyError, ValueError):
        return None
    needed = width * height * depth * (2 if maxval > 255 else 1)
    have = len(data) - end - 7
    return None if end >= 0 and have >= needed else f"{max(have, 0)} of the {needed} raster bytes announced"


_COMPLETENESS = {"JPEG": _jpeg_truncation, "PNG": _png_truncation, "WebP": _webp_truncation, "GIF": _gif_truncation,
                 "BMP": _bmp_truncation, "TIFF": _tiff_truncation, "PNM": _pnm_truncation, "PAM": _pam_truncation}
