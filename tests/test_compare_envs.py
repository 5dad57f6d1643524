"""bench/envs/compare_envs.py (cross-environment comparison) and its child bench/envs/time_detect.py.

The aggregation is checked on synthetic records; the child is run once for real, in this interpreter, on the
shipped fixture (one timed call), so the JSON contract between the two is exercised without ../shared.
"""
import json
import os
import subprocess
import sys

import pytest

from conftest import FIXTURES, REPO_ROOT

from bench.envs import compare_envs
from bench.envs.time_detect import parse_case


def record(label, threads, impl, vga_ms, faces=3, engine="opencv f32"):
    return {"label": label, "threads": threads, "impl": impl, "versions": {"opencv": label}, "engine": engine,
            "cases": {"vga-20": {"fastest_ms": vga_ms, "median_ms": vga_ms * 1.1, "faces": faces}}}


def test_summary_takes_the_fastest_or_the_median_over_rounds_and_ratios_against_facenet_at_the_same_threads():
    records = [record("cv5", 1, "fastmtcnn", ms) for ms in (150.0, 140.0, 500.0)]
    records += [record("cv4", 1, "fastmtcnn", ms) for ms in (120.0, 118.0, 119.0)]
    records += [record("facenet-pytorch", 1, "facenet-pytorch", ms) for ms in (280.0, 300.0, 290.0)]
    records += [record("cv5", 2, "fastmtcnn", 80.0)]
    fastest = compare_envs.summarize(records)  # the default, as bench.gate: a slow round only adds time
    assert fastest[("cv5", 1)]["cases"]["vga-20"]["ms"] == 140.0
    assert fastest[("cv4", 1)]["cases"]["vga-20"]["x_facenet"] == pytest.approx(280.0 / 118.0)
    summary = compare_envs.summarize(records, statistic="median")
    assert summary[("cv5", 1)]["cases"]["vga-20"]["ms"] == 150.0  # an outlier round does not move the median
    assert summary[("cv5", 1)]["rounds"] == 3
    assert summary[("cv4", 1)]["cases"]["vga-20"]["x_facenet"] == pytest.approx(290.0 / 119.0)
    assert "x_facenet" not in summary[("cv5", 2)]["cases"]["vga-20"]  # no facenet run with 2 threads
    text = compare_envs.markdown(summary, "cmd", "0.1 / 0.2", [], 9, statistic="median")
    assert "then the median over rounds" in text


def test_report_has_one_row_per_environment_and_thread_count(monkeypatch):
    monkeypatch.setattr(compare_envs, "CASES", (("vga-20", "vga", 20),))
    records = [record("cv5", 1, "fastmtcnn", 140.0), record("facenet-pytorch", 1, "facenet-pytorch", 280.0)]
    text = compare_envs.markdown(compare_envs.summarize(records), "cmd", "0.1 / 0.2", [], 9)
    rows = [line for line in text.splitlines() if line.startswith("| cv5") or line.startswith("| facenet")]
    assert len(rows) == 2
    assert "140.0 ms (7.1 fps), 2.00x facenet" in rows[0]


def test_versus_gives_each_row_its_speed_up_over_the_named_environment(monkeypatch):
    monkeypatch.setattr(compare_envs, "CASES", (("vga-20", "vga", 20),))
    records = [record("cv4", 1, "fastmtcnn", 120.0), record("ov", 1, "fastmtcnn", 60.0, engine="openvino f32"),
               record("facenet-pytorch", 1, "facenet-pytorch", 240.0)]
    summary = compare_envs.summarize(records, versus="cv4")
    assert summary[("ov", 1)]["cases"]["vga-20"]["x_versus"] == pytest.approx(2.0)
    text = compare_envs.markdown(summary, "cmd", "0.1 / 0.2", [], 9, versus="cv4")
    ov_row = next(line for line in text.splitlines() if line.startswith("| ov"))
    assert "| openvino f32 |" in ov_row and "4.00x facenet, 2.00x cv4" in ov_row
    cv4_row = next(line for line in text.splitlines() if line.startswith("| cv4"))
    assert "x cv4" not in cv4_row  # not against itself
    assert "CPU flags:" in text


def test_env_syntax_with_engine_options():
    assert compare_envs.parse_env("ov=/v/bin/python,backend=openvino,precision=bf16") == (
        "ov", "/v/bin/python", ["--backend", "openvino", "--precision", "bf16"])
    assert compare_envs.parse_env("cv=/v/bin/python") == ("cv", "/v/bin/python", [])
    with pytest.raises(Exception, match="unknown option"):
        compare_envs.parse_env("cv=/v/bin/python,threads=2")


def test_case_syntax():
    assert parse_case("1080p-40=/x/a.jpg@1440x1080:40") == {"name": "1080p-40", "path": "/x/a.jpg",
                                                            "size": (1440, 1080), "min_face": 40.0}
    assert parse_case("v=C:/photos/a b.jpg:20")["path"] == "C:/photos/a b.jpg"
    with pytest.raises(Exception, match="NAME=PATH"):
        parse_case("no-min-face=/x/a.jpg")


CHILD = [sys.executable, str(REPO_ROOT / "bench" / "envs" / "time_detect.py")]


def run_child(arguments):
    """The child as compare_envs runs it: fastmtcnn from this source tree on PYTHONPATH."""
    return subprocess.run(CHILD + arguments, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


def test_child_times_fastmtcnn_and_prints_one_json_record():
    image = FIXTURES / "group_640x480.jpg"
    result = run_child(["--repeat", "1", "--case", f"fixture={image}:40"])
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert output["impl"] == "fastmtcnn" and output["threads"] == 1
    assert "opencv" in output["versions"]
    case = output["cases"]["fixture"]
    assert case["faces"] >= 1 and case["fastest_ms"] > 0
    assert output["engine"] == "opencv f32"


def test_child_times_a_listed_set_of_images(tmp_path):
    """A .txt case is a set: faces add up over its images, times are medians over them."""
    image = FIXTURES / "group_640x480.jpg"
    listing = tmp_path / "set.txt"
    listing.write_text(f"{image}\n{image}\n")
    arguments = ["--repeat", "1", "--backend", "opencv", "--case", f"one={image}:40", "--case", f"two={listing}@320x240:40"]
    result = run_child(arguments)
    assert result.returncode == 0, result.stderr
    cases = json.loads(result.stdout.strip().splitlines()[-1])["cases"]
    assert cases["two"]["images"] == 2 and cases["one"]["images"] == 1
    single = run_child(arguments[:-4] + ["--case", f"half={image}@320x240:40"])
    half = json.loads(single.stdout.strip().splitlines()[-1])["cases"]["half"]
    assert cases["two"]["faces"] == 2 * half["faces"]
