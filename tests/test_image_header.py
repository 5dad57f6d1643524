"""Header sizes of every accepted format, and crafted decompression bombs refused before OpenCV decodes them.

The bombs are made here: valid headers claiming huge sizes (with the tricks that used to bypass the check:
a stray byte before the JPEG frame header, > 1 MiB of APP segments, TIFF pages in either byte order).
"""
import zlib

import cv2
import numpy as np
import pytest

from fastmtcnn import Detector
from fastmtcnn import image_input
from fastmtcnn.errors import ImageSizeUnknown, ImageTooLarge, UnsupportedImage
from fastmtcnn.image_header import read_image_size
from fastmtcnn.image_input import decode_image

from conftest import GROUP, encode_image, require_codec

BIG = 12000  # a side: 144 Mpx, over the 50 Mpx default


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".bmp", ".tif", ".pbm", ".pgm", ".ppm", ".pam", ".sr",
                                 ".hdr", ".pfm", ".gif"])
def test_every_format_opencv_writes_is_sized_from_its_header(ext):
    require_codec(ext)
    image = np.random.default_rng(1).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    if ext in (".hdr", ".pfm"):
        image = image.astype(np.float32) / 255
    if ext in (".pbm", ".pgm"):
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    size = read_image_size(encode_image(image, ext))
    assert (size.width, size.height) == (53, 37)
    assert decode_image(encode_image(image, ext)).shape[:2] == (37, 53)  # and they still decode


# ------------------------------------------------------------------------------------------------- crafted headers
def jpeg_bomb(width, height, stray=b"", app_bytes=0):
    """A JPEG header claiming width x height: optional stray bytes before the SOF, and APP segments."""
    app = b""
    while len(app) < app_bytes:
        app += b"\xff\xe1\xff\xff" + b"\x00" * 0xFFFD
    sof = b"\xff\xc0\x00\x11\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big") + b"\x03" + b"\x01\x11\x00" * 3
    return b"\xff\xd8" + app + stray + sof + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + b"\x00" * 64


def png_bomb(width, height):
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00"
    return (b"\x89PNG\r\n\x1a\n" + len(ihdr).to_bytes(4, "big") + b"IHDR" + ihdr
            + zlib.crc32(b"IHDR" + ihdr).to_bytes(4, "big") + b"\x00" * 64)


def tiff_bomb(pages, order="little", big=False):
    """A TIFF whose IFDs (pages) have the given (width, height); entries are LONG (classic) or LONG8 (BigTIFF)."""
    def uint(value, size):
        return value.to_bytes(size, order)

    offset_size, count_size, entry_size = (8, 8, 20) if big else (4, 2, 12)
    magic = (b"II" if order == "little" else b"MM")
    header = magic + (uint(43, 2) + uint(8, 2) + uint(0, 2) if big else uint(42, 2))
    header_len = len(header) + offset_size
    ifd_len = count_size + 2 * entry_size + offset_size
    body = b""
    for k, (width, height) in enumerate(pages):
        next_offset = header_len + (k + 1) * ifd_len if k + 1 < len(pages) else 0
        entries = b""
        for tag, value in ((256, width), (257, height)):
            value_type, size = (16, 8) if big else (4, 4)
            entries += uint(tag, 2) + uint(value_type, 2) + uint(1, count_size if big else 4) + uint(value, size)
        body += uint(2, count_size) + entries + uint(next_offset, offset_size)
    return header + uint(header_len, offset_size) + body + b"\x00" * 64


def gif_bomb(frame_width, frame_height):
    """A 10x10 GIF screen whose one frame claims frame_width x frame_height."""
    return (b"GIF89a" + (10).to_bytes(2, "little") + (10).to_bytes(2, "little") + b"\x00\x00\x00"
            + b"\x2c" + b"\x00" * 4 + frame_width.to_bytes(2, "little") + frame_height.to_bytes(2, "little")
            + b"\x00" + b"\x02\x02\x4c\x01\x00" + b"\x3b")


