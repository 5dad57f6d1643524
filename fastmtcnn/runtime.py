"""Process-wide runtime facts and knobs: thread counts, library versions, the CPU features that set the speed."""
from __future__ import annotations

import os
import platform
import sys
from typing import List

import cv2
import numba
import numpy as np

from .settings import is_count

#: CPU flags (as /proc/cpuinfo names them) that decide which kernels the engines can use.
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")


def set_num_threads(num_threads: int) -> None:
    """Set the threads of OpenCV and Numba. Process-wide: it changes every detector in the process,
    and any other OpenCV user in it. `Detector(num_threads=...)`, the CLI, the server and the benchmarks call it."""
    if not is_count(num_threads, 1):
        raise ValueError(f"num_threads must be a positive int, got {num_threads!r}")
    cv2.setNumThreads(num_threads)
    numba.set_num_threads(min(num_threads, numba.config.NUMBA_NUM_THREADS))


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else the CPU count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cpu_flags() -> List[str]:
    """The SPEED_FLAGS this CPU has (Linux: from /proc/cpuinfo; elsewhere an empty list)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    present = set(line.split(":", 1)[1].split())
                    return [flag for flag in SPEED_FLAGS if flag in present]
    except OSError:
        pass
    return []


def versions() -> str:
    """fastmtcnn and the libraries and CPU features that decide its results and speed; second line: the
    engine `Detector(backend="auto")` picks, why, and OpenVINO's version."""
    from . import __version__
    from .engines import engine_report

    flags = ", ".join(cpu_flags()) or "unknown"
    return (f"fastmtcnn {__version__} (opencv-python {cv2.__version__}, {cv2.getNumThreads()} OpenCV threads; "
            f"numpy {np.__version__}; numba {numba.__version__}; Python {sys.version.split()[0]}; "
            f"CPU {platform.machine()} flags: {flags})\n{engine_report()}")
