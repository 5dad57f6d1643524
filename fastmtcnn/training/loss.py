"""The paper's multi-task loss with per-stage task weights, the sample-type indicator and OHEM.

L = sum over tasks j of alpha_j * mean over the samples i that carry task j's label (beta_i^j = 1) of L_i^j:
face/non-face cross-entropy on negatives and positives, box regression (Euclidean, 0.5 * ||d||^2 as in Caffe's
EuclideanLoss) on positives and part faces, landmark regression (Euclidean) on landmark faces. Online hard
sample mining: only the `ohem` fraction of the classification samples with the largest loss contribute to
the classification term (0.7 in the paper; None or 1.0 switches it off).
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from .nets import HeadOutputs
from .samples import LANDMARK, NEGATIVE, PART, POSITIVE

#: (alpha_det, alpha_box, alpha_landmark) per stage, from the paper.
STAGE_ALPHAS: Dict[str, Tuple[float, float, float]] = {
    "pnet": (1.0, 0.5, 0.5), "rnet": (1.0, 0.5, 0.5), "onet": (1.0, 0.5, 1.0)}
#: Classification-only weights (the paper's Fig. 3a OHEM experiment).
CLASSIFICATION_ONLY = (1.0, 0.0, 0.0)


def check_ohem(ohem: Optional[float]) -> Optional[float]:
    """A valid OHEM keep ratio in (0, 1], or None (off); raises ValueError otherwise."""
    if ohem is not None and not 0.0 < float(ohem) <= 1.0:
        raise ValueError(f"ohem must be a keep ratio in (0, 1] (0.7 in the paper) or None to switch it off, got {ohem}")
    return None if ohem is None else float(ohem)


def hard_sample_mean(losses: torch.Tensor, ohem: Optional[float]) -> torch.Tensor:
    """Mean of the ceil(ohem * n) largest entries of `losses` (n,) (all of them when ohem is None)."""
    if losses.numel() == 0:
        return losses.sum()
    if ohem is None or ohem >= 1.0:
        return losses.mean()
    keep = max(1, math.ceil(ohem * losses.numel()))
    return torch.topk(losses, keep, sorted=False).values.mean()


def _euclidean(predicted: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    if not bool(mask.any()):
        return predicted.sum() * 0.0
    return 0.5 * ((predicted[mask] - target[mask]) ** 2).sum(dim=1).mean()


def multitask_loss(outputs: HeadOutputs, kinds: torch.Tensor, offsets: torch.Tensor, landmarks: torch.Tensor,
                   alphas: Tuple[float, float, float], ohem: Optional[float] = 0.7
                   ) -> Tuple[torch.Tensor, Dict[str, float]]:
    """(total loss, {"cls", "box", "landmark", "accuracy"} as floats) for one mini-batch.

    outputs: a net's HeadOutputs (N, .); kinds int64 (N,) of samples.NEGATIVE/POSITIVE/PART/LANDMARK;
    offsets float32 (N, 4); landmarks float32 (N, 10); alphas (det, box, landmark).
    """
    is_face = kinds == POSITIVE
    with_class = (kinds == NEGATIVE) | is_face
    per_sample = F.cross_entropy(outputs.logits[with_class], is_face[with_class].long(), reduction="none")
    cls = hard_sample_mean(per_sample, ohem)
    box = _euclidean(outputs.offsets, offsets, is_face | (kinds == PART))
    if outputs.landmarks is not None:
        points = _euclidean(outputs.landmarks, landmarks, kinds == LANDMARK)
    else:
        points = cls * 0.0
    total = alphas[0] * cls + alphas[1] * box + alphas[2] * points
    with torch.no_grad():
        predicted = outputs.logits[with_class].argmax(dim=1) == 1
        accuracy = (predicted == is_face[with_class]).float().mean() if bool(with_class.any()) else cls * 0.0
    terms = {"cls": cls, "box": box, "landmark": points, "accuracy": accuracy}
    return total, {name: float(value.detach()) for name, value in terms.items()}
