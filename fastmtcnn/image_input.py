"""Checking and decoding what users pass as an image, with errors that say what to pass instead.

Accepted: uint8 arrays (H, W) gray, (H, W, 1), (H, W, 3) BGR or RGB, (H, W, 4) BGRA or RGBA; a path to an
image file; or the encoded bytes of one (JPEG, PNG, WebP, BMP, TIFF, PNM/PAM and the other formats whose header
`image_header` reads and the running OpenCV decodes, `image_codecs.decodable_formats()`: GIF only from
opencv-python 4.11; see `IMAGE_EXTENSIONS` for files). Truncated files are refused before decoding. Files and
bytes are decoded by OpenCV, so they are always BGR whatever `color` says. `load_image` is the one place an image
is checked: it returns a `LoadedImage`, which `Detector.detect` takes without checking again. Also here:
`find_images`, the folder walk that batch jobs and Ray Data share.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, NamedTuple, Sequence, Union

import cv2
import numpy as np

from .errors import ImageError, ImageFileNotFound, ImageTooLarge, ImageTruncated, UnsupportedImage
from .image_codecs import formats_text, missing_codec, quiet_opencv
from .image_header import read_image_size, truncation
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


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, source: str = "image") -> np.ndarray:
    """Decode encoded image bytes to uint8 BGR (H, W, 3).

    The size is read from the header first (`image_header`): ImageTooLarge over `max_pixels`, UnsupportedImage
    for an unknown format, ImageSizeUnknown (an UnsupportedImage) for a header that does not give it, so no
    decode ever allocates more than `max_pixels` pixels. OpenCV's own failures become UnsupportedImage too.
    """
    if not data:
        raise UnsupportedImage(f"{source} is empty (0 bytes): pass {formats_text()} bytes")
    try:
        size = read_image_size(data)
    except UnsupportedImage as error:
        if type(error) is UnsupportedImage:
            raise UnsupportedImage(f"{source} is not an image OpenCV can decode: pass {formats_text()}") from None
        raise type(error)(f"{source}: {error}") from None
    if size.pixels > max_pixels:
        raise ImageTooLarge(f"{source}: {size.format} of {size.width}x{size.height} pixels is over the limit of "
                            f"{max_pixels}: downscale it")
    no_codec = missing_codec(size.format)
    if no_codec is not None:
        raise UnsupportedImage(f"{source} is a {size.format} image and {no_codec}: pass {formats_text()}")
    cut = truncation(data, size.format)
    if cut is not None:
        raise ImageTruncated(f"{source} is a truncated or corrupt {size.format} file ({cut}): send the whole file")
    try:
        with quiet_opencv():
            decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        decoded = None
    if decoded is None:
        raise UnsupportedImage(f"{source} is not an image OpenCV can decode ({size.format} header, corrupt data): "
                               f"pass {formats_text()}")
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
