"""The engines that run the three networks: OpenCV DNN (always there) and OpenVINO (the `openvino` extra).

Both run the same in-memory ONNX graphs from `nets.onnx_model`; nothing is written to disk. Every engine's
network follows one contract (`Network`), and `choose_engine(backend, precision, num_threads)` is the one
factory that decides which engine runs:

- backend "opencv": cv2.dnn, float32. "openvino": OpenVINO's CPU plugin (raises ImportError naming the extra
  when it is not installed). "auto": OpenVINO when it can be imported, else OpenCV DNN.
- precision "f32" (exact: OpenVINO's faces equal OpenCV's, tests/test_engines.py) or "bf16", an opt-in
  approximation on OpenVINO only. On a CPU without native BF16 (no avx512_bf16 / amx_bf16, OpenVINO does not
  list "BF16" in OPTIMIZATION_CAPABILITIES) OpenVINO ignores the bf16 hint and runs float32 anyway, so we
  fall back to f32 with a logged warning and report precision "f32".

OpenVINO models are compiled once per process per (net, precision, threads) and shared by all threads; each
thread's `Cascade` makes its own `OpenVINONetwork`, i.e. its own infer request.
"""
from __future__ import annotations

import functools
import logging
import os
import threading
from dataclasses import dataclass
from typing import Optional, Protocol, Tuple

import cv2
import numpy as np

from .errors import SettingsError
from .nets import NetSpec, onnx_model

log = logging.getLogger(__name__)

BACKENDS = ("auto", "opencv", "openvino")
PRECISIONS = ("f32", "bf16")
INSTALL_HINT = 'pip install "fastmtcnn[openvino]"'
#: OpenVINO streams per compiled model at most: threads that run forwards at the same time without waiting.
MAX_STREAMS = 4


class Network(Protocol):
    """One stage on one engine. Not thread-safe: each thread needs its own (`Cascade` is per thread).

    `forward(blob)` takes a C-contiguous float32 (N, 3, H, W) blob, normalised RGB, and returns the outputs
    named in `spec.outputs`: P-Net prob (N, 2, h, w) and offsets (N, 4, h, w) with h = ceil((H - 4) / 2) - 3
    (w likewise); R-Net prob (N, 2), offsets (N, 4); O-Net prob (N, 2), offsets (N, 4), landmarks (N, 10).
    The arrays may be views of the engine's own output buffers: they are valid until the next `forward` on
    the same network, so copy what must outlive it.
    """

    spec: NetSpec

    def forward(self, blob: np.ndarray) -> Tuple[np.ndarray, ...]:
        ...


class OpenCVNetwork:
    """A stage on cv2.dnn (threads: OpenCV's process-wide setting, `cv2.setNumThreads`)."""

    def __init__(self, spec: NetSpec):
        self.spec = spec
        self.net = cv2.dnn.readNetFromONNX(np.frombuffer(onnx_model(spec), dtype=np.uint8))

    def forward(self, blob: np.ndarray) -> Tuple[np.ndarray, ...]:
        self.net.setInput(blob)
        return tuple(self.net.forward(list(self.spec.outputs)))


class OpenVINONetwork:
    """A stage on OpenVINO's CPU plugin: one infer request on the process-wide compiled model.

    The input blob is shared, not copied; the outputs are views of the request's output tensors, which
    the next `forward` overwrites (see `Network`).
    """

    def __init__(self, spec: NetSpec, precision: str, threads: int):
        self.spec = spec
        compiled = _compiled_model(spec, precision, threads)
        self._request = compiled.create_infer_request()
        self._outputs = tuple(compiled.output(name) for name in spec.outputs)
        self._tensor = _openvino().Tensor

    def forward(self, blob: np.ndarray) -> Tuple[np.ndarray, ...]:
        request = self._request
        request.set_input_tensor(self._tensor(np.ascontiguousarray(blob, dtype=np.float32), shared_memory=True))
        request.infer()
        return tuple(request.get_tensor(output).data for output in self._outputs)


@dataclass(frozen=True)
class Engine:
    """What runs the networks: backend "opencv" or "openvino", precision "f32" or "bf16", OpenVINO threads
    per forward (OpenCV's are process-wide). `reason` says why this engine was chosen."""

    backend: str
    precision: str
    threads: int
    reason: str = ""

    def network(self, spec: NetSpec) -> Network:
        """A new network of this engine (one per thread)."""
        if self.backend == "openvino":
            return OpenVINONetwork(spec, self.precision, self.threads)
        return OpenCVNetwork(spec)

    def describe(self) -> str:
        """'openvino 2026.4.1, f32, 1 thread' / 'opencv 4.10.0, f32'."""
        if self.backend == "openvino":
            return f"openvino {openvino_version()}, {self.precision}, {self.threads} thread{'s' * (self.threads != 1)}"
        return f"opencv {cv2.__version__}, {self.precision}"


