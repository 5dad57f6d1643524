"""Accuracy evaluation and parity checks for face detectors (numpy + stdlib only).

Everything here works on plain *prediction* mappings so it can score any detector:

    prediction = {"boxes": float (N, 4) x1, y1, x2, y2 in pixels,
                  "scores": float (N,),
                  "landmarks": float (N, 5, 2) (x, y) pixels, or None}

Landmark order (image space, as MTCNN outputs them): left-in-image eye, right-in-image
eye, nose tip, left mouth corner, right mouth corner.  A *predictions* dict maps an
image path (relative to the dataset root, exactly as in the JSONL ``image`` field) to a
prediction.

Ground truth is the project's JSONL format (see ``../shared/data/README.md``): one image
per line ``{"image", "width", "height", "source", "complete", "faces": [{"box",
"box_type", "landmarks", "ignore"}]}``.

Public API
----------
iou_matrix(a, b)                          pairwise IoU, continuous coordinates
match_detections(pred_boxes, pred_scores, gt_boxes, gt_thresholds, gt_ignore)
eyes_inside(pred_boxes, gt_landmarks)     which boxes contain both GT eye centres
match_by_eyes(pred_boxes, pred_scores, gt_boxes, gt_landmarks, gt_ignore)
average_precision(scores, is_tp, n_positives)
landmark_nme(pred, gt)                    5-point NME normalised by inter-ocular distance
load_dataset(jsonl) / load_golden(golden_jsonl, min_face_size)
predict_dataset(records, root, detect)    run a detector over a dataset
evaluate(dataset_jsonl, root=None, detect=None, predictions=None, progress=False)
compare(ours, reference, iou=0.7)         parity between two detectors
markdown_summary(report) / markdown_compare(comparison)
main(argv=None, detector_factory=None)    CLI ``eval DATA.jsonl [...]``

The detector itself is only imported inside :func:`main`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "IOU_THRESHOLDS",
    "NME_FAILURE_THRESHOLD",
    "iou_matrix",
    "match_detections",
    "eyes_inside",
    "match_by_eyes",
    "average_precision",
    "landmark_nme",
    "as_prediction",
    "load_dataset",
    "load_golden",
    "predict_dataset",
    "evaluate",
    "compare",
    "markdown_summary",
    "markdown_compare",
    "main",
]

#: IoU a prediction needs with a GT box to match it, by the GT ``box_type``.
#: Landmark-extent boxes (min/max of the 68 points) are tighter than detector boxes.
IOU_THRESHOLDS = {"annotated": 0.5, "landmark_extent": 0.3}
#: A landmark prediction with NME above this fraction is a failure.
NME_FAILURE_THRESHOLD = 0.10

Prediction = Dict[str, Optional[np.ndarray]]
Predictions = Dict[str, Prediction]


# --------------------------------------------------------------------------- geometry


def iou_matrix(a: Any, b: Any) -> np.ndarray:
    """Pairwise intersection-over-union of two sets of boxes.

    a: (n, 4), b: (m, 4) boxes x1, y1, x2, y2 in pixels, continuous coordinates
    (area = (x2 - x1) * (y2 - y1), no "+1").  Returns float64 (n, m) in [0, 1];
    pairs with a zero union give 0.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]), dtype=np.float64)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return iou


