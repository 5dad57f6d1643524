"""HTTP service: `fastmtcnn serve` (Starlette + Uvicorn, the optional extra `fastmtcnn[server]`).

Endpoints:
    POST /v1/detect   image bytes (raw body with an image/* or application/octet-stream content type, or
                      multipart/form-data with a file field); query `min_face_size`, `thresholds=0.6,0.7,0.7`.
                      -> {"faces": [{"box", "score", "landmarks"}], "image": {"width", "height"}, "timing_ms": {...}}
    GET  /healthz     200 while the process serves requests
    GET  /readyz      200 once the weights are loaded and every worker ran a warm-up detection, 503 before
    GET  /metrics     Prometheus text format

Errors are JSON `{"error": {"code", "message"}}`: 400 bad query/multipart, 408 body too slow, 413 body or image
too large, 415 unsupported content type, 422 undecodable image or bad parameter values, 503 (with Retry-After)
queue full or not ready, 504 detection timed out. Detection runs in a bounded thread pool; a request holds
one of `workers + queue_size` slots from before its body is read until its detection finishes, so memory is
bounded by that many bodies whatever the load. One JSON access-log line per request goes to the
`fastmtcnn.access` logger.

Starlette and Uvicorn are imported only here, so the core package does not need them.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from email.parser import HeaderParser
from email.message import Message
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .detector import Detector
from .runtime import set_num_threads
from .image_input import DEFAULT_MAX_PIXELS, ImageError, image_size_from_header, decode_image

try:
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("fastmtcnn serve needs the server extra: pip install 'fastmtcnn[server]'") from error

access_log = logging.getLogger("fastmtcnn.access")
log = logging.getLogger("fastmtcnn.server")

DEFAULT_THRESHOLDS = (0.6, 0.7, 0.7)
RAW_CONTENT_TYPES = frozenset({"image/jpeg", "image/jpg", "image/pjpeg", "image/png", "image/webp", "image/bmp",
                               "image/x-ms-bmp", "image/tiff", "application/octet-stream"})
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
MAX_MIN_FACE_SIZE = 100_000.0


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = max(1, os.cpu_count() or 1)  # detection threads
    min_face_size: float = 20.0  # default when the query does not give one
    max_body_bytes: int = 10 * 1024 * 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    queue_size: int = 16  # requests waiting for a worker beyond those running; more get 503
    timeout: float = 30.0  # seconds per request, body upload + queue + detection
    detector_cache: int = 8  # Detector objects kept per (min_face_size, thresholds)
    threads: Optional[int] = None  # OpenCV/Numba threads (process-wide), None leaves the default
    retry_after: int = 1  # seconds, in 503 answers

    def check(self) -> "ServerConfig":
        for name in ("workers", "max_body_bytes", "max_pixels", "detector_cache"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.queue_size < 0:
            raise ValueError(f"queue_size must be >= 0, got {self.queue_size!r}")
        if not (self.timeout > 0 and math.isfinite(self.timeout)):
            raise ValueError(f"timeout must be a positive number of seconds, got {self.timeout!r}")
        if not (4 <= self.min_face_size <= MAX_MIN_FACE_SIZE):
            raise ValueError(f"min_face_size must be in [4, {MAX_MIN_FACE_SIZE:g}], got {self.min_face_size!r}")
        return self

    @property
    def capacity(self) -> int:
        return self.workers + self.queue_size


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: Optional[Dict[str, str]] = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, headers: Optional[Dict[str, str]] = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


# ---------------------------------------------------------------------------------------------- metrics
class Metrics:
    """Counters, a latency histogram and gauges, rendered in the Prometheus text format."""

    def __init__(self, slots: "Slots"):
        self._lock = threading.Lock()
        self._slots = slots
        self.requests: Dict[Tuple[str, str, int], int] = {}
        self.errors: Dict[str, int] = {}
        self.buckets = [0] * len(LATENCY_BUCKETS)
        self.latency_count = 0
        self.latency_sum = 0.0
        self.ready = False

    def observe(self, method: str, path: str, status: int, seconds: float, error_code: Optional[str]) -> None:
        with self._lock:
            key = (method, path, status)
            self.requests[key] = self.requests.get(key, 0) + 1
            if error_code:
                self.errors[error_code] = self.errors.get(error_code, 0) + 1
            for i, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    self.buckets[i] += 1
            self.latency_count += 1
            self.latency_sum += seconds

    def render(self) -> str:
        with self._lock:
            lines = ["# HELP fastmtcnn_requests_total HTTP requests by method, path and status.",
                     "# TYPE fastmtcnn_requests_total counter"]
            for (method, path, status), count in sorted(self.requests.items()):
                lines.append(f'fastmtcnn_requests_total{{method="{method}",path="{path}",status="{status}"}} {count}')
            lines += ["# HELP fastmtcnn_errors_total Error answers by error code.",
                      "# TYPE fastmtcnn_errors_total counter"]
            for code, count in sorted(self.errors.items()):
                lines.append(f'fastmtcnn_errors_total{{code="{code}"}} {count}')
            lines += ["# HELP fastmtcnn_request_duration_seconds Request latency.",
                      "# TYPE fastmtcnn_request_duration_seconds histogram"]
            for bound, count in zip(LATENCY_BUCKETS, self.buckets):
                lines.append(f'fastmtcnn_request_duration_seconds_bucket{{le="{bound:g}"}} {count}')
            lines.append(f'fastmtcnn_request_duration_seconds_bucket{{le="+Inf"}} {self.latency_count}')
            lines.append(f"fastmtcnn_request_duration_seconds_sum {self.latency_sum:.6f}")
            lines.append(f"fastmtcnn_request_duration_seconds_count {self.latency_count}")
            ready = int(self.ready)
        held, queued, running = self._slots.snapshot()
        lines += ["# HELP fastmtcnn_in_flight Detection requests admitted and not finished.",
                  "# TYPE fastmtcnn_in_flight gauge", f"fastmtcnn_in_flight {held}",
                  "# HELP fastmtcnn_queue_depth Detection jobs waiting for a worker thread.",
                  "# TYPE fastmtcnn_queue_depth gauge", f"fastmtcnn_queue_depth {queued}",
                  "# HELP fastmtcnn_running Detection jobs running on worker threads.",
                  "# TYPE fastmtcnn_running gauge", f"fastmtcnn_running {running}",
                  "# HELP fastmtcnn_capacity Admission limit (workers + queue size).",
                  "# TYPE fastmtcnn_capacity gauge", f"fastmtcnn_capacity {self._slots.capacity}",
                  "# HELP fastmtcnn_ready 1 once warmed up.", "# TYPE fastmtcnn_ready gauge",
                  f"fastmtcnn_ready {ready}"]
        return "\n".join(lines) + "\n"


class Slots:
    """Admission control: at most `capacity` detection requests held at once (thread-safe)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._lock = threading.Lock()
        self.held = 0
        self.queued = 0
        self.running = 0

    def try_acquire(self) -> bool:
        with self._lock:
            if self.held >= self.capacity:
                return False
            self.held += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.held -= 1

    def job_queued(self) -> None:
        with self._lock:
            self.queued += 1

    def job_started(self) -> None:
        with self._lock:
            self.queued -= 1
            self.running += 1

    def job_finished(self, started: bool) -> None:
        with self._lock:
            if started:
                self.running -= 1
            else:
                self.queued -= 1

    def snapshot(self) -> Tuple[int, int, int]:
        with self._lock:
            return self.held, self.queued, self.running


