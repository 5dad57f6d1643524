"""Codec lists probed from the running OpenCV, and truncated files refused alike on every OpenCV release."""
import cv2
import numpy as np
import pytest

from fastmtcnn import Detector
from fastmtcnn.errors import ImageTruncated, UnsupportedImage
from fastmtcnn.image_codecs import _TINY_GIF, decodable_formats, formats_text
from fastmtcnn.image_header import read_image_size, truncation
from fastmtcnn.image_input import decode_image

from conftest import GROUP

#: Formats every OpenCV 4.10+ build writes (GIF is not among them before 4.11).
WRITTEN = (".jpg", ".png", ".webp", ".bmp", ".tif", ".ppm", ".pgm", ".pbm", ".pam", ".pfm")


def test_the_format_list_is_what_this_opencv_decodes():
    formats = decodable_formats()
    assert {"JPEG", "PNG", "WebP", "BMP", "TIFF", "PNM"} <= set(formats)
    assert formats_text().startswith("JPEG, PNG") and formats_text().endswith(formats[-1])
    with pytest.raises(UnsupportedImage) as raised:
        decode_image(b"plain text, not an image")
    assert formats_text() in str(raised.value)


def test_gif_is_decoded_or_refused_by_what_opencv_can_do():
    assert read_image_size(_TINY_GIF).format == "GIF"
    if "GIF" in decodable_formats():
        assert decode_image(_TINY_GIF).shape == (1, 1, 3)
        return
    with pytest.raises(UnsupportedImage) as raised:
        decode_image(_TINY_GIF, source="a.gif")
    message = str(raised.value)
    assert f"this OpenCV ({cv2.__version__}) has no GIF decoder" in message
    assert "GIF" not in message.split(": pass ")[1]  # the list of what to pass leaves it out


@pytest.mark.parametrize("ext", WRITTEN)
def test_a_cut_file_is_refused_before_decoding_on_every_opencv(ext):
    image = cv2.imread(str(GROUP))[:96, :128]
    if ext in (".pgm", ".pbm"):
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if ext == ".pfm":
        image = image.astype(np.float32) / 255
    data = cv2.imencode(ext, image)[1].tobytes()
    assert truncation(data, read_image_size(data).format) is None
    decode_image(data)  # whole: decodes
    for cut in (len(data) * 2 // 3, len(data) - 1):
        with pytest.raises(UnsupportedImage) as raised:  # ImageTruncated, or ImageSizeUnknown (TIFF: IFD at the end)
            Detector().detect(data[:cut])
        assert "truncated" in str(raised.value)


def test_a_truncated_jpeg_photo_gives_the_same_error_everywhere():
    data = GROUP.read_bytes()[:20000]
    with pytest.raises(ImageTruncated, match="no end-of-image marker"):
        decode_image(data, source="trunc.jpg")
    padded = GROUP.read_bytes() + b"\x00" * 100  # bytes after the end of image are fine (libjpeg ignores them)
    assert decode_image(padded).shape == (480, 640, 3)
