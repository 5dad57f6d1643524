"""Face annotations for training: our JSONL sets, WIDER FACE and CelebA, read into `FaceRecord`s.

Boxes are pixel-edge boxes (x1, y1, x2, y2), width x2 - x1, as in the JSONL sets and `Faces.boxes`;
landmarks are (x, y) pixels in our order (image-left eye, image-right eye, nose, image-left mouth corner,
image-right mouth corner), NaN when a face has none.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

PathLike = Union[str, Path]


@dataclass
class FaceRecord:
    """One image and its faces: `boxes` float32 (n, 4) pixel edges, `landmarks` float32 (n, 5, 2) (NaN where
    absent), `ignore` bool (n,) (faces too hard to require: never a positive, never overlapped by a negative).
    `pixels` holds the BGR uint8 image when it is not on disk (e.g. a synthetic background)."""

    image: str
    boxes: np.ndarray
    landmarks: np.ndarray
    ignore: np.ndarray
    pixels: Optional[np.ndarray] = field(default=None, repr=False)

    def load(self) -> np.ndarray:
        """BGR uint8 (H, W, 3)."""
        if self.pixels is not None:
            return self.pixels
        image = cv2.imread(self.image, cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"cannot read training image {self.image}: check the path and the --root folder")
        return image


def _record(image: str, boxes: List[List[float]], landmarks: List[Optional[List[List[float]]]],
            ignore: List[bool]) -> FaceRecord:
    points = np.full((len(boxes), 5, 2), np.nan, np.float32)
    for k, face_points in enumerate(landmarks):
        if face_points is not None:
            points[k] = np.asarray(face_points, np.float32).reshape(5, 2)
    return FaceRecord(image, np.asarray(boxes, np.float32).reshape(-1, 4), points, np.asarray(ignore, bool))


#: How far (fraction of the box side) a box may reach beyond its image, and a landmark beyond its box.
BOX_TOLERANCE = 0.1


class BadAnnotation(ValueError):
    """An annotation line that cannot be trained on; the message starts with FILE:LINE."""


def _image_size(item: dict, image: Path) -> Tuple[int, int]:
    """(width, height) from the line's "width"/"height", else from the image file's header."""
    if "width" in item and "height" in item:
        return int(item["width"]), int(item["height"])
    from ..errors import ImageError
    from ..image_header import read_image_size

    with open(image, "rb") as handle:
        try:
            size = read_image_size(handle.read(1 << 20))
        except ImageError as error:
            raise _Unusable(f"image {image}: {error}") from None
    return size.width, size.height


def check_face(box, points, width: int, height: int) -> Optional[str]:
    """What is wrong with one face (pixel-edge box (4,), points (5, 2) or None) in a width x height image,
    or None when it can be trained on."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if not all(np.isfinite([x1, y1, x2, y2])) or x2 <= x1 or y2 <= y1:
        return f"box {list(box)} has no area (pass [x1, y1, x2, y2] with x2 > x1 and y2 > y1)"
    margin = BOX_TOLERANCE * max(x2 - x1, y2 - y1)
    if x1 < -margin or y1 < -margin or x2 > width + margin or y2 > height + margin:
        return f"box {list(box)} is outside the {width}x{height} image"
    if points is not None:
        points = np.asarray(points, np.float64).reshape(5, 2)
        outside = ((points[:, 0] < x1 - margin) | (points[:, 0] > x2 + margin)
                   | (points[:, 1] < y1 - margin) | (points[:, 1] > y2 + margin))
        if outside.any():
            return f"landmark {points[outside][0].tolist()} is outside the box {list(box)}"
    return None


