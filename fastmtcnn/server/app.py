"""The ASGI app: routes, the one error path (an ASGI middleware), the access log, and running it on Uvicorn.

Every error answer, expected (`ApiError`: 4xx/503/504) or not (500), is made in `ErrorsAndAccessLog`; routes
raise, they never build error responses themselves. Unknown paths and methods raise `ApiError` 404/405 too.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from concurrent.futures import Future
from contextlib import asynccontextmanager
from functools import lru_cache
from importlib import resources
from types import SimpleNamespace
from typing import Any, Callable, Dict, Optional

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, Router, WebSocketRoute

from ..deadline import Deadline
from ..errors import DetectionCancelled
from ..image_codecs import decodable_formats
from ..runtime import set_num_threads
from .admission import Slots
from .config import ServerConfig
from .detection import Workers, request_settings
from .metrics import Metrics
from .multipart import check_content_type, extract_image, read_body
from .openapi import openapi_document
from .query import parse_query
from .responses import ApiError, send_error
from .stream import Streams

access_log = logging.getLogger("fastmtcnn.access")
log = logging.getLogger("fastmtcnn.server")

#: The web page's files (fastmtcnn/server/static/): path -> (file name, media type).
PAGE_FILES = {"/": ("index.html", "text/html; charset=utf-8"),
              "/static/page.css": ("page.css", "text/css; charset=utf-8"),
              "/static/page.js": ("page.js", "text/javascript; charset=utf-8")}
#: Everything the page loads comes from this server; it connects to this server only (fetch and WebSocket).
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
                                           "media-src 'self' blob: mediastream:; frame-ancestors 'none'",
                "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}

ROUTES = {"/v1/detect": ("POST",), "/v1/stream": ("GET",), "/healthz": ("GET", "HEAD"), "/readyz": ("GET", "HEAD"),
          "/metrics": ("GET", "HEAD"), "/openapi.json": ("GET", "HEAD"),
          **{path: ("GET", "HEAD") for path in PAGE_FILES}}


@lru_cache(maxsize=None)
def _page_file(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


class Service:
    """The routes' state: config, admission slots, metrics, detection workers, readiness."""

    def __init__(self, config: ServerConfig):
        self.config = config.check()
        self.slots = Slots(config.capacity)
        self.workers = Workers(config)
        self.metrics = Metrics(self.slots, self.workers.engine)
        self.streams = Streams(self)
        self.openapi_document = openapi_document(self.config, ROUTES)  # fails here if a route is undocumented
        self.ready = False
        self.warmup_error: Optional[str] = None

    @property
    def retry_after(self) -> Dict[str, str]:
        return {"Retry-After": str(self.config.retry_after)}

    # -- lifecycle
    def start(self) -> None:
        if self.config.threads is not None:
            set_num_threads(self.config.threads)
        self.workers.start()
        threading.Thread(target=self._warm_up, name="fastmtcnn-warmup", daemon=True).start()

    def stop(self) -> None:
        self.ready = self.metrics.ready = False
        self.workers.stop()

    def _warm_up(self) -> None:
        try:
            self.workers.warm_up()
            self.ready = self.metrics.ready = True
            log.info("fastmtcnn server ready: %d workers, capacity %d", self.config.workers, self.config.capacity)
        except Exception as error:  # pragma: no cover - reported by /readyz
            self.warmup_error = f"{type(error).__name__}: {error}"
            log.exception("warm-up failed")

    # -- the detection job (worker thread)
    def _job(self, data: bytes, settings: Any, deadline: Deadline, queued_at: float) -> Dict[str, Any]:
        started = time.perf_counter()
        result = self.workers.detect(data, settings, deadline)
        result["timing_ms"]["queue"] = round((started - queued_at) * 1000, 3)
        return result

    def _run(self, job: Callable[..., Any], *args: Any) -> Any:
        """What the pool runs: `job(*args)` with the queue/running gauges kept right whatever it raises."""
        self.slots.job_started()
        try:
            return job(*args)
        finally:
            self.slots.job_finished(started=True)

    def submit(self, job: Callable[..., Any], *args: Any) -> Future:
        """Run `job(*args)` on a worker thread under a request slot the caller holds: once submitted, the slot
        is released when the job ends (or is cancelled before it started). ApiError 503 when the pool is shut
        down (the slot is then still the caller's)."""
        self.slots.job_queued()
        try:
            future = self.workers.submit(self._run, job, *args)
        except RuntimeError:  # pool shut down
            self.slots.job_finished(started=False)
            raise ApiError(503, "shutting_down", "the server is shutting down", self.retry_after) from None
        future.add_done_callback(self._job_done)
        return future

    def _job_done(self, future: Any) -> None:
        if future.cancelled():  # never started: it still counted as queued
            self.slots.job_finished(started=False)
        self.slots.release()

    def check_ready(self) -> None:
        """ApiError 503 until the warm-up is done (or with the reason it failed)."""
        if not self.ready:
            raise ApiError(503, "not_ready", self.warmup_error or "the detector is warming up, retry shortly",
                           self.retry_after)

    # -- routes
    async def detect(self, request: Request) -> Response:
        arrived = time.perf_counter()
        deadline_at = time.monotonic() + self.config.timeout
        self.check_ready()
        settings = request_settings(self.config, *parse_query(request.query_params))
        content_type = request.headers.get("content-type", "")
        check_content_type(content_type)  # 415 before reading the body
        if not self.slots.try_acquire():
            raise ApiError(503, "overloaded", f"all {self.slots.capacity} request slots are busy, retry later",
                           self.retry_after)
        submitted = False
        try:
            body = await read_body(request, self.config.max_body_bytes, deadline_at)
            data = await asyncio.to_thread(extract_image, content_type, body, self.config.max_multipart_parts)
            del body
            if not data:
                raise ApiError(422, "empty_image", "the image is empty (0 bytes)")
            deadline = Deadline(max(0.0, deadline_at - time.monotonic()), self.workers.stopping)
            future = self.submit(self._job, data, settings, deadline, time.perf_counter())
            submitted = True
            try:
                result = await asyncio.wait_for(asyncio.wrap_future(future), max(0.001, deadline_at - time.monotonic()))
            except (asyncio.TimeoutError, DetectionCancelled):
                raise ApiError(504, "timeout", f"detection did not finish within {self.config.timeout:g} s") from None
            result["timing_ms"]["total"] = round((time.perf_counter() - arrived) * 1000, 3)
            return JSONResponse(result)
        finally:
            if not submitted:
                self.slots.release()

    async def stream_without_upgrade(self, request: Request) -> Response:
        request_settings(self.config, *parse_query(request.query_params), stream=True)  # a bad query: 400/422
        raise ApiError(426, "upgrade_required", "/v1/stream is a WebSocket: connect with a WebSocket client "
                                                "(ws://HOST:PORT/v1/stream), then send one binary message per frame",
                       {"Upgrade": "websocket", "Connection": "Upgrade"})

    async def healthz(self, request: Request) -> Response:
        engine = self.workers.engine
        return JSONResponse({"status": "ok", "engine": {"backend": engine.backend, "precision": engine.precision},
                             "formats": list(decodable_formats())})

    async def readyz(self, request: Request) -> Response:
        if self.ready:
            return JSONResponse({"status": "ready", "workers": self.config.workers})
        raise ApiError(503, "not_ready", self.warmup_error or "warming up", self.retry_after)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(self.openapi_document)

    async def metrics_endpoint(self, request: Request) -> Response:
        return PlainTextResponse(self.metrics.render(), media_type="text/plain; version=0.0.4")

    async def page(self, request: Request) -> Response:
        """The web page (`/`) and its script and style sheet, from the package's static/ folder."""
        name, media_type = PAGE_FILES[request.url.path]
        return Response(_page_file(name), media_type=media_type, headers=PAGE_HEADERS)


