"""Time outside the network forwards, per cascade stage: `python -m bench.glue_time`.

For each image and min face size, runs `Cascade.propose`, `refine` and `output` (the detector's own cascade)
`--repeat` times, with every network's `forward` wrapped in a timer, and reports per stage the fastest total,
the fastest forwards and the fastest rest ("glue": pyramid, kernels, NumPy, Python), each the minimum over the
runs on its own (on a shared machine other jobs only add time). Images: the bench
photos (VGA) and portraits (the first `--portraits` images of each shared landmark set, resized to 640x480).
One thread (OpenCV, Numba, BLAS); medians over images. Needs ../shared (says so and exits 2 without it).

    python -m bench.glue_time [--min-face 20 40] [--repeat 9] [--portraits 10] [--backend opencv]
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Dict, List, Tuple  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from fastmtcnn import Detector, set_num_threads  # noqa: E402
from fastmtcnn.nets import channel_map  # noqa: E402

from .machine import PORTRAIT_SIZE, SHARED_BENCH, SHARED_DATA, cpu_flags, machine_info, portrait_paths  # noqa: E402

BENCH_PHOTOS = ("dlib_2007_007763_vga.jpg", "helen_1673608778_1_vga.jpg", "helen_2294325056_1_vga.jpg")
STAGES = ("propose", "refine", "output")


def load_images(per_set: int) -> Dict[str, List[np.ndarray]]:
    """{"bench": the bench photos as shipped (VGA), "portraits": portraits resized to 640x480}, BGR uint8."""
    bench = [cv2.imread(str(SHARED_BENCH / name)) for name in BENCH_PHOTOS]
    portraits = [cv2.resize(cv2.imread(str(path)), PORTRAIT_SIZE, interpolation=cv2.INTER_AREA)
                 for path in portrait_paths(per_set)]
    return {"bench": bench, "portraits": portraits}


class ForwardTimer:
    """Wraps the forwards of a cascade's three networks; `seconds` accumulates their time."""

    def __init__(self, cascade):
        self.seconds = 0.0
        for network in (cascade.pnet, cascade.rnet, cascade.onet):
            network.forward = self._timed(network.forward)

    def _timed(self, forward):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return forward(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
        return timed


def time_stages(cascade, timer: ForwardTimer, image: np.ndarray, repeat: int) -> Dict[str, Tuple[float, float, float]]:
    """{stage: (fastest total ms, fastest forward ms, fastest glue ms)} over `repeat` runs of the three stages.
    Each is the minimum over the runs on its own: other jobs on the machine only ever add time."""
    channels = channel_map("bgr", 3)
    best = {stage: (float("inf"),) * 3 for stage in STAGES}
    for _ in range(repeat + 1):  # the first run warms up
        inputs = (image, channels)
        for stage in STAGES:
            timer.seconds = 0.0
            start = time.perf_counter()
            result = getattr(cascade, stage)(*inputs)
            total = (time.perf_counter() - start) * 1e3
            forward = timer.seconds * 1e3
            best[stage] = tuple(min(a, b) for a, b in zip(best[stage], (total, forward, total - forward)))
            inputs = (image, channels, result)
    return best


def measure(images: Dict[str, List[np.ndarray]], min_faces, repeat: int, detector_args: dict) -> List[dict]:
    rows = []
    for min_face in min_faces:
        cascade = Detector(min_face_size=min_face, num_threads=1, **detector_args)._cascade()
        timer = ForwardTimer(cascade)
        for set_name, pixels in images.items():
            per_image = [time_stages(cascade, timer, image, repeat) for image in pixels]
            row = {"set": set_name, "min_face": min_face, "images": len(pixels)}
            for stage in STAGES:
                row[stage] = {key: statistics.median(r[stage][k] for r in per_image)
                              for k, key in enumerate(("total_ms", "forward_ms", "glue_ms"))}
            totals = [sum(r[s][0] for s in STAGES) for r in per_image]
            glues = [sum(r[s][2] for s in STAGES) for r in per_image]
            row["total_ms"] = statistics.median(totals)
            row["glue_ms"] = statistics.median(glues)
            row["glue_share"] = statistics.median(g / t for g, t in zip(glues, totals))
            rows.append(row)
    return rows


def markdown(rows: List[dict], command: str, load: str) -> str:
    info = machine_info()
    lines = [f"Command: `{command}`; {info['cpu_model']}, {info['cpu_count']} cores, flags: {cpu_flags()}; "
             f"1 thread; load average before/after {load}.",
             "Per image and stage: the fastest total, forward and glue (= stage - forwards) time over the runs, "
             "each on its own; cells: median over images, ms. glue share = glue / total per image, median.", "",
             "| set | min face | images | propose glue / fwd | refine glue / fwd | output glue / fwd | total | glue "
             "| glue share |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for row in rows:
        stages = " | ".join(f"{row[s]['glue_ms']:.2f} / {row[s]['forward_ms']:.2f}" for s in STAGES)
        lines.append(f"| {row['set']} | {row['min_face']} | {row['images']} | {stages} | {row['total_ms']:.2f} | "
                     f"{row['glue_ms']:.2f} | {row['glue_share'] * 100:.1f}% |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.glue_time", description=__doc__.split("\n\n")[0])
    parser.add_argument("--min-face", type=float, nargs="+", default=[40, 20])
    parser.add_argument("--repeat", type=int, default=9, help="timed runs per image (fastest kept)")
    parser.add_argument("--portraits", type=int, default=10, help="portraits taken from each landmark set")
    parser.add_argument("--backend", help="Detector(backend=...) when the installed fastmtcnn has engines")
    parser.add_argument("--precision", help="Detector(precision=...)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    if not SHARED_DATA.exists():
        print(f"bench.glue_time: {SHARED_DATA} not found: this tool needs the shared data folder", file=sys.stderr)
        return 2
    detector_args = {key: value for key, value in (("backend", args.backend), ("precision", args.precision))
                     if value}
    set_num_threads(1)
    load_before = os.getloadavg()[0]
    rows = measure(load_images(args.portraits), [int(m) if m == int(m) else m for m in args.min_face],
                   args.repeat, detector_args)
    command = "python -m bench.glue_time " + " ".join(argv if argv is not None else sys.argv[1:])
    print(markdown(rows, command, f"{load_before:.2f} / {os.getloadavg()[0]:.2f}"))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
