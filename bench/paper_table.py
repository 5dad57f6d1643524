"""Our runtime next to the MTCNN paper's (Table I and "Runtime efficiency"): `python -m bench.paper_table`.

Writes bench/results/paper_table.md (and paper_table.json; a PNG bar chart too when matplotlib happens to be
importable, which it need not be). Measured like the paper's Table I: 300 forward passes of each network at
batch 1 and 12x12, 24x24, 48x48 input, one thread, median of several repetitions; plus `Detector.detect` end
to end at VGA, min face 20 and 40. Hardware differs from the paper's, so the table also normalises by this
machine's single-thread SGEMM GFLOP/s (numpy float32 1024x1024 matmul in a subprocess with the BLAS pinned
to one thread) against an assumed figure for the paper's CPU (stated in the output).
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import List, Sequence, Tuple  # noqa: E402

import cv2  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402

import fastmtcnn  # noqa: E402
from fastmtcnn import Detector, engines  # noqa: E402

from .machine import BENCH_DIR, REPO_ROOT, cpu_flags, machine_info  # noqa: E402

# The paper's figures, from ../shared/reference/paper.md (Zhang et al., IEEE SPL 2016): Table I (time of 300
# forward passes of one network; CascadeCNN = Li et al., CVPR 2015) and section "Runtime efficiency".
PAPER_300_FORWARDS_S = {"P-Net": 0.031, "R-Net": 0.458, "O-Net": 1.347}
CASCADECNN_300_FORWARDS_S = {"P-Net": 0.038, "R-Net": 0.738, "O-Net": 3.577}  # 12-Net, 24-Net, 48-Net
CASCADECNN_NAMES = {"P-Net": "12-Net", "R-Net": "24-Net", "O-Net": "48-Net"}
PAPER_FPS_CPU, PAPER_CPU_GHZ, PAPER_FPS_GPU = 16, 2.60, 99  # "16 fps on a 2.60 GHz CPU, 99 fps on a GPU"
INPUT_SIZES = {"P-Net": 12, "R-Net": 24, "O-Net": 48}

# Assumption (the paper names neither the CPU nor its GFLOP/s): a 2.60 GHz Intel core of 2016 with AVX but
# no FMA (Sandy/Ivy Bridge Xeon, e.g. E5-2670/E5-2650 v2): 16 float32 FLOP/cycle peak = 41.6 GFLOP/s per
# core, of which single-thread SGEMM reaches ~90%.
PAPER_CPU_SGEMM_GFLOPS = 0.9 * 16 * PAPER_CPU_GHZ

SGEMM_SCRIPT = """
import os, time
import numpy as np
n = 1024
rng = np.random.default_rng(0)
a = rng.standard_normal((n, n), dtype=np.float32)
b = rng.standard_normal((n, n), dtype=np.float32)
a @ b
best = []
for _ in range(7):
    start = time.perf_counter(); a @ b; best.append(time.perf_counter() - start)