def choose_engine(backend: str = "auto", precision: str = "f32", num_threads: Optional[int] = None) -> Engine:
    """The engine for these settings (see the module docstring). `num_threads` None: OpenCV's current count."""
    if backend not in BACKENDS:
        raise SettingsError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
    if precision not in PRECISIONS:
        raise SettingsError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}")
    threads = cv2.getNumThreads() if num_threads is None else int(num_threads)
    if backend == "opencv":
        if precision != "f32":
            raise SettingsError(f'precision={precision!r} needs backend="openvino" ({INSTALL_HINT}); '
                             'OpenCV DNN runs "f32" only')
        return Engine("opencv", "f32", threads, "backend='opencv' asked for")
    if backend == "auto" and not openvino_available():
        if precision != "f32":
            raise ImportError(f"precision={precision!r} needs OpenVINO, which is not installed: {INSTALL_HINT}")
        return Engine("opencv", "f32", threads, f"auto: OpenVINO not installed ({INSTALL_HINT} to use it)")
    _openvino()  # backend "openvino" without the extra: ImportError with the install line
    reason = "auto: OpenVINO is installed" if backend == "auto" else "backend='openvino' asked for"
    if precision == "bf16" and not native_bf16():
        log.warning("precision='bf16' asked for, but this CPU has no native BF16 (flags avx512_bf16/amx_bf16 "
                    "absent; OpenVINO would run float32 anyway): running f32")
        return Engine("openvino", "f32", threads, reason + "; bf16 fell back to f32 (no native BF16 on this CPU)")
    return Engine("openvino", precision, threads, reason)


# ------------------------------------------------------------------------------------ OpenVINO, once per process
@functools.lru_cache(maxsize=None)
def _import_openvino():
    try:
        import openvino
    except ImportError as error:
        return error
    return openvino


def _openvino():
    """The openvino module, or ImportError saying how to install it."""
    module = _import_openvino()
    if isinstance(module, ImportError):
        raise ImportError(f"backend='openvino' needs the OpenVINO runtime: {INSTALL_HINT} ({module})") from module
    return module


def openvino_available() -> bool:
    return not isinstance(_import_openvino(), ImportError)


def openvino_version() -> Optional[str]:
    """'2026.4.1' (without the build suffix), or None when OpenVINO is not installed."""
    if not openvino_available():
        return None
    return _openvino().get_version().split("-")[0]


@functools.lru_cache(maxsize=None)
def _core():
    return _openvino().Core()


def native_bf16() -> bool:
    """True when OpenVINO's CPU plugin runs bf16 natively here (it lists "BF16" as an optimization capability)."""
    return "BF16" in _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


_compile_lock = threading.Lock()


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def compile_config(precision: str, threads: int) -> dict:
    """OpenVINO CPU settings for `threads` threads per forward.

    One stream runs one request at a time (its graph is locked while it runs), so with a single stream the
    threads sharing a detector would wait for each other: we make cpus // threads streams of `threads`
    threads each (INFERENCE_NUM_THREADS is the total), at most MAX_STREAMS (each stream holds a copy of the
    graph and is built at compile time). No CPU pinning: our threads share the cores with
    Numba, OpenCV and, in `fastmtcnn batch`, other worker processes, which pinning would stack on one core.
    """
    streams = min(MAX_STREAMS, max(1, _available_cpus() // threads))
    return {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": streams,
            "INFERENCE_NUM_THREADS": streams * threads, "ENABLE_CPU_PINNING": False}


@functools.lru_cache(maxsize=None)
def _compiled_model_once(spec: NetSpec, precision: str, threads: int):
    core = _core()
    model = core.read_model(onnx_model(spec))  # ONNX declares N (and P-Net's H, W) dynamic
    return core.compile_model(model, "CPU", compile_config(precision, threads))


def _compiled_model(spec: NetSpec, precision: str, threads: int):
    """The compiled model of one stage, compiled on first use and shared by every thread of the process."""
    with _compile_lock:
        return _compiled_model_once(spec, precision, threads)


# ------------------------------------------------------------------------------------ what `auto` picks, and why
def engine_report() -> str:
    """For `fastmtcnn --version`: the engine `auto` picks and why, OpenVINO's version and its bf16 support."""
    auto = choose_engine("auto")
    if not openvino_available():
        return f"engine auto -> {auto.backend} {auto.precision} ({auto.reason})"
    bf16 = "native" if native_bf16() else "not native on this CPU, precision='bf16' falls back to f32"
    return f"engine auto -> {auto.backend} {auto.precision} ({auto.reason}; OpenVINO {openvino_version()}; bf16 {bf16})"