# ---------------------------------------------------------------------------------------------- detectors
class DetectorCache:
    """Bounded LRU of Detector objects keyed by (min_face_size, thresholds); built on worker threads."""

    def __init__(self, size: int, max_pixels: int):
        self.size, self.max_pixels = size, max_pixels
        self._lock = threading.Lock()
        self._items: "OrderedDict[Tuple[float, Tuple[float, float, float]], Detector]" = OrderedDict()

    def get(self, min_face_size: float, thresholds: Tuple[float, float, float]) -> Detector:
        key = (min_face_size, thresholds)
        with self._lock:
            detector = self._items.get(key)
            if detector is not None:
                self._items.move_to_end(key)
                return detector
        detector = Detector(min_face_size=min_face_size, thresholds=thresholds, max_image_pixels=self.max_pixels)
        with self._lock:
            detector = self._items.setdefault(key, detector)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return detector


# ---------------------------------------------------------------------------------------------- request parsing
def _parse_min_face_size(value: Optional[str], default: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ApiError(400, "bad_query", f"min_face_size must be a number of pixels, got {value[:40]!r}") from None
    if not math.isfinite(number) or not 4 <= number <= MAX_MIN_FACE_SIZE:
        raise ApiError(422, "bad_parameter",
                       f"min_face_size must be a finite number in [4, {MAX_MIN_FACE_SIZE:g}], got {value[:40]!r}")
    return number


def _parse_thresholds(value: Optional[str]) -> Tuple[float, float, float]:
    if value is None:
        return DEFAULT_THRESHOLDS
    parts = value.split(",")
    try:
        numbers = tuple(float(p) for p in parts)
    except ValueError:
        raise ApiError(400, "bad_query", f"thresholds must be three comma-separated numbers like 0.6,0.7,0.7, "
                                         f"got {value[:60]!r}") from None
    if len(numbers) != 3 or not all(math.isfinite(n) and 0 <= n <= 1 for n in numbers):
        raise ApiError(422, "bad_parameter", f"thresholds must be three numbers in [0, 1] like 0.6,0.7,0.7, "
                                             f"got {value[:60]!r}")
    return numbers  # type: ignore[return-value]


def _content_type(raw: str) -> Message:
    message = Message()
    message["content-type"] = raw
    return message


def check_content_type(content_type: str) -> str:
    """The media type of a supported Content-Type header; 415 otherwise."""
    if not content_type:
        raise ApiError(415, "unsupported_media_type", "missing Content-Type: send image/jpeg, image/png, image/webp, "
                                                      "application/octet-stream or multipart/form-data")
    media = _content_type(content_type).get_content_type()
    if media not in RAW_CONTENT_TYPES and media != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type", f"Content-Type {media[:60]!r} is not supported: send image/jpeg,"
                                                      " image/png, image/webp, application/octet-stream or "
                                                      "multipart/form-data")
    return media


