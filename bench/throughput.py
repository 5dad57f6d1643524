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

import cv2

from .machine import cpu_count, run_child
from .mixed_sizes import VGA, stream_sources
from .rounds import interleaved

CHILD = r"""
import json, os, resource, sys, time, threading
spec = json.loads(sys.argv[1])
import cv2
import fastmtcnn
from fastmtcnn import batch
from fastmtcnn.settings import CascadeSettings
paths = sorted(os.listdir(spec["folder"]))

def cpu():
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

if spec["mode"] == "threads":
    detector = fastmtcnn.Detector(backend=spec["backend"], num_threads=1)
    images = [cv2.imread(os.path.join(spec["folder"], p)) for p in paths]
    detector.detect_batch(images[:spec["workers"] * 2], workers=spec["workers"])  # every thread's cascade
    stamps = []
    cpu0 = cpu()
    start = time.perf_counter()
    def one(image):
        faces = detector.detect(image)
        stamps.append(time.perf_counter())
        return faces
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(spec["workers"]) as pool:
        faces = sum(len(f) for f in pool.map(one, images))
else:
    config = batch.WorkerConfig(CascadeSettings(), spec["folder"], num_threads=1, backend=spec["backend"])
    tasks = [(p, p) for p in paths]
    stamps, faces = [], 0
    cpu0 = cpu()
    start = time.perf_counter()
    for record in batch.run_records(tasks, spec["workers"], config):
        stamps.append(time.perf_counter())
        faces += len(record["faces"])
stamps.sort()
wall = stamps[-1] - stamps[0]
print(json.dumps({"rate": (len(stamps) - 1) / wall, "faces": faces, "cpu_per_wall": (cpu() - cpu0) / (stamps[-1] - start)}))
"""


def one_process(folder: str, backend: str, mode: str, workers: int) -> dict:
    return run_child(CHILD, json.dumps({"folder": folder, "backend": backend, "mode": mode, "workers": workers}))


def write_images(folder: Path, count: int) -> None:
    for number, path in enumerate(stream_sources(count)):
        image = cv2.resize(cv2.imread(path), VGA, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / f"{number:04d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=120)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--backends", nargs="+", default=["openvino", "opencv"])
    parser.add_argument("--modes", nargs="+", default=["threads", "processes"])
    args = parser.parse_args(argv)
    cases = [(b, m, w) for b in args.backends for m in args.modes for w in args.workers]
    records = {case: [] for case in cases}
    with tempfile.TemporaryDirectory(prefix="fastmtcnn-throughput-") as folder:
        write_images(Path(folder), args.images)
        for _, case in interleaved(cases, args.rounds):
            records[case].append(one_process(folder, *case))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.images} VGA images, min face 20, 1 thread per image in flight, {args.rounds} rounds, "
          f"{cpu_count()} CPUs, load average {load:.1f} at the end (median images/s; CPU s per wall s)")
    for backend in args.backends:
        for mode in args.modes:
            rates = {w: statistics.median(r["rate"] for r in records[(backend, mode, w)]) for w in args.workers}
            cores = {w: statistics.median(r["cpu_per_wall"] for r in records[(backend, mode, w)]) for w in args.workers}
            first = args.workers[0]
            cells = ", ".join(f"{w} in flight {rates[w]:.1f}/s ({cores[w]:.2f} CPU, {rates[w] / rates[first]:.2f}x)"
                              for w in args.workers)
            print(f"  {backend:8s} {mode:9s} {cells}")


if __name__ == "__main__":
    main()
