"""Validation metrics of one stage on held-out crops, and the rule that picks the epoch to keep.

P-Net / R-Net: recall of the positive crops at the stage's cascade threshold, and the false positives
(negative crops scored at or above it). O-Net adds the landmark NME of the landmark crops, normalised by the
inter-ocular distance (the crops are square, so box fractions give the same ratio as pixels), the scatter
NME (the same after the net's own mean offset over these crops is taken away: what is left once the point
convention, where a set puts an eye centre or a mouth corner, is set aside), and face accuracy. The crops
come from images that training never sees (`readers.split_records`). With `select` "cascade" O-Net is also
measured as the detector uses it, the whole cascade on the held-out images (`cascade_validation.py`): the
epoch kept is the one of the lowest cascade NME, and the recall and false positives the keep rule guards are
the cascade's.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch

from ..evaluation.metrics import landmark_nmes
from .loss import multitask_loss
from .nets import MTCNNNet
from .samples import LANDMARK, NEGATIVE, POSITIVE, SampleSet, to_caffe_orientation

#: The cascade's default thresholds, per stage: recall and false positives are counted at these.
STAGE_THRESHOLDS = {"pnet": 0.6, "rnet": 0.7, "onet": 0.7}
#: A fine-tuned stage is kept only if recall falls and the false-positive rate rises by at most this.
DETECTION_SLACK = 0.005


def landmark_nme(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-sample NME float64 (n,) of crop landmarks (n, 10) (five x then five y box fractions): the
    evaluation's `landmark_nmes` (normalised by the target's inter-ocular distance; NaN where its eyes coincide)."""
    return landmark_nmes(_points(predicted), _points(target))


def _points(landmarks: np.ndarray) -> np.ndarray:
    """(n, 10) five x then five y -> (n, 5, 2) (x, y) points."""
    return np.stack([landmarks[:, :5], landmarks[:, 5:]], axis=-1)


def scatter_nme(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-sample NME (n,) after the mean offset of `predicted` from `target` (over the n samples) is taken
    away: a net that only moves every point by the same amount scores as before."""
    return landmark_nme(predicted - (predicted - target).mean(axis=0), target)


def stage_metrics(net: MTCNNNet, samples: SampleSet, index: np.ndarray, alphas, threshold: float,
                  batch_size: int = 1024, device: str = "cpu") -> Dict[str, float]:
    """Losses (no OHEM), accuracy, recall and false positives at `threshold`, and for O-Net the landmark NME,
    of the samples `index` (eval mode)."""
    if not len(index):
        return {}
    net.eval()
    sums: Dict[str, float] = {}
    scores, points = [], []
    with torch.no_grad():
        for start in range(0, len(index), batch_size):
            part = index[start:start + batch_size]
            images = torch.from_numpy(to_caffe_orientation(samples.images[part])).to(device)
            arrays = (samples.kinds[part].astype(np.int64), samples.offsets[part], samples.landmarks[part])
            kinds, offsets, targets = (torch.from_numpy(a).to(device) for a in arrays)
            outputs = net(images)
            total, terms = multitask_loss(outputs, kinds, offsets, targets, alphas, ohem=None)
            for key, value in dict(terms, loss=float(total)).items():
                sums[key] = sums.get(key, 0.0) + value * len(part)
            scores.append(torch.softmax(outputs.logits, 1)[:, 1].cpu().numpy())
            if outputs.landmarks is not None:
                points.append(outputs.landmarks.cpu().numpy())
    net.train()
    metrics = {key: value / len(index) for key, value in sums.items()}
    kinds, score = samples.kinds[index], np.concatenate(scores)
    positive, negative = kinds == POSITIVE, kinds == NEGATIVE
    metrics["recall"] = float(np.mean(score[positive] >= threshold)) if positive.any() else float("nan")
    metrics["false_positives"] = int(np.sum(score[negative] >= threshold))
    metrics["fp_rate"] = metrics["false_positives"] / max(1, int(negative.sum()))
    marked = kinds == LANDMARK
    if points and marked.any():
        predicted, target = np.concatenate(points)[marked], samples.landmarks[index][marked]
        metrics["nme"] = float(landmark_nme(predicted, target).mean())
        metrics["nme_scatter"] = float(scatter_nme(predicted, target).mean())
    return metrics


#: What `selection_score` ranks landmark stages by: "nme" or "scatter" (the NME left after the mean offset) of
#: the validation crops, or "cascade" (the NME of the whole cascade on the held-out images).
SELECTIONS = ("nme", "scatter", "cascade")
#: The metric each selection ranks by (lower is better).
_SELECTED_KEY = {"nme": "nme", "scatter": "nme_scatter", "cascade": "cascade_nme"}


def selection_score(metrics: Dict[str, float], alphas, select: str = "nme") -> float:
    """Lower is better: the landmark NME of the crops (`select` "nme"), their scatter NME ("scatter") or the
    whole cascade's NME ("cascade") when the stage is trained for landmarks and has them (the crop NME when
    the chosen one was not measured), else -(recall - false-positive rate) at the stage threshold."""
    if alphas[2] > 0 and "nme" in metrics:
        return metrics.get(_SELECTED_KEY[select], metrics["nme"])
    return -(metrics["recall"] - metrics["fp_rate"])


def detection_holds(metrics: Dict[str, float], before: Optional[Dict[str, float]],
                    slack: float = DETECTION_SLACK) -> bool:
    """Recall no lower and false-positive rate no higher than `before` by more than `slack`: the whole
    cascade's recall and false positives per image when both were measured, else the crops'."""
    if not before:
        return True
    recall, fp = ("cascade_recall", "cascade_fp_per_image") if "cascade_recall" in before and \
        "cascade_recall" in metrics else ("recall", "fp_rate")
    recall_ok = not before[recall] - metrics[recall] > slack
    return recall_ok and not metrics[fp] - before[fp] > slack


def describe(metrics: Dict[str, float]) -> str:
    """One line of the metrics that matter: NME (if any), recall, false positives."""
    if not metrics:
        return "no validation samples"
    parts = [f"cascade NME {100 * metrics['cascade_nme']:.3f}%, cascade recall {100 * metrics['cascade_recall']:.2f}%, "
             f"cascade false positives/image {metrics['cascade_fp_per_image']:.3f}"] if "cascade_nme" in metrics else []
    parts += [f"NME {100 * metrics['nme']:.3f}%"] if "nme" in metrics else []
    parts += [f"scatter NME {100 * metrics['nme_scatter']:.3f}%"] if "nme_scatter" in metrics else []
    parts += [f"recall {100 * metrics['recall']:.2f}%", f"false positives {metrics['false_positives']}",
              f"accuracy {100 * metrics['accuracy']:.2f}%"]
    return ", ".join(parts)
