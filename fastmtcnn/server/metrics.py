"""Request counters, a latency histogram and admission gauges, rendered in the Prometheus text format."""
from __future__ import annotations

import threading
from typing import Dict, List, Optional, Tuple

from ..engines import Engine
from .admission import Slots

#: Latency histogram bucket bounds, seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Counters, a latency histogram and gauges, rendered in the Prometheus text format."""

    def __init__(self, slots: Slots, engine: Engine):
        self._lock = threading.Lock()
        self._slots = slots
        self._engine = engine
        self.requests: Dict[Tuple[str, str, int], int] = {}
        self.errors: Dict[str, int] = {}
        self.buckets = [0] * len(LATENCY_BUCKETS)
        self.latency_count = 0
        self.latency_sum = 0.0
        self.ready = False
        self.stream_frames: Dict[Tuple[str, str], int] = {}  # (outcome, reason or error code) -> frames
        self.streams_refused: Dict[str, int] = {}
        self.streams_open = 0
        self.streams_total = 0

    def stream_frame(self, outcome: str, detail: str = "") -> None:
        """Count one frame of a stream: outcome "answered", "dropped" (detail: the reason) or "error" (its code)."""
        with self._lock:
            key = (outcome, detail)
            self.stream_frames[key] = self.stream_frames.get(key, 0) + 1

    def stream_opened(self) -> None:
        with self._lock:
            self.streams_open += 1
            self.streams_total += 1

    def stream_closed(self) -> None:
        with self._lock:
            self.streams_open -= 1

    def stream_refused(self, code: str) -> None:
        with self._lock:
            self.streams_refused[code] = self.streams_refused.get(code, 0) + 1

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

    def _stream_lines(self) -> List[str]:
        """The /v1/stream series (call with the lock held)."""
        lines = ["# HELP fastmtcnn_stream_frames_total Frames received on /v1/stream by outcome: answered, "
                 "dropped (by reason) or error (by code).", "# TYPE fastmtcnn_stream_frames_total counter"]
        for (outcome, detail), count in sorted(self.stream_frames.items()):
            label = {"answered": "", "dropped": f',reason="{detail}"', "error": f',code="{detail}"'}[outcome]
            lines.append(f'fastmtcnn_stream_frames_total{{outcome="{outcome}"{label}}} {count}')
        lines += ["# HELP fastmtcnn_streams_open Open /v1/stream connections.", "# TYPE fastmtcnn_streams_open gauge",
                  f"fastmtcnn_streams_open {self.streams_open}",
                  "# HELP fastmtcnn_streams_total /v1/stream connections accepted.",
                  "# TYPE fastmtcnn_streams_total counter", f"fastmtcnn_streams_total {self.streams_total}",
                  "# HELP fastmtcnn_streams_refused_total /v1/stream connections refused, by error code.",
                  "# TYPE fastmtcnn_streams_refused_total counter"]
        for code, count in sorted(self.streams_refused.items()):
            lines.append(f'fastmtcnn_streams_refused_total{{code="{code}"}} {count}')
        return lines

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
            lines += self._stream_lines()
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
                  f"fastmtcnn_ready {ready}",
                  "# HELP fastmtcnn_engine_info The engine that runs the networks (always 1).",
                  "# TYPE fastmtcnn_engine_info gauge",
                  f'fastmtcnn_engine_info{{backend="{self._engine.backend}",precision="{self._engine.precision}"}} 1']
        return "\n".join(lines) + "\n"
