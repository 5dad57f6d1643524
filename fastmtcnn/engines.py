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

Each thread's `Cascade` makes its own `OpenVINONetwork`: an infer request on a compiled model it does not
share while it runs (`CompiledPool`: compiled once, reused by later networks of the same net, precision and
threads).

OpenVINO keeps the compiled models in a cache folder (OpenVINO's CACHE_DIR, keyed by a hash of the model, its
settings and OpenVINO's version), so later processes load them instead of compiling: `cache_dir()` says where,
the user's cache folder by default (`~/.cache/fastmtcnn/openvino` on Linux), `FASTMTCNN_CACHE_DIR=<folder>`
moves it and `FASTMTCNN_CACHE_DIR=off` (or `Detector(cache_dir=False)`) turns it off. Nothing else is written.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
import sys
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Protocol, Tuple, Union

import cv2
import numpy as np

from .errors import SettingsError
from .nets import NetSpec, input_name, onnx_model
from .onnx_export import POOL_MASK

log = logging.getLogger(__name__)

BACKENDS = ("auto", "opencv", "openvino")
PRECISIONS = ("f32", "bf16")
INSTALL_HINT = 'pip install "fastmtcnn[openvino]"'
#: Environment variable: the OpenVINO compiled-model cache folder, or "off" for none.
CACHE_ENV = "FASTMTCNN_CACHE_DIR"
_OFF = ("", "0", "off", "false", "no", "none")
#: Engines whose networks see bucketed shapes by default: none. Measured on a 2-core Xeon (AMX), 200 photos of 50
#: sizes, CPU time: buckets cost more than they save on both engines (P-Net's pool mask stops OpenVINO fusing
#: conv1, PReLU and the pool: +38% P-Net time; rounding crop batches up +12-25%), so they are opt-in.
BUCKETED_BACKENDS: Tuple[str, ...] = ()
#: (backend, precision) -> the largest pyramid level (pixels) packed with others into one P-Net input
#: (`fastmtcnn.packing`); absent = no packing. Chosen by measurement (README Speed, `bench.packing`): on OpenCV DNN
#: a forward's fixed cost is small and the masked canvas is slower than the levels alone.
PACKED_LEVEL_AREA: Dict[Tuple[str, str], int] = {("openvino", "bf16"): 15_000, ("openvino", "f32"): 15_000}


class Network(Protocol):
    """One stage on one engine. Not thread-safe: each thread needs its own (`Cascade` is per thread).

    `forward(blob)` takes a C-contiguous float32 (N, 3, H, W) blob, normalised RGB, and returns the outputs
    named in `spec.outputs`: P-Net prob (N, 2, h, w) and offsets (N, 4, h, w) with h = ceil((H - 4) / 2) - 3
    (w likewise); R-Net prob (N, 2), offsets (N, 4); O-Net prob (N, 2), offsets (N, 4), landmarks (N, 10).
    The arrays may be views of the engine's own output buffers: they are valid until the next `forward` on
    the same network, so copy what must outlive it.
    """

    spec: NetSpec

    def forward(self, blob: np.ndarray, mask: Optional[np.ndarray] = None) -> Tuple[np.ndarray, ...]:
        """`mask`: float32 (1, 1, H - 2, W - 2), P-Net with `spec.pool_mask` only (0 = in the image)."""
        ...


class OpenCVNetwork:
    """A stage on cv2.dnn (threads: OpenCV's process-wide setting, `cv2.setNumThreads`)."""

    def __init__(self, spec: NetSpec, weights_dir: Optional[str] = None):
        self.spec = spec
        self.net = cv2.dnn.readNetFromONNX(np.frombuffer(onnx_model(spec, weights_dir), dtype=np.uint8))
        self._input = input_name(spec, weights_dir) if spec.pool_mask else ""  # two inputs: set them by name

    def forward(self, blob: np.ndarray, mask: Optional[np.ndarray] = None) -> Tuple[np.ndarray, ...]:
        self.net.setInput(blob, self._input)
        if mask is not None:
            self.net.setInput(mask, POOL_MASK)
        return tuple(self.net.forward(list(self.spec.outputs)))


class OpenVINONetwork:
    """A stage on OpenVINO's CPU plugin: an infer request on a compiled model it has to itself while it lives
    (taken from the process-wide `CompiledPool`, given back when the network is garbage-collected).

    The input blob is shared, not copied; the outputs are views of the request's output tensors, which
    the next `forward` overwrites (see `Network`).
    """

    def __init__(self, spec: NetSpec, precision: str, threads: int, weights_dir: Optional[str] = None,
                 cache: Optional[str] = None):
        self.spec = spec
        pool = _pool(spec, precision, threads, weights_dir, cache)
        compiled = pool.take()
        weakref.finalize(self, pool.give_back, compiled)
        self._request = compiled.create_infer_request()
        self._outputs = tuple(compiled.output(name) for name in spec.outputs)
        self._tensor = _openvino().Tensor

    def forward(self, blob: np.ndarray, mask: Optional[np.ndarray] = None) -> Tuple[np.ndarray, ...]:
        request = self._request
        request.set_input_tensor(0, self._tensor(np.ascontiguousarray(blob, dtype=np.float32), shared_memory=True))
        if mask is not None:
            request.set_input_tensor(1, self._tensor(np.ascontiguousarray(mask, dtype=np.float32), shared_memory=True))
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
    weights_dir: Optional[str] = None  # det1/det2/det3 .prototxt + .caffemodel; None = the shipped weights
    cache: Optional[str] = None  # OpenVINO's compiled-model cache folder; None = no cache (see `cache_dir`)
    buckets: bool = False  # P-Net levels and crop batches in a few shapes (`pipeline.ShapeBuckets`)
    pack_area: int = 0  # pyramid levels of at most this many pixels run packed in one P-Net input (`packing`)

    def network(self, spec: NetSpec) -> Network:
        """A new network of this engine (one per thread)."""
        if self.backend == "openvino":
            return OpenVINONetwork(spec, self.precision, self.threads, self.weights_dir, self.cache)
        return OpenCVNetwork(spec, self.weights_dir)

    def describe(self) -> str:
        """'openvino 2026.4.1, f32, 1 thread' / 'opencv 4.10.0, f32'."""
        if self.backend == "openvino":
            return f"openvino {openvino_version()}, {self.precision}, {self.threads} thread{'s' * (self.threads != 1)}"
        return f"opencv {cv2.__version__}, {self.precision}"


def choose_engine(backend: str = "auto", precision: str = "f32", num_threads: Optional[int] = None,
                  cache: Union[str, bool, None] = None, buckets: Optional[bool] = None) -> Engine:
    """The engine for these settings (see the module docstring). `num_threads` None: OpenCV's current count.
    `cache`: OpenVINO's compiled-model cache folder; None = `cache_dir()` (the default), False = no cache.
    `buckets`: the networks see a few shapes (`pipeline.ShapeBuckets`); None = BUCKETED_BACKENDS' choice (off)."""
    engine = _choose_engine(backend, precision, num_threads, cache)
    wanted = engine.backend in BUCKETED_BACKENDS if buckets is None else bool(buckets)
    if wanted and engine.backend == "opencv" and not opencv_runs_masked_pnet():
        raise SettingsError(f"shape_buckets=True needs OpenVINO ({INSTALL_HINT}) or opencv-python >= 5: OpenCV "
                            f"{cv2.__version__}'s DNN gives P-Net's masked pool wrong results; leave it off here")
    pack_area = PACKED_LEVEL_AREA.get((engine.backend, engine.precision), 0)  # OpenCV DNN: none (see above)
    return dataclasses.replace(engine, buckets=wanted, pack_area=pack_area)


def opencv_runs_masked_pnet() -> bool:
    """Whether this OpenCV's DNN computes the padded P-Net with its pool mask right (5.x does, 4.10 does not)."""
    return int(cv2.__version__.split(".")[0]) >= 5


def _choose_engine(backend: str, precision: str, num_threads: Optional[int],
                   cache: Union[str, bool, None]) -> Engine:
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
        reason, precision = reason + "; bf16 fell back to f32 (no native BF16 on this CPU)", "f32"
    folder = cache_dir() if cache is None or cache is True else (str(cache) if cache else None)
    return Engine("openvino", precision, threads, reason, cache=folder)


def user_cache_root() -> Path:
    """The platform's per-user cache folder: %LOCALAPPDATA% (Windows), ~/Library/Caches (macOS),
    $XDG_CACHE_HOME or ~/.cache (elsewhere)."""
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def cache_dir() -> Optional[str]:
    """The default compiled-model cache folder: $FASTMTCNN_CACHE_DIR (None when it says "off"), else
    <user cache folder>/fastmtcnn/openvino."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return None if value.strip().lower() in _OFF else value
    return str(user_cache_root() / "fastmtcnn" / "openvino")


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


def compile_config(precision: str, threads: int) -> dict:
    """OpenVINO CPU settings: `threads` threads per forward, one stream, no CPU pinning.

    Measured here (2 vCPUs, busy machine): a single unpinned stream runs the request on the calling thread, the
    fastest by far for our small forwards (R-Net on 6 crops 0.64 ms, against 2.8 ms with two streams and 2.2 ms
    pinned, which hand each request to a worker thread). Pinning would also stack our threads, Numba's and
    other worker processes' on the same core.
    """
    return {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
            "INFERENCE_NUM_THREADS": threads, "ENABLE_CPU_PINNING": False}


#: One model read and compiled at a time in the process: OpenVINO switches the process's C locale to "C" while it
#: reads or compiles and puts back what it found, so two threads doing it at once could leave the whole process in
#: the "C" locale (seen: after 8 threads' first detections, Python's default text encoding became ASCII).
_COMPILE_LOCK = threading.Lock()


class CompiledPool:
    """The compiled models of one (net, precision, threads), each used by one network at a time.

    A compiled model runs one request at a time (its one stream's graph is locked while it runs), so threads
    that share a model would wait for each other: each live network holds one, and a network that is
    garbage-collected (its thread's cascade went away) gives it back for the next one. Compiling takes about
    0.1-0.2 s per net: the detector's first cascade compiles at construction, another thread's first cascade
    reuses a free model or compiles one (as OpenCV DNN builds a `Net` per thread).
    """

    def __init__(self, spec: NetSpec, precision: str, threads: int, weights_dir: Optional[str] = None,
                 cache: Optional[str] = None):
        self.spec, self.precision, self.threads, self.weights_dir = spec, precision, threads, weights_dir
        self.cache = cache
        self.compiled = 0  # models compiled so far
        self._free: List = []
        self._lock = threading.Lock()

    def take(self):
        with self._lock:
            if self._free:
                return self._free.pop()
            self.compiled += 1
        core = _core()
        config = compile_config(self.precision, self.threads)
        if self.cache is not None and _writable_folder(self.cache):
            config["CACHE_DIR"] = self.cache  # a later process loads the compiled model instead of compiling it
        with _COMPILE_LOCK:
            model = core.read_model(onnx_model(self.spec, self.weights_dir))  # ONNX declares N (P-Net: H, W) dynamic
            return core.compile_model(model, "CPU", config)

    def give_back(self, compiled) -> None:
        with self._lock:
            self._free.append(compiled)


@functools.lru_cache(maxsize=None)
def _writable_folder(folder: str) -> bool:
    """Create the cache folder (once per process); False, with a logged warning, when that fails."""
    try:
        os.makedirs(folder, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(f"{folder} is not writable")
    except OSError as error:
        log.warning("OpenVINO model cache off: cannot use %s (%s); set %s to another folder or to 'off'",
                    folder, error, CACHE_ENV)
        return False
    return True


_pools_lock = threading.Lock()
_pools: Dict[Tuple, CompiledPool] = {}


def _pool(spec: NetSpec, precision: str, threads: int, weights_dir: Optional[str] = None,
          cache: Optional[str] = None) -> CompiledPool:
    with _pools_lock:
        return _pools.setdefault((spec, precision, threads, weights_dir, cache),
                                 CompiledPool(spec, precision, threads, weights_dir, cache))


# ------------------------------------------------------------------------------------ what `auto` picks, and why
def engine_report() -> str:
    """For `fastmtcnn --version`: the engine `auto` picks and why, OpenVINO's version and its bf16 support."""
    auto = choose_engine("auto")
    if not openvino_available():
        return f"engine auto -> {auto.backend} {auto.precision}; {auto.reason}"  # the reason may hold parentheses
    bf16 = "native" if native_bf16() else "not native on this CPU, precision='bf16' falls back to f32"
    return f"engine auto -> {auto.backend} {auto.precision}; {auto.reason}; OpenVINO {openvino_version()}; bf16 {bf16}"
