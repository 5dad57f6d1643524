"""Face crops for recognition models: 5-point similarity alignment (ArcFace) and margin crops (FaceNet).

    >>> faces = detector.detect(image)
    >>> chip = align(image, faces.landmarks[0])                  # (112, 112, C) ArcFace/insightface chip
    >>> chip = align(image, faces.landmarks[0], size=224)        # the template scaled to 224 x 224
    >>> chip = crop_face(image, faces.boxes[0], size=160, margin=32)   # facenet-pytorch style, no rotation
    >>> chips = align_faces(image, faces, template="facenet")    # one crop per face, either kind

`align` fits the similarity transform (rotation, uniform scale, translation; no reflection or shear) that maps
the five landmarks onto the template in the least-squares sense (Umeyama 1991, the closed form that
insightface's `norm_crop` uses through scikit-image), then warps with `cv2.warpAffine` (bilinear, zero border).

Landmarks are in image order as `Detector.detect` gives them: left-in-image eye, right eye, nose, left and
right mouth corner. Images may be any array `cv2.warpAffine` takes ((H, W) or (H, W, C)); the channel order
is kept, so a BGR image gives BGR crops.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple, Union

import cv2
import numpy as np

#: insightface's ArcFace template for 112 x 112 crops (x, y), in the same order as fastmtcnn's landmarks.
ARCFACE_TEMPLATE_112 = np.array([
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
], dtype=np.float64)

TEMPLATES = ("arcface", "facenet")


def template_points(size: int = 112, template: str = "arcface") -> np.ndarray:
    """The five target points (float64 (5, 2)) of a `size` x `size` crop.

    Sizes that are multiples of 112 scale the 112 template; other multiples of 128 follow insightface's
    `estimate_norm` (scale by size / 128 and shift right by 8 * size / 128, the template of its 128 crops);
    any other size scales the 112 template by size / 112.
    """
    size = _check_size(size)
    if template != "arcface":
        raise ValueError(f"template_points: template must be 'arcface' (facenet crops use the box, not points: "
                         f"crop_face(image, box)), got {template!r}")
    if size % 112 == 0 or size % 128 != 0:
        return ARCFACE_TEMPLATE_112 * (size / 112.0)
    ratio = size / 128.0
    points = ARCFACE_TEMPLATE_112 * ratio
    points[:, 0] += 8.0 * ratio
    return points


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2 x 3 similarity matrix M (float64) minimising sum |M [src_i, 1] - dst_i|^2 (Umeyama, no reflection).

    `src` and `dst` are (K, 2) point sets, K >= 2, with `src` not all at one point.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ValueError(f"similarity_transform needs two (K, 2) point sets with K >= 2, got shapes "
                         f"{src.shape} and {dst.shape}")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = (src_c ** 2).sum() / len(src)
    if not src_var > 1e-12:
        raise ValueError("the source points all coincide: a similarity transform is not defined")
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(cov) < 0:  # the best orthogonal map would be a reflection: take the best rotation
        d[1] = -1.0
    rotation = u @ np.diag(d) @ vt
    scale = (s * d).sum() / src_var
    matrix = np.empty((2, 3), dtype=np.float64)
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def check_landmarks(landmarks) -> np.ndarray:
    """One face's five landmarks as float64 (5, 2); ValueError saying what to pass otherwise."""
    try:
        points = np.asarray(landmarks, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"landmarks must be numbers of shape (5, 2), got {type(landmarks).__name__}") from None
    if points.shape == (1, 5, 2) or points.shape == (10,):
        points = points.reshape(5, 2)
    if points.shape != (5, 2):
        hint = (" (that is several faces: pass one face's landmarks, e.g. faces.landmarks[k], or use align_faces)"
                if points.ndim == 3 and points.shape[1:] == (5, 2) else "")
        raise ValueError(f"landmarks must have shape (5, 2): (x, y) of left eye, right eye, nose, left and right "
                         f"mouth corner, got shape {points.shape}{hint}")
    if not np.isfinite(points).all():
        raise ValueError("landmarks contain NaN or infinite values")
    return points


