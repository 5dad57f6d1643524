"""The live stream: WebSocket `/v1/stream`, one `FaceTracker` per connection, tracking on the worker threads.

Protocol (query as /v1/detect: `min_face_size`, `thresholds=a,b,c`): the client sends binary messages, each one
encoded image (JPEG/PNG/WebP...), checked like a /v1/detect body (header first: size, pixels, memory budget).
The server answers every message `n` (counted from 0) with one JSON text message:
    {"type": "faces", "frame": n, "full_pass": bool, "faces": [{"id", "box", "score", "landmarks"}],
     "image": {"width", "height"}, "timing_ms": {"queue", "decode", "track", "total"}}
    {"type": "dropped", "frame": n, "reason": "busy" | "rate_limit"}
    {"type": "error", "frame": n, "status": 4xx/5xx, "error": {"code", "message"}}   (the /v1/detect error shape)

Bounds: at most `max_streams` open streams (more are refused before the handshake with the JSON 503 of
/v1/detect, or where the server has no denial responses, close code 1013 with the error as reason); per stream
`stream_max_fps` frames a second (a 1 s burst; more: dropped "rate_limit"), `stream_max_frame_bytes` per message
and `stream_max_pixels` per frame (errors 413); one frame in work plus the newest waiting: a waiting frame that a
newer one replaces, or one that finds every request slot busy, is dropped "busy". Streams hold at most
`stream_slots(config)` request slots in all (`queue_size`, at least `workers`), so the last `workers` slots stay
for /v1/detect when streams outnumber the queue. A stream's turn on a worker
takes the newest frame when it starts, so with many streams queued for few workers the answers stay fresh. Frames
not answered because the client left are counted as dropped "disconnected" in /metrics (nothing is sent).
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from typing import Any, Dict, Optional, Tuple

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketState

from ..detector import Detector
from ..settings import CascadeSettings
from ..video import FaceTracker
from .admission import Slots
from .detection import request_settings
from .query import parse_query
from .responses import ApiError, error_body

log = logging.getLogger("fastmtcnn.server")
access_log = logging.getLogger("fastmtcnn.access")

#: Close codes: 1013 "try again later" for a refusal on a server without denial responses, 1011 internal error.
CLOSE_TRY_AGAIN, CLOSE_INTERNAL = 1013, 1011


class FrameRate:
    """Token bucket: `rate` frames a second on average, bursts up to one second's worth (at least 1 frame)."""

    def __init__(self, rate: float):
        self.rate, self.burst = float(rate), max(1.0, float(rate))
        self.tokens, self.last = self.burst, time.monotonic()

    def allow(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class TrackerDetectors:
    """The `Detector` of each stream setting, shared by the streams that use it (a Detector is thread-safe and
    keeps per-thread networks, ~11 MB per worker thread that ran it). At most `limit` settings are in use at
    once (a stream asking for another one is refused), and up to `keep` unused ones stay built (least recently
    used out), so their memory is bounded whatever the clients ask. Detectors are built on a worker thread."""

    def __init__(self, engine: Any, limit: int = 8, keep: int = 4):
        self.engine, self.limit, self.keep = engine, limit, keep
        self._lock = threading.Lock()
        self._users: Dict[CascadeSettings, int] = {}
        self._detectors: "OrderedDict[CascadeSettings, Detector]" = OrderedDict()

    def reserve(self, settings: CascadeSettings, retry_after: Dict[str, str]) -> None:
        """Count a stream on `settings` (its detector is built later, by `get`); ApiError 503 beyond `limit`."""
        with self._lock:
            if settings not in self._users and len(self._users) >= self.limit:
                raise ApiError(503, "too_many_settings", f"open streams use {self.limit} different settings "
                                                         "already: use the ones others use (or the defaults), or "
                                                         "retry later", retry_after)
            self._users[settings] = self._users.get(settings, 0) + 1

    def release(self, settings: CascadeSettings) -> None:
        with self._lock:
            self._users[settings] -= 1
            if not self._users[settings]:
                del self._users[settings]
            self._evict()

    def get(self, settings: CascadeSettings) -> Detector:
        """The detector of a reserved setting (built on first use: call it on a worker thread)."""
        with self._lock:
            detector = self._detectors.pop(settings, None)
        if detector is None:  # built outside the lock: reserve/release run on the event loop
            detector = Detector(settings=settings, backend=self.engine.backend, precision=self.engine.precision,
                                weights=self.engine.weights_dir)
        with self._lock:
            detector = self._detectors.pop(settings, detector)  # another thread's build may have come first
            self._detectors[settings] = detector
            self._evict()
            return detector

    def _evict(self) -> None:
        """Drop the least recently used detectors no stream uses, beyond `keep` of them (lock held)."""
        idle = [settings for settings in self._detectors if settings not in self._users]
        for settings in idle[:max(0, len(idle) - self.keep)]:
            del self._detectors[settings]


async def refuse(websocket: WebSocket, error: ApiError) -> None:
    """Refuse a WebSocket before its handshake: the HTTP error answer of /v1/detect where the server supports
    denial responses, else close code 1013 (503) or 1008 (4xx) with "code: message" as the reason."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        headers = {"X-Error-Code": error.code, **(error.headers or {})}
        await websocket.send_denial_response(JSONResponse(json.loads(error_body(error.code, error.message)),
                                                          error.status, headers))
    else:
        reason = f"{error.code}: {error.message}".encode()[:120].decode("utf-8", "ignore")
        await websocket.close(CLOSE_TRY_AGAIN if error.status == 503 else 1008, reason)


class TurnError(Exception):
    """A frame's turn failed: the frame number and the ApiError to answer it with."""

    def __init__(self, frame: int, error: ApiError):
        super().__init__(error.message)
        self.frame, self.error = frame, error


def stream_slots(config: Any) -> int:
    """Request slots the streams may hold at once: all but `workers` of them (`queue_size`), and at least `workers`.

    Queued stream turns keep the workers busy (a turn takes the newest frame when it starts), so streams get the
    queue; the slots left over are for /v1/detect, which would otherwise get 503 when streams outnumber the queue
    (measured, 16 streams at 10 fps on 2 workers: capping the streams at `workers` slots cut the tracked frames
    from 136 to 25 a second and starved some streams)."""
    return max(config.workers, config.queue_size)


class Streams:
    """The /v1/stream route: admission (`max_streams`), then one `StreamSession` per accepted connection."""

    def __init__(self, service: Any):
        self.service = service
        self.detectors = TrackerDetectors(service.workers.engine)
        self.turns = Slots(stream_slots(service.config))  # stream turns holding request slots

    def _admit(self, websocket: WebSocket) -> CascadeSettings:
        """The stream's settings; ApiError when it cannot be served."""
        service, config = self.service, self.service.config
        service.check_ready()
        settings = request_settings(config, *parse_query(websocket.query_params), stream=True)
        if service.metrics.streams_open >= config.max_streams:
            raise ApiError(503, "too_many_streams", f"the server holds its limit of {config.max_streams} streams, "
                                                    "retry later", service.retry_after)
        self.detectors.reserve(settings, service.retry_after)
        return settings

    async def endpoint(self, websocket: WebSocket) -> None:
        try:
            settings = self._admit(websocket)
        except ApiError as error:
            self.service.metrics.stream_refused(error.code)
            await refuse(websocket, error)
            return
        self.service.metrics.stream_opened()
        session = StreamSession(self, websocket, settings)
        try:
            await websocket.accept()
            await session.run()
        except Exception:  # a bug: logged, the connection closed with 1011
            log.exception("stream failed")
            if websocket.application_state == WebSocketState.CONNECTED:
                await websocket.close(CLOSE_INTERNAL, "internal_error")
        finally:
            self.detectors.release(settings)
            self.service.metrics.stream_closed()
            session.log_end()


class StreamSession:
    """One connection: a receiver (rate and size checks, keeps the newest frame waiting) and a processor (one turn
    on a worker thread at a time), both on the event loop. A turn takes the newest waiting frame when it starts
    on its worker, not when it was queued: with more streams than workers the turns queue up, and the frame
    tracked is then the freshest one, not one that has waited its turn in the queue."""

    def __init__(self, streams: Streams, websocket: WebSocket, settings: CascadeSettings):
        self.service, self.detectors, self.websocket, self.settings = \
            streams.service, streams.detectors, websocket, settings
        self.config, self.metrics, self.turns = self.service.config, self.service.metrics, streams.turns
        self.rate = FrameRate(self.config.stream_max_fps)
        self.tracker: Optional[FaceTracker] = None  # built with the first frame, on a worker thread
        self._waiting: Optional[Tuple[int, bytes, float]] = None  # (frame, data, arrival) of the newest frame
        self._waiting_lock = threading.Lock()  # the event loop puts frames, a worker thread takes them
        self.wakeup = asyncio.Event()
        self.send_lock = asyncio.Lock()
        self.opened = time.monotonic()
        self.frames = 0
        self.client_gone = False

    def _swap_waiting(self, frame: Optional[Tuple[int, bytes, float]]) -> Optional[Tuple[int, bytes, float]]:
        """Put `frame` (or None) as the waiting one; returns the one it replaces."""
        with self._waiting_lock:
            previous, self._waiting = self._waiting, frame
        return previous

    async def run(self) -> None:
        processor = asyncio.create_task(self._process())
        try:
            await self._receive()
        finally:
            self.client_gone = True
            processor.cancel()
            await asyncio.gather(processor, return_exceptions=True)
            if self._swap_waiting(None) is not None:
                self.metrics.stream_frame("dropped", "disconnected")

    # -- the receiver
    async def _receive(self) -> None:
        while not self.client_gone:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            frame, arrived = self.frames, time.monotonic()
            self.frames += 1
            data = message.get("bytes")
            if data is None:
                await self._error(frame, ApiError(415, "text_message", "send each frame as a binary message with "
                                                  "one encoded image (JPEG, PNG, WebP), not text"))
            elif not self.rate.allow(arrived):
                await self._drop(frame, "rate_limit")
            elif len(data) > self.config.stream_max_frame_bytes:
                await self._error(frame, ApiError(413, "frame_too_large", f"frame of {len(data)} bytes is over the "
                                                  f"limit of {self.config.stream_max_frame_bytes}"))
            elif not data:
                await self._error(frame, ApiError(422, "empty_image", "the image is empty (0 bytes)"))
            else:
                replaced = self._swap_waiting((frame, data, arrived))
                if replaced is not None:  # a newer frame came before its turn
                    await self._drop(replaced[0], "busy")
                self.wakeup.set()

    # -- the processor
    async def _process(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            if self._waiting is not None:
                await self._take_turn()

    async def _take_turn(self) -> None:
        """One frame through the tracker on a worker thread (the newest when the turn starts), answered."""
        turns = self.turns
        if not turns.try_acquire():
            return await self._drop_waiting()
        if not self.service.slots.try_acquire():
            turns.release()
            return await self._drop_waiting()
        try:
            future = self.service.submit(self._turn, time.perf_counter())
        except ApiError as error:
            self.service.slots.release()
            turns.release()
            replaced = self._swap_waiting(None)
            if replaced is not None:
                await self._error(replaced[0], error)
            return
        future.add_done_callback(lambda _: turns.release())
        try:
            frame, answer = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if not self.client_gone:  # the pool cancelled the queued turn: the server is stopping
                replaced = self._swap_waiting(None)
                if replaced is not None:
                    await self._error(replaced[0], ApiError(503, "shutting_down", "the server is shutting down"))
                return
            # the client left with this turn queued (its frame stays waiting: run() counts it) or running (its
            # frame, if it took one, is counted when the turn ends)
            if not future.cancel():
                future.add_done_callback(self._count_lost_turn)
            raise
        except TurnError as failed:
            await self._error(failed.frame, failed.error)
            return
        if answer is None:  # nothing was waiting any more
            return
        answer["timing_ms"]["total"] = round((time.monotonic() - answer.pop("arrived")) * 1000, 3)
        if await self._send({"type": "faces", "frame": frame, **answer}):
            self.metrics.stream_frame("answered")
        else:
            self.metrics.stream_frame("dropped", "disconnected")

    def _count_lost_turn(self, future: Future) -> None:
        """A turn that ran for a client that had left: its frame is counted as dropped (disconnected)."""
        failed = future.exception()
        if isinstance(failed, TurnError) or (failed is None and future.result()[0] is not None):
            self.metrics.stream_frame("dropped", "disconnected")

    def _turn(self, queued_at: float) -> Tuple[Optional[int], Optional[Dict[str, Any]]]:
        """The job (a worker thread): the newest waiting frame, decoded with /v1/detect's checks, through the
        stream's tracker; (frame, answer), or (None, None) when no frame waits. Failures: TurnError."""
        started = time.perf_counter()
        taken = self._swap_waiting(None)
        if taken is None:
            return None, None
        frame, data, arrived = taken
        try:
            pixels, _ = self.service.workers.decode(data, self.settings, source="frame")
            decoded = time.perf_counter()
            if self.tracker is None:
                self.tracker = FaceTracker(self.detectors.get(self.settings))
            record = self.tracker.update(pixels, timestamp=arrived - self.opened).to_record()
        except ApiError as error:
            raise TurnError(frame, error) from None
        except Exception as error:  # a bug: logged, reported like /v1/detect's 500, the stream goes on
            log.exception("stream frame failed")
            raise TurnError(frame, ApiError(500, "internal_error", type(error).__name__)) from None
        done = time.perf_counter()
        return frame, {"full_pass": record["full_pass"], "faces": record["faces"],
                       "image": {"width": int(pixels.shape[1]), "height": int(pixels.shape[0])},
                       "timing_ms": {"queue": round((started - queued_at) * 1000, 3),
                                     "decode": round((decoded - started) * 1000, 3),
                                     "track": round((done - decoded) * 1000, 3)},
                       "arrived": arrived}

    # -- answers
    async def _drop_waiting(self) -> None:
        """No slot for a turn: the waiting frame, if any, is dropped "busy"."""
        replaced = self._swap_waiting(None)
        if replaced is not None:
            await self._drop(replaced[0], "busy")

    async def _drop(self, frame: int, reason: str) -> None:
        self.metrics.stream_frame("dropped", reason)
        await self._send({"type": "dropped", "frame": frame, "reason": reason})

    async def _error(self, frame: int, error: ApiError) -> None:
        self.metrics.stream_frame("error", error.code)
        await self._send({"type": "error", "frame": frame, "status": error.status,
                          "error": {"code": error.code, "message": error.message}})

    async def _send(self, message: Dict[str, Any]) -> bool:
        """Send one JSON text message; False (and the session ends) when the client is gone."""
        if self.client_gone:
            return False
        async with self.send_lock:
            try:
                await self.websocket.send_text(json.dumps(message, separators=(",", ":")))
                return True
            except Exception:  # WebSocketDisconnect, a closed transport: the receiver sees the disconnect
                self.client_gone = True
                return False

    def log_end(self) -> None:
        client = self.websocket.scope.get("client") or ("", 0)
        access_log.info(json.dumps({"ts": round(time.time(), 3), "method": "WS", "path": "/v1/stream",
                                    "status": 101, "latency_ms": round((time.monotonic() - self.opened) * 1000, 3),
                                    "frames": self.frames, "client": client[0], "error": None},
                                   separators=(",", ":")))
