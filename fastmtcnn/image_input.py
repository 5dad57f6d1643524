"""Checking and decoding what users pass as an image, with errors that say what to pass instead.

Accepted: uint8 arrays (H, W) gray, (H, W, 1), (H, W, 3) BGR or RGB, (H, W, 4) BGRA or RGBA; a path to an
image file; or the encoded bytes of one (JPEG, PNG, WebP, BMP, TIFF, GIF, PNM: see `IMAGE_EXTENSIONS`).
Files and bytes are decoded by OpenCV, so they are always BGR whatever `color` says. `load_image` is the one
place an image is checked: it returns a `LoadedImage`, which `Detector.detect` takes without checking again.
Also here: `find_images`, the folder walk that batch jobs and Ray Data share.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, NamedTuple, Sequence, Tuple, Union

import cv2
import numpy as np

from .errors import ImageError, ImageFileNotFound, ImageTooLarge, UnsupportedImage
from .settings import DEFAULT_MAX_PIXELS

COLORS = ("bgr", "rgb")
#: File name endings of the image formats accepted from files and bytes (any case).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".png", ".webp", ".bmp", ".dib", ".tif", ".tiff", ".gif",
                    ".pbm", ".pgm", ".ppm", ".pnm", ".pam")


class LoadedImage(NamedTuple):
    """A checked image: uint8 C-contiguous (H, W, C) pixels with C in 1, 3, 4, and their colour order."""

    pixels: np.ndarray
    color: str


ImageLike = Union[np.ndarray, str, os.PathLike, bytes, bytearray, memoryview, LoadedImage]

_WHAT_TO_PASS = ("pass a uint8 numpy array of shape (H, W, 3) (BGR as cv2.imread gives it, or RGB with "
                 "color='rgb'), (H, W) gray, (H, W, 4) BGRA, a path to an image file, or encoded image bytes")


def check_color(color: str) -> str:
    """'bgr' or 'rgb' (any case), lower-cased; a ValueError otherwise."""
    if not isinstance(color, str) or color.lower() not in COLORS:
        raise ValueError(f"color must be 'bgr' (OpenCV order) or 'rgb', got {color!r}")
    return color.lower()


def load_image(image: ImageLike, color: str = "bgr", max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Check or decode `image` once: a `LoadedImage` (pixels, colour order). A `LoadedImage` comes back as is."""
    if isinstance(image, LoadedImage):
        return image
    color = check_color(color)
    if isinstance(image, (str, os.PathLike)):
        return LoadedImage(decode_image(_read_file(Path(image)), max_pixels, source=str(image)), "bgr")
    if isinstance(image, (bytes, bytearray, memoryview)):
        return LoadedImage(decode_image(bytes(image), max_pixels, source="image bytes"), "bgr")
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, a path or bytes, got {type(image).__name__}: {_WHAT_TO_PASS}")
    return LoadedImage(check_array(image, max_pixels), color)


def check_array(image: np.ndarray, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Validate an image array; returns it as uint8 C-contiguous (H, W, C)."""
    if image.dtype != np.uint8:
        hint = " (scale floats in [0, 1] with (img * 255).round().astype(np.uint8))" if image.dtype.kind == "f" else ""
        raise TypeError(f"image dtype must be uint8, got {image.dtype}{hint}: {_WHAT_TO_PASS}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"image shape {image.shape} is not an image: {_WHAT_TO_PASS}")
    height, width = image.shape[:2]
    if height == 0 or width == 0:
        raise ValueError(f"image is empty (shape {image.shape}): {_WHAT_TO_PASS}")
    if height * width > max_pixels:
        raise ImageTooLarge(f"image of {width}x{height} = {height * width} pixels is over the limit of {max_pixels}: "
                            "downscale it, or raise max_image_pixels")
    return np.ascontiguousarray(image)


def _read_file(path: Path) -> bytes:
    if not path.exists():
        raise ImageFileNotFound(f"image file not found: {path}")
    if path.is_dir():
        raise ImageError(f"{path} is a folder, not an image file")
    try:
        return path.read_bytes()
    except OSError as error:
        raise ImageError(f"cannot read image file {path}: {error.strerror or error}") from None


_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers (not DHT, JPG, DAC)


def image_size_from_header(data: bytes) -> Tuple[int, int]:
    """(width, height) from an image header without decoding pixels; (0, 0) if unknown.

    Reads PNG (IHDR), JPEG (the first SOFn segment), WebP (VP8, VP8L, VP8X), GIF (logical screen) and BMP
    headers, so that decompression bombs can be refused before `cv2.imdecode` allocates the pixels.
    """
    data = bytes(data[:1 << 20]) if len(data) > 1 << 20 else bytes(data)  # headers sit near the start
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data[:2] == b"BM" and len(data) >= 26:
        if int.from_bytes(data[14:18], "little") == 12:  # BITMAPCOREHEADER: 16-bit unsigned sizes
            return int.from_bytes(data[18:20], "little"), int.from_bytes(data[20:22], "little")
        width = int.from_bytes(data[18:22], "little", signed=True)
        height = int.from_bytes(data[22:26], "little", signed=True)  # negative: rows stored top-down
        return abs(width), abs(height)
    return 0, 0


def _jpeg_size(data: bytes) -> Tuple[int, int]:
    pos, end = 2, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return 0, 0  # not at a marker: corrupt
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header before it
            return 0, 0
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker in _JPEG_SOF:
            if pos + 9 > end:
                return 0, 0
            return int.from_bytes(data[pos + 7:pos + 9], "big"), int.from_bytes(data[pos + 5:pos + 7], "big")
        if length < 2:
            return 0, 0
        pos += 2 + length
    return 0, 0


def _webp_size(data: bytes) -> Tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        return (int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF)
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return 0, 0


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, source: str = "image") -> np.ndarray:
    """Decode encoded image bytes to uint8 BGR (H, W, 3); ImageError if they are not an image."""
    if not data:
        raise ImageError(f"{source} is empty (0 bytes): pass a JPEG, PNG, WebP, BMP or TIFF file")
    width, height = image_size_from_header(data)
    if width * height > max_pixels:
        raise ImageTooLarge(f"{source}: {width}x{height} pixels is over the limit of {max_pixels}")
    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise UnsupportedImage(f"{source} is not an image OpenCV can decode: pass a JPEG, PNG, WebP, BMP or TIFF file")
    return check_array(decoded, max_pixels)


def find_images(root: Path, exclude: Sequence[Path] = ()) -> List[str]:
    """Relative POSIX paths of the image files under `root` (`IMAGE_EXTENSIONS`, any case), sorted by path
    string so the order is deterministic; folders in `exclude` and symlinked folders are not entered."""
    root = Path(root)
    excluded = {os.path.realpath(p) for p in exclude}
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [d for d in subfolders if os.path.realpath(os.path.join(folder, d)) not in excluded]
        for name in files:
            if name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(Path(folder, name).relative_to(root).as_posix())
    return sorted(found)
