"""Turn an imported `CaffeNet` into an in-memory ONNX model that `cv2.dnn.readNetFromONNX` runs.

OpenCV 5 dropped `readNetFromCaffe`; its ONNX importer exists on 4.x and 5.x, so this is our one path.
The ONNX bytes are written with our protobuf writer (no `onnx` package). Caffe semantics kept:
MaxPool with `ceil_mode=1` (Caffe rounds pooled sizes up), Softmax over axis 1 (opset 13 semantics),
PReLU slopes shaped (C, 1, 1) for feature maps, InnerProduct = Flatten(axis=1) + Gemm(transB=1).

`transpose_spatial=True` folds a spatial transpose into the weights: the authors trained on images fed
by MATLAB, i.e. a (N, C, W, H) blob. Swapping kernel height/width, strides and pads, and permuting the
first fully connected layer's inputs gives a net that takes the ordinary (N, C, H, W) image and returns
the transposed outputs of the original, i.e. score maps in image orientation.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import protobuf as pb
from .caffe import CaffeLayer, CaffeNet, CaffeImportError, Window, conv_window, infer_shapes, pool_window, softmax_axis

OPSET = 13
IR_VERSION = 7
_FLOAT, _INT64 = 1, 7
_ATTR_INT, _ATTR_INTS = 2, 7
#: Name of the optional mask input (`caffe_to_onnx(pool_mask=True)`).
POOL_MASK = "pool_mask"


# ------------------------------------------------------------------------------------ ONNX messages
def _tensor(name: str, array: np.ndarray) -> bytes:
    array = np.ascontiguousarray(array, dtype="<f4")
    dims = b"".join(pb.varint_field(1, d) for d in array.shape)
    return dims + pb.varint_field(2, _FLOAT) + pb.string_field(8, name) + pb.bytes_field(9, array.tobytes())


def _attribute_int(name: str, value: int) -> bytes:
    return pb.string_field(1, name) + pb.varint_field(3, value) + pb.varint_field(20, _ATTR_INT)


def _attribute_ints(name: str, values: Sequence[int]) -> bytes:
    body = b"".join(pb.varint_field(8, v) for v in values)
    return pb.string_field(1, name) + body + pb.varint_field(20, _ATTR_INTS)


def _node(op_type: str, inputs: Sequence[str], outputs: Sequence[str], name: str, attributes=()) -> bytes:
    body = b"".join(pb.string_field(1, i) for i in inputs) + b"".join(pb.string_field(2, o) for o in outputs)
    body += pb.string_field(3, name) + pb.string_field(4, op_type)
    return body + b"".join(pb.bytes_field(5, a) for a in attributes)


def _value_info(name: str, dims: Sequence) -> bytes:
    """A float tensor input/output; an int dim is fixed, a str dim is symbolic (dynamic)."""
    shape = b"".join(pb.bytes_field(1, pb.varint_field(1, d) if isinstance(d, int) else pb.string_field(2, d))
                     for d in dims)
    tensor_type = pb.varint_field(1, _FLOAT) + pb.bytes_field(2, shape)
    return pb.string_field(1, name) + pb.bytes_field(2, pb.bytes_field(1, tensor_type))


def _model(graph: bytes) -> bytes:
    opset = pb.string_field(1, "") + pb.varint_field(2, OPSET)
    return (pb.varint_field(1, IR_VERSION) + pb.string_field(2, "fastmtcnn") + pb.bytes_field(7, graph)
            + pb.bytes_field(8, opset))


# ------------------------------------------------------------------------------------ layer conversion
def _window_attributes(window: Window, transpose: bool) -> List[bytes]:
    order = (1, 0) if transpose else (0, 1)
    kernel = [window.kernel[i] for i in order]
    stride = [window.stride[i] for i in order]
    pad = [window.pad[i] for i in order]
    return [_attribute_ints("kernel_shape", kernel), _attribute_ints("strides", stride),
            _attribute_ints("pads", pad + pad)]


class _GraphBuilder:
    """Accumulates nodes and initializers; maps each Caffe blob name to its current ONNX tensor."""

    def __init__(self, net: CaffeNet, transpose: bool, pool_mask: Optional[str] = None):
        self.net, self.transpose = net, transpose
        self.pool_mask = pool_mask  # an extra input added to the first pooling layer's input, then None
        self.shapes = infer_shapes(net)
        self.nodes: List[bytes] = []
        self.initializers: List[bytes] = []
        self.tensor_of: Dict[str, str] = {net.input_name: net.input_name}
        self.used_names = {net.input_name}

    def fresh(self, name: str) -> str:
        candidate, k = name, 1
        while candidate in self.used_names:
            candidate, k = f"{name}_{k}", k + 1
        self.used_names.add(candidate)
        return candidate

    def weight(self, layer: CaffeLayer, suffix: str, array: np.ndarray) -> str:
        name = self.fresh(f"{layer.name}/{suffix}")
        self.initializers.append(_tensor(name, array))
        return name

    def add(self, layer: CaffeLayer) -> None:
        source = self.tensor_of[layer.bottoms[0]]
        if layer.type == "Dropout":  # identity at inference
            self.tensor_of[layer.tops[0]] = source
            return
        output = self.fresh(layer.name)
        converter = getattr(self, f"_{layer.type.lower()}")
        converter(layer, source, output)
        self.tensor_of[layer.tops[0]] = output

    def _convolution(self, layer: CaffeLayer, source: str, output: str) -> None:
        weights = layer.blobs[0].swapaxes(2, 3) if self.transpose else layer.blobs[0]
        inputs = [source, self.weight(layer, "W", weights)]
        if len(layer.blobs) > 1:
            inputs.append(self.weight(layer, "B", layer.blobs[1]))
        self.nodes.append(_node("Conv", inputs, [output], layer.name,
                                _window_attributes(conv_window(layer), self.transpose)))

    def _pooling(self, layer: CaffeLayer, source: str, output: str) -> None:
        if self.pool_mask is not None:
            masked = self.fresh(f"{layer.name}/masked")
            self.nodes.append(_node("Add", [source, self.pool_mask], [masked], masked))
            source, self.pool_mask = masked, None
        attributes = _window_attributes(pool_window(layer), self.transpose) + [_attribute_int("ceil_mode", 1)]
        self.nodes.append(_node("MaxPool", [source], [output], layer.name, attributes))

    def _prelu(self, layer: CaffeLayer, source: str, output: str) -> None:
        slope = layer.blobs[0]
        if len(self.shapes[layer.bottoms[0]]) == 4:
            slope = slope.reshape(-1, 1, 1)
        self.nodes.append(_node("PRelu", [source, self.weight(layer, "slope", slope)], [output], layer.name))

    def _relu(self, layer: CaffeLayer, source: str, output: str) -> None:
        self.nodes.append(_node("Relu", [source], [output], layer.name))

    def _innerproduct(self, layer: CaffeLayer, source: str, output: str) -> None:
        weights, bottom = layer.blobs[0], self.shapes[layer.bottoms[0]]
        if len(bottom) == 4:
            if self.transpose:  # inputs are flattened from (C, W, H) in our blob, (C, H, W) in Caffe's
                weights = weights.reshape((-1,) + bottom[1:]).swapaxes(2, 3).reshape(weights.shape[0], -1)
            flat = self.fresh(f"{layer.name}/flatten")
            self.nodes.append(_node("Flatten", [source], [flat], flat, [_attribute_int("axis", 1)]))
            source = flat
        bias = layer.blobs[1] if len(layer.blobs) > 1 else np.zeros(weights.shape[0], np.float32)
        inputs = [source, self.weight(layer, "W", weights), self.weight(layer, "B", bias)]
        self.nodes.append(_node("Gemm", inputs, [output], layer.name, [_attribute_int("transB", 1)]))

    def _softmax(self, layer: CaffeLayer, source: str, output: str) -> None:
        self.nodes.append(_node("Softmax", [source], [output], layer.name,
                                [_attribute_int("axis", softmax_axis(layer))]))

    def graph(self, input_dims: Sequence, outputs: Sequence[str], extra_inputs: Sequence[bytes] = ()) -> bytes:
        output_infos = []
        for name in outputs:
            tensor = self.tensor_of[name]
            if tensor != name:  # an in-place layer wrote it: expose it under its Caffe blob name
                self.nodes.append(_node("Identity", [tensor], [name], f"{name}/output"))
            output_infos.append(_value_info(name, ["N"] + [f"{name}_d{i}" for i in range(1, len(self.shapes[name]))]))
        body = b"".join(pb.bytes_field(1, node) for node in self.nodes)
        body += pb.string_field(2, self.net.name)
        body += b"".join(pb.bytes_field(5, tensor) for tensor in self.initializers)
        body += pb.bytes_field(11, _value_info(self.net.input_name, input_dims))
        body += b"".join(pb.bytes_field(11, info) for info in extra_inputs)
        return body + b"".join(pb.bytes_field(12, info) for info in output_infos)


def caffe_to_onnx(net: CaffeNet, transpose_spatial: bool = False, dynamic_spatial: bool = False,
                  pool_mask: bool = False) -> bytes:
    """Serialized ONNX ModelProto (opset 13) computing the same function as the Caffe net.

    dynamic_spatial=True declares H and W symbolic (for fully convolutional nets such as P-Net);
    the batch dimension is always symbolic. pool_mask=True adds a second input "pool_mask" (1, 1, h, w), added
    to the first pooling layer's input: 0 keeps a value, a large negative number keeps it out of every max (so
    a padded image pools as the unpadded one, whose last ceil-mode window is partial).
    Raises CaffeImportError naming an unsupported layer.
    """
    builder = _GraphBuilder(net, transpose_spatial, POOL_MASK if pool_mask else None)
    for layer in net.layers:
        if layer.type not in ("Convolution", "Pooling", "PReLU", "ReLU", "InnerProduct", "Softmax", "Dropout"):
            raise CaffeImportError(f"layer {layer.name!r}: type {layer.type!r} has no ONNX conversion")
        builder.add(layer)
    _, channels, height, width = net.input_shape
    if transpose_spatial:
        height, width = width, height
    dims: Tuple = ("N", channels, "H", "W") if dynamic_spatial else ("N", channels, height, width)
    extra = [_value_info(POOL_MASK, (1, 1, "MH", "MW"))] if pool_mask else []
    return _model(builder.graph(dims, net.output_names(), extra))
