"""Resident memory over many detections of mixed image sizes: does the detector leak?

    python -m bench.load.memory_soak [--detections 10000] [--warmup 500] [--min-face-size 20] [--threads 1]

Runs one `Detector` over images of varying size, aspect and colour layout (resized / cropped copies of the
shipped photos, gray and BGRA variants, a few blank frames), reads the process's resident set size
(/proc/self/status VmRSS) after the warm-up and every 1,000 detections, and exits 1 when it grew by more than
`--max-growth` percent (default 5) after the warm-up. Linux only (reads /proc).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCES = [REPO_ROOT / "tests" / "fixtures" / "group_640x480.jpg", REPO_ROOT / "examples" / "astronaut.jpg"]


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


MAX_WIDTH, MAX_ASPECT = 1280, 1.4


def image_stream(seed: int = 0):
    """An endless, reproducible mix of sizes (100 to 1280 px wide, height 0.5 to 1.4 x width) and layouts.

    The first image has the largest size of the mix, so the warm-up reaches the buffers' high-water mark
    (OpenCV keeps buffers sized for the largest input it has seen; that is bounded, not a leak)."""
    rng = np.random.default_rng(seed)
    photos = [cv2.imread(str(path)) for path in SOURCES]
    yield cv2.resize(photos[0], (MAX_WIDTH, int(MAX_WIDTH * MAX_ASPECT)), interpolation=cv2.INTER_AREA)
    while True:
        photo = photos[rng.integers(len(photos))]
        width = int(rng.integers(100, MAX_WIDTH + 1))
        height = int(width * rng.uniform(0.5, MAX_ASPECT))
        image = cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA)
        kind = rng.integers(10)
        if kind == 0:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        elif kind == 1:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
        elif kind == 2:
            image = np.zeros_like(image)
        yield image


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detections", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--min-face-size", type=float, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-growth", type=float, default=5.0, help="percent of the post-warm-up RSS")
    args = parser.parse_args(argv)

    from fastmtcnn import Detector

    detector = Detector(min_face_size=args.min_face_size, num_threads=args.threads)
    images = image_stream()
    start, faces, baseline, peak = time.perf_counter(), 0, None, 0.0
    for count in range(1, args.detections + 1):
        faces += len(detector.detect(next(images)))
        if count == args.warmup:
            baseline = rss_mib()
            print(f"after warm-up ({count} detections): RSS {baseline:.1f} MiB", flush=True)
        if count % 1000 == 0 or count == args.detections:
            now = rss_mib()
            peak = max(peak, now)
            print(f"{count} detections, {faces} faces, {time.perf_counter() - start:.0f} s: RSS {now:.1f} MiB", flush=True)
    final = rss_mib()
    growth = 100.0 * (final - baseline) / baseline if baseline else float("nan")
    print(f"RSS after warm-up {baseline:.1f} MiB, final {final:.1f} MiB, peak sampled {peak:.1f} MiB, "
          f"growth {growth:+.2f}% (limit {args.max_growth}%), threads {args.threads}, "
          f"{args.detections} detections in {time.perf_counter() - start:.0f} s")
    return 0 if growth <= args.max_growth else 1


if __name__ == "__main__":
    sys.exit(main())
