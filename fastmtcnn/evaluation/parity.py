"""Parity between two detectors' predictions on the same images (e.g. ours vs facenet-pytorch)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from .data import Prediction, as_prediction
from .matching import match_detections
from .metrics import finite_or_none, ratio

_NO_FACES = {"boxes": None, "scores": None, "landmarks": None}

#: How many images `compare` lists under ``worst_images``.
WORST_IMAGES = 10


@dataclass
class ImagePairing:
    """One image's reference faces paired with ours: counts and, per matched pair, IoU,
    mean landmark distance (px, finite ones only) and absolute score difference."""

    image: str
    reference_faces: int
    our_faces: int
    ious: List[float] = field(default_factory=list)
    landmark_distances: List[float] = field(default_factory=list)
    score_differences: List[float] = field(default_factory=list)

    @property
    def matched(self) -> int:
        return len(self.ious)

    def report_row(self) -> Dict[str, Any]:
        """The image's row for ``worst_images``."""
        return {"image": self.image, "n_ref": self.reference_faces, "n_ours": self.our_faces,
                "matched": self.matched, "unmatched_ref": self.reference_faces - self.matched,
                "unmatched_ours": self.our_faces - self.matched,
                "worst_iou": min(self.ious) if self.ious else None,
                "max_landmark_px": max(self.landmark_distances) if self.landmark_distances else None}


def pair_image(image: str, ours: Prediction, reference: Prediction, iou: float) -> ImagePairing:
    """Reference faces in descending score each take the unmatched face of ours with the highest
    IoU, if that IoU >= `iou`.  ours, reference: predictions (see :mod:`.data`)."""
    n_reference, n_ours = reference["scores"].size, ours["scores"].size
    # the reference drives the greedy order, so it plays the "prediction" role:
    matching = match_detections(reference["boxes"], reference["scores"], ours["boxes"], np.full(n_ours, float(iou)))
    pairing = ImagePairing(image, n_reference, n_ours)
    for reference_face in range(n_reference):
        our_face = int(matching.prediction_face[reference_face])
        if our_face < 0:
            continue
        pairing.ious.append(float(matching.face_iou[our_face]))
        offsets = ours["landmarks"][our_face] - reference["landmarks"][reference_face]  # (5, 2) px
        distance = np.hypot(*offsets.T).mean()
        if math.isfinite(distance):
            pairing.landmark_distances.append(float(distance))
        score_difference = float(ours["scores"][our_face]) - float(reference["scores"][reference_face])
        pairing.score_differences.append(abs(score_difference))
    return pairing


def compare(ours: Mapping[str, Any], reference: Mapping[str, Any], iou: float = 0.7) -> Dict[str, Any]:
    """Parity between two detectors' predictions.

    ours, reference: image -> prediction (or a detector result); images missing on one side count as
    no detections there.  Matching: :func:`pair_image`.  Returns (fractions, pixels):
      matched_fraction   matched / reference faces;  extra_fraction  unmatched faces of ours / reference faces;
      landmark_px_median / _max   over matched pairs of the mean point distance (px);
      iou_median / iou_min, score_diff_median (|score_ours - score_ref|);
      worst_images       top 10 images by (unmatched ref + unmatched ours) desc, then worst IoU asc.
    """
    images = list(reference.keys()) + [image for image in ours.keys() if image not in reference]
    pairings = [pair_image(image, as_prediction(ours.get(image, _NO_FACES)),
                           as_prediction(reference.get(image, _NO_FACES)), iou) for image in images]
    reference_faces = sum(pairing.reference_faces for pairing in pairings)
    our_faces = sum(pairing.our_faces for pairing in pairings)
    matched = sum(pairing.matched for pairing in pairings)
    ious = _pooled(pairings, "ious")
    distances = _pooled(pairings, "landmark_distances")
    return {
        "iou_threshold": float(iou),
        "images": len(images),
        "reference_faces": reference_faces,
        "our_faces": our_faces,
        "matched": matched,
        "unmatched_reference": reference_faces - matched,
        "extra": our_faces - matched,
        "matched_fraction": ratio(matched, reference_faces),
        "extra_fraction": ratio(our_faces - matched, reference_faces),
        "landmark_px_median": _statistic(np.median, distances),
        "landmark_px_max": _statistic(np.max, distances),
        "iou_median": _statistic(np.median, ious),
        "iou_min": _statistic(np.min, ious),
        "score_diff_median": _statistic(np.median, _pooled(pairings, "score_differences")),
        "worst_images": _worst_images([pairing.report_row() for pairing in pairings]),
    }


def _pooled(pairings: List[ImagePairing], name: str) -> np.ndarray:
    """One per-pair list of every image, concatenated in image order: float64 (K,)."""
    return np.asarray([value for pairing in pairings for value in getattr(pairing, name)], np.float64)


def _statistic(function: Any, values: np.ndarray) -> Optional[float]:
    return finite_or_none(function(values)) if values.size else None


def _worst_images(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Images with a difference, most unmatched faces first, then lowest worst IoU; the first 10."""
    def unmatched(row: Dict[str, Any]) -> int:
        return row["unmatched_ref"] + row["unmatched_ours"]

    differing = (row for row in rows
                 if unmatched(row) > 0 or (row["worst_iou"] is not None and row["worst_iou"] < 1.0))
    def most_different_first(row: Dict[str, Any]) -> tuple:
        return -unmatched(row), row["worst_iou"] if row["worst_iou"] is not None else 0.0

    return sorted(differing, key=most_different_first)[:WORST_IMAGES]
