"""Caffe model files without Caffe: the prototxt text parser, the caffemodel reader and writer.

This is the only module that knows Caffe's file formats. `load_caffe` turns a deploy prototxt and a
caffemodel into a `CaffeNet` (layers in order, each with its parameters and float32 blobs), checked
against Caffe's own shape rules; `dump_prototxt` and `encode_caffemodel` write one back.
The caffemodel is read with our protobuf wire reader (`fastmtcnn.protobuf`), so protoc is never needed.
Weights are looked up by the *deploy* layer names: a caffemodel may hold a training net (data, slice and
loss layers without blobs, extra heads) and only the layers named in the prototxt are taken.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from . import protobuf as pb
from .protobuf import Field

PathLike = Union[str, Path]

#: Layer types the importer understands (others raise CaffeImportError naming the layer).
SUPPORTED_LAYERS = ("Input", "Convolution", "Pooling", "PReLU", "ReLU", "InnerProduct", "Softmax", "Dropout")

# Field numbers from Caffe's caffe.proto, just the ones the MTCNN family of nets needs.
_SCHEMAS: Dict[str, Dict[int, Field]] = {
    "NetParameter": {
        1: Field("name", "string"),
        2: Field("layers", "V1LayerParameter", True),
        3: Field("input", "string", True),
        4: Field("input_dim", "int32", True),
        100: Field("layer", "LayerParameter", True),
    },
    "LayerParameter": {
        1: Field("name", "string"),
        2: Field("type", "string"),
        3: Field("bottom", "string", True),
        4: Field("top", "string", True),
        7: Field("blobs", "BlobProto", True),
    },
    "V1LayerParameter": {
        2: Field("bottom", "string", True),
        3: Field("top", "string", True),
        4: Field("name", "string"),
        6: Field("blobs", "BlobProto", True),
    },
    "BlobProto": {
        1: Field("num", "int32"),
        2: Field("channels", "int32"),
        3: Field("height", "int32"),
        4: Field("width", "int32"),
        5: Field("data", "float", True),
        7: Field("shape", "BlobShape"),
        8: Field("double_data", "double", True),
    },
    "BlobShape": {1: Field("dim", "int64", True)},
}


class CaffeImportError(ValueError):
    """A prototxt/caffemodel pair that cannot be imported; the message names the layer."""


class Identifier(str):
    """An unquoted prototxt token (enum value such as MAX, or true/false)."""


@dataclass
class CaffeLayer:
    """One deploy layer: `params` is its `*_param` block from the prototxt, `blobs` its float32 weights."""

    name: str
    type: str
    bottoms: List[str]
    tops: List[str]
    params: Dict[str, List[Any]] = field(default_factory=dict)
    blobs: List[np.ndarray] = field(default_factory=list)


@dataclass
class CaffeNet:
    """A deploy network: one input blob of shape (N, C, H, W) and its layers in execution order."""

    name: str
    input_name: str
    input_shape: Tuple[int, ...]
    layers: List[CaffeLayer]

    def output_names(self) -> List[str]:
        """Blobs produced by some layer and consumed by no later layer (Caffe's network outputs)."""
        outputs: List[str] = []
        for index, layer in enumerate(self.layers):
            for top in layer.tops:
                used_later = any(top in later.bottoms for later in self.layers[index + 1:] if top not in later.tops)
                if not used_later and top not in outputs:
                    outputs.append(top)
        return outputs


# ------------------------------------------------------------------------------------ prototxt (text)
_TOKEN = re.compile(r'\s*(?:#[^\n]*\n?\s*)*("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|[{}:]|[^\s{}:#"\']+)')


def _tokenize(text: str) -> List[str]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or not match.group(1):
            if text[pos:].strip() and not text[pos:].lstrip().startswith("#"):
                raise CaffeImportError(f"prototxt: cannot parse text near {text[pos:pos + 30]!r}")
            break
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


def _scalar(token: str) -> Any:
    if token[0] in "\"'":
        return token[1:-1].encode("utf-8").decode("unicode_escape")
    try:
        return int(token)
    except ValueError:
        pass
    try:
        return float(token)
    except ValueError:
        return Identifier(token)


def parse_prototxt(text: str) -> Dict[str, List[Any]]:
    """Parse protobuf text format into nested dicts: every field maps to the list of its values."""
    tokens = _tokenize(text)
    message, pos = _parse_fields(tokens, 0, top_level=True)
    return message


def _parse_fields(tokens: List[str], pos: int, top_level: bool) -> Tuple[Dict[str, List[Any]], int]:
    message: Dict[str, List[Any]] = {}
    while pos < len(tokens):
        name = tokens[pos]
        if name == "}":
            if top_level:
                raise CaffeImportError("prototxt: unbalanced '}'")
            return message, pos + 1
        pos += 1
        if pos < len(tokens) and tokens[pos] == ":":
            pos += 1
        if pos >= len(tokens):
            raise CaffeImportError(f"prototxt: field {name!r} has no value")
        if tokens[pos] == "{":
            value, pos = _parse_fields(tokens, pos + 1, top_level=False)
        else:
            value, pos = _scalar(tokens[pos]), pos + 1
        message.setdefault(name, []).append(value)
    if not top_level:
        raise CaffeImportError("prototxt: missing '}'")
    return message, pos


def format_prototxt(message: Dict[str, List[Any]], indent: int = 0) -> str:
    """Write nested dicts (as returned by `parse_prototxt`) back to protobuf text format."""
    pad, lines = "  " * indent, []
    for name, values in message.items():
        for value in values:
            if isinstance(value, dict):
                lines.append(f"{pad}{name} {{")
                lines.append(format_prototxt(value, indent + 1))
                lines.append(f"{pad}}}")
            elif isinstance(value, Identifier) or isinstance(value, (int, float)):
                lines.append(f"{pad}{name}: {value}")
            else:
                lines.append(f'{pad}{name}: "{value}"')
    return "\n".join(line for line in lines if line)


def _first(message: Dict[str, List[Any]], name: str, default: Any = None) -> Any:
    values = message.get(name)
    return values[0] if values else default


# ------------------------------------------------------------------------------------ layer parameters
def _param_block(layer: CaffeLayer, name: str) -> Dict[str, List[Any]]:
    return _first(layer.params, name, {}) or {}


def _hw(block: Dict[str, List[Any]], name: str, default: Optional[int]) -> Tuple[int, int]:
    """Caffe's (h, w) pair for kernel/stride/pad: `name_h`/`name_w` or `name` (one or two values)."""
    if f"{name}_h" in block or f"{name}_w" in block:
        return int(_first(block, f"{name}_h", default)), int(_first(block, f"{name}_w", default))
    values = block.get(name) or block.get(f"{name}_size") or ([] if default is None else [default])
    if not values:
        raise KeyError(name)
    return (int(values[0]), int(values[-1]))


@dataclass(frozen=True)
class Window:
    """Kernel, stride and padding of a convolution or pooling layer, each as (h, w)."""

    kernel: Tuple[int, int]
    stride: Tuple[int, int]
    pad: Tuple[int, int]


def conv_window(layer: CaffeLayer) -> Window:
    block = _param_block(layer, "convolution_param")
    try:
        kernel = _hw(block, "kernel", None)
    except KeyError:
        raise CaffeImportError(f"layer {layer.name!r}: convolution_param has no kernel_size") from None
    if int(_first(block, "group", 1)) != 1 or "dilation" in block:
        raise CaffeImportError(f"layer {layer.name!r}: grouped or dilated convolution is not supported")
    return Window(kernel, _hw(block, "stride", 1), _hw(block, "pad", 0))


def pool_window(layer: CaffeLayer) -> Window:
    block = _param_block(layer, "pooling_param")
    if str(_first(block, "pool", "MAX")) not in ("MAX", "0"):
        raise CaffeImportError(f"layer {layer.name!r}: only MAX pooling is supported")
    if _first(block, "global_pooling", False):
        raise CaffeImportError(f"layer {layer.name!r}: global pooling is not supported")
    try:
        kernel = _hw(block, "kernel", None)
    except KeyError:
        raise CaffeImportError(f"layer {layer.name!r}: pooling_param has no kernel_size") from None
    return Window(kernel, _hw(block, "stride", 1), _hw(block, "pad", 0))


def num_output(layer: CaffeLayer) -> int:
    key = "convolution_param" if layer.type == "Convolution" else "inner_product_param"
    value = _first(_param_block(layer, key), "num_output")
    if value is None:
        raise CaffeImportError(f"layer {layer.name!r}: {key} has no num_output")
    return int(value)


def has_bias(layer: CaffeLayer) -> bool:
    key = "convolution_param" if layer.type == "Convolution" else "inner_product_param"
    return str(_first(_param_block(layer, key), "bias_term", "true")).lower() not in ("false", "0")


def softmax_axis(layer: CaffeLayer) -> int:
    return int(_first(_param_block(layer, "softmax_param"), "axis", 1))


# ------------------------------------------------------------------------------------ shapes
def _conv_size(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def _pool_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """Caffe pooling rounds the output size up, and drops a last window that starts in the padding."""
    out = int(math.ceil((size + 2 * pad - kernel) / stride)) + 1
    if pad and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def expected_blob_shapes(layer: CaffeLayer, bottom: Tuple[int, ...]) -> List[Tuple[int, ...]]:
    """The blob shapes Caffe requires for `layer` given its bottom shape (N, C, ...)."""
    if layer.type == "Convolution":
        window, out = conv_window(layer), num_output(layer)
        shapes = [(out, bottom[1]) + window.kernel]
        return shapes + [(out,)] if has_bias(layer) else shapes
    if layer.type == "InnerProduct":
        out = num_output(layer)
        shapes = [(out, int(np.prod(bottom[1:])))]
        return shapes + [(out,)] if has_bias(layer) else shapes
    if layer.type == "PReLU":
        shared = _first(_param_block(layer, "prelu_param"), "channel_shared", False)
        return [(1,) if shared else (bottom[1],)]
    return []


def output_shape(layer: CaffeLayer, bottom: Tuple[int, ...]) -> Tuple[int, ...]:
    """Shape of the layer's top for a bottom of shape (N, C, H, W) or (N, C)."""
    if layer.type == "Convolution":
        window = conv_window(layer)
        return (bottom[0], num_output(layer)) + tuple(
            _conv_size(size, k, s, p) for size, k, s, p in zip(bottom[2:], window.kernel, window.stride, window.pad))
    if layer.type == "Pooling":
        window = pool_window(layer)
        return bottom[:2] + tuple(
            _pool_size(size, k, s, p) for size, k, s, p in zip(bottom[2:], window.kernel, window.stride, window.pad))
    if layer.type == "InnerProduct":
        return (bottom[0], num_output(layer))
    return bottom


def infer_shapes(net: CaffeNet) -> Dict[str, Tuple[int, ...]]:
    """Shape of every blob for the prototxt's input shape; raises CaffeImportError on a mismatch."""
    shapes: Dict[str, Tuple[int, ...]] = {net.input_name: tuple(net.input_shape)}
    for layer in net.layers:
        if layer.type not in SUPPORTED_LAYERS:
            raise CaffeImportError(
                f"layer {layer.name!r}: type {layer.type!r} is not supported (supported: {', '.join(SUPPORTED_LAYERS)})")
        if layer.type == "Input":
            continue
        missing = [bottom for bottom in layer.bottoms if bottom not in shapes]
        if missing or len(layer.bottoms) != 1:
            raise CaffeImportError(f"layer {layer.name!r}: needs exactly one known bottom, got {layer.bottoms}")
        bottom = shapes[layer.bottoms[0]]
        if layer.type in ("Convolution", "Pooling") and len(bottom) != 4:
            raise CaffeImportError(f"layer {layer.name!r}: expects a 4-D input, got shape {bottom}")
        expected = expected_blob_shapes(layer, bottom)
        actual = [tuple(blob.shape) for blob in layer.blobs]
        if expected and not actual:
            raise CaffeImportError(f"layer {layer.name!r}: the caffemodel has no weights under this layer name")
        if expected != actual:
            raise CaffeImportError(f"layer {layer.name!r}: weights have shapes {actual}, the prototxt needs {expected}")
        top = output_shape(layer, bottom)
        if min(top) < 1:
            raise CaffeImportError(f"layer {layer.name!r}: input {bottom} is too small (output {top})")
        for name in layer.tops:
            shapes[name] = top
    return shapes


# ------------------------------------------------------------------------------------ reading
def _layers_from_prototxt(message: Dict[str, List[Any]]) -> List[CaffeLayer]:
    if "layers" in message and "layer" not in message:
        raise CaffeImportError("prototxt: the V1 'layers' format is not supported; upgrade it to 'layer'")
    layers = []
    for block in message.get("layer", []):
        params = {key: value for key, value in block.items() if key.endswith("_param") and key != "param"}
        name = str(_first(block, "name", f"layer{len(layers)}"))
        layers.append(CaffeLayer(name, str(_first(block, "type", "")), [str(b) for b in block.get("bottom", [])],
                                 [str(t) for t in block.get("top", [])], params))
    return layers


def _input_of(message: Dict[str, List[Any]], layers: List[CaffeLayer]) -> Tuple[str, Tuple[int, ...]]:
    if "input" in message:
        dims = message.get("input_dim") or [d for shape in message.get("input_shape", []) for d in shape.get("dim", [])]
        return str(message["input"][0]), tuple(int(d) for d in dims)
    for layer in layers:
        if layer.type == "Input":
            shape = _first(_param_block(layer, "input_param"), "shape", {})
            return layer.tops[0], tuple(int(d) for d in shape.get("dim", []))
    raise CaffeImportError("prototxt: no network input (input/input_dim or an Input layer)")


def _blob_array(blob: Dict[str, Any]) -> np.ndarray:
    data = blob.get("data")
    if data is None or not len(data):
        data = np.asarray(blob.get("double_data", []), dtype=np.float32)
    if "shape" in blob:
        dims = tuple(int(d) for d in blob["shape"].get("dim", []))
    else:  # legacy 4-D BlobProto; drop the leading 1s Caffe pads it with
        dims = tuple(int(blob.get(k, 1)) for k in ("num", "channels", "height", "width"))
        while len(dims) > 1 and dims[0] == 1 and int(np.prod(dims[1:])) == data.size:
            dims = dims[1:]
    if int(np.prod(dims)) != data.size:
        raise CaffeImportError(f"caffemodel: blob shape {dims} does not match its {data.size} values")
    return np.asarray(data, dtype=np.float32).reshape(dims)


def read_caffemodel_blobs(data: bytes) -> Dict[str, List[np.ndarray]]:
    """Every layer's blobs in a binary caffemodel, by layer name (float32 arrays in Caffe's layout)."""
    try:
        message = pb.decode(data, "NetParameter", _SCHEMAS)
    except (pb.ProtobufError, UnicodeDecodeError, IndexError, ValueError) as error:
        raise CaffeImportError(f"caffemodel: not a valid binary NetParameter ({error})") from None
    layers = message.get("layer", []) + message.get("layers", [])
    return {str(layer.get("name", "")): [_blob_array(blob) for blob in layer.get("blobs", [])] for layer in layers}


def load_caffe(prototxt: Union[PathLike, str], caffemodel: Union[PathLike, bytes]) -> CaffeNet:
    """Import a deploy prototxt (path or text) and a caffemodel (path or bytes) into a checked CaffeNet."""
    text = Path(prototxt).read_text() if _is_path(prototxt) else str(prototxt)
    data = caffemodel if isinstance(caffemodel, (bytes, bytearray)) else Path(caffemodel).read_bytes()
    message = parse_prototxt(text)
    layers = _layers_from_prototxt(message)
    input_name, input_shape = _input_of(message, layers)
    if len(input_shape) != 4:
        raise CaffeImportError(f"prototxt: input {input_name!r} must be 4-D (N, C, H, W), got {input_shape}")
    blobs = read_caffemodel_blobs(bytes(data))
    for layer in layers:
        layer.blobs = blobs.get(layer.name, [])
    net = CaffeNet(str(_first(message, "name", "net")), input_name, input_shape,
                   [layer for layer in layers if layer.type != "Input"])
    infer_shapes(net)
    return net


def _is_path(value: Union[PathLike, str]) -> bool:
    return isinstance(value, Path) or ("\n" not in str(value) and "{" not in str(value))


# ------------------------------------------------------------------------------------ writing
def _blob_message(array: np.ndarray) -> bytes:
    shape = pb.packed_varints(1, array.shape)
    return pb.bytes_field(7, shape) + pb.packed_floats(5, array.ravel())


def encode_caffemodel(net: CaffeNet) -> bytes:
    """A binary NetParameter holding the deploy layers and their blobs (what Caffe's `net.save` writes)."""
    out = [pb.string_field(1, net.name)]
    for layer in net.layers:
        body = pb.string_field(1, layer.name) + pb.string_field(2, layer.type)
        body += b"".join(pb.string_field(3, name) for name in layer.bottoms)
        body += b"".join(pb.string_field(4, name) for name in layer.tops)
        body += b"".join(pb.bytes_field(7, _blob_message(blob)) for blob in layer.blobs)
        out.append(pb.bytes_field(100, body))
    return b"".join(out)


def dump_prototxt(net: CaffeNet) -> str:
    """The deploy prototxt text of `net` (input given as input/input_dim, like the authors' files)."""
    message: Dict[str, List[Any]] = {"name": [net.name], "input": [net.input_name],
                                     "input_dim": list(net.input_shape)}
    message["layer"] = [dict({"name": [layer.name], "type": [layer.type], "bottom": layer.bottoms,
                              "top": layer.tops}, **layer.params) for layer in net.layers]
    return format_prototxt(message) + "\n"
