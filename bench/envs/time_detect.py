"""Time one MTCNN implementation in this Python environment; prints one JSON line. Used by `bench.envs.compare_envs`.

Run by path (`python bench/envs/time_detect.py ...`), not as part of the `bench` package: it needs only the standard
library, numpy, OpenCV and the implementation timed, so it runs in any virtual environment, e.g. one with
another OpenCV version, or one with facenet-pytorch (and torch) that must never be a dependency of ours.
fastmtcnn is imported from this repository's source tree (weights from its weights/), not from site-packages:
`compare_envs` puts the repository root on the child's PYTHONPATH (do the same when you run it by hand).

    python bench/envs/time_detect.py --impl fastmtcnn --threads 1 --repeat 9 \
        --case vga-20=../shared/data/bench/dlib_2007_007763_vga.jpg:20

A case is NAME=PATH[@WIDTHxHEIGHT]:MIN_FACE (the image is resized with INTER_CUBIC when a size is given, with
INTER_AREA when it shrinks). PATH may be a .txt file listing images, one path per line (relative to that file):
the case is then the set, each image timed alone. Per image: one warm-up call, then `repeat` timed calls of the
detection alone (decoding excluded). `--backend` / `--precision` choose fastmtcnn's engine (the engine that ran
is reported: bf16 falls back to f32 on a CPU without native BF16).
Output: {"impl", "versions", "engine", "threads", "cases": {NAME: {"fastest_ms", "median_ms", "faces",
"images"}}}; for a set, fastest_ms / median_ms are medians over its images and faces is the total.
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

REPO_ROOT = Path(__file__).resolve().parents[2]
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


def fastmtcnn_detector(threads: int, backend: str = "opencv", precision: str = "f32"):
    """(versions, engine, make(min_face) -> detect(bgr) -> face count) for fastmtcnn from this source tree;
    engine = "opencv f32" / "openvino f32" / ..., what `Detector` actually runs."""
    import cv2
    import numba
    import numpy as np

    import fastmtcnn
    from fastmtcnn import engines

    def make(min_face: float):
        detector = fastmtcnn.Detector(min_face_size=min_face, num_threads=threads, backend=backend,
                                      precision=precision)
        return lambda bgr: len(detector.detect(bgr))
    engine = engines.choose_engine(backend, precision, threads)
    versions = {"fastmtcnn": fastmtcnn.__version__, "opencv": cv2.__version__, "numpy": np.__version__,
                "numba": numba.__version__}
    if engine.backend == "openvino":
        versions["openvino"] = engines.openvino_version()
    return versions, f"{engine.backend} {engine.precision}", make


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
            "opencv": cv2.__version__}, "torch", make


def image_paths(path: str) -> list:
    """[path], or the images a .txt list names (one per line, relative to the list's folder)."""
    if not path.endswith(".txt"):
        return [path]
    folder = Path(path).parent
    return [str(folder / line.strip()) for line in Path(path).read_text().splitlines() if line.strip()]


def load(path: str, size):
    import cv2
    pixels = cv2.imread(path)
    if pixels is None:
        raise SystemExit(f"time_detect: cannot read image {path}")
    if size:
        shrink = size[0] * size[1] < pixels.shape[0] * pixels.shape[1]
        pixels = cv2.resize(pixels, tuple(size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return pixels


#: BENCH_CLOCK=cpu: time this process's CPU time instead of the wall clock (with 1 thread, the work done, readable
#: on a machine other jobs keep busy; `compare_envs --clock cpu` sets it).
CLOCK = time.process_time if os.environ.get("BENCH_CLOCK") == "cpu" else time.perf_counter


def time_image(detect, pixels, repeat: int):
    """(fastest ms, median ms, faces) of `repeat` calls after one warm-up call."""
    faces = detect(pixels)
    times = []
    for _ in range(repeat):
        start = CLOCK()
        detect(pixels)
        times.append((CLOCK() - start) * 1000.0)
    return min(times), statistics.median(times), faces


def time_case(make, case: dict, repeat: int) -> dict:
    detect = make(case["min_face"])
    results = [time_image(detect, load(path, case["size"]), repeat) for path in image_paths(case["path"])]
    return {"fastest_ms": round(statistics.median(r[0] for r in results), 3),
            "median_ms": round(statistics.median(r[1] for r in results), 3),
            "faces": sum(r[2] for r in results), "images": len(results)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=IMPLEMENTATIONS, default="fastmtcnn")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=9, help="timed calls per case (default 9)")
    parser.add_argument("--case", type=parse_case, action="append", required=True, help="NAME=PATH[@WxH]:MIN_FACE")
    parser.add_argument("--backend", default="opencv", help="fastmtcnn's engine: opencv, openvino or auto")
    parser.add_argument("--precision", default="f32", help="fastmtcnn's precision: f32 or bf16")
    args = parser.parse_args(argv)
    pin_threads(args.threads)
    if args.impl == "fastmtcnn":
        versions, engine, make = fastmtcnn_detector(args.threads, args.backend, args.precision)
    else:
        versions, engine, make = facenet_detector(args.threads)
    cases = {case["name"]: time_case(make, case, args.repeat) for case in args.case}
    print(json.dumps({"impl": args.impl, "versions": versions, "engine": engine, "threads": args.threads,
                      "cases": cases}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
