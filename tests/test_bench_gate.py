"""bench/gate.py (`python -m bench.gate`), the benchmark regression gate, on small synthetic pytest-benchmark JSON files.

Fast and self-contained: no benchmark runs, no ../shared; the gate is run as `python -m bench.gate`.
"""
import json
import subprocess
import sys

import pytest

from conftest import REPO_ROOT



def write_run(path, medians, iqr_ratio=0.02, minimums=None, extra_info=None, engines=None):
    """A minimal pytest-benchmark JSON file with one benchmark per (name, median seconds); min = median
    unless `minimums` gives it; `engines` {name: engine_id} adds the engine to that benchmark's extra_info."""
    minimums, engines = minimums or {}, engines or {}
    benchmarks = [{"name": name, "fullname": f"bench/test_bench_demo.py::{name}", "group": None,
                   "extra_info": {**(extra_info or {}), **({"engine_id": engines[name]} if name in engines else {})},
                   "stats": {"median": median, "iqr": median * iqr_ratio,
                                               "min": minimums.get(name, median),
                                               "max": median * 1.2, "mean": median, "rounds": 9}}
                  for name, median in medians.items()]
    path.write_text(json.dumps({"machine_info": {"cpu": {"brand_raw": "Test CPU"}}, "benchmarks": benchmarks}))
    return path


def gate(*args):
    result = subprocess.run([sys.executable, "-m", "bench.gate", *map(str, args)], capture_output=True, text=True,
                            timeout=60, cwd=REPO_ROOT)
    return result.returncode, result.stdout + result.stderr


BASE = {"test_detect[vga-20-1]": 0.150, "test_detect[1080p-20-1]": 0.500, "test_nms_2000[union]": 0.002}


@pytest.fixture
def baseline(tmp_path):
    return write_run(tmp_path / "baseline.json", BASE)


def test_same_medians_pass(tmp_path, baseline):
    new = write_run(tmp_path / "new.json", BASE)
    code, out = gate("--baseline", baseline, new)
    assert code == 0, out
    assert "PASS" in out and "SLOWER" not in out
    assert "test_detect[vga-20-1]" in out and "150.00 ms" in out  # the table names and shows the medians


def test_one_median_30_percent_slower_fails_naming_it(tmp_path, baseline):
    new = write_run(tmp_path / "new.json", {**BASE, "test_detect[1080p-20-1]": 0.650})
    code, out = gate("--baseline", baseline, new)
    assert code == 1, out
    slower = [line for line in out.splitlines() if "SLOWER" in line]
    assert len(slower) == 1 and "test_detect[1080p-20-1]" in slower[0] and "1.300" in slower[0]
    assert "FAIL" in out and "test_bench_demo.py::test_detect[1080p-20-1]" in out


def test_custom_threshold(tmp_path, baseline):
    new = write_run(tmp_path / "new.json", {**BASE, "test_detect[1080p-20-1]": 0.650})
    assert gate("--baseline", baseline, new, "--threshold", "35")[0] == 0
    new = write_run(tmp_path / "new.json", {**BASE, "test_nms_2000[union]": 0.0022})  # +10%
    assert gate("--baseline", baseline, new)[0] == 0
    assert gate("--baseline", baseline, new, "--threshold", "5")[0] == 1


def test_median_of_medians_over_several_runs(tmp_path, baseline):
    """One noisy run 30% slower out of three does not fail; the noise columns show the spread."""
    runs = tmp_path / "runs"
    runs.mkdir()
    write_run(runs / "run1.json", BASE)
    write_run(runs / "run2.json", {**BASE, "test_detect[vga-20-1]": 0.195})
    write_run(runs / "run3.json", {**BASE, "test_detect[vga-20-1]": 0.153})
    code, out = gate("--baseline", baseline, runs)
    assert code == 0, out
    row = next(line for line in out.splitlines() if "test_detect[vga-20-1]" in line)
    assert "153.00 ms" in row and "2% / 29%" in row  # IQR/median, spread (195 - 150) / 153


