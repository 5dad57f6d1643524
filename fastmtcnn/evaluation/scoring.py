"""Scoring one image: its ground-truth faces matched to its prediction, face by face.

:func:`score_image` turns one JSONL record and one prediction into an :class:`ImageScore`, which holds
everything the set-level figures (:mod:`.metrics`) are summed from, plus the per-face report rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from .data import Prediction
from .matching import IOU_THRESHOLDS, TRUE_POSITIVE, IGNORED, Matching, match_by_eyes, match_detections
from .metrics import finite_or_none, landmark_nmes


@dataclass(frozen=True)
class GroundTruth:
    """One image's GT faces as arrays (M faces).

    boxes (M, 4) float64 px; box_types M names; iou_thresholds (M,) from :data:`IOU_THRESHOLDS`;
    ignore (M,) bool; landmarks (M, 5, 2) float64 px, NaN rows where a face has none;
    has_landmarks (M,) bool.
    """

    boxes: np.ndarray
    box_types: List[str]
    iou_thresholds: np.ndarray
    ignore: np.ndarray
    landmarks: np.ndarray
    has_landmarks: np.ndarray

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "GroundTruth":
        """From one JSONL line's dict, as :func:`.data.load_dataset` checked it (known box types)."""
        faces = record.get("faces") or []
        box_types = [face.get("box_type", "annotated") for face in faces]
        landmarks = np.full((len(faces), 5, 2), np.nan)
        has_landmarks = np.array([face.get("landmarks") is not None for face in faces], bool)
        for index in np.flatnonzero(has_landmarks):
            landmarks[index] = np.asarray(faces[index]["landmarks"], np.float64).reshape(5, 2)
        return cls(boxes=np.array([face["box"] for face in faces], np.float64).reshape(-1, 4),
                   box_types=box_types,
                   iou_thresholds=np.array([IOU_THRESHOLDS[name] for name in box_types], np.float64),
                   ignore=np.array([bool(face.get("ignore", False)) for face in faces], bool),
                   landmarks=landmarks,
                   has_landmarks=has_landmarks)

    @property
    def scored_landmarks(self) -> np.ndarray:
        """(M,) bool: faces whose landmarks are scored (they have some and are not ignored)."""
        return self.has_landmarks & ~self.ignore


@dataclass(frozen=True)
class EyeRuleScore:
    """The landmark faces of one image under the eye-centre rule: counts and finite NMEs (L,)."""

    faces: int
    matched: int
    nmes: np.ndarray


@dataclass(frozen=True)
class ImageScore:
    """One image scored against its ground truth (IoU rule; eye rule if asked for).

    faces / ignore_faces: GT faces that count / are marked ignore; predictions: N;
    counted_scores (K,) and counted_true (K,) bool: the predictions not absorbed by an ignore face (for AP);
    landmark_faces: GT landmark faces that count, landmark_missed: those without a match;
    landmark_nmes (L,): finite NMEs of the matched landmark faces, in face order;
    face_rows: one report dict per GT face.
    """

    image: str
    complete: bool
    faces: int
    ignore_faces: int
    predictions: int
    true_positives: int
    false_positives: int
    ignored_predictions: int
    counted_scores: np.ndarray
    counted_true: np.ndarray
    landmark_faces: int
    landmark_missed: int
    landmark_nmes: np.ndarray
    eye_rule: Optional[EyeRuleScore]
    face_rows: List[Dict[str, Any]]

    def report_row(self) -> Dict[str, Any]:
        """The image's entry in the report's ``per_image`` list."""
        return {"image": self.image, "complete": self.complete,
                "n_gt": self.faces, "n_ignore_gt": self.ignore_faces, "n_pred": self.predictions,
                "tp": self.true_positives, "fp": self.false_positives,
                "ignored_pred": self.ignored_predictions, "missed": self.faces - self.true_positives,
                "faces": self.face_rows}


def score_image(record: Mapping[str, Any], prediction: Prediction, eye_rule: bool = True) -> ImageScore:
    """Match one image's prediction (see :mod:`.data`) to its JSONL record and score it."""
    truth = GroundTruth.from_record(record)
    boxes, scores = prediction["boxes"], prediction["scores"]
    matching = match_detections(boxes, scores, truth.boxes, truth.iou_thresholds, truth.ignore)
    landmark_nmes = _matched_nmes(matching, prediction, truth)
    eye_rule_score, eye_matching, eye_nmes = None, None, None
    if eye_rule:
        eye_matching = match_by_eyes(boxes, scores, truth.boxes, truth.landmarks, truth.ignore)
        eye_nmes = _matched_nmes(eye_matching, prediction, truth)
        eye_rule_score = EyeRuleScore(faces=int(truth.scored_landmarks.sum()),
                                      matched=_matched_landmark_faces(eye_matching, truth),
                                      nmes=_finite(eye_nmes))
    not_ignored = matching.prediction_status != IGNORED
    landmark_faces = int(truth.scored_landmarks.sum())
    return ImageScore(
        image=record["image"],
        complete=bool(record.get("complete", False)),
        faces=int((~truth.ignore).sum()),
        ignore_faces=int(truth.ignore.sum()),
        predictions=int(matching.prediction_status.size),
        true_positives=matching.true_positives,
        false_positives=matching.false_positives,
        ignored_predictions=matching.ignored_predictions,
        counted_scores=scores[not_ignored],
        counted_true=matching.prediction_status[not_ignored] == TRUE_POSITIVE,
        landmark_faces=landmark_faces,
        landmark_missed=landmark_faces - _matched_landmark_faces(matching, truth),
        landmark_nmes=_finite(landmark_nmes),
        eye_rule=eye_rule_score,
        face_rows=_face_rows(truth, matching, landmark_nmes, eye_matching, eye_nmes),
    )


def _matched_landmark_faces(matching: Matching, truth: GroundTruth) -> int:
    """How many scored landmark faces have a matched prediction."""
    return int((truth.scored_landmarks & (matching.face_prediction >= 0)).sum())


def _matched_nmes(matching: Matching, prediction: Prediction, truth: GroundTruth) -> np.ndarray:
    """(M,) NME of each scored landmark face's matched prediction; NaN where unmatched or not scored."""
    nmes = np.full(len(truth.box_types), np.nan)
    faces = np.flatnonzero(truth.scored_landmarks & (matching.face_prediction >= 0))
    nmes[faces] = landmark_nmes(prediction["landmarks"][matching.face_prediction[faces]], truth.landmarks[faces])
    return nmes


def _finite(values: np.ndarray) -> np.ndarray:
    """The finite entries of a 1-D array, in order."""
    return values[np.isfinite(values)]


def _face_rows(truth: GroundTruth, matching: Matching, landmark_nmes: np.ndarray,
               eye_matching: Optional[Matching], eye_nmes: Optional[np.ndarray]) -> List[Dict[str, Any]]:
    """One dict per GT face: ignore, box_type, matched, iou, nme (+ matched_eyes, nme_eyes with the eye rule)."""
    rows = []
    for face, box_type in enumerate(truth.box_types):
        matched = bool(matching.face_prediction[face] >= 0)
        row: Dict[str, Any] = {"ignore": bool(truth.ignore[face]), "box_type": box_type, "matched": matched,
                               "iou": finite_or_none(matching.face_iou[face]) if matched else None,
                               "nme": finite_or_none(landmark_nmes[face])}
        if eye_matching is not None and truth.scored_landmarks[face]:
            row["matched_eyes"] = bool(eye_matching.face_prediction[face] >= 0)
            row["nme_eyes"] = finite_or_none(eye_nmes[face])
        rows.append(row)
    return rows
