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
from typing import Callable, Iterator, List, NamedTuple, Optional, Tuple

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


def _jpeg_size(data: bytes) -> Optional[Tuple[int, int]]:
    """The first SOFn's (width, height), walking segments as libjpeg does: bytes before a marker are skipped
    (libjpeg warns and goes on), fill bytes 0xFF are skipped, every segment length is honoured."""
    pos, end = 2, len(data)
    while pos < end:
        pos = data.find(b"\xff", pos)  # stray bytes before a marker: libjpeg skips them too
        if pos < 0:
            return None
        while pos < end and data[pos] == 0xFF:
            pos += 1
        if pos >= end:
            return None
        marker = data[pos]
        pos += 1
        if marker == 0x00 or marker in _JPEG_STANDALONE:
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        if pos + 2 > end:
            return None
        length = int.from_bytes(data[pos:pos + 2], "big")
        if marker in _JPEG_SOF:
            if length < 8 or pos + 7 > end:
                return None
            return int.from_bytes(data[pos + 5:pos + 7], "big"), int.from_bytes(data[pos + 3:pos + 5], "big")
        if length < 2:
            return None
        pos += length
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


def _pam_size(data: bytes) -> Optional[Tuple[int, int]]:
    """P7: 'WIDTH n' and 'HEIGHT n' lines before ENDHDR."""
    fields = {}
    for line in bytes(data[3:MAX_TEXT_HEADER]).split(b"\n"):
        words = line.split(b"#", 1)[0].split()
        if words[:1] == [b"ENDHDR"]:
            break
        if len(words) >= 2:
            fields[words[0]] = words[1]
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
