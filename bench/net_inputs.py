"""What each network sees on an image, built as the cascade builds it, for the bench tools that time or calibrate
the bare networks: every pyramid level as a P-Net input (each level alone, no packing), R-Net's crops of P-Net's
candidates, O-Net's crops of R-Net's boxes. Images are BGR uint8 (H, W, 3)."""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

from fastmtcnn import kernels
from fastmtcnn.nets import channel_map
from fastmtcnn.pipeline import Cascade

CHANNELS = channel_map("bgr", 3)


def pyramid_blobs(image: np.ndarray, cascade: Cascade) -> List[np.ndarray]:
    """Every level of the cascade's pyramid of `image` as a float32 P-Net input blob (1, 3, h, w), largest first."""
    height, width = image.shape[:2]
    blobs = []
    for scale in cascade.pyramid_scales(height, width):
        blob = np.empty((1, 3) + kernels.pyramid_level_size(height, width, scale), np.float32)
        kernels.resize_normalize_into(image, CHANNELS, blob[0])
        blobs.append(blob)
    return blobs


def crops(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """float32 (n, 3, size, size): `boxes` (n, 4) cropped, resized and normalised as R-Net (24) / O-Net (48) get them."""
    out = np.empty((len(boxes), 3, size, size), np.float32)
    kernels.crop_resize_normalize(image, np.ascontiguousarray(boxes, np.float32), CHANNELS, out)
    return out


def stage_inputs(image: np.ndarray, cascade: Cascade) -> Tuple[List[np.ndarray], np.ndarray, np.ndarray]:
    """(P-Net blobs of every pyramid level, candidates after `propose`, boxes after `refine`): float32 boxes (n, 4)."""
    candidates = cascade.propose(image, CHANNELS)
    return pyramid_blobs(image, cascade), candidates, cascade.refine(image, CHANNELS, candidates)
