"""Greedy one-to-one matching of predicted boxes to ground-truth faces on one image.

Boxes are (x1, y1, x2, y2) in pixels, continuous coordinates (area = width * height, no "+1").
Two rules share one greedy loop: IoU above a per-face threshold (:func:`match_detections`) and
"the box contains both eye centres" (:func:`match_by_eyes`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

#: IoU a prediction needs with a GT box to match it, by the GT ``box_type``.
#: Landmark-extent boxes (min/max of the 68 points) are tighter than detector boxes.
IOU_THRESHOLDS = {"annotated": 0.5, "landmark_extent": 0.3}

#: Tolerance below a threshold still counted as reaching it (float noise in IoU).
_THRESHOLD_TOLERANCE = 1e-12

#: Status of each prediction in a :class:`Matching`.
TRUE_POSITIVE, FALSE_POSITIVE, IGNORED = 1, 0, -1

#: eligibility(pred_boxes (N, 4), gt_boxes (M, 4), ious (N, M)) -> bool (N, M): which pairs may match.
Eligibility = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def iou_matrix(a: Any, b: Any) -> np.ndarray:
    """Pairwise intersection-over-union of two sets of boxes.

    a: (n, 4), b: (m, 4) boxes x1, y1, x2, y2 in pixels.  Returns float64 (n, m) in [0, 1];
    pairs with a zero union give 0.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]), dtype=np.float64)
    area_a = _box_areas(a)
    area_b = _box_areas(b)
    overlap_width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    overlap_height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    intersection = np.clip(overlap_width, 0, None) * np.clip(overlap_height, 0, None)
    union = area_a[:, None] + area_b[None, :] - intersection
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, intersection / np.where(union > 0, union, 1.0), 0.0)


def _box_areas(boxes: np.ndarray) -> np.ndarray:
    """boxes (n, 4) -> areas (n,), negative sides counted as 0."""
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def score_order(scores: Any) -> np.ndarray:
    """Indices sorting ``scores`` (n,) descending; ties keep their input order."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


@dataclass(frozen=True)
class Matching:
    """The outcome of matching N predictions to M ground-truth faces on one image.

    prediction_status (N,) int8: TRUE_POSITIVE, FALSE_POSITIVE or IGNORED (absorbed by an ignore face);
    prediction_face (N,) int64: GT index matched (or absorbing ignore face), -1 for a false positive;
    face_prediction (M,) int64: prediction index matched to each GT face, -1 if none;
    face_iou (M,) float64: IoU of that match (0 if none).
    """

    prediction_status: np.ndarray
    prediction_face: np.ndarray
    face_prediction: np.ndarray
    face_iou: np.ndarray

    @property
    def true_positives(self) -> int:
        """How many predictions matched a face."""
        return int((self.prediction_status == TRUE_POSITIVE).sum())

    @property
    def false_positives(self) -> int:
        """How many predictions matched nothing (duplicates included)."""
        return int((self.prediction_status == FALSE_POSITIVE).sum())

    @property
    def ignored_predictions(self) -> int:
        """How many predictions an ignore face absorbed."""
        return int((self.prediction_status == IGNORED).sum())


def match_detections(pred_boxes: Any, pred_scores: Any, gt_boxes: Any, gt_thresholds: Any,
                     gt_ignore: Any = None) -> Matching:
    """Greedy VOC-style matching of predictions to ground truth on one image.

    pred_boxes (N, 4), pred_scores (N,), gt_boxes (M, 4) in pixels; gt_thresholds (M,) the IoU
    each GT needs (see :data:`IOU_THRESHOLDS`); gt_ignore (M,) bool.

    Predictions are visited in descending score.  Each one takes the *unmatched, non-ignore* GT
    with the highest IoU among those with IoU >= that GT's threshold (true positive).  If there is
    none but it overlaps an ``ignore`` GT by at least that GT's threshold it is *ignored* (neither
    TP nor FP; an ignore GT can absorb any number of predictions); otherwise it is a false positive
    (this includes duplicates of an already matched face).  Ignore GTs are never misses.

    Returns a :class:`Matching`.
    """
    return match_greedily(pred_boxes, pred_scores, gt_boxes, gt_ignore, _iou_at_least(gt_thresholds))


def _iou_at_least(gt_thresholds: Any) -> Eligibility:
    """The IoU rule: a pair may match when its IoU reaches the face's threshold (M,)."""
    def eligible(pred_boxes: np.ndarray, gt_boxes: np.ndarray, ious: np.ndarray) -> np.ndarray:
        thresholds = np.broadcast_to(np.asarray(gt_thresholds, dtype=np.float64), (len(gt_boxes),))
        return ious >= thresholds[None, :] - _THRESHOLD_TOLERANCE

    return eligible


