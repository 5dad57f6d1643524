"""Cold start: import fastmtcnn + `Detector()` + the first VGA detection, each in a fresh process, with and without
OpenVINO's compiled-model cache, interleaved.

    python -m bench.cold_start [--rounds 10] [--backend openvino]

One thread (OMP/Numba/OpenVINO pinned). The cache lives in a temporary folder that one unreported process fills
first; the Numba kernel cache is warm (a first unreported process per mode). Each round starts one process per
mode in a rotated order; the report gives each mode's median over rounds and the ratio of the medians.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile

from .machine import image_source, run_child
from .rounds import interleaved

#: Run in the child: times the three steps from interpreter start (the import is timed from the first line).
CHILD = r"""
import time
start = time.perf_counter()
import cv2
import fastmtcnn
imported = time.perf_counter()
detector = fastmtcnn.Detector(backend={backend!r}, num_threads=1)
built = time.perf_counter()
image = cv2.imread({image!r})
faces = detector.detect(image)
done = time.perf_counter()
import json
print(json.dumps({{"import": imported - start, "detector": built - imported, "detect": done - built,
                  "total": done - start, "faces": len(faces), "cache": detector.engine.cache}}))
"""


def one_process(backend: str, cache: str) -> dict:
    """A fresh interpreter's timings (seconds); `cache` is FASTMTCNN_CACHE_DIR ("off" = none)."""
    return run_child(CHILD.format(backend=backend, image=str(image_source("vga").path)), FASTMTCNN_CACHE_DIR=cache)


def run(rounds: int, backend: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="fastmtcnn-cache-") as folder:
        modes = {"no cache": "off", "cache": folder}
        for cache in modes.values():  # warm the Numba kernel cache and fill the model cache, unreported
            one_process(backend, cache)
        records = {mode: [] for mode in modes}
        for _, mode in interleaved(list(modes), rounds):
            records[mode].append(one_process(backend, modes[mode]))
    return records


def medians(records: dict) -> dict:
    """{mode: median total seconds} of `run`'s records."""
    return {mode: statistics.median(row["total"] for row in rows) for mode, rows in records.items()}


def report(records: dict, backend: str) -> str:
    lines = [f"cold start, backend {backend}, 1 thread, {len(next(iter(records.values())))} fresh processes per mode "
             "(median s; import / Detector() / first detection / total)"]
    for mode, rows in records.items():
        parts = {key: statistics.median(row[key] for row in rows) for key in ("import", "detector", "detect", "total")}
        lines.append(f"  {mode:9s} {parts['import']:.3f} / {parts['detector']:.3f} / {parts['detect']:.3f} / "
                     f"{parts['total']:.3f}  (total min {min(r['total'] for r in rows):.3f}, "
                     f"max {max(r['total'] for r in rows):.3f})")
    totals = medians(records)
    if len(totals) == 2:
        lines.append(f"  no cache / cache: {totals['no cache'] / totals['cache']:.2f}x")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--backend", default="openvino", choices=("openvino", "opencv"))
    args = parser.parse_args(argv)
    print(report(run(args.rounds, args.backend), args.backend))


if __name__ == "__main__":
    main()