def read_jsonl(path: PathLike, root: Optional[PathLike] = None, skipped: Optional[List[str]] = None
               ) -> List[FaceRecord]:
    """Our annotation format (see ../shared/data/README.md); image paths relative to `root`
    (default: the JSONL's folder).

    A malformed line, a missing image, a box outside its image or landmarks outside their box raise one
    BadAnnotation "FILE:LINE: what; what to do"; with a `skipped` list, such lines are left out and their
    messages appended to it instead."""
    path = Path(path)
    base = Path(root) if root is not None else path.parent
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(_jsonl_record(line, base))
        except (ValueError, KeyError, TypeError, OSError) as error:
            message = f"{path}:{number}: {error}"
            if not isinstance(error, (_Unusable, OSError)):
                message = (f"{path}:{number}: not an annotation line ({error!r}); expected "
                           '{"image": ..., "faces": [{"box": [x1, y1, x2, y2], "landmarks": ...}]}')
            if skipped is None:
                raise BadAnnotation(message + " (or pass --skip-bad to leave such lines out)") from None
            skipped.append(message)
    return records


class _Unusable(ValueError):
    """A well-formed line whose content cannot be trained on (its message says why)."""


def _jsonl_record(line: str, base: Path) -> FaceRecord:
    item = json.loads(line)
    image = base / item["image"]
    faces = item["faces"]
    if not image.is_file():
        raise _Unusable(f"image {image} not found (image paths are relative to the JSONL's folder)")
    width, height = _image_size(item, image)
    for face in faces:
        problem = check_face(face["box"], face.get("landmarks"), width, height)
        if problem:
            raise _Unusable(problem)
    return _record(str(image), [face["box"] for face in faces], [face.get("landmarks") for face in faces],
                   [bool(face.get("ignore", False)) for face in faces])


def split_records(records: Sequence, fraction: float, seed: int, cap: int = 600) -> Tuple[List, List]:
    """(training records, validation records): a seeded random `fraction` of the images (at most `cap`,
    at least one when there are two or more) held out, by image, so no validation crop shares a photo with
    a training crop."""
    count = min(cap, int(round(fraction * len(records))))
    if fraction > 0 and len(records) >= 2:
        count = max(count, 1)
    held = set(np.random.default_rng(seed).permutation(len(records))[:count].tolist())
    return ([r for k, r in enumerate(records) if k not in held], [r for k, r in enumerate(records) if k in held])


def read_wider(gt_txt: PathLike, images_dir: PathLike) -> List[FaceRecord]:
    """WIDER FACE `wider_face_{train,val}_bbx_gt.txt`: per image its path, the face count, then one line
    `x y w h blur expression illumination invalid occlusion pose` per face (a single all-zero line when
    the count is 0). Faces marked invalid, or of zero size, are kept as `ignore`."""
    lines = iter(Path(gt_txt).read_text().split("\n"))
    records = []
    for name in lines:
        name = name.strip()
        if not name:
            continue
        count = int(next(lines))
        rows = [next(lines).split() for _ in range(max(count, 1))][:count]
        boxes, ignore = [], []
        for row in rows:
            x, y, w, h = (float(v) for v in row[:4])
            boxes.append([x, y, x + w, y + h])
            ignore.append(len(row) > 7 and row[7] == "1" or w <= 0 or h <= 0)
        records.append(_record(str(Path(images_dir) / name), boxes, [None] * len(boxes), ignore))
    return records


def _celeba_table(path: PathLike) -> Dict[str, List[float]]:
    """CelebA list file: a count line, a header line, then `image_id v1 v2 ...` rows."""
    rows = Path(path).read_text().split("\n")[2:]
    return {parts[0]: [float(v) for v in parts[1:]] for parts in (row.split() for row in rows) if parts}


def read_celeba(bbox_txt: PathLike, landmarks_txt: PathLike, images_dir: PathLike) -> List[FaceRecord]:
    """CelebA in-the-wild images: `list_bbox_celeba.txt` (image_id x_1 y_1 width height) and
    `list_landmarks_celeba.txt` (lefteye, righteye, nose, leftmouth, rightmouth as x y pairs, where "left"
    is the image-left point: our order). One face per image; images in both lists are returned."""
    boxes, points = _celeba_table(bbox_txt), _celeba_table(landmarks_txt)
    records = []
    for name, (x, y, w, h) in boxes.items():
        if name in points:
            records.append(_record(str(Path(images_dir) / name), [[x, y, x + w, y + h]],
                                   [np.reshape(points[name], (5, 2)).tolist()], [False]))
    return records