def eyes_inside(pred_boxes: Any, gt_landmarks: Any) -> np.ndarray:
    """Which predicted boxes contain both eye centres of which GT face.

    pred_boxes (N, 4) x1, y1, x2, y2; gt_landmarks (M, 5, 2) (only points 0 and 1, the eye centres,
    are used; NaN rows = GT without landmarks).  Returns bool (N, M): True where x1 <= x <= x2 and
    y1 <= y <= y2 for both eyes (borders inclusive).  Faces with non-finite eyes are never contained.
    """
    boxes = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)
    landmarks = np.asarray(gt_landmarks, dtype=np.float64).reshape(-1, 5, 2)
    eyes = landmarks[:, :2, :]  # (M, 2 eyes, xy)
    eye_x, eye_y = eyes[None, :, :, 0], eyes[None, :, :, 1]  # (1, M, 2)
    box = boxes[:, None, None, :]  # (N, 1, 1, 4)
    with np.errstate(invalid="ignore"):
        inside = (eye_x >= box[..., 0]) & (eye_x <= box[..., 2]) & (eye_y >= box[..., 1]) & (eye_y <= box[..., 3])
    return inside.all(axis=2)


def match_by_eyes(pred_boxes: Any, pred_scores: Any, gt_boxes: Any, gt_landmarks: Any,
                  gt_ignore: Any = None) -> Matching:
    """Greedy matching with the rule "the detection box contains both GT eye centres".

    For GT boxes drawn with another convention than the detector's (Sun et al., landmark extent).
    Same greedy order and return value as :func:`match_detections`: predictions in descending score
    each take the unmatched, non-ignore GT whose eyes they contain, the one with the highest IoU if
    several do (then the lower GT index); ignore GTs absorb predictions containing their eyes.
    gt_landmarks (M, 5, 2), NaN for faces without landmarks (those never match).
    """
    def eligible(pred: np.ndarray, gt: np.ndarray, ious: np.ndarray) -> np.ndarray:
        return eyes_inside(pred, gt_landmarks)

    return match_greedily(pred_boxes, pred_scores, gt_boxes, gt_ignore, eligible)


def match_greedily(pred_boxes: Any, pred_scores: Any, gt_boxes: Any, gt_ignore: Optional[Any],
                   eligibility: Eligibility) -> Matching:
    """The greedy loop shared by both rules: (N, 4) boxes + (N,) scores against (M, 4) GT boxes."""
    pred_boxes = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)
    pred_scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    n_predictions, n_faces = pred_boxes.shape[0], gt_boxes.shape[0]
    if pred_scores.shape[0] != n_predictions:
        raise ValueError(f"{n_predictions} boxes but {pred_scores.shape[0]} scores: pass one score per box")
    ignore = np.zeros(n_faces, bool) if gt_ignore is None else np.asarray(gt_ignore, bool).reshape(n_faces)
    matching = Matching(prediction_status=np.zeros(n_predictions, np.int8),
                        prediction_face=np.full(n_predictions, -1, np.int64),
                        face_prediction=np.full(n_faces, -1, np.int64),
                        face_iou=np.zeros(n_faces, np.float64))
    if n_predictions == 0 or n_faces == 0:
        return matching
    ious = iou_matrix(pred_boxes, gt_boxes)
    eligible = eligibility(pred_boxes, gt_boxes, ious)
    for prediction in score_order(pred_scores):
        _assign(matching, prediction, eligible[prediction], ious[prediction], ignore)
    return matching


def _assign(matching: Matching, prediction: int, eligible: np.ndarray, ious: np.ndarray,
            ignore: np.ndarray) -> None:
    """Give one prediction the best free eligible face, else an eligible ignore face, else nothing.

    eligible (M,) bool and ious (M,) are this prediction's row; updates `matching`'s arrays in place.
    """
    free = eligible & ~ignore & (matching.face_prediction < 0)
    if free.any():
        face = int(np.argmax(np.where(free, ious, -1.0)))
        matching.face_prediction[face] = prediction
        matching.face_iou[face] = ious[face]
        matching.prediction_status[prediction] = TRUE_POSITIVE
        matching.prediction_face[prediction] = face
        return
    absorbing = eligible & ignore
    if absorbing.any():
        matching.prediction_status[prediction] = IGNORED
        matching.prediction_face[prediction] = int(np.argmax(np.where(absorbing, ious, -1.0)))