class ErrorsAndAccessLog:
    """ASGI middleware, the one error path: JSON errors for anything raised, plus one JSON access-log line
    and the metrics of every request."""

    def __init__(self, app: Any, service: Service):
        self.app, self.service = app, service
        self.state = SimpleNamespace(service=service)

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state: Dict[str, Any] = {"status": 0, "bytes": 0, "error": None}

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
            _check_route(scope)
            await self.app(scope, receive, sending)
        except ApiError as error:
            if not state["status"]:
                await send_error(sending, error)
        except ClientDisconnect:
            state["status"] = state["status"] or 499
            state["error"] = "client_disconnected"
        except Exception as error:  # never a bare 500 page; logged with its traceback
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not state["status"]:
                await send_error(sending, ApiError(500, "internal_error", type(error).__name__))
        finally:
            self._record(scope, state, time.perf_counter() - started)

    def _record(self, scope: Dict[str, Any], state: Dict[str, Any], seconds: float) -> None:
        path = scope.get("path", "")
        known = path if path in ROUTES else "other"
        status = state["status"]
        error_code = state["error"] or (f"http_{status}" if status >= 400 else None)
        self.service.metrics.observe(scope.get("method", ""), known, status, seconds, error_code)
        client = scope.get("client") or ("", 0)
        access_log.info(json.dumps({"ts": round(time.time(), 3), "method": scope.get("method"), "path": path,
                                    "status": status, "latency_ms": round(seconds * 1000, 3),
                                    "bytes": state["bytes"], "client": client[0], "error": error_code},
                                   separators=(",", ":")))


