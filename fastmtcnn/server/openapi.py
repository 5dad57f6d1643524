"""The service's OpenAPI 3.1 document (served at /openapi.json): every route, parameter, body and error shape.

Written by hand from the same constants the routes use (query parameters, content types, limits, ranges), so
the document and the server cannot drift apart silently: tests/test_openapi.py validates it with
openapi-spec-validator, checks it names every route of `app.ROUTES`, and fuzzes a running server with it
(Schemathesis). The WebSocket route is described as OpenAPI allows: its HTTP handshake (GET, 101 or a JSON
error), the message protocol in its description and the message schemas under `x-websocket`.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List

from .. import __version__
from ..settings import MIN_FACE_SIZE_RANGE
from .config import ServerConfig
from .multipart import RAW_CONTENT_TYPES

Schema = Dict[str, Any]

_NUMBER = {"type": "number"}
_POINT = {"type": "array", "items": _NUMBER, "minItems": 2, "maxItems": 2}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: Dict[str, Schema], required: Iterable[str] = ()) -> Schema:
    return {"type": "object", "properties": properties, "required": list(required or properties),
            "additionalProperties": False}


def _schemas() -> Dict[str, Schema]:
    face = {"box": {"type": "array", "items": _NUMBER, "minItems": 4, "maxItems": 4,
                    "description": "x1, y1, x2, y2 in pixels of the image"},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "landmarks": {"type": "array", "items": _POINT, "minItems": 5, "maxItems": 5,
                          "description": "[x, y] of the left eye, right eye, nose, left and right mouth corner"}}
    timing = {"type": "object", "additionalProperties": _NUMBER, "description": "milliseconds per step"}
    image = _object({"width": {"type": "integer", "minimum": 1}, "height": {"type": "integer", "minimum": 1}})
    frame = {"type": "integer", "minimum": 0, "description": "the client's message number, from 0"}
    return {
        "Face": _object(face),
        "TrackedFace": _object({"id": {"type": "integer", "description": "stable across the stream's frames"},
                                **face}),
        "Detection": _object({"faces": {"type": "array", "items": _ref("Face")}, "image": image,
                              "timing_ms": timing}),
        "ErrorDetail": _object({"code": {"type": "string", "description": "stable, machine-readable"},
                                "message": {"type": "string", "description": "what was wrong, what to send instead"}}),
        "Error": _object({"error": _ref("ErrorDetail")}),
        "Health": _object({"status": {"const": "ok"},
                           "engine": _object({"backend": {"type": "string"}, "precision": {"type": "string"}}),
                           "formats": {"type": "array", "items": {"type": "string"},
                                       "description": "image formats this server's OpenCV decodes"}}),
        "Ready": _object({"status": {"const": "ready"}, "workers": {"type": "integer", "minimum": 1}}),
        "StreamFaces": _object({"type": {"const": "faces"}, "frame": frame, "full_pass": {"type": "boolean"},
                                "faces": {"type": "array", "items": _ref("TrackedFace")}, "image": image,
                                "timing_ms": timing}),
        "StreamDropped": _object({"type": {"const": "dropped"}, "frame": frame,
                                  "reason": {"enum": ["busy", "rate_limit"]}}),
        "StreamError": _object({"type": {"const": "error"}, "frame": frame,
                                "status": {"type": "integer", "description": "the HTTP status /v1/detect gives"},
                                "error": _ref("ErrorDetail")}),
        "StreamMessage": {"oneOf": [_ref("StreamFaces"), _ref("StreamDropped"), _ref("StreamError")]},
    }


def _parameters() -> List[Schema]:
    low, high = MIN_FACE_SIZE_RANGE
    return [{"name": "min_face_size", "in": "query", "required": False,
             "description": "smallest face side to find, in pixels (the server's --min-face-size by default)",
             "schema": {"type": "number", "minimum": low, "maximum": high}},
            {"name": "thresholds", "in": "query", "required": False, "style": "form", "explode": False,
             "description": "face-score thresholds of P-Net, R-Net and O-Net: three numbers in [0, 1], "
                            "comma-separated, e.g. thresholds=0.6,0.7,0.7",
             "schema": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1},
                        "minItems": 3, "maxItems": 3}}]


def _error(description: str, retry_after: bool = False) -> Schema:
    headers: Dict[str, Schema] = {"X-Error-Code": {"description": "the error code", "schema": {"type": "string"}}}
    if retry_after:
        headers["Retry-After"] = {"description": "seconds", "schema": {"type": "string", "pattern": "^[0-9]+$"}}
    return {"description": description, "headers": headers,
            "content": {"application/json": {"schema": _ref("Error")}}}


def _json(description: str, schema: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


_OTHER_ERRORS = _error("any other error, same shape: 404 unknown path, 405 method (with Allow), 500")


def _detect(config: ServerConfig) -> Schema:
    binary = {"type": "string", "format": "binary"}
    raw = {media: {"schema": binary} for media in sorted(RAW_CONTENT_TYPES)}
    multipart = {"schema": {"type": "object", "properties": {"file": binary}, "required": ["file"]}}
    return {"post": {
        "operationId": "detect", "summary": "Faces and five landmarks of one image",
        "description": "The image is a raw body (any image content type, or application/octet-stream: the bytes "
                       "decide the format) or the file part of a multipart/form-data body. Its size is read from "
                       f"its header before decoding: over {config.max_pixels} pixels, over the per-worker memory "
                       f"budget, or a body over {config.max_body_bytes} bytes gets 413.",
        "parameters": _parameters(),
        "requestBody": {"required": True, "content": {**raw, "multipart/form-data": multipart}},
        "responses": {
            "200": _json("faces sorted by score", "Detection"),
            "400": _error("unknown query parameter, a value that is no number, a bad multipart body"),
            "408": _error("the body did not arrive within the timeout"),
            "413": _error("body, image, or its memory estimate over a limit; or a header without the image size"),
            "415": _error("missing or unsupported Content-Type"),
            "422": _error("empty or undecodable image, a parameter out of range, no file part"),
            "503": _error("not ready, every request slot busy, too many connections, shutting down", True),
            "504": _error("detection did not finish within the timeout (it stops there)"),
            "default": _OTHER_ERRORS}}}


def _stream(config: ServerConfig) -> Schema:
    return {"get": {
        "operationId": "stream", "summary": "Live stream (WebSocket): tracked faces with ids, frame by frame",
        "description": "Open a WebSocket (GET with Upgrade: websocket) with the query of /v1/detect. Send binary "
                       "messages, each one encoded image (JPEG, PNG, WebP...), checked like a /v1/detect body; "
                       f"frames are limited to {config.stream_max_frame_bytes} bytes and "
                       f"{config.stream_pixel_limit} pixels. Each message n (from 0) gets "
                       "one JSON text message (x-websocket.server): its tracked faces, or dropped with a reason "
                       f"(rate_limit: over {config.stream_max_fps:g} frames/s with a 1 s burst; busy: a newer frame "
                       "replaced it while one was in work, or every request slot was busy), or an error. At most "
                       f"{config.max_streams} streams are open at once. Without the upgrade the answer is 426.",
        "parameters": _parameters(),
        "x-websocket": {"client": {"description": "binary message: one encoded image",
                                   "schema": {"type": "string", "format": "binary"}},
                        "server": {"description": "text message: JSON", "schema": _ref("StreamMessage")}},
        "responses": {
            "101": {"description": "WebSocket handshake accepted: the stream is open"},
            "400": _error("unknown query parameter or a value that is no number"),
            "422": _error("a parameter out of range"),
            "426": _error("a plain HTTP request: connect with a WebSocket client", False),
            "503": _error("not ready, the server holds its limit of streams, or open streams use its limit of "
                          "different settings", True),
            "default": _OTHER_ERRORS}}}


def _get(operation_id: str, summary: str, responses: Dict[str, Schema]) -> Schema:
    """GET and HEAD (the same answer without its body)."""
    heads = {status: {key: value for key, value in response.items() if key != "content"}
             for status, response in responses.items()}
    return {"get": {"operationId": operation_id, "summary": summary, "responses": responses},
            "head": {"operationId": operation_id + "_head", "summary": summary + " (headers only)",
                     "responses": heads}}


def _page_file(operation_id: str, summary: str, media_type: str) -> Schema:
    """GET/HEAD of one of the web page's files."""
    return _get(operation_id, summary, {"200": {"description": summary,
                                                "content": {media_type: {"schema": {"type": "string"}}}},
                                        "default": _OTHER_ERRORS})


