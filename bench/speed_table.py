"""The README's speed table in one command: per engine, one image at a time (ms, x facenet-pytorch), a stream of
mixed image sizes against one size, throughput with 1 and 2 images in flight, and cold start, facenet-pytorch beside.

    python -m bench.speed_table --facenet /path/to/facenet-venv/bin/python [--rounds 3]

Each part is one bench tool, run in turn (each interleaves its own cases over `--rounds` rounds, fresh processes,
1 thread per image in flight, OMP/Numba/OpenVINO/torch pinned):
- one image: `bench.envs.compare_envs --clock cpu --statistic median` (CPU time of 1-thread processes: the fastest of
  `--repeat` calls per round, the median over rounds; portraits: the median over the images);
- mixed sizes: `bench.mixed_sizes` (default shape mode, CPU ms per image, 200 images at 50 sizes against 640x480);
- throughput: `bench.throughput` (images/s; facenet-pytorch: N threads with torch on 1 each, and one image at a time
  with torch on N threads);
- cold start: `bench.cold_start` (import + `Detector()` + first VGA detection, OpenVINO with its model cache).
The bf16 column runs only where the CPU has native BF16 (AVX512-BF16 or AMX); elsewhere OpenVINO would fall back
to f32 and the column says so. Writes the Markdown table (`--out`) and its numbers next to it (.json).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

from . import cold_start, mixed_sizes, throughput
from .envs import compare_envs
from .machine import BENCH_DIR, cpu_flag_set, machine_info

#: Columns: label -> (fastmtcnn backend, precision), or None for facenet-pytorch.
COLUMNS = {"OpenVINO f32": ("openvino", "f32"), "OpenVINO bf16": ("openvino", "bf16"),
           "OpenCV DNN": ("opencv", "f32"), compare_envs.FACENET: None}
#: One-image rows: compare_envs case -> row title.
SINGLE_ROWS = {"portraits-20": "one portrait, min face 20 (CPU ms)", "vga-20": "group photo, min face 20 (CPU ms)",
               "portraits-40": "one portrait, min face 40 (CPU ms)"}
NOT_RUN = "-"


def native_bf16() -> bool:
    flags = cpu_flag_set()
    return flags.get("avx512_bf16", False) or flags.get("amx_bf16", False)


def single_image(columns: Dict[str, Optional[tuple]], facenet: str, rounds: int, repeat: int) -> Dict[str, dict]:
    """compare_envs over SINGLE_ROWS -> {column: {case: {"ms", "faces", "x_facenet"?}}}."""
    argv = ["--clock", "cpu", "--threads", "1", "--statistic", "median", "--rounds", str(rounds),
            "--repeat", str(repeat), "--cases", *SINGLE_ROWS, "--facenet", facenet]
    for label, engine in columns.items():
        if engine is not None:
            argv += ["--env", f"{label}={sys.executable},backend={engine[0]},precision={engine[1]}"]
    with tempfile.TemporaryDirectory(prefix="speed_table-") as scratch:
        out = Path(scratch) / "compare_envs.md"
        compare_envs.main(argv + ["--out", str(out)])
        records = json.loads(out.with_suffix(".json").read_text())["records"]
    summary = compare_envs.summarize(records, statistic="median")
    return {label: row["cases"] for (label, _), row in summary.items()}


def measure(facenet: str, rounds: int, repeat: int, cold_rounds: int, images: int, mixed_images: int) -> dict:
    """Every part of the table, in turn -> the numbers `table` formats."""
    columns = {k: v for k, v in COLUMNS.items() if k != "OpenVINO bf16" or native_bf16()}
    started, load_before = time.time(), os.getloadavg()[0]
    single = single_image(columns, facenet, rounds, repeat)
    mixed = mixed_sizes.run(rounds, mixed_images, backends=("openvino", "opencv"), modes=("default",))
    rates = throughput.run(rounds, images, (1, 2), ("openvino", "opencv"), ("threads", "processes"), facenet)
    cold = {backend: cold_start.medians(cold_start.run(cold_rounds, backend))["cache" if backend == "openvino"
                                                                               else "no cache"]
            for backend in ("openvino", "opencv")}
    return {"machine": machine_info(), "load": [load_before, os.getloadavg()[0]], "seconds": time.time() - started,
            "rounds": rounds, "repeat": repeat, "cold_rounds": cold_rounds, "images": images, "mixed_images": mixed_images,
            "columns": list(columns), "single": single,
            "mixed": {backend: streams for (backend, _), streams in mixed.items()},
            "throughput": {f"{backend} {mode}": {str(w): case for w, case in cases.items()}
                           for (backend, mode), cases in rates.items()},
            "cold": cold}


def _single_cell(case: dict, versus_facenet: bool) -> str:
    cell = f"{case['ms']:.1f}"
    return cell + (f" ({case['x_facenet']:.2f}x facenet)" if versus_facenet and "x_facenet" in case else "")


def _mixed_cell(streams: dict) -> str:
    one, many = streams["one size"]["cpu_ms_per_image"], streams["mixed"]["cpu_ms_per_image"]
    return f"{one:.1f} -> {many:.1f} ({many / one:.3f}x)"


def _rate_cell(cases: Optional[Dict[str, dict]]) -> str:
    if not cases:
        return NOT_RUN
    one, two = cases["1"]["rate"], cases["2"]["rate"]
    return f"{one:.1f} -> {two:.1f}/s ({two / one:.2f}x, {cases['2']['cpu']:.2f} CPU)"


def _row(title: str, columns: List[str], engine_cell: Callable[[str], str],
         facenet_cell: Callable[[], str] = lambda: NOT_RUN) -> List[str]:
    """[title, a cell per column]: `engine_cell(backend)` for the f32 engines, `facenet_cell()` for
    facenet-pytorch, NOT_RUN for bf16 (the stream, throughput and cold-start tools run f32)."""
    cells = []
    for label in columns:
        engine = COLUMNS[label]
        cells.append(facenet_cell() if engine is None else engine_cell(engine[0]) if engine[1] == "f32" else NOT_RUN)
    return [title] + cells


def table(numbers: dict) -> str:
    """The Markdown table of `measure`'s numbers: a row per measurement, a column per engine."""
    columns, single, rates = numbers["columns"], numbers["single"], numbers["throughput"]
    rows: List[List[str]] = [[title] + [_single_cell(single[label][case], COLUMNS[label] is not None)
                                        if label in single else NOT_RUN for label in columns]
                             for case, title in SINGLE_ROWS.items()]
    rows.append(_row("mixed sizes: CPU ms per image, one size -> 50 sizes", columns,
                     lambda backend: _mixed_cell(numbers["mixed"][backend])))
    rows.append(_row("images/s, 1 -> 2 in flight, threads (server, `detect_batch`)", columns,
                     lambda backend: _rate_cell(rates.get(f"{backend} threads")),
                     lambda: _rate_cell(rates.get(f"{compare_envs.FACENET} threads"))))
    rows.append(_row("images/s, 1 -> 2 in flight, processes (`fastmtcnn batch`; facenet: torch on 1 -> 2 threads)",
                     columns, lambda backend: _rate_cell(rates.get(f"{backend} processes")),
                     lambda: _rate_cell(rates.get(f"{compare_envs.FACENET} intra-op"))))
    rows.append(_row("cold start: import + `Detector()` + first VGA detection (s)", columns,
                     lambda backend: f"{numbers['cold'][backend]:.2f}"))
    info = numbers["machine"]
    lines = [f"{info['cpu_model']}, {info['cpu_count']} cores, CPU flags {info['cpu_flags']}; Python "
             f"{info['python']}; 1 thread per image in flight; load average {numbers['load'][0]:.1f} before, "
             f"{numbers['load'][1]:.1f} after; {numbers['rounds']} interleaved rounds; {numbers['seconds']:.0f} s. "
             "Images/s are wall time: each cell ends with the CPU seconds per second the 2-in-flight case got (2.0 = "
             "both cores; less = other jobs held a share, and the rate is that share's).", "",
             "| " + " | ".join(["1 thread per image in flight"] + columns) + " |",
             "|---|" + "--:|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facenet", metavar="PYTHON", required=True,
                        help="an interpreter with facenet-pytorch installed (bench/README.md says how)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per one-image case and round")
    parser.add_argument("--cold-rounds", type=int, default=10, help="fresh processes per cold-start mode")
    parser.add_argument("--images", type=int, default=120, help="images per throughput case")
    parser.add_argument("--mixed-images", type=int, default=200, help="images per mixed-size stream")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "speed_table.md")
    args = parser.parse_args(argv)
    numbers = measure(args.facenet, args.rounds, args.repeat, args.cold_rounds, args.images, args.mixed_images)
    command = "python -m bench.speed_table " + " ".join(argv if argv is not None else sys.argv[1:])
    report = f"# fastmtcnn speed table\n\nCommand: `{command}`\n\n" + table(numbers)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    args.out.with_suffix(".json").write_text(json.dumps(numbers, indent=1))
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