def test_a_different_opencv_version_is_pointed_out(tmp_path):
    baseline = write_run(tmp_path / "baseline.json", BASE, extra_info={"opencv": "5.0.0", "numpy": "2.4.6"})
    same = write_run(tmp_path / "same.json", BASE, extra_info={"opencv": "5.0.0", "numpy": "2.4.6"})
    other = write_run(tmp_path / "other.json", BASE, extra_info={"opencv": "4.10.0", "numpy": "2.4.6"})
    assert "warning: different" not in gate("--baseline", baseline, same)[1]
    code, out = gate("--baseline", baseline, other)
    assert code == 0  # a warning, not a failure
    warnings = [line for line in out.splitlines() if line.startswith("warning: different")]
    assert warnings == ["warning: different opencv: baseline 5.0.0, new 4.10.0 (a speed difference may come from it)"]


def test_nothing_to_compare(tmp_path, baseline):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert gate("--baseline", baseline, empty)[0] == 2
    assert gate("--baseline", tmp_path / "absent.json", baseline)[0] == 2


def test_default_statistic_is_the_fastest_round(tmp_path, baseline):
    """A run whose rounds were disturbed (median 30% up) but whose fastest round is unchanged passes by
    default and fails when the gate is told to compare medians."""
    disturbed = {name: value * 1.3 for name, value in BASE.items()}
    new = write_run(tmp_path / "disturbed.json", disturbed, minimums=BASE)
    assert gate(new, "--baseline", baseline)[0] == 0
    status, output = gate(new, "--baseline", baseline, "--statistic", "median")
    assert status == 1 and "SLOWER" in output


# An OpenCV run keyed like the old suite (no engine in the id), and the same benchmark on OpenVINO, 3x faster.
ENGINE_RUN = {"test_detect[vga-20-1-opencv]": 0.150, "test_detect[vga-20-1-openvino]": 0.050,
              "test_detect[vga-20-1-openvino-bf16]": 0.030, "test_nms_2000[union]": 0.002}
ENGINE_IDS = {"test_detect[vga-20-1-opencv]": "opencv", "test_detect[vga-20-1-openvino]": "openvino",
              "test_detect[vga-20-1-openvino-bf16]": "openvino-bf16"}


def test_engines_are_compared_like_with_like(tmp_path):
    """A baseline made before engines existed (no engine info) is OpenCV's: the new OpenCV rows match it under
    their old keys, the OpenVINO rows are new (never compared with OpenCV's times)."""
    old = write_run(tmp_path / "old.json", {"test_detect[vga-20-1]": 0.150, "test_nms_2000[union]": 0.002})
    new = write_run(tmp_path / "new.json", ENGINE_RUN, engines=ENGINE_IDS)
    code, out = gate("--baseline", old, new)
    assert code == 0, out
    rows = {line.split()[0] + (" " + line.split()[1] if "@" in line else ""): line
            for line in out.splitlines() if line.startswith("test_")}
    assert "1.000" in rows["test_bench_demo.py::test_detect[vga-20-1]"]
    assert rows["test_bench_demo.py::test_detect[vga-20-1] @openvino"].rstrip().endswith("new")
    assert rows["test_bench_demo.py::test_detect[vga-20-1] @openvino-bf16"].rstrip().endswith("new")
    assert "2 compared" in out


def test_a_slower_openvino_fails_only_against_openvino(tmp_path):
    base = write_run(tmp_path / "base.json", ENGINE_RUN, engines=ENGINE_IDS)
    slower = write_run(tmp_path / "slower.json", {**ENGINE_RUN, "test_detect[vga-20-1-openvino]": 0.080},
                       engines=ENGINE_IDS)
    code, out = gate("--baseline", base, slower)
    assert code == 1, out
    failing = [line for line in out.splitlines() if "SLOWER" in line]
    assert len(failing) == 1 and "@openvino " in failing[0] + " " and "1.600" in failing[0]
    # 80 ms on OpenVINO would pass against OpenCV's 150 ms: keys keep them apart
    assert "test_detect[vga-20-1] @openvino" in out