def bombs():
    """(name, bytes) of valid-looking headers over the default pixel limit, one per format and trick."""
    core = b"BM" + b"\x00" * 12 + (40).to_bytes(4, "little") + BIG.to_bytes(4, "little") \
        + (-BIG).to_bytes(4, "little", signed=True) + b"\x01\x00\x18\x00" + b"\x00" * 64
    return [
        ("jpeg", jpeg_bomb(BIG, BIG)),
        ("jpeg_stray_byte", jpeg_bomb(BIG, BIG, stray=b"\x00")),
        ("jpeg_stray_bytes_and_fill", jpeg_bomb(BIG, BIG, stray=b"junk\xff\xff")),
        ("jpeg_1.5MiB_app", jpeg_bomb(BIG, BIG, app_bytes=1_500_000)),
        ("jpeg_progressive", jpeg_bomb(BIG, BIG).replace(b"\xff\xc0", b"\xff\xc2", 1)),
        ("jpeg_60000", jpeg_bomb(60000, 60000, stray=b"\x00")),
        ("png", png_bomb(BIG, BIG)),
        ("webp_vp8x", b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00"
                      + (BIG - 1).to_bytes(3, "little") + (BIG - 1).to_bytes(3, "little") + b"\x00" * 64),
        ("gif_frame", gif_bomb(BIG, BIG)),
        ("bmp", core),
        ("tiff_le", tiff_bomb([(8000, 8000)])),
        ("tiff_be", tiff_bomb([(8000, 8000)], order="big")),
        ("tiff_second_page", tiff_bomb([(16, 16), (BIG, BIG)])),
        ("bigtiff", tiff_bomb([(BIG, BIG)], big=True)),
        ("pbm", b"P4\n# comment\n%d %d\n" % (BIG, BIG) + b"\x00" * 64),
        ("ppm", b"P6 %d\n%d 255\n" % (BIG, BIG) + b"\x00" * 64),
        ("pam", b"P7\nWIDTH %d\nHEIGHT %d\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n" % (BIG, BIG) + b"\x00" * 64),
        ("pfm", b"PF\n%d %d\n-1.0\n" % (BIG, BIG) + b"\x00" * 64),
        ("sun_raster", b"\x59\xa6\x6a\x95" + BIG.to_bytes(4, "big") + BIG.to_bytes(4, "big") + b"\x00" * 64),
        ("hdr", b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y %d +X %d\n" % (BIG, BIG) + b"\x00" * 64),
    ]


@pytest.mark.parametrize("name,data", bombs(), ids=[name for name, _ in bombs()])
def test_bombs_are_sized_from_the_header_and_refused_before_decoding(name, data, monkeypatch):
    size = read_image_size(data)
    assert size.pixels >= 64_000_000, (name, size)

    def no_decoding(*args, **kwargs):
        raise AssertionError(f"{name} reached cv2.imdecode")

    monkeypatch.setattr(image_input.cv2, "imdecode", no_decoding)
    with pytest.raises(ImageTooLarge, match="over the limit"):
        decode_image(data)


def test_unknown_or_unsized_headers_are_refused_not_decoded(monkeypatch):
    monkeypatch.setattr(image_input.cv2, "imdecode", lambda *a, **k: pytest.fail("decoded an unsized image"))
    unsized = [b"\xff\xd8\xff\xda\x00\x02", b"\xff\xd8" + b"\x00" * 40, b"\xff\xd8\xff\xe0\x00\x00",
               png_bomb(10, 10)[:20], b"\x89PNG\r\n\x1a\n" + b"\x00" * 8 + b"IEND" + b"\x00" * 16,
               tiff_bomb([(10, 10)])[:12], tiff_bomb([(0, 10)]), b"MM\x00*\x00\x00\x00\x08\x00\x01" + b"\x00" * 12,
               b"P6\n12 x\n", b"P7\nDEPTH 3\nENDHDR\n", b"#?RADIANCE\n\nbad\n",
               b"BM" + b"\x00" * 12 + (40).to_bytes(4, "little") + (-5).to_bytes(4, "little", signed=True)
               + b"\x00" * 8]
    for data in unsized:
        with pytest.raises(ImageSizeUnknown):
            decode_image(data)
    loop = bytearray(tiff_bomb([(10, 10)]))
    loop[8 + 2 + 24:8 + 2 + 24 + 4] = (8).to_bytes(4, "little")  # next IFD = itself
    with pytest.raises(ImageSizeUnknown):
        decode_image(bytes(loop))
    avif = b"\x00\x00\x00\x1cftypavif" + b"\x00" * 40
    jp2 = b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\x00" * 40
    for data in (avif, jp2, b"plain text", np.random.default_rng(0).bytes(4000)):
        with pytest.raises(UnsupportedImage):
            decode_image(data)


def test_truncations_of_real_files_never_raise_anything_but_image_errors():
    image = cv2.imread(str(GROUP))[:120, :160]
    for ext in (".jpg", ".png", ".webp", ".tif", ".gif", ".bmp", ".ppm", ".pam"):
        if not cv2.haveImageWriter(ext):
            continue  # e.g. GIF before OpenCV 4.11: nothing to cut
        data = encode_image(image, ext)
        for cut in sorted(set(np.linspace(0, len(data) - 1, 40).astype(int))):
            try:
                read_image_size(data[:cut])
            except UnsupportedImage:  # ImageSizeUnknown included
                pass


def test_python_api_raises_value_errors_and_batch_keeps_going(monkeypatch):
    detector = Detector()
    crafted = [data for _, data in bombs()] + [b"\xff\xd8\xff\xda\x00\x02", b"\x00\x00\x00\x1cftypavif"]
    for data in crafted:
        with pytest.raises(ValueError) as raised:
            detector.detect(data)
        assert not isinstance(raised.value, cv2.error)
    group = GROUP.read_bytes()
    results = detector.detect_batch([crafted[0], group, crafted[12], group])
    assert isinstance(results[0], ImageTooLarge) and isinstance(results[2], ImageTooLarge)
    assert len(results[1]) >= 4 and len(results[3]) == len(results[1])


def test_truncation_reads_pnm_and_pam_headers_as_the_size_reader_does():
    from fastmtcnn.image_header import truncation

    assert "not a number" in truncation(b"P5\n2 2\nabc\n" + bytes(4), "PNM")  # a reason, never a bare ValueError
    pam = b"P7\nWIDTH 2 # w\nHEIGHT 2\nDEPTH 1\nMAXVAL 255\nENDHDR\n"  # a comment after a value
    assert truncation(pam + bytes(1), "PAM") == "1 of the 4 raster bytes announced"
    assert truncation(pam + bytes(4), "PAM") is None
