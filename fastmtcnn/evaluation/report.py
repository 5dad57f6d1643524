"""The evaluation report of one annotated set: per-image scores summed into set-level figures."""
from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from .data import as_prediction, load_dataset
from .matching import IOU_THRESHOLDS
from .metrics import count_summary, detection_summary, eye_rule_summary, landmark_summary
from .predict import predict_dataset
from .scoring import ImageScore, score_image


def evaluate(dataset_jsonl: str, root: Optional[str] = None, detect: Optional[Callable[[str], Any]] = None,
             predictions: Optional[Mapping[str, Any]] = None, progress: Optional[bool] = False,
             jobs: int = 1, eye_rule: bool = True) -> Dict[str, Any]:
    """Score a detector on one ground-truth JSONL set.

    dataset_jsonl: path of the GT file; root: folder its ``image`` paths are relative to (default: the
    JSONL's folder).  Give exactly one of ``detect`` (callable path -> result, run by
    :func:`.predict.predict_dataset` with ``progress`` and ``jobs``) or ``predictions`` (image -> prediction;
    every image of the set must be present, else KeyError).

    Report (fractions, JSON-serialisable; None where undefined):
      counts                      images, GT faces, matched / missed, predictions;
      detection.recall            matched non-ignore GT / non-ignore GT, all images;
      detection.precision, fp_per_image, ap   only over images with ``complete: true``;
      landmarks.nme_mean/median   over matched GT landmark faces (IoU rule); failure_rate: NME > 0.10
                                  among them; failure_rate_with_missed: (failures + missed) / landmark faces;
      eye_rule                    the landmark faces under "box contains both eye centres" (None if off);
      timing, per_image           (see :meth:`.scoring.ImageScore.report_row`).
    Matching: :func:`.matching.match_detections` with :data:`IOU_THRESHOLDS` by ``box_type``.
    """
    started = time.perf_counter()
    if (detect is None) == (predictions is None):
        raise ValueError("give exactly one of detect= (a callable path -> faces) or predictions= (a dict)")
    records = load_dataset(dataset_jsonl)
    root = root if root is not None else os.path.dirname(os.path.abspath(dataset_jsonl))
    detect_seconds = None
    if detect is not None:
        predictions, detect_seconds = predict_dataset(records, root, detect, progress, jobs)
    images = score_dataset(records, predictions, eye_rule)
    return build_report(dataset_jsonl, root, images, eye_rule, timing={
        "wall_seconds": time.perf_counter() - started,
        "detect_seconds": detect_seconds,
        "detect_ms_per_image": (1000.0 * detect_seconds / len(records)
                                if detect_seconds is not None and records else None),
    })


def score_dataset(records: Sequence[dict], predictions: Mapping[str, Any], eye_rule: bool = True) -> List[ImageScore]:
    """Score every image of a set (records from :func:`.data.load_dataset`); KeyError if one has no prediction."""
    missing = [record["image"] for record in records if record["image"] not in predictions]
    if missing:
        raise KeyError(f"{len(missing)} dataset images have no predictions, e.g. {missing[:3]}")
    return [score_image(record, as_prediction(predictions[record["image"]]), eye_rule) for record in records]


def build_report(dataset_jsonl: str, root: str, images: Sequence[ImageScore], eye_rule: bool,
                 timing: Dict[str, Any]) -> Dict[str, Any]:
    """The report dict of :func:`evaluate` from the set's per-image scores."""
    detection = detection_summary(images)
    detection["iou_thresholds"] = dict(IOU_THRESHOLDS)
    return {
        "dataset": os.path.basename(dataset_jsonl),
        "dataset_path": os.path.abspath(dataset_jsonl),
        "root": os.path.abspath(root),
        "counts": count_summary(images),
        "detection": detection,
        "landmarks": landmark_summary(images),
        "eye_rule": eye_rule_summary(images) if eye_rule else None,
        "timing": timing,
        "per_image": [image.report_row() for image in images],
    }