def extract_image(content_type: str, body: bytes) -> bytes:
    """The image bytes of a request body: the body itself, or the file part of a multipart/form-data body."""
    if check_content_type(content_type) == "multipart/form-data":
        return _multipart_file(content_type, body)
    return body


def _multipart_file(content_type: str, body: bytes) -> bytes:
    """The first part with a filename (or named file/image) of a multipart/form-data body (RFC 7578)."""
    boundary = _content_type(content_type).get_param("boundary")
    if not isinstance(boundary, str) or not 1 <= len(boundary) <= 200:
        raise ApiError(400, "bad_multipart", "multipart/form-data needs a boundary parameter")
    delimiter = b"--" + boundary.encode("latin-1", "replace")
    chunks = body.split(delimiter)
    if len(chunks) < 3:
        raise ApiError(400, "bad_multipart", "multipart body has no parts delimited by its boundary")
    fallback = None
    for chunk in chunks[1:-1]:  # chunks[0] is the preamble, chunks[-1] starts with "--" (the epilogue)
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        if content.endswith(b"\r\n"):
            content = content[:-2]
        headers = HeaderParser().parsestr(head.decode("latin-1"))
        disposition = Message()
        disposition["content-disposition"] = headers.get("content-disposition", "") or ""
        filename = disposition.get_param("filename", header="content-disposition")
        name = disposition.get_param("name", header="content-disposition")
        if filename is not None:
            return content
        if fallback is None and name in ("file", "image"):
            fallback = content
    if fallback is not None:
        return fallback
    raise ApiError(422, "missing_file", "multipart/form-data body has no file field: send the image as a file part "
                                        "(e.g. curl -F file=@photo.jpg)")


async def _read_body(request: Request, limit: int, deadline: float) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise ApiError(413, "body_too_large", f"request body of {declared} bytes is over the limit of {limit}")
        except ValueError:
            raise ApiError(400, "bad_request", "Content-Length is not a number") from None
    chunks: List[bytes] = []
    size = 0

    async def read() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "body_too_large", f"request body is over the limit of {limit} bytes")
            chunks.append(chunk)

    try:
        await asyncio.wait_for(read(), max(0.001, deadline - time.monotonic()))
    except asyncio.TimeoutError:
        raise ApiError(408, "body_timeout", "request body was not received in time") from None
    return b"".join(chunks)


