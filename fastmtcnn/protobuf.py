"""A minimal Protocol Buffers wire-format reader and writer (no protoc, no generated code).

Enough of https://protobuf.dev/programming-guides/encoding/ for Caffe's NetParameter and ONNX's
ModelProto: varints, 64/32-bit fixed fields, length-delimited fields and packed repeated scalars.
Messages are decoded against a small schema (field number -> name, type, repeated) given by the caller.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Mapping, Tuple

import numpy as np

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


class ProtobufError(ValueError):
    """The bytes are not a valid encoding of the expected message."""


@dataclass(frozen=True)
class Field:
    """One field of a message schema: `kind` is a scalar type name or the name of a message schema."""

    name: str
    kind: str
    repeated: bool = False


Schema = Mapping[int, Field]


# ----------------------------------------------------------------------------------------------- reading
def _read_varint(data: bytes, pos: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise ProtobufError("varint longer than 10 bytes")


def iter_fields(data: bytes) -> Iterator[Tuple[int, int, Any]]:
    """Yield (field_number, wire_type, raw value) for every field of one encoded message.

    The raw value is an int for varints, 8 or 4 bytes for fixed fields, a memoryview for length-delimited.
    """
    view = memoryview(data)
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            value, pos = _read_varint(data, pos)
        elif wire == FIXED64:
            value, pos = view[pos:pos + 8], pos + 8
        elif wire == LENGTH:
            size, pos = _read_varint(data, pos)
            value, pos = view[pos:pos + size], pos + size
        elif wire == FIXED32:
            value, pos = view[pos:pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire} for field {number}")
        if pos > end:
            raise ProtobufError(f"field {number} runs past the end of the message")
        yield number, wire, value


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def _decode_scalar(kind: str, raw: Any) -> Any:
    if kind in ("int32", "int64", "enum"):
        return _signed(raw, 64)
    if kind in ("uint32", "uint64"):
        return raw
    if kind == "bool":
        return bool(raw)
    if kind == "float":
        return struct.unpack("<f", raw)[0]
    if kind == "double":
        return struct.unpack("<d", raw)[0]
    if kind == "string":
        return bytes(raw).decode("utf-8")
    if kind == "bytes":
        return bytes(raw)
    raise ProtobufError(f"unknown scalar type {kind!r}")


def _decode_packed(kind: str, raw: memoryview) -> Any:
    if kind == "float":
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if kind == "double":
        return np.frombuffer(raw, dtype="<f8").tolist()
    values, pos, data = [], 0, bytes(raw)
    while pos < len(data):
        value, pos = _read_varint(data, pos)
        values.append(_decode_scalar(kind, value))
    return values


def decode(data: bytes, schema_name: str, schemas: Mapping[str, Schema]) -> Dict[str, Any]:
    """Decode one message into a dict of field name -> value (a list for repeated fields).

    Unknown fields are skipped, as protobuf does. Packed float fields are returned as float32 arrays.
    """
    schema = schemas[schema_name]
    message: Dict[str, Any] = {}
    for number, wire, raw in iter_fields(bytes(data)):
        field = schema.get(number)
        if field is None:
            continue
        if field.kind in schemas:
            if wire != LENGTH:
                raise ProtobufError(f"field {field.name} should be a message")
            values: Any = [decode(raw, field.kind, schemas)]
        elif wire == LENGTH and field.kind not in ("string", "bytes"):
            values = _decode_packed(field.kind, raw)
        else:
            values = [_decode_scalar(field.kind, raw)]
        if not field.repeated:
            message[field.name] = values[-1]
        elif field.kind == "float":
            previous = message.get(field.name, np.empty(0, np.float32))
            message[field.name] = np.concatenate([previous, np.asarray(values, np.float32)])
        else:
            message.setdefault(field.name, []).extend(values)
    return message


# ----------------------------------------------------------------------------------------------- writing
def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def varint_field(number: int, value: int) -> bytes:
    """An int32/int64/uint/enum/bool field."""
    return _key(number, VARINT) + _varint(int(value))


def bytes_field(number: int, payload: bytes) -> bytes:
    """A length-delimited field: bytes, a string's UTF-8 or an encoded sub-message."""
    return _key(number, LENGTH) + _varint(len(payload)) + payload


def string_field(number: int, text: str) -> bytes:
    return bytes_field(number, text.encode("utf-8"))


def packed_floats(number: int, values: np.ndarray) -> bytes:
    """A packed repeated float field from any array (written as little-endian float32)."""
    return bytes_field(number, np.ascontiguousarray(values, dtype="<f4").tobytes())


def packed_varints(number: int, values) -> bytes:
    return bytes_field(number, b"".join(_varint(int(v)) for v in values))
