"""Checking and decoding what users pass as an image, with errors that say what to pass instead.

Accepted: uint8 arrays (H, W) gray, (H, W, 1), (H, W, 3) BGR or RGB, (H, W, 4) BGRA or RGBA; a path to an
image file; or the encoded bytes of one (JPEG, PNG, WebP, BMP, TIFF: anything `cv2.imdecode` reads).
Files and bytes are decoded by OpenCV, so they are always BGR whatever `color` says.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Tuple, Union

import cv2
import numpy as np

#: Largest image accepted by default (pixels): 50 megapixels, e.g. 8660 x 5773.
DEFAULT_MAX_PIXELS = 50_000_000
COLORS = ("bgr", "rgb")

ImageLike = Union[np.ndarray, str, os.PathLike, bytes, bytearray, memoryview]

_WHAT_TO_PASS = ("pass a uint8 numpy array of shape (H, W, 3) (BGR as cv2.imread gives it, or RGB with "
                 "color='rgb'), (H, W) gray, (H, W, 4) BGRA, a path to an image file, or encoded image bytes")


class ImageError(ValueError):
    """The image cannot be used; the message says why and what to pass instead."""


class ImageFileNotFound(ImageError, FileNotFoundError):
    """The image path does not exist (both a ValueError and a FileNotFoundError)."""


def check_color(color: str) -> str:
    if not isinstance(color, str) or color.lower() not in COLORS:
        raise ValueError(f"color must be 'bgr' (OpenCV order) or 'rgb', got {color!r}")
    return color.lower()


def load_image(image: ImageLike, color: str = "bgr",
               max_pixels: int = DEFAULT_MAX_PIXELS) -> Tuple[np.ndarray, str]:
    """Return (uint8 C-contiguous (H, W, C) with C in 1, 3, 4; its colour order 'bgr' or 'rgb')."""
    color = check_color(color)
    if isinstance(image, (str, os.PathLike)):
        return decode_image(_read_file(Path(image)), max_pixels, source=str(image)), "bgr"
    if isinstance(image, (bytes, bytearray, memoryview)):
        return decode_image(bytes(image), max_pixels, source="image bytes"), "bgr"
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, a path or bytes, got {type(image).__name__}: {_WHAT_TO_PASS}")
    return check_array(image, max_pixels), color


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
        raise ValueError(f"image of {width}x{height} = {height * width} pixels is over the limit of {max_pixels}: "
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


def _header_size(data: bytes) -> Tuple[int, int]:
    """(width, height) from an image header without decoding pixels; (0, 0) if unknown."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return 0, 0


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, source: str = "image") -> np.ndarray:
    """Decode encoded image bytes to uint8 BGR (H, W, 3); ImageError if they are not an image."""
    if not data:
        raise ImageError(f"{source} is empty (0 bytes): pass a JPEG, PNG, WebP, BMP or TIFF file")
    width, height = _header_size(data)
    if width * height > max_pixels:
        raise ImageError(f"{source}: {width}x{height} pixels is over the limit of {max_pixels}")
    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise ImageError(f"{source} is not an image OpenCV can decode: pass a JPEG, PNG, WebP, BMP or TIFF file")
    return check_array(decoded, max_pixels)
