"""Pyramid level packing (`fastmtcnn.packing`) per engine: P-Net stage time against the packed-level area.

    python -m bench.packing [--areas 0 5000 15000 40000] [--min-face 20 40] [--rounds 7] [--portraits 5] [--stage run]

For each engine (OpenVINO f32, bf16 where native, OpenCV DNN where its DNN runs the masked P-Net) and min face size,
one cascade per packed-level area (`Engine.pack_area`, 0 = every level alone) runs stage 1 (`Cascade.propose`;
`--stage run`: the whole cascade, `Cascade.run`) on
the portraits (`--portraits` of each shared landmark set, resized to 640x480) in interleaved rounds (every area once
per image and round, in rotated order), timed in CPU time of this 1-thread process (every forward runs on the calling
thread). Reports per area the median over images of the fastest round, and the median per-image ratio to area 0;
checks that every area gives the same candidates (and faces). Needs ../shared.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from fastmtcnn import engines, set_num_threads  # noqa: E402
from fastmtcnn.nets import channel_map  # noqa: E402
from fastmtcnn.pipeline import Cascade  # noqa: E402
from fastmtcnn.settings import CascadeSettings  # noqa: E402

from .glue_time import load_images  # noqa: E402
from .machine import SHARED_DATA, cpu_flags  # noqa: E402
from .rounds import interleaved  # noqa: E402


def engine_choices():
    """(label, Engine) of each engine that can pack here."""
    found = []
    if engines.opencv_runs_masked_pnet():
        found.append(("opencv", engines.choose_engine("opencv", num_threads=1)))
    if engines.openvino_available():
        found.append(("openvino f32", engines.choose_engine("openvino", "f32", 1, cache=False)))
        if engines.native_bf16():
            found.append(("openvino bf16", engines.choose_engine("openvino", "bf16", 1, cache=False)))
    return found


def time_areas(engine, areas, min_face: float, images, rounds: int, stage: str = "propose"):
    """{area: [fastest CPU ms per image]} of `Cascade.<stage>` over interleaved rounds; raises when an area changes
    the candidates or the faces."""
    settings = CascadeSettings.create(min_face_size=min_face)
    cascades = {area: Cascade(settings, engine=dataclasses.replace(engine, pack_area=area)) for area in areas}
    channels = channel_map("bgr", 3)
    best = {area: [float("inf")] * len(images) for area in areas}
    for index, image in enumerate(images):
        want = cascades[areas[0]].propose(image, channels)
        faces = cascades[areas[0]].run(image, channels)
        for area in areas[1:]:
            np.testing.assert_array_equal(cascades[area].propose(image, channels), want)
            np.testing.assert_array_equal(cascades[area].run(image, channels).boxes, faces.boxes)
        for _, area in interleaved(areas, rounds):
            start = time.process_time()
            getattr(cascades[area], stage)(image, channels)
            best[area][index] = min(best[area][index], (time.process_time() - start) * 1e3)
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.packing", description=__doc__.split("\n\n")[0])
    parser.add_argument("--areas", type=int, nargs="+", default=[0, 5000, 15000, 40000])
    parser.add_argument("--min-face", type=float, nargs="+", default=[20, 40])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--portraits", type=int, default=5)
    parser.add_argument("--stage", choices=("propose", "run"), default="propose",
                        help="time stage 1 only (default) or the whole cascade")
    parser.add_argument("--engines", nargs="+", help="labels to run (default: every engine that can pack here)")
    args = parser.parse_args(argv)
    if not SHARED_DATA.exists():
        print(f"bench.packing: {SHARED_DATA} not found: this tool needs the shared data folder", file=sys.stderr)
        return 2
    set_num_threads(1)
    images = load_images(args.portraits)["portraits"]
    load = os.getloadavg()[0]
    print(f"flags: {cpu_flags()}; 1 thread, CPU time; {len(images)} portraits at 640x480; {args.rounds} rounds; "
          f"Cascade.{args.stage}; load average {load:.1f} at the start")
    print("| engine | min face | " + " | ".join(f"area {a}" for a in args.areas) + " |")
    print("|---|--:|" + "--:|" * len(args.areas))
    for label, engine in engine_choices():
        if args.engines and label not in args.engines:
            continue
        for min_face in args.min_face:
            best = time_areas(engine, args.areas, min_face, images, args.rounds, args.stage)
            cells = []
            for area in args.areas:
                ratio = statistics.median(b / a for a, b in zip(best[area], best[args.areas[0]]))
                cells.append(f"{statistics.median(best[area]):.2f} ms ({ratio:.2f}x)")
            print(f"| {label} | {min_face:g} | " + " | ".join(cells) + " |", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end; (Nx) = median per-image speed-up over area "
          f"{args.areas[0]}; candidates and faces identical for every area")
    return 0


if __name__ == "__main__":
    sys.exit(main())
