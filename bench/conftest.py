"""Shared set-up of the pytest-benchmark suite (run: `pytest bench/ --benchmark-only`, see bench/README.md).

Thread pinning: before numpy, Numba or OpenCV are imported (by this file, which pytest loads before the
benchmark modules), OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS default to 1 and
NUMBA_NUM_THREADS to 2 (the most any benchmark uses; our kernels are serial anyway). Variables already set
in the environment win. If another plugin imported numpy/numba/cv2 earlier, the pinning may not have taken
effect for it: `extra_info["pinned_before_import"]` says so for every benchmark. OpenCV's own pool is set per
benchmark with cv2.setNumThreads (1 unless the benchmark is about 2 threads), since it is process-wide.

Engines: detect, stage and forward benchmarks run once per engine (`ENGINES`): OpenCV DNN ("opencv"), OpenVINO
f32 ("openvino", skipped when the `openvino` extra is absent) and OpenVINO bf16 ("openvino-bf16", only where the
CPU runs bf16 natively; elsewhere OpenVINO would run f32 and the case would repeat "openvino"). The engine id is
the last part of the test id and `extra_info` records engine, precision and engine_id; `bench.gate` keys
baselines by it, so it only compares like with like.

Test hook: FASTMTCNN_BENCH_SLOWDOWN_MS=N adds N ms of busy work (a spin loop) to every benchmarked
`Detector.detect` and `Cascade.propose/refine/output` call, to check that `bench.gate` catches a slowdown.
Leave it unset for real measurements.
"""
from __future__ import annotations

import os
import sys

_PIN = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "NUMBA_NUM_THREADS": str(min(2, os.cpu_count() or 1))}
PINNED_BEFORE_IMPORT = not any(name in sys.modules for name in ("numpy", "numba", "cv2"))
for _var, _value in _PIN.items():
    os.environ.setdefault(_var, _value)

import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from functools import lru_cache  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Dict  # noqa: E402

import cv2  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import fastmtcnn  # noqa: E402
from fastmtcnn import Detector, engines  # noqa: E402

from .machine import image_source, machine_info  # noqa: E402

SLOWDOWN_MS = float(os.environ.get("FASTMTCNN_BENCH_SLOWDOWN_MS", "0") or 0)
#: Rounds of the heavy (detect / stage / forward) benchmarks; the gate compares medians over these.
ROUNDS = int(os.environ.get("FASTMTCNN_BENCH_ROUNDS", "9"))


@dataclass(frozen=True)
class EngineChoice:
    """One engine of the suite: `Detector(backend=..., precision=...)`, named `id` in test ids."""

    backend: str
    precision: str

    @property
    def id(self) -> str:
        return self.backend if self.precision == "f32" else f"{self.backend}-{self.precision}"


def _engine_params():
    has_openvino = engines.openvino_available()
    no_openvino = pytest.mark.skip(reason='OpenVINO not installed: pip install "fastmtcnn[openvino]"')
    no_bf16 = pytest.mark.skip(reason="no native BF16 on this CPU (avx512_bf16 / amx_bf16): OpenVINO would run f32")
    params = [pytest.param(EngineChoice("opencv", "f32"), id="opencv")]
    params.append(pytest.param(EngineChoice("openvino", "f32"), id="openvino",
                               marks=() if has_openvino else no_openvino))
    bf16_marks = no_openvino if not has_openvino else (() if engines.native_bf16() else no_bf16)
    params.append(pytest.param(EngineChoice("openvino", "bf16"), id="openvino-bf16", marks=bf16_marks))
    return params


#: Put it above the other parametrize marks of a test, so that the engine id comes last in the test id.
ENGINES = pytest.mark.parametrize("engine", _engine_params())


@dataclass(frozen=True)
class BenchImage:
    key: str
    pixels: np.ndarray  # uint8 BGR (H, W, 3)
    source: str
    note: str  # empty, or why the fallback image is used


