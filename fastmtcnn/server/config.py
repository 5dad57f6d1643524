"""`ServerConfig`: every limit of `fastmtcnn serve`, checked once (detector settings through `CascadeSettings`).

Nothing here imports Starlette or Uvicorn, so the CLI can build and check a config without the server extra.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Optional

from ..errors import SettingsError
from ..settings import DEFAULT_MAX_PIXELS, CascadeSettings, check_count

#: P-Net's working memory per pixel of a pyramid level (input blob, every layer's output, OpenCV's buffers), in
#: bytes: measured RSS growth of a P-Net forward on 1-8 Mpx inputs (OpenCV 5.0, float32) was ~130 B per pixel.
PNET_BYTES_PER_LEVEL_PIXEL = 130
#: Decoded BGR image: bytes per pixel.
DECODED_BYTES_PER_PIXEL = 3
#: The ServerConfig fields that count something, each >= 1: what it counts, for the error message.
COUNT_FIELDS = {"workers": "detection threads, e.g. 2", "max_body_bytes": "bytes", "max_pixels": "pixels",
                "memory_budget_mb": "MiB per worker", "max_connections": "open connections",
                "max_multipart_parts": "parts of a multipart body", "retry_after": "seconds",
                "max_streams": "open streams", "stream_max_frame_bytes": "bytes",
                "stream_max_pixels": "pixels"}


def default_workers() -> int:
    """Detection threads: one per CPU."""
    return max(1, os.cpu_count() or 1)


def default_memory_budget_mb(workers: Optional[int] = None) -> int:
    """Per-worker budget for one request's pixels: 512 MiB, or less on a machine with under 4 x that per worker."""
    workers = workers or default_workers()
    try:
        total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20)
    except (ValueError, OSError, AttributeError):  # not POSIX: assume a small machine
        total_mb = 4096
    return int(max(64, min(512, total_mb // (4 * workers))))


@dataclass
class ServerConfig:
    """Limits of the HTTP service. Sizes in bytes/pixels/MiB as named, times in seconds."""

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = field(default_factory=default_workers)  # detection threads
    min_face_size: float = 20.0  # default when the query does not give one
    max_body_bytes: int = 10 * 1024 * 1024
    max_pixels: int = DEFAULT_MAX_PIXELS  # decoded image, read from the header before decoding
    memory_budget_mb: int = field(default_factory=default_memory_budget_mb)  # per worker: image + first level
    queue_size: int = 16  # requests waiting for a worker beyond those running; more get 503
    timeout: float = 30.0  # per request: body upload + queue + detection; detection stops at it (504)
    threads: Optional[int] = None  # OpenCV/Numba threads (process-wide), None leaves the default
    backend: str = "auto"  # engine of the networks: "auto", "opencv" or "openvino" (see fastmtcnn.engines)
    precision: str = "f32"  # "f32" or "bf16" (OpenVINO on a CPU with native BF16 only)
    weights: Optional[str] = None  # folder with det1/det2/det3 .prototxt + .caffemodel; None: the shipped weights
    retry_after: int = 1  # seconds, in 503 answers
    max_connections: int = 256  # open connections; beyond it every request gets a JSON 503
    header_timeout: float = 10.0  # a request's headers must arrive within this, or the connection is closed
    keep_alive_timeout: float = 5.0  # idle keep-alive connections are closed after this
    max_multipart_parts: int = 16  # multipart/form-data bodies with more parts get 400
    max_streams: int = 32  # open /v1/stream WebSockets; more are refused with a JSON 503 before the handshake
    stream_max_fps: float = 30.0  # per stream: frames beyond this rate (1 s burst) are dropped, reason rate_limit
    stream_max_frame_bytes: int = 4 * 1024 * 1024  # per frame message; larger ones get an error message
    stream_max_pixels: int = 1920 * 1080  # per frame (read from the header, before decoding), and max_pixels

    def check(self) -> "ServerConfig":
        """Validate every field (SettingsError, a ValueError, naming the field); returns self."""
        for name, what in COUNT_FIELDS.items():
            check_count(name, getattr(self, name), 1, what=what)
        check_count("queue_size", self.queue_size, 0, what="requests waiting beyond the workers, e.g. 16")
        for name in ("timeout", "header_timeout", "keep_alive_timeout", "stream_max_fps"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
                unit = "frames per second" if name == "stream_max_fps" else "seconds"
                raise SettingsError(f"{name} must be a positive number of {unit}, got {value!r}")
        self.settings()  # min_face_size and max_pixels through the one owner of their ranges
        return self

    def settings(self, min_face_size: Optional[float] = None,
                 thresholds: Optional[tuple] = None) -> CascadeSettings:
        """The cascade settings of a request (the server defaults where the query gives nothing)."""
        changes = {} if thresholds is None else {"thresholds": thresholds}
        return CascadeSettings(min_face_size=self.min_face_size if min_face_size is None else min_face_size,
                               max_image_pixels=self.max_pixels, **changes)

    def stream_settings(self, min_face_size: Optional[float] = None,
                        thresholds: Optional[tuple] = None) -> CascadeSettings:
        """The cascade settings of a stream: a request's, with frames limited to `stream_max_pixels`."""
        settings = self.settings(min_face_size, thresholds)
        return settings.replace(max_image_pixels=self.stream_pixel_limit)

    @property
    def stream_pixel_limit(self) -> int:
        """Pixels a stream frame may have: `stream_max_pixels`, and never more than `max_pixels`."""
        return min(self.max_pixels, self.stream_max_pixels)

    @property
    def capacity(self) -> int:
        """Detection requests held at once: running plus queued."""
        return self.workers + self.queue_size

    @property
    def memory_budget_bytes(self) -> int:
        return self.memory_budget_mb << 20


def request_bytes(width: int, height: int, min_face_size: float) -> int:
    """Estimated peak bytes of one detection: the decoded image plus P-Net on the first (largest) pyramid level."""
    level_pixels = width * height * (12.0 / min_face_size) ** 2
    return int(width * height * DECODED_BYTES_PER_PIXEL + level_pixels * PNET_BYTES_PER_LEVEL_PIXEL)
