"""Reading evaluation inputs: annotated JSONL sets, reference detections, and detector results.

A *prediction* is one image's detections as float64 arrays sorted by descending score:
``{"boxes": (N, 4) x1, y1, x2, y2 px, "scores": (N,), "landmarks": (N, 5, 2) (x, y) px, NaN if absent}``.
*Predictions* map an image path (relative to the set's root, exactly as in the JSONL ``image`` field)
to a prediction.  Landmark order: image-left eye, image-right eye, nose, left and right mouth corner.

Ground truth is the project's JSONL format (``../shared/data/README.md``): one image per line,
``{"image", "width", "height", "source", "complete", "faces": [{"box", "box_type", "landmarks", "ignore"}]}``.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from ..errors import DatasetError, DatasetFileNotFound
from .matching import IOU_THRESHOLDS, score_order

Prediction = Dict[str, np.ndarray]
Predictions = Dict[str, Prediction]


def as_prediction(result: Any) -> Prediction:
    """Normalise a detector result to a prediction (see the module docstring), sorted by score.

    result: a mapping with keys ``boxes``/``scores``/``landmarks`` or an object with those attributes
    (e.g. the detector's ``Faces``); lists are accepted, missing scores count as 1, missing landmarks
    as NaN.  Raises ValueError when the numbers of boxes and scores differ.
    """
    def field(key: str) -> Any:
        return result.get(key) if isinstance(result, Mapping) else getattr(result, key, None)

    raw_boxes = field("boxes")
    boxes = np.asarray(raw_boxes if raw_boxes is not None else [], np.float64).reshape(-1, 4)
    n_boxes = boxes.shape[0]
    raw_scores = field("scores")
    scores = np.ones(n_boxes) if raw_scores is None else np.asarray(raw_scores, np.float64).reshape(-1)
    raw_landmarks = field("landmarks")
    if raw_landmarks is None or (np.size(raw_landmarks) == 0 and n_boxes > 0):
        landmarks = np.full((n_boxes, 5, 2), np.nan)
    else:
        landmarks = np.asarray(raw_landmarks, np.float64).reshape(n_boxes, 5, 2)
    if scores.shape[0] != n_boxes:
        raise ValueError(f"prediction has {n_boxes} boxes but {scores.shape[0]} scores: pass one score per box")
    order = score_order(scores)
    return {"boxes": boxes[order], "scores": scores[order], "landmarks": landmarks[order]}


def read_jsonl(path: str) -> List[dict]:
    """The JSON objects of a JSONL file, one per non-blank line (DatasetError if it cannot be read)."""
    records = []
    try:
        with open(path, "r", encoding="utf-8") as lines:
            for line_number, line in enumerate(lines, 1):
                if line.strip():
                    records.append(_parse_line(path, line_number, line))
    except FileNotFoundError:
        raise DatasetFileNotFound(f"{path}: no such file (pass a JSONL file, one JSON object per line)") from None
    except (IsADirectoryError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: not a UTF-8 JSONL file ({error.__class__.__name__})") from None
    return records


def _parse_line(path: str, line_number: int, line: str) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path}:{line_number}: invalid JSON: {error}") from None
    if not isinstance(record, dict):
        raise DatasetError(f"{path}:{line_number}: expected a JSON object per line, got {type(record).__name__}")
    if not isinstance(record.get("image"), str) or not record["image"]:
        raise DatasetError(f"{path}:{line_number}: needs an \"image\" path (a non-empty string)")
    return record


def load_dataset(dataset_jsonl: str) -> List[dict]:
    """Read and check a ground-truth JSONL file: a list of per-image dicts (see the module docstring).

    Raises DatasetError (a ValueError) naming the file and line when a face lacks a 4-number ``box``,
    has an unknown ``box_type`` or ``landmarks`` that are not 5 (x, y) points.
    """
    records = read_jsonl(dataset_jsonl)
    for record in records:
        faces = record.get("faces") or []
        if not isinstance(faces, list):
            raise DatasetError(f"{dataset_jsonl}: image {record['image']!r}: \"faces\" must be a list")
        for face in faces:
            problem = _face_problem(face)
            if problem:
                raise DatasetError(f"{dataset_jsonl}: image {record['image']!r}: {problem}")
    return records


def _face_problem(face: Any) -> Optional[str]:
    """What is wrong with one ground-truth face dict, or None."""
    if not isinstance(face, dict):
        return "each face must be a JSON object"
    if not _is_points(face.get("box"), (4,)):
        return f"face box must be 4 numbers [x1, y1, x2, y2], got {face.get('box')!r}"
    if face.get("box_type", "annotated") not in IOU_THRESHOLDS:
        return f"unknown box_type {face.get('box_type')!r} (known: {', '.join(IOU_THRESHOLDS)})"
    if face.get("landmarks") is not None and not _is_points(face["landmarks"], (5, 2)):
        return "face landmarks must be null or 5 [x, y] points"
    return None


def _is_points(value: Any, shape: tuple) -> bool:
    """Whether `value` is a nested list of finite numbers of the given shape."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return array.shape == shape and bool(np.all(np.isfinite(array)))


def load_golden(golden_jsonl: str, min_face_size: float) -> Predictions:
    """Turn a reference-detections file (``*.facenet.jsonl``) into predictions.

    Each line ``{"image", "width", "height", "min_face_size": {"20": [faces], "40": [...]}}`` with faces
    ``{"box", "score", "landmarks"}``.  Returns image -> prediction.  Raises DatasetError if a line has
    no detections for ``min_face_size``.
    """
    key = f"{float(min_face_size):g}"  # the files' keys: "20", "40"
    predictions: Predictions = {}
    for record in read_jsonl(golden_jsonl):
        by_size = record.get("min_face_size")
        if not isinstance(by_size, dict) or key not in by_size:
            available = sorted(by_size) if isinstance(by_size, dict) else []
            raise DatasetError(f"{golden_jsonl}: image {record['image']!r} has no detections for "
                               f"min_face_size={key} (available: {available})")
        try:
            predictions[record["image"]] = _golden_prediction(by_size[key])
        except (KeyError, TypeError, ValueError) as error:
            raise DatasetError(f"{golden_jsonl}: image {record['image']!r}: faces need \"box\" (4 numbers), "
                               f"\"score\" and \"landmarks\" (5 points or null): {error}") from None
    return predictions


def _golden_prediction(faces: List[dict]) -> Prediction:
    """One image's reference faces ``[{"box", "score", "landmarks"}]`` as a prediction."""
    with_landmarks = all(face.get("landmarks") is not None for face in faces)
    return as_prediction({
        "boxes": [face["box"] for face in faces],
        "scores": [face["score"] for face in faces],
        "landmarks": [face["landmarks"] for face in faces] if with_landmarks else None,
    })