def alignment_matrix(landmarks, size: int = 112, template: str = "arcface") -> np.ndarray:
    """float64 (2, 3): the similarity `align` warps with, image pixels -> pixels of the `size` x `size` crop;
    landmarks (5, 2) (x, y) image pixels, the detector's order."""
    return similarity_transform(check_landmarks(landmarks), template_points(size, template))


def align(image: np.ndarray, landmarks, size: int = 112, template: str = "arcface",
          border_value: Union[float, Sequence[float]] = 0.0) -> np.ndarray:
    """A `size` x `size` crop of `image` with the face's five `landmarks` moved onto the ArcFace template.

    `landmarks`: one face's (5, 2) points in image order (`faces.landmarks[k]`). Only `template="arcface"`
    uses points; `template="facenet"` is a box crop: call `crop_face(image, faces.boxes[k])` (or `align_faces`).
    """
    if template == "facenet":
        raise ValueError("template='facenet' is a margin crop of the box, not a landmark alignment: use "
                         "crop_face(image, box, size=160, margin=32) or align_faces(image, faces, template='facenet')")
    if template not in TEMPLATES:
        raise ValueError(f"template must be one of {TEMPLATES}, got {template!r}")
    image = _check_image(image)
    size = _check_size(size)
    matrix = alignment_matrix(landmarks, size, template)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=border_value)


def facenet_box(box, image_shape: Tuple[int, ...], size: int = 160, margin: float = 32) -> Tuple[int, int, int, int]:
    """The integer pixel box (x1, y1, x2, y2) that `crop_face` cuts: facenet-pytorch's `extract_face` rule.

    The margin is in pixels of the final crop: the box grows by margin * box_side / (size - margin) in total
    on each axis (half per side), then is truncated to ints and clipped to the image.
    """
    try:
        x1, y1, x2, y2 = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(-1))
    except (TypeError, ValueError):
        raise ValueError(f"box must be 4 numbers (x1, y1, x2, y2), got {box!r}") from None
    if not np.isfinite([x1, y1, x2, y2]).all():
        raise ValueError(f"box contains NaN or infinite values: {box!r}")
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"box must have x2 > x1 and y2 > y1, got {box!r}")
    size = _check_size(size)
    if not 0 <= margin < size:
        raise ValueError(f"margin must be in [0, size), got {margin!r}")
    height, width = image_shape[:2]
    grow_x = margin * (x2 - x1) / (size - margin)
    grow_y = margin * (y2 - y1) / (size - margin)
    left, top = int(max(x1 - grow_x / 2, 0)), int(max(y1 - grow_y / 2, 0))
    right, bottom = int(min(x2 + grow_x / 2, width)), int(min(y2 + grow_y / 2, height))
    if right <= left or bottom <= top:
        raise ValueError(f"box {box!r} is outside the {width}x{height} image")
    return left, top, right, bottom


def crop_face(image: np.ndarray, box, size: int = 160, margin: float = 32) -> np.ndarray:
    """facenet-pytorch's crop: the box plus `margin` (pixels of the output), clipped to the image, resized to
    `size` x `size` with `cv2.INTER_AREA` (no rotation; a non-square box is stretched, as there)."""
    image = _check_image(image)
    left, top, right, bottom = facenet_box(box, image.shape, size, margin)
    return cv2.resize(image[top:bottom, left:right], (size, size), interpolation=cv2.INTER_AREA)


def align_faces(image: np.ndarray, faces, size: int = None, template: str = "arcface",
                margin: float = 32) -> List[np.ndarray]:
    """One crop per face of a `Faces` result: `align` for 'arcface' (default size 112), `crop_face` for
    'facenet' (default size 160, `margin` pixels)."""
    if template == "arcface":
        return [align(image, points, size or 112) for points in faces.landmarks]
    if template == "facenet":
        return [crop_face(image, box, size or 160, margin) for box in faces.boxes]
    raise ValueError(f"template must be one of {TEMPLATES}, got {template!r}")


def _check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(f"size must be an int >= 8 (pixels of the square crop), got {size!r}")
    return int(size)


def _check_image(image) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array (H, W) or (H, W, C), got {type(image).__name__} "
                        "(decode files first, e.g. fastmtcnn.image_input.load_image(path)[0])")
    if image.ndim not in (2, 3) or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image must have shape (H, W) or (H, W, C) with H, W > 0, got {image.shape}")
    return image
