"""fastmtcnn.evaluation reports exactly what fastmtcnn.evaluate reported before the split (commit 035ec20).

The expected outputs in tests/fixtures/eval/*.report.json and shared_golden.summary.json were written by the
old module on the same inputs (see make_synthetic.py); timings and absolute paths are left out.
"""
import contextlib
import io
import json
from pathlib import Path

import pytest

from fastmtcnn import evaluation

from conftest import REPO_ROOT, SHARED
from test_evaluation import run_eval_command

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "eval"
FIXED_TIMING = {"wall_seconds": 1.0, "detect_seconds": None, "detect_ms_per_image": None}
SHARED_SETS = ["bench", "detection_dlib_faces", "landmarks_300w_helen_train_subset", "landmarks_sun_cvpr13"]


def pinned(report):
    """The report as JSON would carry it, without timings, absolute paths and the engine (which depends on the
    installed extras; the old module did not record it)."""
    report = json.loads(json.dumps(report))
    for key in ("timing", "dataset_path", "root"):
        report.pop(key)
    report.pop("engine", None)
    return report


def assert_same(new, old):
    assert new == old
    assert json.dumps(new) == json.dumps(old)  # same key order too


@pytest.mark.parametrize("fixture,detections", [("synthetic", "synthetic.detections"), ("tiny", "tiny.facenet")])
def test_reports_equal_the_old_module(fixture, detections):
    expected = json.loads((FIXTURES / f"{fixture}.report.json").read_text())
    data = str(FIXTURES / f"{fixture}.jsonl")
    runs = {size: evaluation.load_golden(str(FIXTURES / f"{detections}.jsonl"), size) for size in (20, 40)}
    cases = {"evaluate_20": dict(predictions=runs[20]), "evaluate_40": dict(predictions=runs[40]),
             "evaluate_20_without_eye_rule": dict(predictions=runs[20], eye_rule=False)}
    for name, arguments in cases.items():
        report = evaluation.evaluate(data, **arguments)
        report["timing"] = dict(FIXED_TIMING)
        assert_same(pinned(report), expected[name])
        assert evaluation.markdown_summary(report) == expected["markdown_" + name]
    comparison = evaluation.compare(runs[20], runs[40])
    assert_same(json.loads(json.dumps(comparison)), expected["compare_20_40"])
    assert evaluation.markdown_compare(comparison) == expected["markdown_compare_20_40"]


def test_command_output_equals_the_old_module(tmp_path):
    expected = json.loads((FIXTURES / "synthetic.report.json").read_text())
    run_20 = evaluation.load_golden(str(FIXTURES / "synthetic.detections.jsonl"), 20)

    class AnswersRun20:
        def __init__(self, **settings):
            pass

        def detect(self, path):
            return run_20[Path(path).relative_to(FIXTURES).as_posix()]

    out = tmp_path / "report.json"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert run_eval_command([str(FIXTURES / "synthetic.jsonl"), "--min-face-size", "40", "--jobs", "2",
                                 "--compare", str(FIXTURES / "synthetic.detections.jsonl"), "--out", str(out)],
                                AnswersRun20) == 0
    report = json.loads(out.read_text())
    assert list(report["timing"]) == ["wall_seconds", "detect_seconds", "detect_ms_per_image", "detector_build_seconds"]
    report = pinned(report)
    assert report["compare"].pop("reference") == str(FIXTURES / "synthetic.detections.jsonl")
    assert_same(report, expected["cli_min_face_40"])
    lines = [line for line in stdout.getvalue().splitlines() if not line.startswith(("| wall time", "| detect time"))]
    assert "\n".join(lines) + "\n" == expected["cli_min_face_40_stdout"]


@pytest.mark.parametrize("name", SHARED_SETS)
def test_shared_sets_scored_as_before(name):
    data, golden = SHARED / "data" / f"{name}.jsonl", SHARED / "golden" / f"{name}.facenet.jsonl"
    if not (data.exists() and golden.exists()):
        pytest.skip(f"../shared not found: {SHARED} (needs data/{name}.jsonl and golden/{name}.facenet.jsonl)")
    expected = json.loads((FIXTURES / "shared_golden.summary.json").read_text())
    runs = {size: evaluation.load_golden(str(golden), size) for size in (20, 40)}
    for size in (20, 40):
        report = pinned(evaluation.evaluate(str(data), predictions=runs[size]))
        report.pop("per_image")
        assert_same(report, expected[f"{name}/evaluate_{size}"])
    assert_same(json.loads(json.dumps(evaluation.compare(runs[20], runs[40]))), expected[f"{name}/compare_20_40"])
