"""Paired per-face comparison of two `fastmtcnn eval --out` reports of the same set (e.g. shipped and
fine-tuned weights): beside the means, how many faces improved and the mean NME difference with a
bootstrap confidence interval over the faces, which says whether a small set's change is more than chance.

    python -m bench.accuracy.paired_nme BASE.json NEW.json [NAME]

Faces are paired by (image, face index) where both reports have a finite NME (matched in both).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Dict, Tuple

import numpy as np


def face_nmes(report: dict) -> Dict[Tuple[str, int], float]:
    """{(image, face index): NME} of the matched landmark faces of one report."""
    return {(image["image"], index): face["nme"] for image in report["per_image"]
            for index, face in enumerate(image["faces"]) if face.get("nme") is not None}


def paired(base: dict, new: dict, resamples: int = 10000, seed: int = 0) -> dict:
    """faces (paired), improved / worse (count), mean difference new - base and its 95% bootstrap CI
    (fractions of the inter-ocular distance, negative = new is better)."""
    before, after = face_nmes(base), face_nmes(new)
    keys = sorted(set(before) & set(after))
    if not keys:
        raise ValueError("the two reports have no matched landmark face in common: are they of the same set?")
    difference = np.array([after[key] - before[key] for key in keys])
    draws = np.random.default_rng(seed).integers(0, len(keys), (resamples, len(keys)))
    means = difference[draws].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"faces": len(keys), "improved": int((difference < 0).sum()), "worse": int((difference > 0).sum()),
            "mean_difference": float(difference.mean()), "ci95": [float(low), float(high)]}


def row(name: str, result: dict) -> str:
    """A Markdown row: name, faces, improved, worse, mean difference and CI in NME points (%)."""
    low, high = (100 * value for value in result["ci95"])
    return (f"| {name} | {result['faces']} | {result['improved']} | {result['worse']} | "
            f"{100 * result['mean_difference']:+.3f} | [{low:+.3f}, {high:+.3f}] |")


if __name__ == "__main__":
    base_path, new_path = sys.argv[1:3]
    name = sys.argv[3] if len(sys.argv) > 3 else Path(new_path).stem
    result = paired(json.loads(Path(base_path).read_text()), json.loads(Path(new_path).read_text()))
    print(row(name, result))
