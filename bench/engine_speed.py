"""OpenCV DNN against OpenVINO (f32, and the bf16 hint) in one process, interleaved: the bare network forwards
on the bench suite's stage inputs, and `Detector.detect` end to end on the VGA bench photos.

    python -m bench.engine_speed [--rounds 15] [--out bench/results/engine_speed.md]

One thread everywhere (OMP/OpenBLAS/MKL/Numba pinned before import, cv2.setNumThreads(1), OpenVINO
INFERENCE_NUM_THREADS=1). Each round times every engine once per case, in a rotated order; the report gives the
median over rounds and, per case, OpenVINO's speed-up over OpenCV DNN of that same run. The bf16 row compiles
with INFERENCE_PRECISION_HINT=bf16 whatever the CPU (the detector itself falls back to f32 without native BF16):
it shows what OpenVINO does with the hint here.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Dict, List  # noqa: E402

import cv2  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402

from fastmtcnn import Detector, engines, set_num_threads  # noqa: E402
from fastmtcnn.nets import ONET, PNET, RNET  # noqa: E402
from fastmtcnn.runtime import SPEED_FLAGS, cpu_flags  # noqa: E402

from . import net_inputs  # noqa: E402
from .machine import SHARED_BENCH, cpu_model, image_source  # noqa: E402
from .net_inputs import crops  # noqa: E402
from .rounds import rotated  # noqa: E402


def stage_inputs(image: np.ndarray, min_face: float):
    """(P-Net blobs of every pyramid level, R-Net crops of propose's candidates, O-Net crops of refine's boxes),
    built as the cascade builds them (`bench.net_inputs`)."""
    blobs, candidates, refined = net_inputs.stage_inputs(image, Detector(min_face_size=min_face, backend="opencv",
                                                                         num_threads=1)._cascade())
    return blobs, crops(image, candidates, 24), crops(image, refined, 48)


def networks(spec) -> Dict[str, engines.Network]:
    return {"opencv": engines.OpenCVNetwork(spec), "openvino f32": engines.OpenVINONetwork(spec, "f32", 1),
            "openvino bf16 hint": engines.OpenVINONetwork(spec, "bf16", 1)}


def forward_all(network, blobs: List[np.ndarray], max_batch: int = 256) -> List[np.ndarray]:
    """Every blob (R/O-Net: in chunks of max_batch, as the cascade), outputs copied (they are views)."""
    outputs = []
    for blob in blobs:
        for start in range(0, len(blob), max_batch):
            outputs.extend(np.array(o) for o in network.forward(blob[start:start + max_batch]))
    return outputs


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = CLOCKS["wall"]


def timed(function: Callable) -> float:
    """ms of one call on the chosen clock (`--clock cpu`: this process's CPU time, which with 1 thread is the work
    done whatever else the machine runs)."""
    start = _clock()
    function()
    return (_clock() - start) * 1000.0


def interleave(cases: Dict[str, Dict[str, Callable]], rounds: int) -> Dict[str, Dict[str, float]]:
    """{case: {engine: median ms}}: each round runs every case's engines once, rotating the engine order."""
    times = {case: {name: [] for name in runs} for case, runs in cases.items()}
    for runs in cases.values():
        for run in runs.values():
            run()  # warm-up
    for round_index in range(rounds):
        for case, runs in cases.items():
            for name in rotated(list(runs), round_index):
                times[case][name].append(timed(runs[name]))
    return {case: {name: statistics.median(values) for name, values in per.items()} for case, per in times.items()}


def forward_cases(image: np.ndarray):
    """Forward cases on the VGA photo at min face 20, and the max abs difference of each engine to OpenCV."""
    blobs, rnet_crops, onet_crops = stage_inputs(image, 20)
    cases, diffs, labels = {}, {}, {}
    for spec, inputs, label in ((PNET, blobs, f"P-Net, {len(blobs)} pyramid levels"),
                                (RNET, [rnet_crops], f"R-Net, {len(rnet_crops)} crops"),
                                (ONET, [onet_crops], f"O-Net, {len(onet_crops)} crops")):
        nets = networks(spec)
        reference = forward_all(nets["opencv"], inputs)
        diffs[label] = {name: max(float(np.abs(a - b).max()) for a, b in zip(forward_all(net, inputs), reference))
                        for name, net in nets.items()}
        cases[label] = {name: (lambda net=net, inputs=inputs: forward_all(net, inputs)) for name, net in nets.items()}
        labels[spec.stem] = label
    return cases, diffs


