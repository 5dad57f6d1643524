"""Request bodies: content types, the image bytes of a raw or multipart/form-data body, bounded body reads.

`extract_image` does the parsing; it is CPU work over up to `max_body_bytes`, so the app runs it on a thread,
never on the event loop. Multipart bodies are refused beyond `max_parts` parts before any part is parsed.
"""
from __future__ import annotations

import asyncio
import time
from email.message import Message
from email.parser import HeaderParser
from typing import List

from .responses import ApiError

#: Content types of a raw image body; the bytes decide the format, these only say "an image".
RAW_CONTENT_TYPES = frozenset({"image/jpeg", "image/jpg", "image/pjpeg", "image/png", "image/webp", "image/bmp",
                               "image/x-ms-bmp", "image/tiff", "image/gif", "image/x-portable-anymap",
                               "image/x-portable-bitmap", "image/x-portable-graymap", "image/x-portable-pixmap",
                               "application/octet-stream"})
_SEND_INSTEAD = ("send image/jpeg, image/png, image/webp, image/gif, image/tiff, image/bmp, "
                 "application/octet-stream or multipart/form-data")


def _header_value(raw: str) -> Message:
    message = Message()
    message["content-type"] = raw
    return message


def check_content_type(content_type: str) -> str:
    """The media type of a supported Content-Type header; ApiError 415 otherwise."""
    if not content_type:
        raise ApiError(415, "unsupported_media_type", f"missing Content-Type: {_SEND_INSTEAD}")
    media = _header_value(content_type).get_content_type()
    if media not in RAW_CONTENT_TYPES and media != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type", f"Content-Type {media[:60]!r} is not supported: {_SEND_INSTEAD}")
    return media


def extract_image(content_type: str, body: bytes, max_parts: int) -> bytes:
    """The image bytes of a request body: the body itself, or the file part of a multipart/form-data body."""
    if check_content_type(content_type) == "multipart/form-data":
        return multipart_file(content_type, body, max_parts)
    return body


def multipart_file(content_type: str, body: bytes, max_parts: int) -> bytes:
    """The first part with a filename (else one named file/image) of a multipart/form-data body (RFC 7578)."""
    boundary = _header_value(content_type).get_param("boundary")
    if not isinstance(boundary, str) or not 1 <= len(boundary) <= 200:
        raise ApiError(400, "bad_multipart", "multipart/form-data needs a boundary parameter")
    delimiter = b"--" + boundary.encode("latin-1", "replace")
    parts = body.count(delimiter) - 1  # delimiters before each part and the closing one
    if parts > max_parts:
        raise ApiError(400, "too_many_parts", f"multipart body has {parts} parts, over the limit of {max_parts}: "
                                              "send the image as one file part")
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


async def read_body(request, limit: int, deadline: float) -> bytes:
    """The request body (Starlette `Request`), at most `limit` bytes (413 beyond), received by `deadline`
    (time.monotonic seconds; 408 after)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            declared_bytes = int(declared)
        except ValueError:
            raise ApiError(400, "bad_request", "Content-Length is not a number") from None
        if declared_bytes > limit:
            raise ApiError(413, "body_too_large",
                           f"request body of {declared_bytes} bytes is over the limit of {limit}")
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