# ---------------------------------------------------------------------------------------------- the app
class Service:
    def __init__(self, config: ServerConfig):
        self.config = config.check()
        self.slots = Slots(config.capacity)
        self.metrics = Metrics(self.slots)
        self.detectors = DetectorCache(config.detector_cache, config.max_pixels)
        self.pool: Optional[ThreadPoolExecutor] = None
        self.ready = False
        self.warmup_error: Optional[str] = None

    # -- lifecycle
    def start(self) -> None:
        if self.config.threads is not None:
            set_num_threads(self.config.threads)
        self.pool = ThreadPoolExecutor(max_workers=self.config.workers, thread_name_prefix="fastmtcnn-serve")
        threading.Thread(target=self._warm_up, name="fastmtcnn-warmup", daemon=True).start()

    def stop(self) -> None:
        self.ready = self.metrics.ready = False
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def _warm_up(self) -> None:
        """Load the weights, then run one detection on every worker thread (each builds its own cascade)."""
        try:
            workers = self.config.workers
            barrier = threading.Barrier(workers)
            image = np.zeros((96, 128, 3), np.uint8)
            image[:] = np.arange(128, dtype=np.uint8)[None, :, None] * 2

            def warm() -> None:
                try:
                    barrier.wait(timeout=120)  # one task on each worker thread
                except threading.BrokenBarrierError:
                    pass
                self.detectors.get(self.config.min_face_size, DEFAULT_THRESHOLDS).detect(image)

            assert self.pool is not None
            for future in [self.pool.submit(warm) for _ in range(workers)]:
                future.result()
            self.ready = self.metrics.ready = True
            log.info("fastmtcnn server ready: %d workers, capacity %d", workers, self.config.capacity)
        except Exception as error:  # pragma: no cover - reported by /readyz
            self.warmup_error = f"{type(error).__name__}: {error}"
            log.exception("warm-up failed")

    # -- the detection job (worker thread)
    def _job(self, data: bytes, min_face_size: float, thresholds: Tuple[float, float, float],
             queued_at: float) -> Dict[str, Any]:
        started = time.perf_counter()
        try:
            pixels = decode_image(data, self.config.max_pixels, source="request body")
        except ImageError as error:
            if "over the limit" in str(error):
                raise ApiError(413, "image_too_large", str(error)) from None
            raise ApiError(422, "undecodable_image", str(error)) from None
        decoded = time.perf_counter()
        detector = self.detectors.get(min_face_size, thresholds)
        try:
            faces = detector.detect(pixels)
        except (ValueError, TypeError) as error:
            raise ApiError(422, "detection_failed", str(error)) from None
        done = time.perf_counter()
        return {"faces": faces.to_list(),
                "image": {"width": int(pixels.shape[1]), "height": int(pixels.shape[0])},
                "timing_ms": {"queue": round((started - queued_at) * 1000, 3),
                              "decode": round((decoded - started) * 1000, 3),
                              "detect": round((done - decoded) * 1000, 3)}}

    def _run(self, *args: Any) -> Dict[str, Any]:
        """What the pool runs: `_job` with the queue/running gauges kept right whatever it raises."""
        self.slots.job_started()
        try:
            return self._job(*args)
        finally:
            self.slots.job_finished(started=True)

    # -- handlers
    async def detect(self, request: Request) -> Response:
        arrived = time.perf_counter()
        deadline = time.monotonic() + self.config.timeout
        if not self.ready:
            raise ApiError(503, "not_ready", self.warmup_error or "the detector is warming up, retry shortly",
                           {"Retry-After": str(self.config.retry_after)})
        query = request.query_params
        min_face_size = _parse_min_face_size(query.get("min_face_size"), self.config.min_face_size)
        thresholds = _parse_thresholds(query.get("thresholds"))
        content_type = request.headers.get("content-type", "")
        check_content_type(content_type)  # 415 before reading the body
        if not self.slots.try_acquire():
            raise ApiError(503, "overloaded", f"all {self.slots.capacity} request slots are busy, retry later",
                           {"Retry-After": str(self.config.retry_after)})
        submitted = False
        try:
            body = await _read_body(request, self.config.max_body_bytes, deadline)
            data = extract_image(content_type, body)
            if not data:
                raise ApiError(422, "empty_image", "the image is empty (0 bytes)")
            width, height = image_size_from_header(data)
            if width * height > self.config.max_pixels:
                raise ApiError(413, "image_too_large", f"image header says {width}x{height} pixels, over the limit "
                                                       f"of {self.config.max_pixels}")
            assert self.pool is not None
            self.slots.job_queued()
            try:
                future = self.pool.submit(self._run, data, min_face_size, thresholds, time.perf_counter())
            except RuntimeError:  # pool shut down
                self.slots.job_finished(started=False)
                raise ApiError(503, "shutting_down", "the server is shutting down",
                               {"Retry-After": str(self.config.retry_after)}) from None
            submitted = True
            future.add_done_callback(self._job_done)
            try:
                result = await asyncio.wait_for(asyncio.wrap_future(future),
                                                max(0.001, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                raise ApiError(504, "timeout", f"detection did not finish within {self.config.timeout:g} s") from None
            result["timing_ms"]["total"] = round((time.perf_counter() - arrived) * 1000, 3)
            return JSONResponse(result)
        finally:
            if not submitted:
                self.slots.release()

    def _job_done(self, future: Future) -> None:
        if future.cancelled():  # never started: it still counted as queued
            self.slots.job_finished(started=False)
        self.slots.release()

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        if self.ready:
            return JSONResponse({"status": "ready", "workers": self.config.workers})
        return error_response(503, "not_ready", self.warmup_error or "warming up",
                              {"Retry-After": str(self.config.retry_after)})

    async def metrics_endpoint(self, request: Request) -> Response:
        return PlainTextResponse(self.metrics.render(), media_type="text/plain; version=0.0.4")


class AccessLog:
    """ASGI middleware: JSON errors for anything raised, one JSON access-log line and metrics per request."""

    def __init__(self, app: Any, service: Service):
        self.app, self.service = app, service

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = {"status": 0, "bytes": 0, "error": None}

        async def sending(message: Dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                for key, value in message.get("headers", []):
                    if key.lower() == b"x-error-code":
                        state["error"] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except ApiError as error:
            await self._send_error(scope, receive, sending, error)
        except ClientDisconnect:
            state["status"] = state["status"] or 499
            state["error"] = "client_disconnected"
        except Exception as error:  # never a bare 500 page; logged with its traceback
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not state["status"]:
                await self._send_error(scope, receive, sending,
                                       ApiError(500, "internal_error", f"{type(error).__name__}"))
        finally:
            seconds = time.perf_counter() - started
            path = scope.get("path", "")
            known = path if path in ("/v1/detect", "/healthz", "/readyz", "/metrics") else "other"
            status = state["status"]
            error_code = state["error"] or (f"http_{status}" if status >= 400 else None)
            self.service.metrics.observe(scope.get("method", ""), known, status, seconds, error_code)
            client = scope.get("client") or ("", 0)
            access_log.info(json.dumps({"ts": round(time.time(), 3), "method": scope.get("method"), "path": path,
                                        "status": status, "latency_ms": round(seconds * 1000, 3),
                                        "bytes": state["bytes"], "client": client[0], "error": error_code},
                                       separators=(",", ":")))

    @staticmethod
    async def _send_error(scope: Any, receive: Any, send: Any, error: ApiError) -> None:
        headers = dict(error.headers or {})
        headers["X-Error-Code"] = error.code
        await error_response(error.status, error.code, error.message, headers)(scope, receive, send)


def create_app(config: Optional[ServerConfig] = None) -> Any:
    """The ASGI app (Starlette wrapped in the access-log middleware). `app.state.service` is the Service."""
    service = Service(config or ServerConfig())

    async def raise_api_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, ApiError)
        headers = dict(error.headers or {})
        headers["X-Error-Code"] = error.code
        return error_response(error.status, error.code, error.message, headers)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, f"http_{error.status_code}")
        return error_response(error.status_code, code, str(error.detail), {"X-Error-Code": code, **(error.headers or {})})

    async def disconnected(request: Request, error: Exception) -> Response:
        return error_response(400, "client_disconnected", "the client closed the connection",
                              {"X-Error-Code": "client_disconnected"})

    async def internal_error(request: Request, error: Exception) -> Response:
        log.error("unhandled %s on %s %s", type(error).__name__, request.method, request.url.path, exc_info=error)
        return error_response(500, "internal_error", type(error).__name__, {"X-Error-Code": "internal_error"})

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Any):
        service.start()
        try:
            yield
        finally:
            service.stop()

    app = Starlette(routes=[Route("/v1/detect", service.detect, methods=["POST"]),
                            Route("/healthz", service.healthz, methods=["GET"]),
                            Route("/readyz", service.readyz, methods=["GET"]),
                            Route("/metrics", service.metrics_endpoint, methods=["GET"])],
                    exception_handlers={ApiError: raise_api_error, HTTPException: http_error,
                                        ClientDisconnect: disconnected, Exception: internal_error},
                    lifespan=lifespan)
    app.state.service = service
    wrapped = AccessLog(app, service)
    wrapped.state = app.state  # type: ignore[attr-defined]
    return wrapped


def serve(config: ServerConfig, log_level: str = "info") -> None:
    """Run the service with Uvicorn until interrupted (SIGINT/SIGTERM stop it gracefully)."""
    import uvicorn

    config.check()
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    access_log.setLevel(logging.INFO)
    app = create_app(config)
    uvicorn.run(app, host=config.host, port=config.port, log_level=log_level, access_log=False,
                limit_concurrency=max(64, 4 * config.capacity), timeout_keep_alive=5, lifespan="on")


def main_from_args(args: Any) -> None:
    """`fastmtcnn serve ...` (see fastmtcnn.cli)."""
    config = ServerConfig(host=args.host, port=args.port, min_face_size=args.min_face_size,
                          max_body_bytes=args.max_body_bytes, queue_size=args.queue_size, timeout=args.timeout,
                          threads=args.threads)
    if args.workers is not None:
        config.workers = args.workers
    if args.max_pixels is not None:
        config.max_pixels = args.max_pixels
    serve(config, log_level=args.log_level)
