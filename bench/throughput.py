"""Throughput on every core: images/s with 1 and 2 (or more) images in flight, per engine, for the two ways the
package runs many images, interleaved.

    python -m bench.throughput [--rounds 3] [--images 120] [--workers 1 2] [--backends openvino opencv]

- "threads" is the server's way (`fastmtcnn serve --workers N --threads 1`, and `Detector.detect_batch(workers=N)`):
  N threads in one process, each with its own cascade, every forward on 1 thread.
- "processes" is `fastmtcnn batch --workers N`: N spawned worker processes, one detector on 1 thread each,
  reading and decoding the JPEG files themselves.
The images: `--images` shared photos (`bench.mixed_sizes.stream_sources`) resized to 640x480, min face 20. Each
case runs in a fresh process; threads are warmed (each thread's cascade built) and batch workers started before
the clock starts: the rate is (images - 1) / (time of the last result - time of the first). Also reported: the
CPU seconds the case used per wall second (how many cores it got). Each round runs every case once, rotated.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import cv2

from .machine import cpu_count, run_child
from .envs.compare_envs import FACENET
from .mixed_sizes import VGA, stream_sources
from .rounds import interleaved

#: Every child's start: the spec, the image file names, CPU seconds used so far (own and children's), and
#: `timed_pool(detect, images, workers)`: the face count over `images` on `workers` threads, warmed first (every
#: thread's detector built), with the result stamps, the clock and the CPU seconds at the start.
CHILD_HEAD = r"""
import json, os, resource, sys, time, threading
from concurrent.futures import ThreadPoolExecutor
spec = json.loads(sys.argv[1])
import cv2
paths = sorted(os.listdir(spec["folder"]))

def cpu():
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

def timed_pool(detect, images, workers):
    stamps = []
    def one(image):
        count = detect(image)
        stamps.append(time.perf_counter())
        return count
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(detect, images[:workers * 2]))
        cpu0, start = cpu(), time.perf_counter()
        faces = sum(pool.map(one, images))
    return stamps, faces, start, cpu0
"""

#: Every child's end: the rate from the first to the last result, and the cores it got.
CHILD_TAIL = r"""
stamps.sort()
wall = stamps[-1] - stamps[0]
print(json.dumps({"rate": (len(stamps) - 1) / wall, "faces": faces, "cpu_per_wall": (cpu() - cpu0) / (stamps[-1] - start)}))
"""

FASTMTCNN_CHILD = CHILD_HEAD + r"""
import fastmtcnn
from fastmtcnn import batch
from fastmtcnn.settings import CascadeSettings
if spec["mode"] == "threads":
    detector = fastmtcnn.Detector(backend=spec["backend"], num_threads=1)
    images = [cv2.imread(os.path.join(spec["folder"], p)) for p in paths]
    stamps, faces, start, cpu0 = timed_pool(lambda image: len(detector.detect(image)), images, spec["workers"])
else:
    config = batch.WorkerConfig(CascadeSettings(), spec["folder"], num_threads=1, backend=spec["backend"])
    tasks = [(p, p) for p in paths]
    stamps, faces = [], 0
    cpu0 = cpu()
    start = time.perf_counter()
    for record in batch.run_records(tasks, spec["workers"], config):
        stamps.append(time.perf_counter())
        faces += len(record["faces"])
""" + CHILD_TAIL

#: facenet-pytorch's MTCNN as `bench.envs.time_detect` runs it for compare_envs (our defaults: min face 20,
#: thresholds 0.6/0.7/0.7, factor 0.709; BGR in, converted to RGB inside). "threads": N Python threads, each its
#: own MTCNN, torch on 1 thread (torch releases the GIL); "intra-op": one image at a time, torch on N threads (how a
#: facenet-pytorch user gives it more cores).
FACENET_CHILD = CHILD_HEAD + r"""
from bench.envs.time_detect import facenet_detector
intra_op = spec["mode"] == "intra-op"
_, _, make = facenet_detector(spec["workers"] if intra_op else 1)
images = [cv2.imread(os.path.join(spec["folder"], p)) for p in paths]
local = threading.local()

def detect(bgr):
    if not hasattr(local, "detect"):
        local.detect = make(20)
    return local.detect(bgr)

stamps, faces, start, cpu0 = timed_pool(detect, images, 1 if intra_op else spec["workers"])
""" + CHILD_TAIL

FACENET_MODES = ("threads", "intra-op")


def one_process(folder: str, backend: str, mode: str, workers: int, facenet_python: Optional[str] = None) -> dict:
    """One case in a fresh process: `backend` a fastmtcnn engine, or FACENET (run by `facenet_python`)."""
    spec = json.dumps({"folder": folder, "backend": backend, "mode": mode, "workers": workers})
    if backend == FACENET:
        return run_child(FACENET_CHILD, spec, python=facenet_python)
    return run_child(FASTMTCNN_CHILD, spec)


def write_images(folder: Path, count: int) -> None:
    for number, path in enumerate(stream_sources(count)):
        image = cv2.resize(cv2.imread(path), VGA, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / f"{number:04d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])


def run(rounds: int = 3, images: int = 120, workers: Sequence[int] = (1, 2),
        backends: Sequence[str] = ("openvino", "opencv"), modes: Sequence[str] = ("threads", "processes"),
        facenet: Optional[str] = None) -> Dict[tuple, Dict[int, dict]]:
    """Every case once per interleaved round -> {(backend, mode): {workers: {"rate": images/s, "cpu": CPU s per
    wall s, medians over rounds; "faces"}}}; with `facenet` (an interpreter) also facenet-pytorch's FACENET_MODES."""
    rows = [(b, m) for b in backends for m in modes] + ([(FACENET, m) for m in FACENET_MODES] if facenet else [])
    cases = [(backend, mode, w) for backend, mode in rows for w in workers]
    records: Dict[tuple, List[dict]] = {case: [] for case in cases}
    with tempfile.TemporaryDirectory(prefix="fastmtcnn-throughput-") as folder:
        write_images(Path(folder), images)
        for _, case in interleaved(cases, rounds):
            records[case].append(one_process(folder, *case, facenet_python=facenet))
    return {row: {w: {"rate": statistics.median(r["rate"] for r in records[(*row, w)]),
                      "cpu": statistics.median(r["cpu_per_wall"] for r in records[(*row, w)]),
                      "faces": records[(*row, w)][0]["faces"]} for w in workers} for row in rows}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=120)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--backends", nargs="+", default=["openvino", "opencv"])
    parser.add_argument("--modes", nargs="+", default=["threads", "processes"])
    parser.add_argument("--facenet", metavar="PYTHON", help="also facenet-pytorch's MTCNN, run by this interpreter "
                        "(threads: N threads, torch on 1 each; intra-op: one image at a time, torch on N threads)")
    args = parser.parse_args(argv)
    summary = run(args.rounds, args.images, args.workers, args.backends, args.modes, args.facenet)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.images} VGA images, min face 20, 1 thread per image in flight, {args.rounds} rounds, "
          f"{cpu_count()} CPUs, load average {load:.1f} at the end (median images/s; CPU s per wall s)")
    for (backend, mode), cases in summary.items():
        first = cases[args.workers[0]]["rate"]
        cells = ", ".join(f"{w} in flight {case['rate']:.1f}/s ({case['cpu']:.2f} CPU, {case['rate'] / first:.2f}x)"
                          for w, case in cases.items())
        faces = "/".join(str(f) for f in sorted({case["faces"] for case in cases.values()}))
        print(f"  {backend:15s} {mode:9s} {cells}; faces {faces}")


if __name__ == "__main__":
    main()
