"""Face annotations for training: our JSONL sets, WIDER FACE and CelebA, read into `FaceRecord`s.

Boxes are pixel-edge boxes (x1, y1, x2, y2), width x2 - x1, as in the JSONL sets and `Faces.boxes`;
landmarks are (x, y) pixels in our order (image-left eye, image-right eye, nose, image-left mouth corner,
image-right mouth corner), NaN when a face has none.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Union

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


def read_jsonl(path: PathLike, root: Optional[PathLike] = None) -> List[FaceRecord]:
    """Our annotation format (see ../shared/data/README.md); image paths relative to `root`
    (default: the JSONL's folder)."""
    path = Path(path)
    base = Path(root) if root is not None else path.parent
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            faces = item["faces"]
            records.append(_record(str(base / item["image"]), [face["box"] for face in faces],
                                   [face.get("landmarks") for face in faces],
                                   [bool(face.get("ignore", False)) for face in faces]))
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}:{number}: not an annotation line ({error}); expected "
                             '{"image": ..., "faces": [{"box": [x1, y1, x2, y2], "landmarks": ...}]}') from None
    return records


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