@lru_cache(maxsize=None)
def bench_image(key: str) -> BenchImage:
    """The benchmark image `key` ('vga' or '1080p'): ../shared/data/bench, else a shipped image."""
    source = image_source(key)
    pixels = cv2.imread(str(source.path))
    if source.resize_to is not None:
        pixels = cv2.resize(pixels, source.resize_to, interpolation=cv2.INTER_CUBIC)
    return BenchImage(key, pixels, source.label, source.note)


@lru_cache(maxsize=None)
def _static_info() -> Dict[str, object]:
    info = dict(machine_info())
    info.update({"opencv": cv2.__version__, "numpy": np.__version__, "numba": numba.__version__,
                 "openvino": engines.openvino_version(), "fastmtcnn": fastmtcnn.__version__,
                 "pinned_before_import": PINNED_BEFORE_IMPORT,
                 **{var.lower(): os.environ.get(var) for var in _PIN}})
    return info


def set_threads(count: int) -> None:
    """OpenCV and Numba threads for this benchmark (process-wide, so every benchmark sets its own)."""
    fastmtcnn.set_num_threads(count)


def record(benchmark, image: BenchImage = None, min_face=None, engine: EngineChoice = None, **extra) -> None:
    """Fill benchmark.extra_info: machine, versions, threads as they are now, engine, image, min face, `extra`."""
    info = benchmark.extra_info
    info.update(_static_info())
    if engine is not None:
        info.update(engine=engine.backend, precision=engine.precision, engine_id=engine.id)
    info["cv2_threads"] = cv2.getNumThreads()
    info["numba_threads"] = numba.get_num_threads()
    if hasattr(os, "getloadavg"):
        info["load_average_1min"] = round(os.getloadavg()[0], 2)  # other work on the machine while measuring
    if image is not None:
        info["image"] = image.source
        info["image_size"] = f"{image.pixels.shape[1]}x{image.pixels.shape[0]}"
        if image.note:
            info["image_note"] = image.note
    if min_face is not None:
        info["min_face"] = min_face
    if SLOWDOWN_MS:
        info["slowdown_ms"] = SLOWDOWN_MS
    info.update(extra)


def busy_wait(milliseconds: float) -> None:
    end = time.perf_counter() + milliseconds / 1000.0
    while time.perf_counter() < end:
        pass


def with_slowdown(function: Callable) -> Callable:
    """`function`, plus FASTMTCNN_BENCH_SLOWDOWN_MS of busy work per call when the test hook is set."""
    if not SLOWDOWN_MS:
        return function

    def slowed(*args, **kwargs):
        result = function(*args, **kwargs)
        busy_wait(SLOWDOWN_MS)
        return result
    return slowed


def run_rounds(benchmark, function: Callable, *args, rounds: int = None):
    """Time `function(*args)` once per round, `rounds` rounds after one warm-up; returns its last result."""
    return benchmark.pedantic(function, args=args, rounds=rounds or ROUNDS, iterations=1, warmup_rounds=1)


@pytest.fixture
def detector_factory():
    """Detector(min_face_size, num_threads, engine) that also re-applies the thread count (it is process-wide).
    The engine defaults to OpenCV DNN (never "auto": what runs must not depend on what is installed)."""
    def make(min_face: float, threads: int = 1, engine: EngineChoice = EngineChoice("opencv", "f32")) -> Detector:
        detector = Detector(min_face_size=min_face, num_threads=threads, backend=engine.backend,
                            precision=engine.precision)
        if (detector.backend, detector.precision) != (engine.backend, engine.precision):
            pytest.skip(f"asked for {engine.id}, got {detector.backend} {detector.precision}")
        set_threads(threads)
        return detector
    yield make
    set_threads(1)


def pytest_ignore_collect(collection_path, config):
    """Collect only bench/test_bench_*.py: other scripts here are command-line tools, not benchmarks (the
    ones in subfolders, e.g. bench/load/, are named so that pytest's test patterns do not match them)."""
    if collection_path.suffix == ".py" and collection_path.parent == Path(__file__).resolve().parent:
        return not collection_path.name.startswith(("test_bench_", "conftest")) or None
    return None
