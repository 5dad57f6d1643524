"""Accuracy evaluation of face detectors, and parity between two of them (numpy + stdlib only).

Works on plain *predictions* (image -> ``{"boxes" (N, 4), "scores" (N,), "landmarks" (N, 5, 2)}`` px), so it
scores any detector; the detector is imported only by the ``fastmtcnn eval`` command.

    data       annotated JSONL sets and reference runs in, detector results normalised
    matching   greedy one-to-one matching on one image (IoU rule, eye-centre rule)
    scoring    one image scored against its ground truth
    metrics    AP, NME, and their aggregation over a set
    report     ``evaluate()``: a set's report dict
    parity     ``compare()``: two detectors' predictions side by side
    markdown   tables of a report and of a comparison
    predict    a detector run over a set
    cli        the ``fastmtcnn eval`` subcommand
"""
from .data import DatasetError, DatasetFileNotFound, as_prediction, load_dataset, load_golden
from .markdown import markdown_compare, markdown_summary
from .matching import IOU_THRESHOLDS, Matching, eyes_inside, iou_matrix, match_by_eyes, match_detections
from .metrics import NME_FAILURE_THRESHOLD, average_precision, landmark_nme, landmark_nmes
from .parity import compare
from .predict import predict_dataset
from .report import evaluate

__all__ = [
    "IOU_THRESHOLDS", "NME_FAILURE_THRESHOLD", "DatasetError", "DatasetFileNotFound", "Matching",
    "iou_matrix", "match_detections", "eyes_inside", "match_by_eyes", "average_precision", "landmark_nme",
    "landmark_nmes", "as_prediction", "load_dataset", "load_golden", "predict_dataset", "evaluate", "compare",
    "markdown_summary", "markdown_compare",
]
