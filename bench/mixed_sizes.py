"""Real traffic is not one photo size: a stream of shared photos at many sizes against the same stream at one size.

    python -m bench.mixed_sizes [--rounds 3] [--images 200] [--sizes 50] [--min-face 20]

The stream: `--images` shared photos (300-W Helen, dlib, bench, Sun CVPR'13; cycled), each resized (INTER_AREA /
INTER_CUBIC) to one of `--sizes` sizes of about VGA's area (widths 400-880 px, height = 307200 / width, so the work
per image stays about that of VGA), or all to 640x480 for the one-size stream. Each (engine, stream, shape mode) runs
in a fresh process (OpenVINO prepares kernels per input shape once per compiled model, so a process that has seen
the sizes before would hide the cost), 1 thread pinned, rounds interleaved in a rotated order; a process times the
whole stream once after building its detector on the one-size stream's first image, and reports ms per image:
the process's CPU time (with 1 thread every forward runs on the calling thread, so this is the work done, and it
stays readable on a machine shared with other jobs) and the wall time.
Shape modes: "default" = the engine's defaults (OpenVINO: small pyramid levels packed into one bucket-padded canvas,
`fastmtcnn.packing`; the other levels and R-Net/O-Net batches in their own shapes); "buckets" = also every P-Net level
padded to a few sizes and crop batches rounded up (`fastmtcnn.pipeline.ShapeBuckets`); "unpacked" = every level
alone in its own shape (no packing: the engines before packing).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
from typing import Dict, List, Sequence

from .machine import SHARED_BENCH, SHARED_DATA, run_child
from .rounds import interleaved

VGA = (640, 480)
MODES = ("default", "buckets", "unpacked")


def stream_sources(count: int) -> List[str]:
    """`count` shared photo paths, cycled: Helen, dlib, the bench photos, then Sun CVPR'13."""
    paths: List[str] = []
    for listing in ("landmarks_300w_helen_train_subset.jsonl", "detection_dlib_faces.jsonl"):
        paths += [str(SHARED_DATA / json.loads(line)["image"]) for line in (SHARED_DATA / listing).read_text().splitlines()]
    paths += sorted(str(p) for p in SHARED_BENCH.glob("*_vga.jpg"))
    sun = (SHARED_DATA / "landmarks_sun_cvpr13.jsonl").read_text().splitlines()[:40]
    paths += [str(SHARED_DATA / json.loads(line)["image"]) for line in sun]
    return [paths[k % len(paths)] for k in range(count)]


def stream_sizes(count: int, sizes: int) -> List[tuple]:
    """(width, height) of each image: `sizes` sizes of about VGA's area, dealt round-robin after a shuffle-free
    stride so that neighbours differ."""
    table = [(w, round(VGA[0] * VGA[1] / w)) for w in (400 + (480 * k) // max(sizes - 1, 1) for k in range(sizes))]
    return [table[(k * 7) % sizes] for k in range(count)]


CHILD = r"""
import json, sys, time, dataclasses
import cv2
import numpy as np
import fastmtcnn
from fastmtcnn import pipeline
spec = json.loads(sys.argv[1])
images = []
for path, (w, h) in zip(spec["paths"], spec["sizes"]):
    image = cv2.imread(path)
    shrink = w * h < image.shape[0] * image.shape[1]
    images.append(cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC))
detector = fastmtcnn.Detector(backend=spec["backend"], num_threads=1, min_face_size=spec["min_face"],
                              cache_dir=False, shape_buckets=spec["mode"] == "buckets")
if spec["mode"] == "unpacked":
    detector.engine = dataclasses.replace(detector.engine, pack_area=0)
    detector._local = type(detector._local)()
first = cv2.resize(cv2.imread(spec["paths"][0]), tuple(spec["warm"]), interpolation=cv2.INTER_AREA)
detector.detect(first)
faces = 0
start, cpu = time.perf_counter(), time.process_time()
for image in images:
    faces += len(detector.detect(image))
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({"ms_per_image": 1000 * elapsed / len(images), "cpu_ms_per_image": 1000 * cpu / len(images),
                  "faces": faces}))
"""


def one_process(backend: str, paths: List[str], sizes: List[tuple], mode: str, min_face: float) -> dict:
    spec = {"backend": backend, "paths": paths, "sizes": sizes, "mode": mode, "min_face": min_face,
            "warm": list(VGA)}
    return run_child(CHILD, json.dumps(spec))


def run(rounds: int = 3, images: int = 200, sizes: int = 50, min_face: float = 20.0,
        backends: Sequence[str] = ("openvino", "opencv"), modes: Sequence[str] = ("default",)) -> Dict[tuple, dict]:
    """Every (backend, stream, mode) once per interleaved round -> {(backend, mode): {stream: {"cpu_ms_per_image",
    "ms_per_image": medians over rounds, "faces"}}} for the streams "one size" and "mixed"."""
    paths = stream_sources(images)
    streams = {"one size": [VGA] * images, "mixed": stream_sizes(images, sizes)}
    cases = [(b, s, m) for b in backends for s in streams for m in modes]
    records: Dict[tuple, List[dict]] = {case: [] for case in cases}
    for _, case in interleaved(cases, rounds):
        backend, stream, mode = case
        records[case].append(one_process(backend, paths, streams[stream], mode, min_face))
    return {(b, m): {s: {**{key: statistics.median(r[key] for r in records[(b, s, m)])
                            for key in ("cpu_ms_per_image", "ms_per_image")},
                         "faces": records[(b, s, m)][0]["faces"]} for s in streams}
            for b in backends for m in modes}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--sizes", type=int, default=50)
    parser.add_argument("--min-face", type=float, default=20.0)
    parser.add_argument("--backends", nargs="+", default=["openvino", "opencv"])
    parser.add_argument("--modes", nargs="+", default=["default", "buckets"], choices=MODES)
    args = parser.parse_args(argv)
    summary = run(args.rounds, args.images, args.sizes, args.min_face, args.backends, args.modes)
    print(f"{args.images} images, {args.sizes} sizes, min face {args.min_face:g}, 1 thread, {args.rounds} rounds, "
          f"load average {os.getloadavg()[0]:.1f} at the end (median ms per image; faces found)")
    for (backend, mode), streams in summary.items():
        one, mixed = streams["one size"], streams["mixed"]
        for key in ("cpu_ms_per_image", "ms_per_image"):
            print(f"  {backend:8s} {mode:8s} {key:16s} one size {one[key]:.1f} ({one['faces']} faces), mixed "
                  f"{mixed[key]:.1f} ({mixed['faces']} faces), mixed / one size {mixed[key] / one[key]:.3f}")


if __name__ == "__main__":
    main()
