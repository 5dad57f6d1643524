"""Connection limits Uvicorn does not have: a header-read timeout and a connection cap answered in JSON.

Uvicorn's `limit_concurrency` counts idle connections too and answers with a plain-text 503, and it has no
timeout for a request's headers, so a few dozen connections that never finish their headers take every route
offline (/healthz included). `guarded_protocol(...)` returns an h11 protocol class that
* closes a connection whose request headers are not complete `header_timeout` seconds after its first byte
  (or after it opened, or after the previous response), so slow or silent clients cannot pin connections;
* answers every request on a connection opened beyond `max_connections` with a JSON 503 + Retry-After and
  closes it.
Idle keep-alive connections are closed by Uvicorn's own `timeout_keep_alive`.
"""
from __future__ import annotations

import asyncio
from typing import Any, Dict, Optional

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .responses import ApiError, send_error


def over_connection_limit_app(retry_after: int, max_connections: int):
    """ASGI app answering a JSON 503 (Retry-After, Connection: close) to any request."""
    headers = {"Retry-After": str(retry_after), "Connection": "close"}
    error = ApiError(503, "too_many_connections",
                     f"the server holds its limit of {max_connections} connections, retry later", headers)

    async def app(scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await send_error(send, error)

    return app


class GuardedH11Protocol(H11Protocol):
    """H11Protocol with a header-read timeout and a JSON-answered connection cap (set by `guarded_protocol`)."""

    header_timeout = 10.0
    max_connections = 256
    retry_after = 1
    _header_timer: Optional[asyncio.TimerHandle] = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self.app = over_connection_limit_app(self.retry_after, self.max_connections)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow_request_state()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow_request_state()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _follow_request_state(self) -> None:
        """Waiting for (the rest of) a request's headers: the timer runs; otherwise it does not."""
        if self.conn.their_state is h11.IDLE and self.conn.our_state in (h11.IDLE, h11.DONE) and \
                self.timeout_keep_alive_task is None:
            self._arm_header_timer()
        else:
            self._cancel_header_timer()

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(header_timeout: float, max_connections: int, retry_after: int) -> type:
    """A GuardedH11Protocol subclass with these limits (Uvicorn builds one protocol object per connection)."""
    return type("FastMTCNNH11Protocol", (GuardedH11Protocol,),
                {"header_timeout": header_timeout, "max_connections": max_connections, "retry_after": retry_after})
