"""Compare fastmtcnn across Python environments (e.g. OpenCV versions) and against facenet-pytorch, in one run.

    python -m bench.envs.compare_envs --env opencv-5.0=.venv5/bin/python --env opencv-4.10=.venv410/bin/python \
        --env openvino-f32=.venv5/bin/python,backend=openvino --facenet .venv-facenet/bin/python \
        --threads 1 2 --rounds 3 --versus opencv-4.10

Each environment only needs numpy, numba and opencv-python (fastmtcnn is taken from this source tree), plus
openvino for an OpenVINO row; the facenet-pytorch one needs facenet-pytorch, torch and opencv-python. An
environment is LABEL=PYTHON[,backend=B][,precision=P]: the engine fastmtcnn runs there (default OpenCV DNN);
the report names the engine that actually ran (bf16 falls back to f32 on a CPU without native BF16).
Rounds are interleaved (every environment once per round, in rotated order) so that drift in the machine's load
hits them alike. Every child process runs `bench/envs/time_detect.py`: one warm-up call, then `--repeat` timed calls
per case; the figure reported is the fastest call of a round, then over rounds the fastest (`--statistic min`, the
default, as `bench.gate`: other jobs, and here whole processes that run 20-40% slow from start to end, only add
time) or the median (`--statistic median`); for the portrait cases the per-image figure is the median over the
images. Ratios are taken within the run: "x facenet" =
facenet-pytorch's time / this environment's time at the same thread count, "x LABEL" (`--versus LABEL`) the same
against that environment.

Writes a Markdown report (default bench/results/compare_envs.md) and the raw records next to it (.json).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from ..machine import (BENCH_DIR, PORTRAIT_SIZE, PORTRAITS_PER_SET, REPO_ROOT, cpu_flags, image_source, machine_info,
                      portrait_paths)
from ..rounds import interleaved

CHILD = Path(__file__).resolve().parent / "time_detect.py"
FACENET = "facenet-pytorch"
PORTRAITS = "portraits"
#: (case name, image key, min face): the 7-face group photo at VGA (the issue's targets), portraits resized to
#: VGA (a set: median over its images), the group photo at 1080p.
CASES = (("vga-20", "vga", 20), ("vga-40", "vga", 40), ("portraits-20", PORTRAITS, 20),
         ("portraits-40", PORTRAITS, 40), ("1080p-40", "1080p", 40))


def case_arguments(names: Sequence[str], scratch: Path,
                   portraits: int = PORTRAITS_PER_SET) -> Tuple[List[str], List[str]]:
    """time_detect.py --case arguments for the CASES named, and notes on fallback images (empty with ../shared).
    The portrait list (`portraits` images of each landmark set) is written to `scratch` (a folder)."""
    arguments, notes = [], []
    for name, key, min_face in CASES:
        if name not in names:
            continue
        if key == PORTRAITS:
            paths = portrait_paths(portraits)
            if not paths:
                notes.append(f"../shared absent: case {name} left out")
                continue
            listing = scratch / "portraits.txt"
            listing.write_text("".join(f"{path}\n" for path in paths))
            arguments += ["--case", f"{name}={listing}@{PORTRAIT_SIZE[0]}x{PORTRAIT_SIZE[1]}:{min_face}"]
            continue
        source = image_source(key)
        size = f"@{source.resize_to[0]}x{source.resize_to[1]}" if source.resize_to else ""
        arguments += ["--case", f"{name}={source.path}{size}:{min_face}"]
        if source.note and source.note not in notes:
            notes.append(source.note)
    return arguments, notes


def run_child(python: str, impl: str, threads: int, repeat: int, cases: Sequence[str], timeout: float,
              engine_args: Sequence[str] = ()) -> dict:
    command = [python, str(CHILD), "--impl", impl, "--threads", str(threads), "--repeat", str(repeat), *cases,
               *engine_args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})  # fastmtcnn from this source tree
    # (BENCH_CLOCK, set by --clock, reaches the child through os.environ)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


STATISTICS = {"min": min, "median": statistics.median}


def summarize(records: Sequence[dict], versus: str = None, statistic: str = "min") -> Dict[Tuple[str, int], dict]:
    """Records {"label", "threads", "impl", "versions", "engine", "cases": {case: {"fastest_ms", "faces"}}}, one
    per environment, thread count and round -> {(label, threads): {"impl", "versions", "engine", "rounds",
    "cases": {case: {"ms": `statistic` ("min" or "median") over rounds of fastest_ms, "faces"}}}}, plus "x_facenet" per case when a
    facenet-pytorch record with the same thread count exists, and "x_versus" when environment `versus` has one."""
    grouped: Dict[Tuple[str, int], List[dict]] = {}
    for record in records:
        grouped.setdefault((record["label"], record["threads"]), []).append(record)
    summary = {}
    for key, group in grouped.items():
        cases = {name: {"ms": STATISTICS[statistic]([r["cases"][name]["fastest_ms"] for r in group]),
                        "faces": group[-1]["cases"][name]["faces"]} for name in group[0]["cases"]}
        summary[key] = {"impl": group[0]["impl"], "versions": group[0]["versions"],
                        "engine": group[0].get("engine", ""), "rounds": len(group), "cases": cases}
    for (label, threads), row in summary.items():
        facenet = next((other for (_, other_threads), other in summary.items()
                        if other["impl"] == FACENET and other_threads == threads), None)
        reference = summary.get((versus, threads))
        for name, case in row["cases"].items():
            if facenet and name in facenet["cases"]:
                case["x_facenet"] = facenet["cases"][name]["ms"] / case["ms"]
            if reference and name in reference["cases"]:
                case["x_versus"] = reference["cases"][name]["ms"] / case["ms"]
    return summary


def markdown(summary: Dict[Tuple[str, int], dict], command: str, load: str, notes: Sequence[str], repeat: int,
             versus: str = None, statistic: str = "min") -> str:
    """The report: machine, method, then one row per environment and thread count."""
    info = machine_info()
    first = next(iter(summary.values()), {"cases": {}})
    names = [name for name, _, _ in CASES if name in first["cases"]]
    lines = ["# fastmtcnn across environments", "",
             f"Command: `{command}`", "",
             f"Machine: {info['cpu_model']}, {info['cpu_count']} cores, {info['cpu_mhz']} MHz, CPU flags: "
             f"{cpu_flags()}; {info['platform']}, Python {info['python']}; load average before/after: {load}.", "",
             f"Each cell: ms per detection (fps), the fastest of {repeat} calls in a round, then the "
             f"{'fastest' if statistic == 'min' else 'median'} over rounds "
             "(portraits: median over the images of that figure); 'x facenet' = facenet-pytorch's ms / this row's ms "
             "at the same thread count" + (f", 'x {versus}' likewise against that row" if versus else "")
             + ", measured in this run.",
             "vga = the 7-face group photo at 640x480, portraits = the first images of each shared landmark set "
             "(Sun CVPR'13, 300-W Helen) resized to 640x480, 1080p = the group photo at 1440x1080; "
             "-20 / -40 = min face size in pixels. Engine: what fastmtcnn ran (backend and precision).", ""]
    lines += [f"Note: {note}" for note in notes] + ([""] if notes else [])
    lines.append("| environment | engine | versions | threads | " + " | ".join(names) + " |")
    lines.append("|---|---|---|--:|" + "--:|" * len(names))
    for (label, threads), row in sorted(summary.items(), key=lambda item: (item[0][1], item[0][0])):
        versions = ", ".join(f"{k} {v}" for k, v in row["versions"].items())
        cells = []
        for name in names:
            case = row["cases"][name]
            cell = f"{case['ms']:.1f} ms ({1000 / case['ms']:.1f} fps)"
            if "x_facenet" in case and row["impl"] != FACENET:
                cell += f", {case['x_facenet']:.2f}x facenet"
            if "x_versus" in case and label != versus and row["impl"] != FACENET:
                cell += f", {case['x_versus']:.2f}x {versus}"
            cells.append(cell)
        lines.append(f"| {label} | {row['engine']} | {versions} | {threads} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


ENV_OPTIONS = ("backend", "precision")


def parse_env(text: str) -> Tuple[str, str, List[str]]:
    """'LABEL=PYTHON[,backend=B][,precision=P]' -> (label, python, time_detect.py engine arguments)."""
    label, _, rest = text.partition("=")
    python, *options = rest.split(",")
    if not python:
        raise argparse.ArgumentTypeError(f"--env {text!r}: expected LABEL=PATH_TO_PYTHON[,backend=B][,precision=P]")
    engine_args = []
    for option in options:
        key, _, value = option.partition("=")
        if key not in ENV_OPTIONS or not value:
            raise argparse.ArgumentTypeError(f"--env {text!r}: unknown option {option!r} (backend=B, precision=P)")
        engine_args += [f"--{key}", value]
    return label, python, engine_args


def run_rounds(envs, args, cases: Sequence[str]) -> Tuple[List[dict], float]:
    """Every environment once per round, in rotated order, at each thread count -> (records, start time)."""
    records, started = [], time.time()
    for round_index, (label, python, impl, engine_args) in interleaved(envs, args.rounds):
        for threads in args.threads:
            record = run_child(python, impl, threads, args.repeat, cases, args.timeout, engine_args)
            records.append({"label": label, **record})
            print(f"round {round_index + 1}/{args.rounds} {label} threads={threads}: "
                  + ", ".join(f"{name} {case['fastest_ms']:.1f} ms" for name, case in record["cases"].items()),
                  flush=True)
    return records, started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", type=parse_env, action="append", default=[],
                        help="LABEL=PYTHON[,backend=B][,precision=P], repeatable (default: this interpreter, "
                             "labelled 'current', OpenCV DNN)")
    parser.add_argument("--cases", nargs="+", choices=[name for name, _, _ in CASES],
                        default=[name for name, _, _ in CASES], help="cases to time (default: all)")
    parser.add_argument("--portraits", type=int, default=PORTRAITS_PER_SET,
                        help="portraits taken from each shared landmark set (default %(default)s)")
    parser.add_argument("--versus", metavar="LABEL", help="also give each row's speed-up over environment LABEL")
    parser.add_argument("--facenet", metavar="PYTHON", help="an interpreter with facenet-pytorch installed")
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=9, help="timed calls per case and round (default 9)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per child process")
    parser.add_argument("--statistic", choices=sorted(STATISTICS), default="min",
                        help="over rounds, of each round's fastest call (default %(default)s)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "compare_envs.md")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time, or each child's CPU time (1 thread: the work, on a machine others keep busy)")
    args = parser.parse_args(argv)
    os.environ["BENCH_CLOCK"] = args.clock
    envs = [(label, python, "fastmtcnn", engine_args)
            for label, python, engine_args in (args.env or [("current", sys.executable, [])])]
    if args.facenet:
        envs.append((FACENET, args.facenet, FACENET, []))
    with tempfile.TemporaryDirectory(prefix="compare_envs-") as scratch:
        cases, notes = case_arguments(args.cases, Path(scratch), args.portraits)
        load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        records, started = run_rounds(envs, args, cases)
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    command = "python -m bench.envs.compare_envs " + " ".join(argv if argv is not None else sys.argv[1:])
    load = f"{load_before:.2f} / {load_after:.2f}, {time.time() - started:.0f} s in all"
    report = markdown(summarize(records, args.versus, args.statistic), command, load, notes, args.repeat, args.versus,
                      args.statistic)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    args.out.with_suffix(".json").write_text(json.dumps({"machine": machine_info(), "records": records}, indent=1))
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