def detect_cases(images: List[Path]):
    cases = {}
    for min_face in (20, 40):
        detectors = {"opencv": Detector(min_face_size=min_face, backend="opencv", num_threads=1),
                     "openvino f32": Detector(min_face_size=min_face, backend="openvino", num_threads=1),
                     "openvino bf16": Detector(min_face_size=min_face, backend="openvino", num_threads=1,
                                               precision="bf16")}
        for path in images:
            pixels = cv2.imread(str(path))
            cases[f"detect {path.name} min {min_face}"] = {
                name: (lambda d=detector, p=pixels: d.detect(p)) for name, detector in detectors.items()}
    return cases


def report(forward_ms, diffs, detect_ms, rounds: int, load: tuple) -> str:
    flags = ", ".join(cpu_flags()) or "unknown"
    clock = "CPU" if _clock is time.process_time else "wall"
    lines = [f"# OpenCV DNN vs OpenVINO, 1 thread, median of {rounds} interleaved rounds ({clock} time)", "",
             f"{cpu_model()}, {os.cpu_count()} vCPU, CPU flags present (of {', '.join(SPEED_FLAGS)}): {flags}; "
             f"opencv-python {cv2.__version__}, "
             f"OpenVINO {engines.openvino_version()}, numpy {np.__version__}, numba {numba.__version__}; "
             f"load average before/after: {load[0]:.1f} / {load[1]:.1f}", "",
             "| forward | opencv | openvino f32 | openvino bf16 hint | f32 max diff | bf16 hint max diff |",
             "|---|--:|--:|--:|--:|--:|"]
    for case, ms in forward_ms.items():
        base = ms["opencv"]
        lines.append(f"| {case} | {base:.1f} ms | {ms['openvino f32']:.1f} ms ({base / ms['openvino f32']:.2f}x) | "
                     f"{ms['openvino bf16 hint']:.1f} ms ({base / ms['openvino bf16 hint']:.2f}x) | "
                     f"{diffs[case]['openvino f32']:.1e} | {diffs[case]['openvino bf16 hint']:.1e} |")
    lines += ["", "| detect (VGA) | opencv | openvino f32 | speed-up | openvino bf16 (precision of the run) | "
              "bf16 / f32 speed-up |", "|---|--:|--:|--:|--:|--:|"]
    for min_face in (20, 40):
        ratios, bf16_ratios = [], []
        for case, ms in detect_ms.items():
            if case.endswith(f" min {min_face}"):
                ratios.append(ms["opencv"] / ms["openvino f32"])
                bf16_ratios.append(ms["openvino f32"] / ms["openvino bf16"])
                lines.append(f"| {case[len('detect '):]} | {ms['opencv']:.1f} ms | {ms['openvino f32']:.1f} ms | "
                             f"{ratios[-1]:.2f}x | {ms['openvino bf16']:.1f} ms | {bf16_ratios[-1]:.2f}x |")
        lines.append(f"| **median over images, min {min_face}** | | | **{statistics.median(ratios):.2f}x** | | "
                     f"**{statistics.median(bf16_ratios):.2f}x** |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (medians over these)")
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown report here")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall time, or this process's CPU time (1 thread: the work, on a busy machine)")
    args = parser.parse_args(argv)
    global _clock
    _clock = CLOCKS[args.clock]
    set_num_threads(1)
    load_before = os.getloadavg()[0]
    vga = image_source("vga")
    forward, diffs = forward_cases(cv2.imread(str(vga.path)))
    images = sorted(SHARED_BENCH.glob("*_vga.jpg")) or [vga.path]
    forward_ms = interleave(forward, args.rounds)
    detect_ms = interleave(detect_cases(images), args.rounds)
    text = report(forward_ms, diffs, detect_ms, args.rounds, (load_before, os.getloadavg()[0]))
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
