"""Who is measuring: CPU model, clock, core count and the machine folder name of the baselines.

Standard library only, so that `bench.gate` runs without numpy, OpenCV or the package.
"""
from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Dict, Optional

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
BASELINES_DIR = BENCH_DIR / "baselines"


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


def machine_name() -> str:
    """Baseline folder name from the CPU model and core count, e.g. 'AMD-EPYC-2core'."""
    model = re.sub(r"\((R|TM|tm)\)|\bCPU\b|\bProcessor\b|@.*$|\b\d+-Core\b", " ", cpu_model())
    model = re.sub(r"[^A-Za-z0-9]+", "-", model).strip("-") or "unknown-cpu"
    return f"{model}-{cpu_count()}core"


def machine_info() -> Dict[str, object]:
    mhz = cpu_mhz()
    return {"machine": machine_name(), "cpu_model": cpu_model(), "cpu_mhz": round(mhz) if mhz else None,
            "cpu_count": cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


if __name__ == "__main__":
    print(machine_name())