best.sort()
print(2.0 * n ** 3 / best[len(best) // 2] / 1e9)
"""

SHARED_VGA = REPO_ROOT.parent / "shared" / "data" / "bench" / "dlib_2007_007763_vga.jpg"
FALLBACK_VGA = REPO_ROOT / "tests" / "fixtures" / "group_640x480.jpg"


def sgemm_gflops() -> float:
    """Single-thread float32 GEMM GFLOP/s of this machine (median of 7 timings of a 1024^3 matmul)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", SGEMM_SCRIPT], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def forwards_300(network, size: int, repeats: int) -> float:
    """Median over `repeats` of the time of 300 forwards of `network` at batch 1, size x size input."""
    blob = np.random.default_rng(0).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
    for _ in range(10):
        network.forward(blob)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(300):
            network.forward(blob)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def end_to_end(image: np.ndarray, min_face: int, repeats: int, backend: str = "opencv", precision: str = "f32"):
    detector = Detector(min_face_size=min_face, num_threads=1, backend=backend, precision=precision)
    faces = detector.detect(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        detector.detect(image)
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(faces)


def available_engines() -> List[Tuple[str, str]]:
    """(backend, precision) pairs to measure: OpenCV DNN, OpenVINO f32 when installed, bf16 where native."""
    pairs = [("opencv", "f32")]
    if engines.openvino_available():
        pairs.append(("openvino", "f32"))
        if engines.native_bf16():
            pairs.append(("openvino", "bf16"))
    return pairs


def measure_engine(backend: str, precision: str, image: np.ndarray, repeats: int) -> dict:
    """Table I forwards and end-to-end detection on one engine, 1 thread."""
    cascade = Detector(num_threads=1, backend=backend, precision=precision)._cascade()
    nets = {"P-Net": cascade.pnet, "R-Net": cascade.rnet, "O-Net": cascade.onet}
    forwards = {name: forwards_300(net, INPUT_SIZES[name], repeats) for name, net in nets.items()}
    detect = {}
    for min_face in (20, 40):
        median_s, faces = end_to_end(image, min_face, max(repeats, 5) * 2, backend, precision)
        detect[min_face] = {"median_ms": median_s * 1e3, "fps": 1.0 / median_s, "faces": faces}
    return {"engine": cascade.engine.describe(), "forwards_300_s": forwards, "detect_vga": detect}


def measure(repeats: int, engine_pairs: Sequence[Tuple[str, str]]) -> dict:
    fastmtcnn.set_num_threads(1)
    gflops = sgemm_gflops()
    image_path = SHARED_VGA if SHARED_VGA.exists() else FALLBACK_VGA
    image = cv2.imread(str(image_path))
    results = {backend if precision == "f32" else f"{backend}-{precision}": measure_engine(backend, precision, image,
                                                                                           repeats)
               for backend, precision in engine_pairs}
    info = machine_info()
    return {"machine": info, "sgemm_gflops_1thread": gflops, "paper_cpu_sgemm_gflops_assumed": PAPER_CPU_SGEMM_GFLOPS,
            "engines": results, "cpu_flags": cpu_flags(), "repeats": repeats,
            "image": "../" + str(image_path.relative_to(REPO_ROOT.parent)) if image_path == SHARED_VGA
            else str(image_path.relative_to(REPO_ROOT)),
            "image_size": f"{image.shape[1]}x{image.shape[0]}", "opencv": cv2.__version__,
            "openvino": engines.openvino_version(), "numpy": np.__version__,
            "numba": numba.__version__, "fastmtcnn": fastmtcnn.__version__,
            "threads": {"cv2": cv2.getNumThreads(), "numba": numba.get_num_threads()},
            "date": time.strftime("%Y-%m-%d"),
            "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}


def render(r: dict) -> str:
    m = r["machine"]
    scale = r["sgemm_gflops_1thread"] / r["paper_cpu_sgemm_gflops_assumed"]  # >1: our core is faster
    clock = f"{m['cpu_mhz'] / 1000:.2f} GHz (current clock from /proc/cpuinfo)" if m["cpu_mhz"] else "unknown clock"
    lines = [
        "# fastmtcnn runtime vs the MTCNN paper",
        "",
        f"Generated by `python -m bench.paper_table` on {r['date']}. **The hardware differs**: the paper ran "
        f"\"un-optimized MATLAB code\" (with Caffe) on an unnamed {PAPER_CPU_GHZ:.2f} GHz CPU (threads not stated); "
        f"ours ran on **{m['cpu_model']}**, {clock}, {m['cpu_count']} cores available, "
        f"CPU flags: {r['cpu_flags']}; "
        f"**1 thread** (cv2.setNumThreads(1), Numba 1 thread, BLAS 1 thread, OpenVINO 1 inference thread), "
        f"OpenCV {r['opencv']}, OpenVINO {r['openvino'] or 'not installed'}, "
        f"numpy {r['numpy']}, Numba {r['numba']}, fastmtcnn {r['fastmtcnn']}, Python {m['python']}, {m['platform']}; "
        f"1-minute load average at the end of the run: {r['load_average_1min']} (other jobs on the machine).",
        "",
        f"Machine speed: single-thread SGEMM (numpy float32 1024x1024 matmul, OPENBLAS/OMP/MKL_NUM_THREADS=1, "
        f"median of 7) = **{r['sgemm_gflops_1thread']:.1f} GFLOP/s** here. The paper gives no GFLOP/s; we assume "
        f"**{r['paper_cpu_sgemm_gflops_assumed']:.1f} GFLOP/s** for its CPU (a {PAPER_CPU_GHZ:.2f} GHz Sandy/Ivy Bridge "
        f"class Intel core: AVX without FMA, 16 float32 FLOP/cycle = {16 * PAPER_CPU_GHZ:.1f} GFLOP/s peak, ~90% "
        f"reached by SGEMM). The \"ours, normalised\" column is our time x (our GFLOP/s / assumed paper GFLOP/s) = "
        f"x{scale:.2f}, i.e. an estimate of our code on the paper's core; \"ms x GFLOP/s\" is the assumption-free "
        f"form (time x this machine's GFLOP/s = GFLOP of SGEMM-equivalent work), to compare with other machines.",
        "",
        "## Table I: 300 forward passes of one network (batch 1)",
        "",
        f"Ours: `Network.forward` on each engine (engines: {', '.join(e['engine'] for e in r['engines'].values())}), "
        f"300 calls at batch 1, median of {r['repeats']} repetitions.",
        "",
        "| network | input | engine | CascadeCNN (paper) | MTCNN (paper) | ours, measured | ours, normalised to "
        "paper CPU | ours, ms x GFLOP/s | paper / ours (normalised) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in PAPER_300_FORWARDS_S:
        size = INPUT_SIZES[name]
        for engine_id, e in r["engines"].items():
            seconds = e["forwards_300_s"][name]
            normalised = seconds * scale
            lines.append(
                f"| {name} | {size}x{size} | {engine_id} | {CASCADECNN_300_FORWARDS_S[name]:.3f} s "
                f"({CASCADECNN_NAMES[name]}) | {PAPER_300_FORWARDS_S[name]:.3f} s | {seconds:.3f} s "
                f"| {normalised:.3f} s "
                f"| {seconds * 1e3 * r['sgemm_gflops_1thread']:.0f} | {PAPER_300_FORWARDS_S[name] / normalised:.1f}x |")
    d20, d40 = (next(iter(r["engines"].values()))["detect_vga"][m] for m in (20, 40))
    lines += [
        "",
        "## End to end",
        "",
        f"Ours: `Detector.detect` on `{r['image']}` ({r['image_size']}, {d20['faces']} faces found at min face 20, "
        f"{d40['faces']} at 40), factor 0.709, thresholds 0.6/0.7/0.7, 1 thread, median of "
        f"{max(r['repeats'], 5) * 2} calls. The paper gives no image size, min face, factor or threads for its fps.",
        "",
        "| what | fps | median ms per image | normalised to paper CPU (fps) | ms x GFLOP/s |",
        "|---|---|---|---|---|",
        f"| MTCNN paper, CPU ({PAPER_CPU_GHZ:.2f} GHz, MATLAB + Caffe) | {PAPER_FPS_CPU} | {1e3 / PAPER_FPS_CPU:.1f} "
        f"| {PAPER_FPS_CPU} | {1e3 / PAPER_FPS_CPU * PAPER_CPU_SGEMM_GFLOPS:.0f} (assumed GFLOP/s) |",
        f"| MTCNN paper, GPU (Titan Black) | {PAPER_FPS_GPU} | {1e3 / PAPER_FPS_GPU:.1f} | - | - |",
    ]
    for engine_id, e in r["engines"].items():
        for min_face in (20, 40):
            d = e["detect_vga"][min_face]
            lines.append(f"| fastmtcnn ({engine_id}), VGA, min face {min_face}, 1 thread | {d['fps']:.1f} "
                         f"| {d['median_ms']:.1f} | {d['fps'] / scale:.1f} "
                         f"| {d['median_ms'] * r['sgemm_gflops_1thread']:.0f} |")
    lines += [
        "",
        "Caveats: cost grows with the number of faces and candidates (R-Net/O-Net batches) and with the pyramid "
        "(image size / min face), none of which the paper states; the SGEMM normalisation only accounts for raw "
        "float throughput, not memory bandwidth, caches or the DNN library. The machine this ran on is shared, "
        "so timings carry roughly +/-20% noise.",
        "",
    ]
    return "\n".join(lines)


def bar_chart(r: dict, path: Path) -> bool:
    """PNG of the Table I times (paper vs ours normalised); skipped silently without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:
        return False
    scale = r["sgemm_gflops_1thread"] / r["paper_cpu_sgemm_gflops_assumed"]
    names = list(PAPER_300_FORWARDS_S)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for k, (label, values) in enumerate((("CascadeCNN (paper)", CASCADECNN_300_FORWARDS_S),
                                         ("MTCNN (paper)", PAPER_300_FORWARDS_S),
                                         ("fastmtcnn (normalised)",
                                          {n: r["engines"]["opencv"]["forwards_300_s"][n] * scale for n in names}))):
        ax.bar(x + (k - 1) * 0.27, [values[n] for n in names], 0.27, label=label)
    ax.set_xticks(x, names)
    ax.set_ylabel("300 forwards (s)")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.paper_table", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="repetitions of the 300-forward timing (median)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results", help="output folder")
    parser.add_argument("--engines", choices=("all", "opencv"), default="all",
                        help="all: OpenCV DNN, OpenVINO f32 when installed, bf16 where the CPU runs it natively")
    args = parser.parse_args(argv)
    results = measure(args.repeats, available_engines() if args.engines == "all" else [("opencv", "f32")])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "paper_table.md").write_text(render(results))
    (args.out / "paper_table.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    chart = bar_chart(results, args.out / "paper_table.png")
    print(render(results))
    print(f"wrote {args.out / 'paper_table.md'}, paper_table.json" + (", paper_table.png" if chart else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