def _check_route(scope: Dict[str, Any]) -> None:
    """ApiError 404 for an unknown path, 405 (with Allow) for a method the path does not take."""
    methods = ROUTES.get(scope.get("path", ""))
    if methods is None:
        raise ApiError(404, "not_found", f"no route {scope.get('path', '')[:80]!r}: use GET / (the web page), "
                                         "POST /v1/detect, WebSocket /v1/stream, GET /healthz, /readyz, /metrics or "
                                         "/openapi.json")
    if scope.get("method") not in methods:
        raise ApiError(405, "method_not_allowed", f"{scope.get('path')} takes {', '.join(methods)}",
                       {"Allow": ", ".join(methods)})


def create_app(config: Optional[ServerConfig] = None) -> ErrorsAndAccessLog:
    """The ASGI app (a Starlette router inside the error/access-log middleware); `app.state.service` is the
    Service. Its lifespan starts the workers and their warm-up, and stops them."""
    service = Service(config or ServerConfig())

    @asynccontextmanager
    async def lifespan(app: Any):
        service.start()
        try:
            yield
        finally:
            service.stop()

    router = Router(routes=[Route("/v1/detect", service.detect, methods=["POST"]),
                            Route("/v1/stream", service.stream_without_upgrade, methods=["GET"]),
                            WebSocketRoute("/v1/stream", service.streams.endpoint),
                            Route("/healthz", service.healthz, methods=["GET"]),
                            Route("/readyz", service.readyz, methods=["GET"]),
                            Route("/metrics", service.metrics_endpoint, methods=["GET"]),
                            Route("/openapi.json", service.openapi, methods=["GET"]),
                            *[Route(path, service.page, methods=["GET"]) for path in PAGE_FILES]],
                    lifespan=lifespan)
    return ErrorsAndAccessLog(router, service)


def serve(config: ServerConfig, log_level: str = "info") -> None:
    """Run the service with Uvicorn until SIGINT/SIGTERM. On a signal, open requests get at most 5 s to finish,
    then the workers stop: a running detection ends at its next deadline check."""
    import uvicorn

    config.check()
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    access_log.setLevel(logging.INFO)
    uvicorn.run(create_app(config), log_level=log_level, **uvicorn_options(config))


def uvicorn_options(config: ServerConfig) -> Dict[str, Any]:
    """uvicorn.run/uvicorn.Config keywords for `config`: the guarded h11 protocol, keep-alive, WebSocket limits
    (a message over twice `stream_max_frame_bytes` closes its stream with 1009; up to that it gets an error
    answer), graceful shutdown. WebSocket compression (permessage-deflate) is off: frames are JPEG/PNG/WebP,
    which do not compress, and deflating them cost ~40x the CPU of sending them (16 streams of 100 kB frames
    here: 6.2 s of CPU per 1,600 frames with it, 0.15 s without)."""
    from .connections import guarded_protocol

    protocol = guarded_protocol(config.header_timeout, config.max_connections, config.retry_after)
    return dict(host=config.host, port=config.port, access_log=False, http=protocol, limit_concurrency=None,
                timeout_keep_alive=math.ceil(config.keep_alive_timeout), ws_max_size=2 * config.stream_max_frame_bytes,
                ws_per_message_deflate=False,
                timeout_graceful_shutdown=5, lifespan="on")