def openapi_document(config: ServerConfig, routes: Dict[str, tuple]) -> Dict[str, Any]:
    """The OpenAPI 3.1 document of a server with `config`; `routes` (path -> methods) must all be described."""
    not_ready = _error("warming up (or its warm-up failed: the message says why)", True)
    paths: Dict[str, Schema] = {
        "/v1/detect": _detect(config),
        "/v1/stream": _stream(config),
        "/healthz": _get("healthz", "Liveness: 200 while the process serves requests",
                         {"200": _json("alive", "Health"), "default": _OTHER_ERRORS}),
        "/readyz": _get("readyz", "Readiness: 200 once every worker ran a warm-up detection",
                        {"200": _json("ready", "Ready"), "503": not_ready, "default": _OTHER_ERRORS}),
        "/metrics": _get("metrics", "Prometheus metrics (text format 0.0.4)",
                         {"200": {"description": "counters, histogram, gauges",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}},
                          "default": _OTHER_ERRORS}),
        "/openapi.json": _get("openapi", "This document",
                              {"200": {"description": "OpenAPI 3.1",
                                       "content": {"application/json": {"schema": {"type": "object"}}}},
                               "default": _OTHER_ERRORS}),
        "/": _page_file("page", "The web page (HTML, no CDN): pick an image or start the webcam", "text/html"),
        "/static/page.css": _page_file("page_css", "The web page's style sheet", "text/css"),
        "/static/page.js": _page_file("page_js", "The web page's script", "text/javascript"),
    }
    missing = set(routes) - set(paths)
    if missing:
        raise RuntimeError(f"routes without an OpenAPI description: {sorted(missing)}")
    return {"openapi": "3.1.0",
            "info": {"title": "fastmtcnn serve", "version": __version__,
                     "description": "MTCNN face detection on CPU: faces and five landmarks per image, and a live "
                                    "stream of tracked faces. Every error answer is JSON {\"error\": {\"code\", "
                                    "\"message\"}} with an X-Error-Code header."},
            "paths": {path: paths[path] for path in routes},
            "components": {"schemas": _schemas()}}
