"""Who is measuring and on what: CPU model, clock, core count, the baselines folder name, the benchmark images.

Standard library only, so that `bench.gate` and `bench.envs.compare_envs` run without numpy, OpenCV or the package.
"""
from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
BASELINES_DIR = BENCH_DIR / "baselines"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
SHARED_BENCH = SHARED_DATA / "bench"
#: Portrait sets: the shared 5-point landmark sets (one face per image, large), first PORTRAITS_PER_SET of each.
PORTRAIT_SETS = ("landmarks_sun_cvpr13.jsonl", "landmarks_300w_helen_train_subset.jsonl")
PORTRAITS_PER_SET = 10
#: Portraits are timed resized to VGA.
PORTRAIT_SIZE = (640, 480)

#: Benchmark images: key -> (file in ../shared/data/bench, fallback shipped with the repo, size the fallback is
#: resized to, or None).
IMAGES = {
    "vga": ("dlib_2007_007763_vga.jpg", REPO_ROOT / "tests" / "fixtures" / "group_640x480.jpg", None),
    "1080p": ("dlib_2007_007763_1080p.jpg", REPO_ROOT / "examples" / "astronaut.jpg", (1440, 1080)),
}


#: Environment variables that pin the math libraries' and Numba's threads.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def run_child(code: str, *args: str, python: Optional[str] = None, **env: str) -> dict:
    """Run `code` in a fresh interpreter (`python`, default this one; repository root as the working folder, every
    THREAD_VARS pinned to 1, `env` added) and return the JSON object its last output line prints."""
    environment = dict(os.environ, **{var: "1" for var in THREAD_VARS}, **env)
    out = subprocess.run([python or sys.executable, "-c", code, *args], env=environment, cwd=REPO_ROOT, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


class ImageSource(NamedTuple):
    path: Path
    resize_to: Optional[Tuple[int, int]]  # (width, height) to resize to (INTER_CUBIC), or None
    label: str  # the path as reported, relative to the repository
    note: str  # empty, or why the fallback image is used


def image_source(key: str) -> ImageSource:
    """Where benchmark image `key` ('vga' or '1080p') comes from: ../shared/data/bench, else a shipped image."""
    shared_name, fallback, size = IMAGES[key]
    shared = SHARED_BENCH / shared_name
    if shared.exists():
        return ImageSource(shared, None, f"../shared/data/bench/{shared_name}", "")
    note = (f"../shared absent ({shared} not found): using the shipped {fallback.name}"
            + (f" resized to {size[0]}x{size[1]}" if size else "")
            + "; numbers are not comparable with baselines made on the shared image")
    return ImageSource(fallback, size, str(fallback.relative_to(REPO_ROOT)), note)


def portrait_paths(per_set: int = PORTRAITS_PER_SET) -> List[Path]:
    """The first `per_set` images of each shared landmark set ([] without ../shared)."""
    paths: List[Path] = []
    for name in PORTRAIT_SETS:
        listing = SHARED_DATA / name
        if listing.exists():
            lines = listing.read_text().splitlines()[:per_set]
            paths += [SHARED_DATA / json.loads(line)["image"] for line in lines]
    return paths


def _cpuinfo_field(name: str) -> Optional[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return None
    match = re.search(rf"^{re.escape(name)}\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else None


def cpu_model() -> str:
    """'AMD EPYC', 'Intel(R) Xeon(R) CPU E5-2670 0 @ 2.60GHz', ... (platform.processor() off Linux)."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine() or "unknown-cpu"


def cpu_mhz() -> Optional[float]:
    """Current clock of the first core from /proc/cpuinfo (MHz), None when unknown."""
    value = _cpuinfo_field("cpu MHz")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask, not the host's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


#: CPU features that decide the engines' speed: SIMD width, FMA, native bf16 (AVX512-BF16, AMX).
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_flag_set() -> Dict[str, bool]:
    """{flag: present} for SPEED_FLAGS, from /proc/cpuinfo (all False when unknown)."""
    flags = set((_cpuinfo_field("flags") or "").split())
    return {flag: flag in flags for flag in SPEED_FLAGS}


def cpu_flags() -> str:
    """'avx2 fma; no avx512f avx512_bf16 amx_bf16': the SPEED_FLAGS present, then those absent."""
    present = cpu_flag_set()
    have = " ".join(flag for flag, on in present.items() if on) or "none of " + " ".join(SPEED_FLAGS)
    missing = " ".join(flag for flag, on in present.items() if not on)
    return have + (f"; no {missing}" if missing and not have.startswith("none") else "")


def machine_name() -> str:
    """Baseline folder name from the CPU model and core count, e.g. 'AMD-EPYC-2core'."""
    model = re.sub(r"\((R|TM|tm)\)|\bCPU\b|\bProcessor\b|@.*$|\b\d+-Core\b", " ", cpu_model())
    model = re.sub(r"[^A-Za-z0-9]+", "-", model).strip("-") or "unknown-cpu"
    return f"{model}-{cpu_count()}core"


def machine_info() -> Dict[str, object]:
    mhz = cpu_mhz()
    return {"machine": machine_name(), "cpu_model": cpu_model(), "cpu_mhz": round(mhz) if mhz else None,
            "cpu_count": cpu_count(), "cpu_flags": cpu_flags(), "platform": platform.platform(),
            "python": platform.python_version()}


if __name__ == "__main__":
    print(machine_name())
