"""Accuracy formulas (AP, landmark NME) and their aggregation over the per-image scores of a set.

All figures are fractions (0.05 = 5 %) and JSON-friendly: None where undefined (nothing to divide by).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence

import numpy as np

from .matching import score_order

if TYPE_CHECKING:  # pragma: no cover
    from .scoring import ImageScore

#: A landmark prediction with NME above this fraction of the inter-ocular distance is a failure.
NME_FAILURE_THRESHOLD = 0.10


def finite_or_none(value: Any) -> Optional[float]:
    """A JSON-friendly float: None for None and NaN/inf."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def ratio(numerator: float, denominator: float) -> Optional[float]:
    """numerator / denominator as a float, None when the denominator is 0."""
    return float(numerator) / float(denominator) if denominator > 0 else None


def average_precision(scores: Any, is_tp: Any, n_positives: int) -> Optional[float]:
    """VOC average precision with all-points interpolation.

    scores (K,) and is_tp (K,) bool of the (non-ignored) predictions of all scored images, pooled;
    n_positives = number of non-ignore GT faces in those images.  Predictions are sorted by descending
    score (stable), precision is replaced by its envelope (running max from the right) and
    AP = sum over recall steps of delta-recall times envelope precision.  None when n_positives == 0.
    """
    if n_positives <= 0:
        return None
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    is_tp = np.asarray(is_tp, dtype=bool).reshape(-1)
    if scores.size == 0:
        return 0.0
    order = score_order(scores)
    true_positives = np.cumsum(is_tp[order]).astype(np.float64)
    false_positives = np.cumsum(~is_tp[order]).astype(np.float64)
    recall = true_positives / float(n_positives)
    precision = true_positives / np.maximum(true_positives + false_positives, np.finfo(np.float64).eps)
    recall_steps = np.concatenate([[0.0], recall, [1.0]])
    envelope = np.concatenate([[0.0], precision, [0.0]])
    envelope = np.maximum.accumulate(envelope[::-1])[::-1]
    changes = np.nonzero(recall_steps[1:] != recall_steps[:-1])[0]
    return float(np.sum((recall_steps[changes + 1] - recall_steps[changes]) * envelope[changes + 1]))


def landmark_nmes(pred: Any, gt: Any) -> np.ndarray:
    """Normalised mean error of the 5 landmarks of n faces: float64 (n,).

    pred, gt: (n, 5, 2) points, order [eye, eye, nose, mouth, mouth] (image-left first), in pixels or in
    fractions of a square box (the ratio is the same).  Face i's value is
    mean_k ||pred_ik - gt_ik|| / ||gt_i0 - gt_i1|| (a fraction of the inter-ocular distance, eye centres);
    NaN where the prediction has a non-finite point or the GT eyes coincide.  Computed in float64.
    """
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 5, 2)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 5, 2)
    inter_ocular = np.hypot(gt[:, 0, 0] - gt[:, 1, 0], gt[:, 0, 1] - gt[:, 1, 1])
    error = np.mean(np.hypot(pred[:, :, 0] - gt[:, :, 0], pred[:, :, 1] - gt[:, :, 1]), axis=1)
    scored = np.all(np.isfinite(pred), axis=(1, 2)) & (inter_ocular > 0)
    with np.errstate(invalid="ignore"):  # NaN GT points: no NME, no warning
        return np.where(scored, error / np.where(scored, inter_ocular, 1.0), np.nan)


def landmark_nme(pred: Any, gt: Any) -> float:
    """`landmark_nmes` of one face: pred, gt (5, 2) points; a float, NaN where that gives NaN."""
    return float(landmark_nmes(pred, gt)[0])


def _concatenate(arrays: Sequence[np.ndarray], dtype: Any) -> np.ndarray:
    return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(0, dtype)


def count_summary(images: Sequence["ImageScore"]) -> Dict[str, int]:
    """Images, GT faces (non-ignore and ignore), matched/missed faces and predictions, summed."""
    faces = sum(image.faces for image in images)
    matched = sum(image.true_positives for image in images)
    return {
        "images": len(images),
        "complete_images": sum(1 for image in images if image.complete),
        "faces": faces,
        "ignore_faces": sum(image.ignore_faces for image in images),
        "matched": matched,
        "missed": faces - matched,
        "predictions": sum(image.predictions for image in images),
    }


def detection_summary(images: Sequence["ImageScore"]) -> Dict[str, Any]:
    """Recall over all images; precision, false positives per image and AP over ``complete`` ones only."""
    recall = ratio(sum(image.true_positives for image in images), sum(image.faces for image in images))
    complete = [image for image in images if image.complete]
    summary: Dict[str, Any] = {"recall": recall, "precision": None, "fp_per_image": None, "ap": None,
                               "complete_tp": None, "complete_fp": None}
    if complete:
        true_positives = sum(image.true_positives for image in complete)
        false_positives = sum(image.false_positives for image in complete)
        summary.update(
            precision=ratio(true_positives, true_positives + false_positives),
            fp_per_image=ratio(false_positives, len(complete)),
            ap=average_precision(_concatenate([image.counted_scores for image in complete], np.float64),
                                 _concatenate([image.counted_true for image in complete], bool),
                                 sum(image.faces for image in complete)),
            complete_tp=true_positives,
            complete_fp=false_positives,
        )
    return summary


def landmark_summary(images: Sequence["ImageScore"]) -> Dict[str, Any]:
    """NME mean/median and failure rates over the GT landmark faces the IoU rule matched."""
    nmes = _concatenate([image.landmark_nmes for image in images], np.float64)
    faces = sum(image.landmark_faces for image in images)
    missed = sum(image.landmark_missed for image in images)
    failures = int((nmes > NME_FAILURE_THRESHOLD).sum())
    return {
        "faces": faces,
        "matched": faces - missed,
        "scored": int(nmes.size),  # matched landmark faces with a finite NME
        "missed": missed,
        "nme_mean": finite_or_none(nmes.mean()) if nmes.size else None,
        "nme_median": finite_or_none(np.median(nmes)) if nmes.size else None,
        "failures": failures,
        "failure_threshold": NME_FAILURE_THRESHOLD,
        "failure_rate": ratio(failures, int(nmes.size)),
        "failure_rate_with_missed": ratio(failures + missed, faces),
        "normaliser": "inter-ocular (eye centres)",
    }


def eye_rule_summary(images: Sequence["ImageScore"]) -> Dict[str, Any]:
    """Recall and NME of the GT landmark faces under the rule "box contains both eye centres"."""
    nmes = _concatenate([image.eye_rule.nmes for image in images], np.float64)
    faces = sum(image.eye_rule.faces for image in images)
    matched = sum(image.eye_rule.matched for image in images)
    failures = int((nmes > NME_FAILURE_THRESHOLD).sum())
    return {
        "rule": "detection box contains both GT eye centres (GT faces with landmarks)",
        "faces": faces, "matched": matched, "missed": faces - matched,
        "recall": ratio(matched, faces),
        "nme_mean": finite_or_none(nmes.mean()) if nmes.size else None,
        "nme_median": finite_or_none(np.median(nmes)) if nmes.size else None,
        "failures": failures,
        "failure_rate": ratio(failures, int(nmes.size)),
    }
