"""Tables for docs/training.md: `fastmtcnn eval --out` reports of several weight sets, side by side.

    python -m bench.accuracy.training_table shipped=/work/runs/eval/shipped finetune=/work/runs/eval/finetune

Each NAME=PREFIX reads PREFIX_<set>_<min face>.json for the shared sets at min face 40 and 20 (missing
files are left out) and prints one Markdown row per set and min face: recall and mean/median NME and
failure rate per weight set (precision, false positives per image and AP for the complete sets).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

SETS = ("landmarks_sun_cvpr13", "landmarks_300w_helen_train_subset", "detection_dlib_faces", "bench")
SIZES = (40, 20)


def pct(value) -> str:
    return "" if value is None else f"{100 * value:.2f}"


def cells(report: dict) -> list:
    detection, points = report["detection"], report.get("landmarks") or {}
    return [pct(detection["recall"]), pct(points.get("nme_mean")), pct(points.get("nme_median")),
            pct(points.get("failure_rate")), pct(detection.get("precision")), per_image(detection.get("fp_per_image")),
            pct(detection.get("ap"))]


def per_image(value) -> str:
    return "" if value is None else f"{value:.2f}"


def table(runs: dict) -> str:
    names = list(runs)
    header = ["set", "min face"] + [f"{metric} ({name})" for metric in
                                    ("recall", "NME mean", "NME median", "failures", "precision", "FP/image", "AP")
                                    for name in names]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for size in SIZES:
        for name in SETS:
            reports = {run: Path(f"{prefix}_{name}_{size}.json") for run, prefix in runs.items()}
            if not all(path.exists() for path in reports.values()):
                continue
            values = [cells(json.loads(path.read_text())) for path in reports.values()]
            row = [name, str(size)] + [values[k][m] for m in range(7) for k in range(len(names))]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(table(dict(arg.split("=", 1) for arg in sys.argv[1:])))
