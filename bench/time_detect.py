"""Time one MTCNN implementation in this Python environment; prints one JSON line. Used by `bench.compare_envs`.

Run by path (`python bench/time_detect.py ...`), not as part of the `bench` package: it needs only the standard
library, numpy, OpenCV and the implementation timed, so it runs in any virtual environment, e.g. one with
another OpenCV version, or one with facenet-pytorch (and torch) that must never be a dependency of ours.
fastmtcnn is imported from this repository's source tree (weights from ../weights), not from site-packages.

    python bench/time_detect.py --impl fastmtcnn --threads 1 --repeat 9 \
        --case vga-20=../shared/data/bench/dlib_2007_007763_vga.jpg:20

A case is NAME=PATH[@WIDTHxHEIGHT]:MIN_FACE (the image is resized with INTER_CUBIC when a size is given).
Per case: one warm-up call, then `repeat` timed calls of the detection alone (decoding excluded).
Output: {"impl", "versions", "threads", "cases": {NAME: {"fastest_ms", "median_ms", "faces"}}}.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
IMPLEMENTATIONS = ("fastmtcnn", "facenet-pytorch")
_CASE = re.compile(r"^(?P<name>[\w.-]+)=(?P<path>.+?)(@(?P<w>\d+)x(?P<h>\d+))?:(?P<min_face>\d+(\.\d+)?)$")


def parse_case(text: str) -> dict:
    """'vga-20=/a/b.jpg:20' or '1080p-40=/a/c.jpg@1440x1080:40' -> {name, path, size, min_face}."""
    match = _CASE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"case {text!r}: expected NAME=PATH[@WIDTHxHEIGHT]:MIN_FACE")
    size = (int(match["w"]), int(match["h"])) if match["w"] else None
    return {"name": match["name"], "path": match["path"], "size": size, "min_face": float(match["min_face"])}


def pin_threads(threads: int) -> None:
    """Thread pools of the BLAS/OpenMP runtimes and Numba, before any of them is imported."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(threads)


def fastmtcnn_detector(threads: int):
    """(versions, make(min_face) -> detect(bgr) -> face count) for fastmtcnn from this source tree."""
    sys.path.insert(0, str(REPO_ROOT))
    import cv2
    import numba
    import numpy as np

    import fastmtcnn

    def make(min_face: float):
        detector = fastmtcnn.Detector(min_face_size=min_face, num_threads=threads)
        return lambda bgr: len(detector.detect(bgr))
    return {"fastmtcnn": fastmtcnn.__version__, "opencv": cv2.__version__, "numpy": np.__version__,
            "numba": numba.__version__}, make


def facenet_detector(threads: int):
    """The same for facenet-pytorch's MTCNN on the CPU, with the thresholds and factor of our defaults."""
    from importlib.metadata import version

    import cv2
    import torch
    from facenet_pytorch import MTCNN

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)

    def make(min_face: float):
        mtcnn = MTCNN(min_face_size=min_face, thresholds=[0.6, 0.7, 0.7], factor=0.709, keep_all=True,
                      post_process=False, device="cpu")

        def detect(bgr):
            with torch.inference_mode():
                boxes, _ = mtcnn.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            return 0 if boxes is None else len(boxes)
        return detect
    return {"facenet-pytorch": version("facenet-pytorch"), "torch": torch.__version__,
            "opencv": cv2.__version__}, make


def load(case: dict):
    import cv2
    pixels = cv2.imread(case["path"])
    if pixels is None:
        raise SystemExit(f"time_detect: cannot read image {case['path']}")
    if case["size"]:
        pixels = cv2.resize(pixels, tuple(case["size"]), interpolation=cv2.INTER_CUBIC)
    return pixels


def time_case(make, case: dict, repeat: int) -> dict:
    detect, pixels = make(case["min_face"]), load(case)
    faces = detect(pixels)  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        detect(pixels)
        times.append((time.perf_counter() - start) * 1000.0)
    return {"fastest_ms": round(min(times), 3), "median_ms": round(statistics.median(times), 3), "faces": faces}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=IMPLEMENTATIONS, default="fastmtcnn")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=9, help="timed calls per case (default 9)")
    parser.add_argument("--case", type=parse_case, action="append", required=True, help="NAME=PATH[@WxH]:MIN_FACE")
    args = parser.parse_args(argv)
    pin_threads(args.threads)
    versions, make = (fastmtcnn_detector if args.impl == "fastmtcnn" else facenet_detector)(args.threads)
    cases = {case["name"]: time_case(make, case, args.repeat) for case in args.case}
    print(json.dumps({"impl": args.impl, "versions": versions, "threads": args.threads, "cases": cases}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
