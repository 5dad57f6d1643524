"""Markdown tables of an evaluation report and of a parity comparison."""
from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence, Tuple

from .matching import IOU_THRESHOLDS

Row = Tuple[str, str]


def _percent(fraction: Optional[float], decimals: int = 2) -> str:
    return "n/a" if fraction is None else f"{100.0 * fraction:.{decimals}f} %"


def _number(value: Optional[float], decimals: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{decimals}f}"


def _table(header: str, rows: Sequence[Row]) -> List[str]:
    """A two-column Markdown table (label left, value right-aligned)."""
    return [f"| {header} | value |", "| --- | ---: |"] + [f"| {label} | {value} |" for label, value in rows]


def markdown_summary(report: Mapping[str, Any]) -> str:
    """Markdown table (one row per metric) of an :func:`.report.evaluate` report."""
    thresholds = report["detection"].get("iou_thresholds", IOU_THRESHOLDS)
    title = (f"**{report.get('dataset', 'dataset')}** (match IoU >= "
             + ", ".join(f"{value:g} {name}" for name, value in thresholds.items()) + ")")
    rows = _count_rows(report["counts"]) + _detection_rows(report["detection"]) + _landmark_rows(report["landmarks"])
    rows += _eye_rule_rows(report.get("eye_rule")) + _timing_rows(report["timing"])
    return "\n".join([title, ""] + _table("metric", rows)) + "\n"


def _count_rows(counts: Mapping[str, Any]) -> List[Row]:
    return [("images (complete)", f"{counts['images']} ({counts['complete_images']})"),
            ("GT faces (ignore)", f"{counts['faces']} ({counts['ignore_faces']})"),
            ("predictions", str(counts["predictions"])),
            ("matched / missed", f"{counts['matched']} / {counts['missed']}")]


def _detection_rows(detection: Mapping[str, Any]) -> List[Row]:
    return [("recall", _percent(detection["recall"])),
            ("precision (complete images)", _percent(detection["precision"])),
            ("false positives / image (complete)", _number(detection["fp_per_image"])),
            ("AP (VOC all-points, complete)", _percent(detection["ap"]))]


def _landmark_rows(landmarks: Mapping[str, Any]) -> List[Row]:
    failure_label = f"failure rate (NME > {100 * landmarks['failure_threshold']:.0f} %, matched)"
    return [("landmark faces (matched / missed)",
             f"{landmarks['faces']} ({landmarks['matched']} / {landmarks['missed']})"),
            ("NME mean (inter-ocular)", _percent(landmarks["nme_mean"])),
            ("NME median", _percent(landmarks["nme_median"])),
            (failure_label, _percent(landmarks["failure_rate"])),
            ("failure rate counting misses", _percent(landmarks["failure_rate_with_missed"]))]


def _eye_rule_rows(eye_rule: Optional[Mapping[str, Any]]) -> List[Row]:
    if not eye_rule or not eye_rule["faces"]:
        return []
    return [("recall, eye-centre rule (landmark faces)",
             f"{_percent(eye_rule['recall'])} ({eye_rule['matched']} / {eye_rule['faces']})"),
            ("NME mean / median, eye-centre rule",
             f"{_percent(eye_rule['nme_mean'])} / {_percent(eye_rule['nme_median'])}")]


def _timing_rows(timing: Mapping[str, Any]) -> List[Row]:
    rows = []
    if timing.get("detect_ms_per_image") is not None:
        rows.append(("detect time / image", f"{timing['detect_ms_per_image']:.1f} ms"))
    rows.append(("wall time", f"{timing['wall_seconds']:.2f} s"))
    return rows


def markdown_compare(comparison: Mapping[str, Any]) -> str:
    """Markdown table of a :func:`.parity.compare` result, plus the worst images."""
    rows = [
        ("images", str(comparison["images"])),
        ("reference faces / ours", f"{comparison['reference_faces']} / {comparison['our_faces']}"),
        (f"reference faces matched (IoU >= {comparison['iou_threshold']:g})",
         f"{_percent(comparison['matched_fraction'])} ({comparison['matched']})"),
        ("extra faces (ours unmatched, / reference)",
         f"{_percent(comparison['extra_fraction'])} ({comparison['extra']})"),
        ("IoU median / min", f"{_number(comparison['iou_median'])} / {_number(comparison['iou_min'])}"),
        ("landmark distance median / max (px)",
         f"{_number(comparison['landmark_px_median'], 2)} / {_number(comparison['landmark_px_max'], 2)}"),
        ("median abs score difference", _number(comparison["score_diff_median"], 4)),
    ]
    lines = _table("parity metric", rows)
    if comparison["worst_images"]:
        lines += ["", "| image | ref | ours | unmatched ref | unmatched ours | worst IoU |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        lines += [f"| {row['image']} | {row['n_ref']} | {row['n_ours']} | {row['unmatched_ref']} "
                  f"| {row['unmatched_ours']} | {_number(row['worst_iou'])} |" for row in comparison["worst_images"]]
    return "\n".join(lines) + "\n"
