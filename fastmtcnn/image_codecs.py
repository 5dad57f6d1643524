"""Which image formats the running OpenCV decodes, probed once on tiny images (never a fixed list).

OpenCV's codecs differ between releases (GIF, for one, is decoded only from 4.11), so messages and docs that
list the accepted formats take them from `decodable_formats()`. Format names are `image_header`'s. Also here:
`quiet_opencv()`, which silences OpenCV's own log lines (e.g. while probing or decoding on purpose-bad data).
"""
from __future__ import annotations

import contextlib
import threading
import functools
from typing import Iterator, Optional, Tuple

import cv2
import numpy as np

#: A 1x1 GIF87a (OpenCV cannot encode GIF before 4.11, so the probe decodes these bytes instead).
_TINY_GIF = bytes.fromhex("47494638396101000100800000ffffff0000002c00000000010001000002024401003b")
#: Header format name -> file extension whose encoder makes a probe image (None: decode `_TINY_GIF`).
_PROBES = (("JPEG", ".jpg"), ("PNG", ".png"), ("WebP", ".webp"), ("GIF", None), ("BMP", ".bmp"),
           ("TIFF", ".tif"), ("PNM", ".ppm"), ("PAM", ".pam"), ("PFM", ".pfm"), ("Sun raster", ".ras"),
           ("Radiance HDR", ".hdr"))
#: First opencv-python release known to decode each format that older 4.x releases lack (for messages only).
_FIRST_RELEASE = {"GIF": "4.11"}


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """OpenCV's logger silenced inside the block (restored after)."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        yield
        return
    global _quiet_depth, _saved_level
    with _quiet_lock:  # the level is process-wide: the first of overlapping blocks saves it, the last restores it
        if _quiet_depth == 0:
            _saved_level = logging.getLogLevel()
            logging.setLogLevel(logging.LOG_LEVEL_SILENT)
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                logging.setLogLevel(_saved_level)


_quiet_lock = threading.Lock()
_quiet_depth, _saved_level = 0, 0


def _probe_bytes(extension: Optional[str]) -> Optional[bytes]:
    if extension is None:
        return _TINY_GIF
    try:
        ok, encoded = cv2.imencode(extension, np.full((2, 2, 3), 128, np.uint8))
    except cv2.error:
        return None
    return encoded.tobytes() if ok else None


@functools.lru_cache(maxsize=None)
def decodable_formats() -> Tuple[str, ...]:
    """The `image_header` format names this OpenCV decodes, in the order messages list them."""
    found = []
    with quiet_opencv():
        for name, extension in _PROBES:
            data = _probe_bytes(extension)
            try:
                decoded = None if data is None else cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            except cv2.error:
                decoded = None
            if decoded is not None:
                found.append(name)
    return tuple(found)


def formats_text() -> str:
    """'JPEG, PNG, ... or Radiance HDR': what to pass, as this OpenCV decodes it."""
    names = list(decodable_formats())
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else "".join(names)


def missing_codec(format_name: str) -> Optional[str]:
    """None when this OpenCV decodes `format_name` (a header name; PFM is read by the PNM reader), else why not."""
    if format_name in decodable_formats():
        return None
    since = _FIRST_RELEASE.get(format_name)
    return (f"this OpenCV ({cv2.__version__}) has no {format_name} decoder"
            + (f" (opencv-python >= {since} has one)" if since else ""))
