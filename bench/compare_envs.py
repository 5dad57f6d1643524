"""Compare fastmtcnn across Python environments (e.g. OpenCV versions) and against facenet-pytorch, in one run.

    python -m bench.compare_envs --env opencv-5.0=.venv5/bin/python --env opencv-4.10=.venv410/bin/python \
        --facenet .venv-facenet/bin/python --threads 1 2 --rounds 3

Each environment only needs numpy, numba and opencv-python (fastmtcnn is taken from this source tree); the
facenet-pytorch one needs facenet-pytorch, torch and opencv-python. Rounds are interleaved (every environment
once per round, in rotated order) so that drift in the machine's load hits them alike. Every child process runs
`bench/time_detect.py`: one warm-up call, then `--repeat` timed calls per case; the figure reported is the
fastest call of a round, median over rounds (the statistic of `bench.gate`). Ratios are taken within the run:
"x facenet" = facenet-pytorch's time / this environment's time at the same thread count.

Writes a Markdown report (default bench/results/compare_envs.md) and the raw records next to it (.json).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from .machine import BENCH_DIR, REPO_ROOT, image_source, machine_info

CHILD = BENCH_DIR / "time_detect.py"
FACENET = "facenet-pytorch"
#: (case name, image key, min face): the issue's VGA targets and the 1080p report.
CASES = (("vga-20", "vga", 20), ("vga-40", "vga", 40), ("1080p-40", "1080p", 40))


def case_arguments() -> Tuple[List[str], List[str]]:
    """time_detect.py --case arguments for CASES, and notes on fallback images (empty with ../shared)."""
    arguments, notes = [], []
    for name, key, min_face in CASES:
        source = image_source(key)
        size = f"@{source.resize_to[0]}x{source.resize_to[1]}" if source.resize_to else ""
        arguments += ["--case", f"{name}={source.path}{size}:{min_face}"]
        if source.note and source.note not in notes:
            notes.append(source.note)
    return arguments, notes


def run_child(python: str, impl: str, threads: int, repeat: int, cases: Sequence[str], timeout: float) -> dict:
    command = [python, str(CHILD), "--impl", impl, "--threads", str(threads), "--repeat", str(repeat), *cases]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT,
                            env={**os.environ, "PYTHONPATH": ""})
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def summarize(records: Sequence[dict]) -> Dict[Tuple[str, int], dict]:
    """Records {"label", "threads", "impl", "versions", "cases": {case: {"fastest_ms", "faces"}}}, one per
    environment, thread count and round -> {(label, threads): {"impl", "versions", "rounds",
    "cases": {case: {"ms": median over rounds of fastest_ms, "faces"}}}}, plus "x_facenet" per case when a
    facenet-pytorch record with the same thread count exists."""
    grouped: Dict[Tuple[str, int], List[dict]] = {}
    for record in records:
        grouped.setdefault((record["label"], record["threads"]), []).append(record)
    summary = {}
    for key, group in grouped.items():
        cases = {name: {"ms": statistics.median(r["cases"][name]["fastest_ms"] for r in group),
                        "faces": group[-1]["cases"][name]["faces"]} for name in group[0]["cases"]}
        summary[key] = {"impl": group[0]["impl"], "versions": group[0]["versions"], "rounds": len(group),
                        "cases": cases}
    for (label, threads), row in summary.items():
        baseline = next((other for (other_label, other_threads), other in summary.items()
                         if other["impl"] == FACENET and other_threads == threads), None)
        for name, case in row["cases"].items():
            if baseline and name in baseline["cases"]:
                case["x_facenet"] = baseline["cases"][name]["ms"] / case["ms"]
    return summary


def markdown(summary: Dict[Tuple[str, int], dict], command: str, load: str, notes: Sequence[str], repeat: int) -> str:
    """The report: machine, method, then one row per environment and thread count."""
    info = machine_info()
    names = [name for name, _, _ in CASES]
    lines = ["# fastmtcnn across environments", "",
             f"Command: `{command}`", "",
             f"Machine: {info['cpu_model']}, {info['cpu_count']} cores, {info['cpu_mhz']} MHz, {info['platform']}, "
             f"Python {info['python']}; load average before/after: {load}.", "",
             f"Each cell: ms per detection (fps), the fastest of {repeat} calls in a round, median over rounds; "
             "'x facenet' = facenet-pytorch's ms / this row's ms at the same thread count, measured in this run.",
             "VGA = 640x480, 1080p = 1440x1080; -20 / -40 = min face size in pixels.", ""]
    lines += [f"Note: {note}" for note in notes] + ([""] if notes else [])
    lines.append("| environment | versions | threads | " + " | ".join(names) + " |")
    lines.append("|---|---|--:|" + "--:|" * len(names))
    for (label, threads), row in sorted(summary.items(), key=lambda item: (item[0][1], item[0][0])):
        versions = ", ".join(f"{k} {v}" for k, v in row["versions"].items())
        cells = []
        for name in names:
            case = row["cases"][name]
            cell = f"{case['ms']:.1f} ms ({1000 / case['ms']:.1f} fps)"
            if "x_facenet" in case and row["impl"] != FACENET:
                cell += f", {case['x_facenet']:.2f}x facenet"
            cells.append(cell)
        lines.append(f"| {label} | {versions} | {threads} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parse_env(text: str) -> Tuple[str, str]:
    label, _, python = text.partition("=")
    if not python:
        raise argparse.ArgumentTypeError(f"--env {text!r}: expected LABEL=PATH_TO_PYTHON")
    return label, python


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", type=parse_env, action="append", default=[],
                        help="LABEL=PYTHON, repeatable (default: this interpreter, labelled 'current')")
    parser.add_argument("--facenet", metavar="PYTHON", help="an interpreter with facenet-pytorch installed")
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=9, help="timed calls per case and round (default 9)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per child process")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "compare_envs.md")
    args = parser.parse_args(argv)
    envs = [(label, python, "fastmtcnn") for label, python in (args.env or [("current", sys.executable)])]
    if args.facenet:
        envs.append((FACENET, args.facenet, FACENET))
    cases, notes = case_arguments()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    records, started = [], time.time()
    for round_index in range(args.rounds):
        order = envs[round_index % len(envs):] + envs[:round_index % len(envs)]
        for label, python, impl in order:
            for threads in args.threads:
                record = run_child(python, impl, threads, args.repeat, cases, args.timeout)
                records.append({"label": label, **record})
                print(f"round {round_index + 1}/{args.rounds} {label} threads={threads}: "
                      + ", ".join(f"{name} {case['fastest_ms']:.1f} ms" for name, case in record["cases"].items()),
                      flush=True)
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    command = "python -m bench.compare_envs " + " ".join(argv if argv is not None else sys.argv[1:])
    load = f"{load_before:.2f} / {load_after:.2f}, {time.time() - started:.0f} s in all"
    report = markdown(summarize(records), command, load, notes, args.repeat)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    args.out.with_suffix(".json").write_text(json.dumps({"machine": machine_info(), "records": records}, indent=1))
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
