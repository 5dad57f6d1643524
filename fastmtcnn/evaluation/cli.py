"""`fastmtcnn eval DATA.jsonl`: score the detector on an annotated set, optionally against a reference run.

Prints the Markdown summary (and the parity table with --compare) to stdout and writes the full JSON
report with --out.  Bad input files raise `fastmtcnn.errors.DatasetError` and bad settings `SettingsError`
(both ValueErrors, found before any detection runs), which the `fastmtcnn` entry point prints as one line
with exit code 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from ..commands import Subcommands, add_command, add_detector_options, engine_from_args, settings_from_args
from ..errors import DatasetError
from .data import Predictions, load_dataset, load_golden
from .markdown import markdown_compare, markdown_summary
from .parity import compare
from .predict import predict_dataset
from .report import build_report, score_dataset

#: detector_factory(settings=CascadeSettings, num_threads=T or None, backend=B, precision=P) -> object whose
#: ``.detect(path)`` returns faces.
DetectorFactory = Callable[..., Any]


def add_eval_command(commands: Subcommands,
                     detector_factory: Optional[DetectorFactory] = None) -> argparse.ArgumentParser:
    """Register `fastmtcnn eval` on `commands` (what ``ArgumentParser.add_subparsers()`` returns).

    detector_factory: builds the detector (default: ``fastmtcnn.Detector``, imported only when the command runs).
    """
    parser = add_command(commands, "eval", "accuracy on an annotated JSONL set",
                         "Score the detector on a ground-truth JSONL set (recall, precision, AP, 5-point NME, "
                         "failure rate), optionally against a reference run of another detector.")
    parser.add_argument("data", metavar="DATA.jsonl", help="annotated set, one JSON object per image")
    parser.add_argument("--root", default=None, metavar="DIR",
                        help="folder the image paths are relative to (default: the JSONL's folder)")
    add_detector_options(parser)
    parser.add_argument("--out", default=None, metavar="REPORT.json", help="write the full JSON report here")
    parser.add_argument("--compare", default=None, metavar="GOLDEN.jsonl",
                        help="also compare with reference detections at the same min face size")
    parser.add_argument("--compare-iou", type=float, default=0.7, metavar="IOU",
                        help="IoU for a face to count as the same in --compare")
    parser.add_argument("--jobs", type=_at_least_one, default=1, metavar="N",
                        help="images detected concurrently (timings are per call)")
    parser.add_argument("--progress", action="store_true", default=None,
                        help="always draw the progress line (default: only on a terminal)")
    parser.set_defaults(run=lambda args: eval_command(args, detector_factory))
    return parser


def _at_least_one(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _default_detector_factory(**arguments: Any) -> Any:
    from ..detector import Detector  # imported here: the command's other code needs only numpy

    return Detector(**arguments)


def _plain_number(value: float) -> Union[int, float]:
    """20.0 -> 20 (the report's min_face_size reads as given), 20.5 stays."""
    return int(value) if float(value).is_integer() else value


def eval_command(args: argparse.Namespace, detector_factory: Optional[DetectorFactory] = None) -> int:
    """Run `fastmtcnn eval` with parsed arguments; returns the exit code (0)."""
    started = time.perf_counter()
    settings = settings_from_args(args)  # settings and files are checked before the detector is built
    records, root, reference = _load_inputs(args)
    build_started = time.perf_counter()
    weights = {} if args.weights is None else {"weights": args.weights}
    detector = (detector_factory or _default_detector_factory)(settings=settings, num_threads=args.threads,
                                                               **engine_from_args(args), **weights)
    build_seconds = time.perf_counter() - build_started
    predictions, detect_seconds = predict_dataset(records, root, detector.detect, progress=args.progress,
                                                  jobs=args.jobs)
    report = build_report(args.data, root, score_dataset(records, predictions), eye_rule=True, timing={
        "wall_seconds": None,
        "detect_seconds": detect_seconds,
        "detect_ms_per_image": 1000.0 * detect_seconds / len(records) if records else None,
        "detector_build_seconds": build_seconds,
    })
    report.update(min_face_size=_plain_number(args.min_face_size), threads=args.threads, jobs=args.jobs,
                  engine={"backend": getattr(detector, "backend", args.backend),
                          "precision": getattr(detector, "precision", args.precision)})
    if args.weights is not None:
        report["weights"] = args.weights
    report["timing"]["wall_seconds"] = time.perf_counter() - started
    sys.stdout.write(markdown_summary(report))
    if reference is not None:
        report["compare"] = compare(predictions, reference, iou=args.compare_iou)
        report["compare"]["reference"] = os.path.abspath(args.compare)
        sys.stdout.write("\n" + markdown_compare(report["compare"]))
    if args.out:
        _write_json(report, args.out)
    return 0


def _load_inputs(args: argparse.Namespace) -> Tuple[List[dict], str, Optional[Predictions]]:
    """(GT records, image root, reference predictions or None), each checked; ValueErrors name the option."""
    records = load_dataset(args.data)
    root = args.root or os.path.dirname(os.path.abspath(args.data))
    if not os.path.isdir(root):
        raise DatasetError(f"--root {root}: no such folder (pass the folder the image paths are relative to)")
    reference = load_golden(args.compare, args.min_face_size) if args.compare else None
    if args.out and not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
        raise ValueError(f"--out {args.out}: its folder does not exist (create it or pass another path)")
    return records, root, reference


def _write_json(report: Dict[str, Any], path: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(report, out, indent=1, default=_json_value)
            out.write("\n")
    except OSError as error:
        raise ValueError(f"--out {path}: cannot write the report ({error.strerror})") from None


def _json_value(value: Any) -> Any:
    """json.dump's fallback for numpy scalars and arrays."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