def _score_order(scores: np.ndarray) -> np.ndarray:
    """Indices sorting ``scores`` descending; ties keep their input order."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def match_detections(
    pred_boxes: Any,
    pred_scores: Any,
    gt_boxes: Any,
    gt_thresholds: Any,
    gt_ignore: Any = None,
) -> Dict[str, np.ndarray]:
    """Greedy VOC-style matching of predictions to ground truth on one image.

    pred_boxes (N, 4), pred_scores (N,), gt_boxes (M, 4) in pixels; gt_thresholds (M,)
    the IoU each GT needs (see :data:`IOU_THRESHOLDS`); gt_ignore (M,) bool.

    Predictions are visited in descending score.  Each one takes the *unmatched,
    non-ignore* GT with the highest IoU among those with IoU >= that GT's threshold
    (true positive).  If there is none but it overlaps an ``ignore`` GT by at least
    that GT's threshold it is *ignored* (neither TP nor FP; an ignore GT can absorb
    any number of predictions); otherwise it is a false positive (this includes
    duplicates of an already matched face).  Ignore GTs are never misses.

    Returns a dict of arrays:
      ``pred_status`` (N,) int8: 1 TP, 0 FP, -1 ignored;
      ``pred_gt`` (N,) int: GT index matched (or absorbing ignore GT), -1 for FP;
      ``gt_pred`` (M,) int: prediction index matched to each GT, -1 if none;
      ``gt_iou`` (M,) float: IoU of that match (0 if none).
    """
    def at_least_threshold(pred: np.ndarray, gt: np.ndarray, ious: np.ndarray) -> np.ndarray:
        thresholds = np.broadcast_to(np.asarray(gt_thresholds, dtype=np.float64), (len(gt),))
        return ious >= thresholds[None, :] - 1e-12  # tolerate float noise at the threshold

    return _greedy_match(pred_boxes, pred_scores, gt_boxes, gt_ignore, at_least_threshold)


def _greedy_match(pred_boxes: Any, pred_scores: Any, gt_boxes: Any, gt_ignore: Any,
                  eligibility: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]) -> Dict[str, np.ndarray]:
    """The greedy loop shared by both matching rules; `eligibility(pred, gt, ious)` gives bool (N, M)."""
    pred_boxes = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)
    pred_scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    n, m = pred_boxes.shape[0], gt_boxes.shape[0]
    ign = np.zeros(m, bool) if gt_ignore is None else np.asarray(gt_ignore, bool).reshape(m)
    if pred_scores.shape[0] != n:
        raise ValueError(f"{n} boxes but {pred_scores.shape[0]} scores")
    pred_status = np.zeros(n, np.int8)
    pred_gt = np.full(n, -1, np.int64)
    gt_pred = np.full(m, -1, np.int64)
    gt_iou = np.zeros(m, np.float64)
    if n == 0 or m == 0:
        return dict(pred_status=pred_status, pred_gt=pred_gt, gt_pred=gt_pred, gt_iou=gt_iou)
    ious = iou_matrix(pred_boxes, gt_boxes)
    eligible = eligibility(pred_boxes, gt_boxes, ious)
    for p in _score_order(pred_scores):
        cand = eligible[p] & ~ign & (gt_pred < 0)
        if cand.any():
            g = int(np.argmax(np.where(cand, ious[p], -1.0)))
            gt_pred[g], gt_iou[g], pred_status[p], pred_gt[p] = p, ious[p, g], 1, g
            continue
        cand_ign = eligible[p] & ign
        if cand_ign.any():
            pred_status[p] = -1
            pred_gt[p] = int(np.argmax(np.where(cand_ign, ious[p], -1.0)))
    return dict(pred_status=pred_status, pred_gt=pred_gt, gt_pred=gt_pred, gt_iou=gt_iou)


def eyes_inside(pred_boxes: Any, gt_landmarks: Any) -> np.ndarray:
    """Which predicted boxes contain both eye centres of which GT face.

    pred_boxes (N, 4) x1, y1, x2, y2; gt_landmarks (M, 5, 2) (only points 0 and 1, the eye
    centres, are used; NaN rows = GT without landmarks).  Returns bool (N, M): True where
    x1 <= x <= x2 and y1 <= y <= y2 for both eyes (borders inclusive).  GT faces with
    non-finite eyes are never contained.
    """
    boxes = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)
    lm = np.asarray(gt_landmarks, dtype=np.float64).reshape(-1, 5, 2)
    eyes = lm[:, :2, :]  # (M, 2, 2)
    x, y = eyes[None, :, :, 0], eyes[None, :, :, 1]  # (1, M, 2)
    b = boxes[:, None, None, :]  # (N, 1, 1, 4)
    with np.errstate(invalid="ignore"):
        inside = (x >= b[..., 0]) & (x <= b[..., 2]) & (y >= b[..., 1]) & (y <= b[..., 3])
    return inside.all(axis=2)


def match_by_eyes(
    pred_boxes: Any,
    pred_scores: Any,
    gt_boxes: Any,
    gt_landmarks: Any,
    gt_ignore: Any = None,
) -> Dict[str, np.ndarray]:
    """Greedy matching with the rule "the detection box contains both GT eye centres".

    An alternative to IoU matching for GT boxes drawn with a different convention than the
    detector's (Sun et al. boxes, landmark-extent boxes).  Same greedy order and return
    value as :func:`match_detections`: predictions in descending score each take the
    unmatched, non-ignore GT whose eyes they contain, the one with the highest IoU if
    several do (then the lower GT index); ignore GTs absorb predictions containing their
    eyes.  GT faces without landmarks (NaN) cannot be matched by this rule.
    """
    return _greedy_match(pred_boxes, pred_scores, gt_boxes, gt_ignore,
                         lambda pred, gt, ious: eyes_inside(pred, gt_landmarks))


def average_precision(scores: Any, is_tp: Any, n_positives: int) -> Optional[float]:
    """VOC average precision with all-points interpolation.

    scores (K,) and is_tp (K,) bool of the (non-ignored) predictions of all scored images,
    pooled; n_positives = number of non-ignore GT faces in those images.  Predictions are
    sorted by descending score (stable), precision is replaced by its envelope
    (running max from the right) and AP = sum over recall steps of delta-recall times
    envelope precision.  Returns None when n_positives == 0 (undefined).
    """
    if n_positives <= 0:
        return None
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    is_tp = np.asarray(is_tp, dtype=bool).reshape(-1)
    if scores.size == 0:
        return 0.0
    order = _score_order(scores)
    tp = np.cumsum(is_tp[order]).astype(np.float64)
    fp = np.cumsum(~is_tp[order]).astype(np.float64)
    rec = tp / float(n_positives)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[0.0], prec, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    idx = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


def landmark_nme(pred: Any, gt: Any) -> float:
    """Normalised mean error of one face's 5 landmarks.

    pred, gt: (5, 2) pixels, order [eye, eye, nose, mouth, mouth] (image-left first).
    Returns mean_k ||pred_k - gt_k|| / ||gt_0 - gt_1|| (a fraction: 0.05 = 5 % of the
    inter-ocular distance, eye centres).  NaN if the prediction has non-finite points or
    the GT eyes coincide.
    """
    pred = np.asarray(pred, dtype=np.float64).reshape(5, 2)
    gt = np.asarray(gt, dtype=np.float64).reshape(5, 2)
    iod = float(np.hypot(*(gt[0] - gt[1])))
    if not np.all(np.isfinite(pred)) or not iod > 0:
        return float("nan")
    return float(np.mean(np.hypot(pred[:, 0] - gt[:, 0], pred[:, 1] - gt[:, 1])) / iod)


# --------------------------------------------------------------------------- I/O


def as_prediction(obj: Any) -> Prediction:
    """Normalise a detector result to ``dict(boxes, scores, landmarks)`` sorted by score.

    obj: a mapping with keys ``boxes``/``scores``/``landmarks`` or an object with those
    attributes (e.g. the detector's result); lists are accepted.  Returns float64 arrays
    boxes (N, 4), scores (N,), landmarks (N, 5, 2) (NaN-filled if absent), sorted by
    descending score.
    """
    def get(key):
        if isinstance(obj, Mapping):
            return obj.get(key)
        return getattr(obj, key, None)

    boxes = np.asarray(get("boxes") if get("boxes") is not None else [], np.float64).reshape(-1, 4)
    n = boxes.shape[0]
    s = get("scores")
    scores = np.ones(n) if s is None else np.asarray(s, np.float64).reshape(-1)
    lm = get("landmarks")
    if lm is None or (np.size(lm) == 0 and n > 0):
        landmarks = np.full((n, 5, 2), np.nan)
    else:
        landmarks = np.asarray(lm, np.float64).reshape(n, 5, 2)
    if scores.shape[0] != n:
        raise ValueError(f"prediction has {n} boxes but {scores.shape[0]} scores")
    order = _score_order(scores)
    return {"boxes": boxes[order], "scores": scores[order], "landmarks": landmarks[order]}


def _read_jsonl(path: str) -> List[dict]:
    out = []
    with open(path, "r", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: invalid JSON: {e}") from None
    return out


def load_dataset(dataset_jsonl: str) -> List[dict]:
    """Read a ground-truth JSONL file into a list of per-image dicts (see module doc)."""
    return _read_jsonl(dataset_jsonl)


def load_golden(golden_jsonl: str, min_face_size: int) -> Predictions:
    """Turn a reference-detections file (``*.facenet.jsonl``) into a predictions dict.

    Each line ``{"image", "width", "height", "min_face_size": {"20": [faces], "40": [...]}}``
    with faces ``{"box", "score", "landmarks"}``.  Returns image -> prediction (float64
    arrays, sorted by descending score).  Raises KeyError if a line lacks ``min_face_size``.
    """
    key = str(int(min_face_size))
    preds: Predictions = {}
    for rec in _read_jsonl(golden_jsonl):
        by_size = rec.get("min_face_size", {})
        if key not in by_size:
            raise KeyError(
                f"{golden_jsonl}: image {rec.get('image')!r} has no detections for "
                f"min_face_size={key} (available: {sorted(by_size)})")
        faces = by_size[key]
        preds[rec["image"]] = as_prediction({
            "boxes": [f["box"] for f in faces],
            "scores": [f["score"] for f in faces],
            "landmarks": ([f["landmarks"] for f in faces]
                          if all(f.get("landmarks") is not None for f in faces) else None),
        })
    return preds


# --------------------------------------------------------------------------- progress


class _Progress:
    """One-line progress indicator on stderr (``\\r``-rewritten, at most ~10 Hz)."""

    def __init__(self, total: int, label: str, enabled: Optional[bool] = False, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:  # auto: only on an interactive terminal
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = bool(enabled)
        self.total, self.label = total, label
        self.done = 0
        self.t0 = time.perf_counter()
        self._last = 0.0
        self._lock = threading.Lock()

    def update(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            if not self.enabled:
                return
            now = time.perf_counter()
            if now - self._last < 0.1 and self.done < self.total:
                return
            self._last = now
            el = now - self.t0
            rate = self.done / el if el > 0 else 0.0
            eta = (self.total - self.done) / rate if rate > 0 else float("nan")
            eta_s = f"{eta:5.0f}s" if math.isfinite(eta) else "    ?"
            self.stream.write(f"\r{self.label} {self.done}/{self.total} "
                              f"{rate:6.1f} img/s  eta {eta_s} ")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


# --------------------------------------------------------------------------- evaluation


def predict_dataset(
    records: Sequence[dict],
    root: str,
    detect: Callable[[str], Any],
    progress: Optional[bool] = False,
    jobs: int = 1,
) -> Tuple[Predictions, float]:
    """Run ``detect(path)`` on every image of a dataset.

    records: per-image dicts (``load_dataset``); root: folder the ``image`` paths are
    relative to; detect: callable path -> result (mapping or object with boxes, scores,
    landmarks).  With jobs > 1, that many images are processed concurrently, so
    ``detect`` must then be thread-safe.  Returns (predictions keyed by the relative ``image`` path,
    summed per-call detect time in seconds).
    """
    images = [r["image"] for r in records]
    bar = _Progress(len(images), "detect", progress)
    secs = [0.0] * len(images)

    def one(i: int) -> Prediction:
        t = time.perf_counter()
        res = detect(os.path.join(root, images[i]))
        secs[i] = time.perf_counter() - t
        bar.update()
        return as_prediction(res)

    try:
        if jobs > 1:
            with ThreadPoolExecutor(max_workers=jobs) as ex:
                results = list(ex.map(one, range(len(images))))
        else:
            results = [one(i) for i in range(len(images))]
    finally:
        bar.close()
    return dict(zip(images, results)), float(sum(secs))


def _f(x: Any) -> Optional[float]:
    """JSON-friendly float: None for None/NaN."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _ratio(num: float, den: float) -> Optional[float]:
    return float(num) / float(den) if den > 0 else None


def _eye_rule_summary(total: int, matched: int, nmes: List[float]) -> Dict[str, Any]:
    a = np.asarray(nmes, np.float64)
    fails = int((a > NME_FAILURE_THRESHOLD).sum())
    return {
        "rule": "detection box contains both GT eye centres (GT faces with landmarks)",
        "faces": total, "matched": matched, "missed": total - matched,
        "recall": _ratio(matched, total),
        "nme_mean": _f(a.mean()) if a.size else None,
        "nme_median": _f(np.median(a)) if a.size else None,
        "failures": fails,
        "failure_rate": _ratio(fails, int(a.size)),
    }


def evaluate(
    dataset_jsonl: str,
    root: Optional[str] = None,
    detect: Optional[Callable[[str], Any]] = None,
    predictions: Optional[Mapping[str, Any]] = None,
    progress: Optional[bool] = False,
    jobs: int = 1,
    eye_rule: bool = True,
) -> Dict[str, Any]:
    """Score a detector on one ground-truth JSONL dataset.

    dataset_jsonl: path of the GT file; root: folder its ``image`` paths are relative to
    (default: the JSONL's folder).  Give exactly one of ``detect`` (callable path ->
    result, see :func:`predict_dataset`) or ``predictions`` (image rel path -> prediction;
    every dataset image must be present).  progress: True draws a progress line on stderr,
    None draws it only if stderr is a TTY.  jobs: images detected concurrently.

    Metrics (all fractions, JSON-serialisable; None where undefined):
      detection.recall            matched non-ignore GT / non-ignore GT, all images;
      detection.precision, fp_per_image, ap
                                  only over images with ``complete: true`` (None if none;
                                  precision is also None if those images have no predictions);
      landmarks.nme_mean/median   over GT landmark faces that were matched;
      landmarks.failure_rate      NME > 0.10 among matched landmark faces;
      landmarks.missed            GT landmark faces not detected;
      landmarks.failure_rate_with_missed  (failures + missed) / GT landmark faces.
    Matching: :func:`match_detections` with :data:`IOU_THRESHOLDS` by ``box_type``.

    eye_rule: also score the GT faces that have landmarks with the alternative rule
    "detection box contains both GT eye centres" (:func:`match_by_eyes`), reported
    separately under ``eye_rule`` (faces, matched, missed, recall, nme_mean/median,
    failures, failure_rate; per face ``matched_eyes``/``nme_eyes``).  The default
    IoU-rule figures above are unaffected.  ``eye_rule`` is None when disabled.
    """
    t_start = time.perf_counter()
    if (detect is None) == (predictions is None):
        raise ValueError("give exactly one of detect= or predictions=")
    records = load_dataset(dataset_jsonl)
    if root is None:
        root = os.path.dirname(os.path.abspath(dataset_jsonl))
    detect_seconds = None
    if detect is not None:
        predictions, detect_seconds = predict_dataset(records, root, detect, progress, jobs)
    missing = [r["image"] for r in records if r["image"] not in predictions]
    if missing:
        raise KeyError(f"{len(missing)} dataset images have no predictions, e.g. {missing[:3]}")

    n_faces = n_ignore = n_matched = 0
    c_images = c_tp = c_fp = c_pos = 0
    ap_scores: List[np.ndarray] = []
    ap_tp: List[np.ndarray] = []
    nmes: List[float] = []
    lm_total = lm_missed = 0
    eye_total = eye_matched = 0
    eye_nmes: List[float] = []
    per_image = []

    for rec in records:
        pred = as_prediction(predictions[rec["image"]])
        faces = rec.get("faces") or []
        gt_boxes = np.array([f["box"] for f in faces], np.float64).reshape(-1, 4)
        types = [f.get("box_type", "annotated") for f in faces]
        try:
            thr = np.array([IOU_THRESHOLDS[t] for t in types], np.float64)
        except KeyError as e:
            raise ValueError(f"{rec['image']}: unknown box_type {e}") from None
        ign = np.array([bool(f.get("ignore", False)) for f in faces], bool)
        m = match_detections(pred["boxes"], pred["scores"], gt_boxes, thr, ign)
        if eye_rule:
            gt_lm = np.full((len(faces), 5, 2), np.nan)
            for g, f in enumerate(faces):
                if f.get("landmarks") is not None:
                    gt_lm[g] = np.asarray(f["landmarks"], np.float64).reshape(5, 2)
            me = match_by_eyes(pred["boxes"], pred["scores"], gt_boxes, gt_lm, ign)
        st = m["pred_status"]
        tp, fp, n_ign_pred = int((st == 1).sum()), int((st == 0).sum()), int((st == -1).sum())
        n_gt = int((~ign).sum())
        missed = n_gt - tp
        n_faces += n_gt
        n_ignore += int(ign.sum())
        n_matched += tp
        if rec.get("complete", False):
            c_images += 1
            c_tp += tp
            c_fp += fp
            c_pos += n_gt
            keep = st >= 0
            ap_scores.append(pred["scores"][keep])
            ap_tp.append(st[keep] == 1)

        face_recs = []
        for g, f in enumerate(faces):
            p = int(m["gt_pred"][g])
            fr: Dict[str, Any] = {"ignore": bool(ign[g]), "box_type": types[g],
                                  "matched": p >= 0, "iou": _f(m["gt_iou"][g]) if p >= 0 else None,
                                  "nme": None}
            if f.get("landmarks") is not None and not ign[g]:
                lm_total += 1
                if p >= 0:
                    nme = landmark_nme(pred["landmarks"][p], f["landmarks"])
                    fr["nme"] = _f(nme)
                    if math.isfinite(nme):
                        nmes.append(nme)
                else:
                    lm_missed += 1
                if eye_rule:
                    eye_total += 1
                    pe = int(me["gt_pred"][g])
                    fr["matched_eyes"], fr["nme_eyes"] = pe >= 0, None
                    if pe >= 0:
                        eye_matched += 1
                        nme = landmark_nme(pred["landmarks"][pe], f["landmarks"])
                        fr["nme_eyes"] = _f(nme)
                        if math.isfinite(nme):
                            eye_nmes.append(nme)
            face_recs.append(fr)
        per_image.append({
            "image": rec["image"], "complete": bool(rec.get("complete", False)),
            "n_gt": n_gt, "n_ignore_gt": int(ign.sum()), "n_pred": int(st.size),
            "tp": tp, "fp": fp, "ignored_pred": n_ign_pred, "missed": missed,
            "faces": face_recs,
        })

    nme_arr = np.asarray(nmes, np.float64)
    n_fail = int((nme_arr > NME_FAILURE_THRESHOLD).sum())
    lm_scored = int(nme_arr.size)  # matched landmark faces with a finite NME
    has_complete = c_images > 0
    report: Dict[str, Any] = {
        "dataset": os.path.basename(dataset_jsonl),
        "dataset_path": os.path.abspath(dataset_jsonl),
        "root": os.path.abspath(root),
        "counts": {
            "images": len(records),
            "complete_images": c_images,
            "faces": n_faces,
            "ignore_faces": n_ignore,
            "matched": n_matched,
            "missed": n_faces - n_matched,
            "predictions": int(sum(r["n_pred"] for r in per_image)),
        },
        "detection": {
            "recall": _ratio(n_matched, n_faces),
            "precision": _ratio(c_tp, c_tp + c_fp) if has_complete else None,
            "fp_per_image": _ratio(c_fp, c_images) if has_complete else None,
            "ap": (average_precision(np.concatenate(ap_scores), np.concatenate(ap_tp), c_pos)
                   if has_complete else None),
            "complete_tp": c_tp if has_complete else None,
            "complete_fp": c_fp if has_complete else None,
            "iou_thresholds": dict(IOU_THRESHOLDS),
        },
        "landmarks": {
            "faces": lm_total,
            "matched": lm_total - lm_missed,
            "scored": lm_scored,
            "missed": lm_missed,
            "nme_mean": _f(nme_arr.mean()) if lm_scored else None,
            "nme_median": _f(np.median(nme_arr)) if lm_scored else None,
            "failures": n_fail,
            "failure_threshold": NME_FAILURE_THRESHOLD,
            "failure_rate": _ratio(n_fail, lm_scored),
            "failure_rate_with_missed": _ratio(n_fail + lm_missed, lm_total),
            "normaliser": "inter-ocular (eye centres)",
        },
        "eye_rule": _eye_rule_summary(eye_total, eye_matched, eye_nmes) if eye_rule else None,
        "timing": {
            "wall_seconds": time.perf_counter() - t_start,
            "detect_seconds": detect_seconds,
            "detect_ms_per_image": (1000.0 * detect_seconds / len(records)
                                    if detect_seconds is not None and records else None),
        },
        "per_image": per_image,
    }
    return report


# --------------------------------------------------------------------------- parity


def compare(ours: Mapping[str, Any], reference: Mapping[str, Any], iou: float = 0.7) -> Dict[str, Any]:
    """Parity between two detectors' predictions (e.g. ours vs facenet-pytorch).

    ours, reference: image -> prediction (see module doc); images missing on one side
    count as no detections there.  Per image, reference faces in descending score each
    take the unmatched face of ``ours`` with the highest IoU if IoU >= ``iou``.

    Returns (fractions, pixels):
      matched_fraction   matched / reference faces;
      extra_fraction     unmatched faces of ours / reference faces;
      landmark_px_median / _max   per matched pair mean over the 5 points of the point
                         distance (px), then median / max over pairs;
      iou_median / iou_min, score_diff_median (|score_ours - score_ref|);
      worst_images       top 10 images by (unmatched ref + unmatched ours) desc, then
                         worst IoU asc.
    """
    images = list(reference.keys()) + [k for k in ours.keys() if k not in reference]
    empty = {"boxes": None, "scores": None, "landmarks": None}
    n_ref = n_ours = n_match = 0
    ious: List[float] = []
    lm_px: List[float] = []
    sdiff: List[float] = []
    per_image = []
    for img in images:
        r = as_prediction(reference.get(img, empty))
        o = as_prediction(ours.get(img, empty))
        nr, no = r["scores"].size, o["scores"].size
        # the reference drives the greedy order, so it plays the "prediction" role:
        m = match_detections(r["boxes"], r["scores"], o["boxes"], np.full(no, float(iou)))
        ref_to_ours = m["pred_gt"]  # (nr,) index into ours or -1
        img_ious, img_lm = [], []
        for i in range(nr):
            j = int(ref_to_ours[i])
            if j < 0:
                continue
            v = float(m["gt_iou"][j])
            img_ious.append(v)
            d = np.hypot(*(o["landmarks"][j] - r["landmarks"][i]).T).mean()
            if math.isfinite(d):
                img_lm.append(float(d))
            sdiff.append(abs(float(o["scores"][j]) - float(r["scores"][i])))
        k = len(img_ious)
        n_ref += nr
        n_ours += no
        n_match += k
        ious += img_ious
        lm_px += img_lm
        per_image.append({
            "image": img, "n_ref": nr, "n_ours": no, "matched": k,
            "unmatched_ref": nr - k, "unmatched_ours": no - k,
            "worst_iou": min(img_ious) if img_ious else None,
            "max_landmark_px": max(img_lm) if img_lm else None,
        })
    ranked = sorted(
        (p for p in per_image if p["unmatched_ref"] + p["unmatched_ours"] > 0
         or (p["worst_iou"] is not None and p["worst_iou"] < 1.0)),
        key=lambda p: (-(p["unmatched_ref"] + p["unmatched_ours"]),
                       p["worst_iou"] if p["worst_iou"] is not None else 0.0))
    a_iou, a_lm, a_sd = (np.asarray(x, np.float64) for x in (ious, lm_px, sdiff))
    return {
        "iou_threshold": float(iou),
        "images": len(images),
        "reference_faces": n_ref,
        "our_faces": n_ours,
        "matched": n_match,
        "unmatched_reference": n_ref - n_match,
        "extra": n_ours - n_match,
        "matched_fraction": _ratio(n_match, n_ref),
        "extra_fraction": _ratio(n_ours - n_match, n_ref),
        "landmark_px_median": _f(np.median(a_lm)) if a_lm.size else None,
        "landmark_px_max": _f(a_lm.max()) if a_lm.size else None,
        "iou_median": _f(np.median(a_iou)) if a_iou.size else None,
        "iou_min": _f(a_iou.min()) if a_iou.size else None,
        "score_diff_median": _f(np.median(a_sd)) if a_sd.size else None,
        "worst_images": ranked[:10],
    }


# --------------------------------------------------------------------------- Markdown


def _pct(x: Optional[float], nd: int = 2) -> str:
    return "n/a" if x is None else f"{100.0 * x:.{nd}f} %"


def _num(x: Optional[float], nd: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{nd}f}"


def markdown_summary(report: Mapping[str, Any]) -> str:
    """Markdown table (one row per metric) of an :func:`evaluate` report."""
    c, d, l, t = report["counts"], report["detection"], report["landmarks"], report["timing"]
    rows = [
        ("images (complete)", f"{c['images']} ({c['complete_images']})"),
        ("GT faces (ignore)", f"{c['faces']} ({c['ignore_faces']})"),
        ("predictions", str(c["predictions"])),
        ("matched / missed", f"{c['matched']} / {c['missed']}"),
        ("recall", _pct(d["recall"])),
        ("precision (complete images)", _pct(d["precision"])),
        ("false positives / image (complete)", _num(d["fp_per_image"])),
        ("AP (VOC all-points, complete)", _pct(d["ap"])),
        ("landmark faces (matched / missed)", f"{l['faces']} ({l['matched']} / {l['missed']})"),
        ("NME mean (inter-ocular)", _pct(l["nme_mean"])),
        ("NME median", _pct(l["nme_median"])),
        (f"failure rate (NME > {100 * l['failure_threshold']:.0f} %, matched)", _pct(l["failure_rate"])),
        ("failure rate counting misses", _pct(l["failure_rate_with_missed"])),
    ]
    e = report.get("eye_rule")
    if e and e["faces"]:
        rows += [
            ("recall, eye-centre rule (landmark faces)", f"{_pct(e['recall'])} ({e['matched']} / {e['faces']})"),
            ("NME mean / median, eye-centre rule", f"{_pct(e['nme_mean'])} / {_pct(e['nme_median'])}"),
        ]
    if t.get("detect_ms_per_image") is not None:
        rows.append(("detect time / image", f"{t['detect_ms_per_image']:.1f} ms"))
    rows.append(("wall time", f"{t['wall_seconds']:.2f} s"))
    th = d.get("iou_thresholds", IOU_THRESHOLDS)
    lines = [f"**{report.get('dataset', 'dataset')}** (match IoU >= "
             + ", ".join(f"{v:g} {k}" for k, v in th.items()) + ")", "",
             "| metric | value |", "| --- | ---: |"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines) + "\n"


def markdown_compare(comparison: Mapping[str, Any]) -> str:
    """Markdown table of a :func:`compare` result, plus the worst images."""
    c = comparison
    rows = [
        ("images", str(c["images"])),
        ("reference faces / ours", f"{c['reference_faces']} / {c['our_faces']}"),
        (f"reference faces matched (IoU >= {c['iou_threshold']:g})",
         f"{_pct(c['matched_fraction'])} ({c['matched']})"),
        ("extra faces (ours unmatched, / reference)", f"{_pct(c['extra_fraction'])} ({c['extra']})"),
        ("IoU median / min", f"{_num(c['iou_median'])} / {_num(c['iou_min'])}"),
        ("landmark distance median / max (px)",
         f"{_num(c['landmark_px_median'], 2)} / {_num(c['landmark_px_max'], 2)}"),
        ("median abs score difference", _num(c["score_diff_median"], 4)),
    ]
    lines = ["| parity metric | value |", "| --- | ---: |"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    if c["worst_images"]:
        lines += ["", "| image | ref | ours | unmatched ref | unmatched ours | worst IoU |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for p in c["worst_images"]:
            lines.append(f"| {p['image']} | {p['n_ref']} | {p['n_ours']} | {p['unmatched_ref']} "
                         f"| {p['unmatched_ours']} | {_num(p['worst_iou'])} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- CLI


def _default_detector_factory(**kwargs):
    from fastmtcnn import Detector  # imported lazily: keeps this module detector-free

    return Detector(**kwargs)


def _json_default(o: Any):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def main(argv: Optional[Sequence[str]] = None,
         detector_factory: Optional[Callable[..., Any]] = None) -> int:
    """CLI: ``eval DATA.jsonl [--root DIR] [--min-face-size N] [--out report.json]
    [--compare golden.jsonl] [--threads N] [--jobs N] [--progress]``.

    detector_factory(min_face_size=N[, num_threads=T]) -> object with ``.detect(path)``
    returning ``.boxes``, ``.scores``, ``.landmarks`` (default: ``fastmtcnn.Detector``,
    imported only here).  --threads is passed on as the detector's ``num_threads``
    (OpenCV/Numba threads); --jobs N > 1 detects N images concurrently with the one
    (thread-safe) detector.  Prints the Markdown summary (and the parity table with
    --compare) to stdout, writes the full JSON report to --out.  Returns 0.
    """
    ap = argparse.ArgumentParser(prog="fastmtcnn eval",
                                 description="Score the detector on a ground-truth JSONL set.")
    ap.add_argument("data", metavar="DATA.jsonl")
    ap.add_argument("--root", default=None,
                    help="folder the image paths are relative to (default: the JSONL's folder)")
    ap.add_argument("--min-face-size", type=int, default=20)
    ap.add_argument("--out", default=None, help="write the full JSON report here")
    ap.add_argument("--compare", default=None, metavar="GOLDEN.jsonl",
                    help="also compare with reference detections at the same min face size")
    ap.add_argument("--compare-iou", type=float, default=0.7,
                    help="IoU for a face to count as the same in --compare (default 0.7)")
    ap.add_argument("--threads", type=int, default=None,
                    help="detector threads (OpenCV/Numba, process-wide); default: leave as is")
    ap.add_argument("--jobs", type=int, default=1,
                    help="images detected concurrently (default 1; timings are per call)")
    ap.add_argument("--weights", default=None, metavar="DIR",
                    help="folder with det1/det2/det3 .prototxt + .caffemodel (default: the shipped weights)")
    ap.add_argument("--progress", action="store_true", default=None,
                    help="always draw the progress line (default: only on a terminal)")
    args = ap.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        ap.error("--threads must be >= 1")
    if args.jobs < 1:
        ap.error("--jobs must be >= 1")
    factory = detector_factory or _default_detector_factory
    kwargs: Dict[str, Any] = {"min_face_size": args.min_face_size}
    if args.threads is not None:
        kwargs["num_threads"] = args.threads
    if args.weights is not None:
        kwargs["weights"] = args.weights

    t0 = time.perf_counter()
    det = factory(**kwargs)
    t_build = time.perf_counter() - t0
    root = args.root or os.path.dirname(os.path.abspath(args.data))
    records = load_dataset(args.data)
    preds, det_s = predict_dataset(records, root, det.detect, progress=args.progress,
                                   jobs=args.jobs)
    report = evaluate(args.data, root=root, predictions=preds)
    report["min_face_size"] = args.min_face_size
    report["threads"] = args.threads
    report["jobs"] = args.jobs
    report["weights"] = args.weights or "shipped"
    report["timing"]["detector_build_seconds"] = t_build
    report["timing"]["detect_seconds"] = det_s
    report["timing"]["detect_ms_per_image"] = 1000.0 * det_s / len(records) if records else None
    report["timing"]["wall_seconds"] = time.perf_counter() - t0
    sys.stdout.write(markdown_summary(report))
    if args.compare:
        ref = load_golden(args.compare, args.min_face_size)
        comp = compare(preds, ref, iou=args.compare_iou)
        comp["reference"] = os.path.abspath(args.compare)
        report["compare"] = comp
        sys.stdout.write("\n" + markdown_compare(comp))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1, default=_json_default)
            f.write("\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
