"""The service's one error type, `ApiError`, and the JSON error body every non-200 answer has."""
from __future__ import annotations

import json
from typing import Dict, List, Optional, Tuple


class ApiError(Exception):
    """An HTTP error answer: status, a stable machine-readable code, a message saying what to send instead."""

    def __init__(self, status: int, code: str, message: str, headers: Optional[Dict[str, str]] = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_body(code: str, message: str) -> bytes:
    """`{"error": {"code", "message"}}` as UTF-8 JSON."""
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def error_headers(error: ApiError) -> List[Tuple[bytes, bytes]]:
    """Raw ASGI headers of an error answer: JSON, its length, X-Error-Code and the error's own (Retry-After...)."""
    headers = {"content-type": "application/json", "x-error-code": error.code}
    headers.update({key.lower(): value for key, value in (error.headers or {}).items()})
    return [(key.encode("latin-1"), value.encode("latin-1")) for key, value in headers.items()]


async def send_error(send, error: ApiError) -> None:
    """Send `error` as a complete JSON response on an ASGI `send`."""
    body = error_body(error.code, error.message)
    headers = error_headers(error) + [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
