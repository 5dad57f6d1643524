"""The detection side of the service: worker threads, each with one cascade, and the job a request runs.

One `Cascade` per worker thread whatever the request's settings (they are swapped per job, nothing is cached
per setting), so memory is bounded by workers x (one request's pixels). Each job: size from the header (413
over `max_pixels` or over the per-worker memory budget, before decoding), decode, detect with a `Deadline`
(the request's timeout, or the service stopping) checked between pyramid levels, crop batches and stages.
After a request over `SHRINK_AFTER_BYTES`, P-Net's buffers are shrunk and glibc is asked to return free heap.
"""
from __future__ import annotations

import ctypes
import dataclasses
import ctypes.util
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from ..deadline import Deadline
from ..detector import Faces
from ..engines import choose_engine
from ..errors import ImageSizeUnknown, ImageTooLarge, SettingsError, UnsupportedImage
from ..image_header import read_image_size
from ..image_input import decode_image
from ..nets import channel_map, check_weights
from ..pipeline import Cascade
from ..settings import CascadeSettings
from .config import ServerConfig, request_bytes
from .responses import ApiError

#: Requests whose estimated working memory is above this shrink the buffers afterwards.
SHRINK_AFTER_BYTES = 64 << 20


def _glibc_malloc_trim() -> Callable[[int], int]:
    """glibc's malloc_trim (returns freed heap to the OS), or a no-op where there is none."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else (lambda pad: 0)
    except (OSError, AttributeError):
        return lambda pad: 0


malloc_trim = _glibc_malloc_trim()


class Workers:
    """A pool of `config.workers` threads, each with its own Cascade, running detection jobs."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.default_settings = config.settings()
        self.engine = dataclasses.replace(choose_engine(config.backend, config.precision, config.threads),
                                          weights_dir=config.weights)  # fails before serving
        check_weights(config.weights)  # a bad --weights folder fails before serving too
        self.pool: Optional[ThreadPoolExecutor] = None
        self.stopping = threading.Event()
        self._local = threading.local()

    def start(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=self.config.workers, thread_name_prefix="fastmtcnn-serve")

    def stop(self) -> None:
        """Running jobs stop at their next deadline check; queued ones are cancelled."""
        self.stopping.set()
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def submit(self, function: Callable[..., Any], *args: Any) -> Future:
        assert self.pool is not None, "start() first"
        return self.pool.submit(function, *args)

    def warm_up(self) -> None:
        """Build and warm one cascade on every worker thread (a barrier puts one task on each)."""
        workers = self.config.workers
        barrier = threading.Barrier(workers)
        image = np.zeros((96, 128, 3), np.uint8)
        image[:] = np.arange(128, dtype=np.uint8)[None, :, None] * 2

        def warm() -> None:
            try:
                barrier.wait(timeout=120)
            except threading.BrokenBarrierError:
                pass
            self._cascade().run(image, channel_map("bgr", 3))

        for future in [self.submit(warm) for _ in range(workers)]:
            future.result()

    def _cascade(self) -> Cascade:
        cascade = getattr(self._local, "cascade", None)
        if cascade is None:
            cascade = self._local.cascade = Cascade(self.default_settings, engine=self.engine)
        return cascade

    def detect(self, data: bytes, settings: CascadeSettings, deadline: Deadline) -> Dict[str, Any]:
        """The job: JSON-ready result of one request's image bytes; ApiError for anything the client can fix."""
        started = time.perf_counter()
        pixels, budget = self.decode(data, settings)
        decoded = time.perf_counter()
        height, width = pixels.shape[:2]
        cascade = self._cascade()
        cascade.settings = settings
        try:
            result = cascade.run(pixels, channel_map("bgr", pixels.shape[2]), deadline)
        finally:
            cascade.settings = self.default_settings
            del pixels
            if budget > SHRINK_AFTER_BYTES:
                cascade.shrink_buffers()
                malloc_trim(0)
        faces = Faces.from_cascade(result)
        done = time.perf_counter()
        return {"faces": faces.to_list(), "image": {"width": int(width), "height": int(height)},
                "timing_ms": {"decode": round((decoded - started) * 1000, 3),
                              "detect": round((done - decoded) * 1000, 3)}}

    def decode(self, data: bytes, settings: CascadeSettings,
               source: str = "request body") -> Tuple[np.ndarray, int]:
        """(BGR/gray pixels, estimated working bytes) of encoded image bytes, checked from the header first;
        ApiError 413/422 for anything the client can fix."""
        budget = self._check_size(data, settings, source)
        try:
            return decode_image(data, settings.max_image_pixels, source=source), budget
        except ImageTooLarge as error:
            raise ApiError(413, "image_too_large", str(error)) from None
        except UnsupportedImage as error:
            raise ApiError(422, "undecodable_image", str(error)) from None

    def _check_size(self, data: bytes, settings: CascadeSettings, source: str) -> int:
        """Estimated working bytes of the request, from the header; ApiError 413/422 before any decoding."""
        try:
            size = read_image_size(data)
        except ImageSizeUnknown as error:
            raise ApiError(413, "image_size_unknown", f"{source}: {error}") from None
        except UnsupportedImage as error:
            raise ApiError(422, "undecodable_image", f"{source}: {error}") from None
        if size.pixels > settings.max_image_pixels:
            raise ApiError(413, "image_too_large", f"image header says {size.width}x{size.height} pixels, over the "
                                                   f"limit of {settings.max_image_pixels}")
        try:
            settings.check_pyramid_size(size.height, size.width)
        except ImageTooLarge as error:
            raise ApiError(413, "image_too_large", str(error)) from None
        needed = request_bytes(size.width, size.height, settings.min_face_size)
        if needed > self.config.memory_budget_bytes:
            raise ApiError(413, "over_memory_budget",
                           f"a {size.width}x{size.height} image at min_face_size={settings.min_face_size:g} needs "
                           f"~{needed >> 20} MiB, over the per-worker budget of {self.config.memory_budget_mb} MiB: "
                           "downscale it or raise min_face_size")
        return needed


def request_settings(config: ServerConfig, min_face_size: Optional[float], thresholds: Optional[tuple],
                     stream: bool = False) -> CascadeSettings:
    """Settings of one request (or stream: `ServerConfig.stream_settings`); ApiError 422 naming the accepted
    range when a value is out of it."""
    try:
        return (config.stream_settings if stream else config.settings)(min_face_size, thresholds)
    except SettingsError as error:
        raise ApiError(422, "bad_parameter", str(error)) from None
