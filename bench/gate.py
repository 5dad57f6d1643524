"""Regression gate: compare pytest-benchmark JSON runs with a saved baseline, by median.

    python -m bench.gate NEW.json [NEW2.json ...]                 # baseline: bench/baselines/<this machine>/
    python -m bench.gate --baseline bench/baselines/AMD-EPYC-2core NEW.json --threshold 10

Every path may be a JSON file or a folder (all *.json below it, as `--benchmark-autosave` writes them).
With several files on one side, each benchmark's value is the median of its per-run medians (pytest-benchmark
already gives a median over rounds per run). A benchmark fails when new / baseline > 1 + threshold
(default 15%). The table also shows the noise seen: IQR/median of the rounds (median over runs) and, with
several runs, the spread (max - min) / median of the per-run medians.

Benchmarks are keyed by engine: `extra_info["engine_id"]` (e.g. "openvino", "openvino-bf16"; the suite puts it
last in the test id) is taken out of the test id and, unless it is the default engine "opencv", appended as
" @engine_id". A run without engine information (older baselines) is OpenCV DNN's, so an OpenCV benchmark keeps
its old key and an OpenVINO one is only ever compared with an OpenVINO baseline.

Exit status: 0 no regression, 1 at least one benchmark slower than the threshold, 2 nothing to compare.
Standard library only: runs without numpy, OpenCV or fastmtcnn installed.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

from .machine import BASELINES_DIR, machine_name

DEFAULT_THRESHOLD = 15.0  # percent
# Per-run statistic: the fastest of a run's rounds. On shared 2-core VMs other jobs only ever add time, so
# the minimum moves far less than the median between identical runs (measured here: a plain rerun failed
# the 15% gate on 8 of 45 medians and passed on all 45 minimums). Runs are then combined by their median.
DEFAULT_STATISTIC = "min"


@dataclass
class Series:
    """One benchmark over one or more runs: per-run medians and IQR/median of the rounds."""

    medians: List[float] = field(default_factory=list)
    noise: List[float] = field(default_factory=list)  # IQR / median of each run
    rounds: List[int] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.medians)

    @property
    def iqr_ratio(self) -> float:
        return statistics.median(self.noise) if self.noise else float("nan")

    @property
    def spread(self) -> Optional[float]:
        """(max - min) / median of the per-run medians, None with one run."""
        if len(self.medians) < 2:
            return None
        return (max(self.medians) - min(self.medians)) / self.median


@dataclass
class Runs:
    files: List[Path]
    series: Dict[str, Series]
    machines: List[str]
    notes: List[str]
    versions: Dict[str, set] = field(default_factory=dict)  # library -> versions seen in extra_info


#: Libraries whose version changes the speed (OpenCV 4.10 vs 5.0: 1.3x on the same machine), so the gate
#: warns when the baseline was made with others.
VERSIONED_LIBRARIES = ("opencv", "numpy", "numba", "openvino")


def json_files(paths: Iterable[Path]) -> List[Path]:
    """Files as given; folders expanded to the *.json files below them, sorted."""
    found: List[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(path.rglob("*.json")))
        elif path.exists():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path} does not exist")
    return found


#: The engine of benchmarks that record none (made before there were engines): OpenCV DNN.
DEFAULT_ENGINE = "opencv"


def benchmark_key(bench: dict) -> str:
    """'test_bench_detect.py::test_detect[vga-20-1]' (file name + test id, independent of the cwd), with the
    engine id taken out of the test id and appended as ' @openvino' unless it is DEFAULT_ENGINE."""
    name = (bench.get("fullname") or bench["name"]).replace("\\", "/").rsplit("/", 1)[-1]
    engine = (bench.get("extra_info") or {}).get("engine_id") or DEFAULT_ENGINE
    if name.endswith("]") and "[" in name:
        base, params = name[:-1].split("[", 1)
        parts = params.split("-")
        engine_parts = engine.split("-")
        if parts[-len(engine_parts):] == engine_parts:
            parts = parts[:-len(engine_parts)]
        name = f"{base}[{'-'.join(parts)}]" if parts else base
    return name if engine == DEFAULT_ENGINE else f"{name} @{engine}"


def load_runs(paths: Sequence[Path], statistic: str = "median") -> Runs:
    files = json_files(paths)
    series: Dict[str, Series] = {}
    machines, notes, versions = [], [], {}
    for path in files:
        data = json.loads(path.read_text())
        cpu = (data.get("machine_info") or {}).get("cpu") or {}
        machines.append(cpu.get("brand_raw") or (data.get("machine_info") or {}).get("processor") or "?")
        for bench in data.get("benchmarks", []):
            stats = bench["stats"]
            entry = series.setdefault(benchmark_key(bench), Series())
            entry.medians.append(float(stats[statistic]))
            if stats.get("median"):
                entry.noise.append(float(stats.get("iqr", 0.0)) / float(stats["median"]))
            entry.rounds.append(int(stats.get("rounds", 0)))
            extra = bench.get("extra_info") or {}
            for key in ("image_note", "slowdown_ms"):
                if key in extra:
                    note = f"{key}={extra[key]}"
                    if note not in notes:
                        notes.append(note)
            for library in VERSIONED_LIBRARIES:
                if extra.get(library) is not None:
                    versions.setdefault(library, set()).add(str(extra[library]))
    return Runs(files, series, machines, notes, versions)


def format_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def format_noise(series: Series) -> str:
    text = f"{series.iqr_ratio * 100:.0f}%"
    if series.spread is not None:
        text += f" / {series.spread * 100:.0f}%"
    return text


def compare(baseline: Runs, new: Runs, threshold: float, out=sys.stdout) -> List[str]:
    """Print the comparison table; return the names of the benchmarks slower than the threshold."""
    limit = 1.0 + threshold / 100.0
    names = sorted(set(baseline.series) | set(new.series))
    rows, slower = [], []
    for name in names:
        base, cur = baseline.series.get(name), new.series.get(name)
        if base is None or cur is None:
            rows.append((name, format_time(base.median) if base else "-", format_time(cur.median) if cur else "-",
                         "-", format_noise(base) if base else "-", format_noise(cur) if cur else "-",
                         "new" if base is None else "missing"))
            continue
        ratio = cur.median / base.median if base.median > 0 else float("inf")
        if ratio > limit:
            verdict = "SLOWER"
            slower.append(name)
        elif ratio < 1.0 / limit:
            verdict = "faster"
        else:
            verdict = "ok"
        if verdict != "faster" and max(base.iqr_ratio, cur.iqr_ratio) * 100 > threshold:
            verdict += " (noisy)"
        rows.append((name, format_time(base.median), format_time(cur.median), f"{ratio:.3f}",
                     format_noise(base), format_noise(cur), verdict))
    header = ("benchmark", "baseline median", "new median", "ratio", "base noise", "new noise", "verdict")
    widths = [max(len(str(row[i])) for row in rows + [header]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print(line.format(*header), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for row in rows:
        print(line.format(*row), file=out)
    return slower


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gate", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("new", nargs="+", type=Path, help="pytest-benchmark JSON file(s) or folder(s) of the new run(s)")
    parser.add_argument("--baseline", action="append", type=Path,
                        help=f"baseline JSON file or folder (repeatable); default {BASELINES_DIR.name}/<machine>/ "
                             f"for this machine ({machine_name()})")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help="fail when a median is slower than the baseline by more than this many percent "
                             "(default %(default)s)")
    parser.add_argument("--statistic", choices=("median", "min"), default=DEFAULT_STATISTIC,
                        help="per-run statistic compared (default min: robust to other jobs "
                             "stealing the CPU, but optimistic)")
    parser.add_argument("--fail-on-missing", action="store_true",
                        help="also fail when a baseline benchmark is absent from the new run")
    args = parser.parse_args(argv)

    baseline_paths = args.baseline or [BASELINES_DIR / machine_name()]
    try:
        baseline, new = load_runs(baseline_paths, args.statistic), load_runs(args.new, args.statistic)
    except (FileNotFoundError, json.JSONDecodeError, KeyError) as error:
        print(f"bench.gate: error: {error}", file=sys.stderr)
        return 2
    if not baseline.series or not new.series:
        side = "baseline" if not baseline.series else "new run"
        print(f"bench.gate: error: no benchmarks in the {side} ({', '.join(map(str, baseline_paths if side == 'baseline' else args.new))})",
              file=sys.stderr)
        return 2

    print(f"baseline: {len(baseline.files)} run(s) from {', '.join(map(str, baseline_paths))}; "
          f"new: {len(new.files)} run(s); threshold +{args.threshold:g}% on the {args.statistic} "
          f"(median of the per-run values when there are several runs)")
    if set(baseline.machines) != set(new.machines):
        print(f"warning: different CPUs: baseline {sorted(set(baseline.machines))}, new {sorted(set(new.machines))}")
    for library in VERSIONED_LIBRARIES:
        before, after = baseline.versions.get(library, set()), new.versions.get(library, set())
        if before and after and before != after:
            print(f"warning: different {library}: baseline {', '.join(sorted(before))}, new {', '.join(sorted(after))}"
                  " (a speed difference may come from it)")
    for label, runs in (("baseline", baseline), ("new", new)):
        for note in runs.notes:
            print(f"note ({label}): {note}")
    print("noise = IQR/median of the rounds [/ spread (max-min)/median of the per-run medians]")
    slower = compare(baseline, new, args.threshold)
    missing = sorted(set(baseline.series) - set(new.series))
    common = set(baseline.series) & set(new.series)
    if not common:
        print("bench.gate: error: no benchmark in common with the baseline", file=sys.stderr)
        return 2
    if slower:
        print(f"FAIL: {len(slower)} of {len(common)} benchmarks slower than the baseline by more than "
              f"{args.threshold:g}%: {', '.join(slower)}")
        return 1
    if missing and args.fail_on_missing:
        print(f"FAIL: {len(missing)} baseline benchmarks missing from the new run: {', '.join(missing)}")
        return 1
    print(f"PASS: no benchmark slower than the baseline by more than {args.threshold:g}% ({len(common)} compared"
          + (f", {len(missing)} missing" if missing else "") + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
