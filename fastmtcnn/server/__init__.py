"""HTTP service: `fastmtcnn serve` (Starlette + Uvicorn, the optional extra `fastmtcnn[server]`).

Endpoints:
    POST /v1/detect   image bytes (raw body with an image/* or application/octet-stream content type, or
                      multipart/form-data with a file field); query `min_face_size`, `thresholds=0.6,0.7,0.7`.
                      -> {"faces": [{"box", "score", "landmarks"}], "image": {"width", "height"}, "timing_ms": {...}}
    WS   /v1/stream   WebSocket: binary messages, one encoded image each (same query) -> one JSON message each:
                      tracked faces with ids, or "dropped" (busy, rate_limit), or an error (see `stream`)
    GET  /healthz     200 while the process serves requests (never waits for detection)
    GET  /readyz      200 once every worker ran a warm-up detection, 503 before
    GET  /metrics     Prometheus text format

Errors are JSON `{"error": {"code", "message"}}`: 400 bad query/multipart, 404/405, 408 body too slow, 413 body,
image, or its memory estimate over a limit (or an image whose size its header does not give), 415 content type,
422 undecodable image or a parameter out of range, 503 + Retry-After when not ready, all request slots are busy
or the connection limit is reached, 504 when the request's timeout passed (its detection stops there too).

Modules: `config` (ServerConfig, limits), `admission` (request slots), `multipart` (bodies), `query` (the query
string), `detection` (worker threads and the job), `metrics`, `responses` (ApiError), `connections` (header
timeout, connection cap), `stream` (the WebSocket stream), `app` (routes, error path, access log, Uvicorn),
`command` (the CLI registrar). Only `app`, `stream` and `connections` import Starlette/Uvicorn; `ServerConfig`
and the registrar work without the extra.
"""
from __future__ import annotations

from typing import Any

from .config import ServerConfig

__all__ = ["ServerConfig", "create_app", "serve", "main_from_args"]

_NEEDS_EXTRA = {"create_app": ".app", "serve": ".app", "main_from_args": ".command"}


def __getattr__(name: str) -> Any:
    """create_app, serve and main_from_args, imported on first use (they need the server extra)."""
    if name not in _NEEDS_EXTRA:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    try:
        module = importlib.import_module(_NEEDS_EXTRA[name], __name__)
    except ImportError as error:
        if error.name in ("starlette", "uvicorn", "h11", "websockets"):
            raise ImportError("fastmtcnn serve needs the server extra: pip install 'fastmtcnn[server]'") from error
        raise
    return getattr(module, name)
