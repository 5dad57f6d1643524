"""Training-time jitter of the crops of one mini-batch: what in-the-wild faces vary in and the Sun training
crops (one large, frontal, well-lit face per image) do not; and mirroring of landmark faces.

Geometric (landmark faces only, whose targets move with it): a small rotation and scale about the crop
centre, points moved by the same affine map; positives and part faces keep their geometry because their box
targets would not follow a rotation. Photometric (every crop): contrast and brightness, grey, a slight blur
and JPEG re-compression. Crops are the normalised float crops `(x - 127.5) * 0.0078125` of `samples.py`,
(n, 3, S, S) RGB in image orientation; landmarks five x then five y box fractions.

Mirroring (`flip_landmark_faces`, `--flip`): a seeded share of the batch's landmark faces is mirrored, the
crop's columns reversed and its points with them: a box fraction x becomes 1 - x (the crop's pixel edge u
becomes S - u, as `samples._flip` maps image edges) and the left and right eyes and mouth corners swap
(`samples.MIRRORED_ORDER`). Sampling already mirrors half the images, so each stored crop is one orientation
of its face; this shows every face in both across the epochs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import cv2
import numpy as np

from ..kernels.resample import PIXEL_MEAN as MEAN, PIXEL_SCALE as SCALE
from .samples import LANDMARK, MIRRORED_ORDER


@dataclass(frozen=True)
class Jitter:
    """How much: rotation +-degrees, scale +-fraction, contrast and brightness +-, and the probability of a
    grey, blurred or JPEG-recompressed crop (quality 30 to 90)."""

    degrees: float = 10.0
    scale: float = 0.05
    contrast: float = 0.25
    brightness: float = 0.15
    grey: float = 0.1
    blur: float = 0.1
    jpeg: float = 0.2


def rotate_points(points: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Landmarks (10,) as box fractions through a 2x3 affine `matrix` of pixel-centre coordinates of an
    S x S crop (fraction f is the pixel edge f * S, i.e. the pixel centre f * S - 0.5)."""
    xy = np.stack([points[:5], points[5:]], axis=1) * size - 0.5
    moved = xy @ matrix[:, :2].T + matrix[:, 2]
    return np.concatenate([moved[:, 0], moved[:, 1]]).astype(np.float32) / size + 0.5 / size


def _geometric(crop: np.ndarray, points: np.ndarray, rng: np.random.Generator, jitter: Jitter
               ) -> Tuple[np.ndarray, np.ndarray]:
    size = crop.shape[-1]
    centre = ((size - 1) / 2.0, (size - 1) / 2.0)
    matrix = cv2.getRotationMatrix2D(centre, float(rng.uniform(-jitter.degrees, jitter.degrees)),
                                     float(1 + rng.uniform(-jitter.scale, jitter.scale)))
    warped = cv2.warpAffine(np.ascontiguousarray(crop.transpose(1, 2, 0)), matrix, (size, size),
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return warped.transpose(2, 0, 1), rotate_points(points, matrix, size)


def _photometric(crop: np.ndarray, rng: np.random.Generator, jitter: Jitter) -> np.ndarray:
    crop = crop * (1 + rng.uniform(-jitter.contrast, jitter.contrast)) + rng.uniform(-jitter.brightness,
                                                                                   jitter.brightness)
    if rng.random() < jitter.grey:
        crop = np.repeat(crop.mean(axis=0, keepdims=True), 3, axis=0)
    if rng.random() < jitter.blur:
        crop = cv2.GaussianBlur(np.ascontiguousarray(crop.transpose(1, 2, 0)), (3, 3), 0.8).transpose(2, 0, 1)
    crop = np.clip(crop, -MEAN * SCALE, (255 - MEAN) * SCALE)
    if rng.random() < jitter.jpeg:
        pixels = np.clip(np.rint(crop.transpose(1, 2, 0) / SCALE + MEAN), 0, 255).astype(np.uint8)
        ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 91))])
        crop = (cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED).astype(np.float32) - MEAN).transpose(2, 0, 1) * SCALE
    return crop


def jitter_batch(images: np.ndarray, kinds: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
                 jitter: Jitter = Jitter()) -> Tuple[np.ndarray, np.ndarray]:
    """(images float32 (n, 3, S, S), landmarks float32 (n, 10)): jittered copies of one batch's crops and
    their landmark targets (moved for the landmark faces only)."""
    images = images.astype(np.float32, copy=True)
    landmarks = landmarks.astype(np.float32, copy=True)
    for k in range(len(images)):
        if kinds[k] == LANDMARK:
            images[k], landmarks[k] = _geometric(images[k], landmarks[k], rng, jitter)
        images[k] = _photometric(images[k], rng, jitter)
    return images, landmarks


def mirror_points(landmarks: np.ndarray) -> np.ndarray:
    """Landmarks (n, 10) (five x then five y box fractions) of the mirrored crops: x -> 1 - x, left and
    right points swapped."""
    xs, ys = landmarks[:, :5][:, MIRRORED_ORDER], landmarks[:, 5:][:, MIRRORED_ORDER]
    return np.concatenate([1.0 - xs, ys], axis=1).astype(landmarks.dtype)


def flip_landmark_faces(images: np.ndarray, kinds: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
                        share: float = 0.5) -> Tuple[np.ndarray, np.ndarray]:
    """(images (n, 3, S, S), landmarks (n, 10)): copies in which each landmark face is mirrored with
    probability `share` (drawn from `rng`), crop and points together; other kinds are left as they are."""
    chosen = (kinds == LANDMARK) & (rng.random(len(kinds)) < share)
    images, landmarks = images.copy(), landmarks.copy()
    images[chosen] = images[chosen][..., ::-1]
    landmarks[chosen] = mirror_points(landmarks[chosen])
    return images, landmarks
