"""The Caffe importer and ONNX export: parser, errors naming the layer, and numerical parity.

Parity is checked three ways: against a plain numpy implementation of Caffe's layers (always), against
OpenCV's own `readNetFromCaffe` on the authors' files (OpenCV 4.x with ../shared only), and the
transpose folded into the weights against the original net on a transposed input (always).
"""
import cv2
import numpy as np
import pytest

from fastmtcnn.caffe import (CaffeImportError, CaffeLayer, CaffeNet, encode_caffemodel, format_prototxt, load_caffe,
                             parse_prototxt)
from fastmtcnn.nets import ONET, PNET, RNET, weight_files
from fastmtcnn.onnx_export import caffe_to_onnx

from conftest import shared_path

OUTPUTS = {"det1": PNET.outputs, "det2": RNET.outputs, "det3": ONET.outputs}
# (net, input shapes): P-Net at odd sizes, R-Net and O-Net at batch 1 and 64.
CASES = [("det1", (1, 3, 12, 12)), ("det1", (1, 3, 37, 29)), ("det1", (2, 3, 51, 64)), ("det1", (1, 3, 13, 97)),
         ("det2", (1, 3, 24, 24)), ("det2", (64, 3, 24, 24)), ("det3", (1, 3, 48, 48)), ("det3", (64, 3, 48, 48))]


def shipped_net(stem):
    prototxt, caffemodel = weight_files(stem)
    return load_caffe(prototxt.decode(), caffemodel)


def opencv_net(onnx_bytes):
    return cv2.dnn.readNetFromONNX(np.frombuffer(onnx_bytes, np.uint8))


def run(net, blob, outputs):
    net.setInput(blob)
    return net.forward(list(outputs))


# ------------------------------------------------------------------------------------ numpy reference
def conv2d(x, weights, bias):
    """Caffe Convolution, stride 1, no padding: x (N, C, H, W), weights (O, C, kh, kw)."""
    kh, kw = weights.shape[2:]
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))  # N, C, H', W', kh, kw
    return np.einsum("nchwij,ocij->nohw", windows, weights, optimize=True) + bias[None, :, None, None]


def max_pool_ceil(x, kernel, stride):
    """Caffe MAX pooling: output size rounds up, windows are clipped at the border."""
    n, c, h, w = x.shape
    oh, ow = -(-(h - kernel) // stride) + 1, -(-(w - kernel) // stride) + 1
    out = np.empty((n, c, oh, ow), x.dtype)
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = x[:, :, i * stride:i * stride + kernel, j * stride:j * stride + kernel].max(axis=(2, 3))
    return out


def prelu(x, slope):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return np.where(x > 0, x, x * slope.reshape(shape))


def numpy_forward(net, x):
    """Evaluate a CaffeNet with numpy in float64: returns {blob name: array}."""
    blobs = {net.input_name: x.astype(np.float64)}
    for layer in net.layers:
        data = blobs[layer.bottoms[0]]
        if layer.type == "Convolution":
            out = conv2d(data, layer.blobs[0].astype(np.float64), layer.blobs[1])
        elif layer.type == "Pooling":
            block = layer.params["pooling_param"][0]
            out = max_pool_ceil(data, block["kernel_size"][0], block["stride"][0])
        elif layer.type == "PReLU":
            out = prelu(data, layer.blobs[0])
        elif layer.type == "InnerProduct":
            out = data.reshape(len(data), -1) @ layer.blobs[0].T.astype(np.float64) + layer.blobs[1]
        elif layer.type == "Softmax":
            e = np.exp(data - data.max(axis=1, keepdims=True))
            out = e / e.sum(axis=1, keepdims=True)
        else:  # Dropout
            out = data
        blobs[layer.tops[0]] = out
    return blobs


@pytest.mark.parametrize("stem,shape", CASES)
def test_onnx_import_matches_numpy_caffe_semantics(stem, shape):
    net = shipped_net(stem)
    x = np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)
    ours = run(opencv_net(caffe_to_onnx(net, dynamic_spatial=stem == "det1")), x, OUTPUTS[stem])
    reference = numpy_forward(net, x)
    for name, value in zip(OUTPUTS[stem], ours):
        assert value.shape == reference[name].shape, name
        assert np.abs(value - reference[name]).max() < 1e-4, name


@pytest.mark.parametrize("stem,shape", CASES)
def test_transpose_folded_into_weights_equals_transposed_input(stem, shape):
    net = shipped_net(stem)
    x = np.random.default_rng(2).uniform(-1, 1, shape).astype(np.float32)
    dynamic = stem == "det1"
    original = run(opencv_net(caffe_to_onnx(net, dynamic_spatial=dynamic)), np.ascontiguousarray(x.swapaxes(2, 3)),
                   OUTPUTS[stem])
    folded = run(opencv_net(caffe_to_onnx(net, transpose_spatial=True, dynamic_spatial=dynamic)), x, OUTPUTS[stem])
    for a, b in zip(original, folded):
        b = b.swapaxes(2, 3) if b.ndim == 4 else b
        assert np.abs(a - b).max() < 1e-4


@pytest.mark.parametrize("stem,shape", CASES)
def test_onnx_import_matches_opencv_caffe_importer(stem, shape):
    if not hasattr(cv2.dnn, "readNetFromCaffe"):
        pytest.skip(f"OpenCV {cv2.__version__} has no readNetFromCaffe (removed in 5.x); CI runs this on 4.x")
    folder = shared_path("reference", "mtcnn-caffe")
    prototxt, caffemodel = str(folder / f"{stem}.prototxt"), str(folder / f"{stem}.caffemodel")
    x = np.random.default_rng(3).uniform(-1, 1, shape).astype(np.float32)
    expected = run(cv2.dnn.readNetFromCaffe(prototxt, caffemodel), x, OUTPUTS[stem])
    ours = run(opencv_net(caffe_to_onnx(load_caffe(prototxt, caffemodel), dynamic_spatial=stem == "det1")), x,
               OUTPUTS[stem])
    for a, b in zip(expected, ours):
        assert a.shape == b.shape
        assert np.abs(a - b).max() < 1e-4


# ------------------------------------------------------------------------------------ parser and errors
def test_prototxt_parser_handles_comments_quotes_and_nesting():
    text = """
    name: "Net"  # trailing comment
    input: 'data'
    input_dim: 1 input_dim: 3
    # a full-line comment
    layer { name: "p" type: "Pooling" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
    """
    message = parse_prototxt(text)
    assert message["name"] == ["Net"] and message["input"] == ["data"] and message["input_dim"] == [1, 3]
    pooling = message["layer"][0]["pooling_param"][0]
    assert pooling == {"pool": ["MAX"], "kernel_size": [2], "stride": [2]}
    assert parse_prototxt(format_prototxt(message)) == message


def test_unbalanced_prototxt_is_a_clear_error():
    with pytest.raises(CaffeImportError, match="missing '}'"):
        parse_prototxt('layer { name: "x" ')


def _edited(stem, old, new):
    prototxt, caffemodel = weight_files(stem)
    text = prototxt.decode()
    assert old in text
    return text.replace(old, new, 1), caffemodel


def test_unsupported_layer_is_named():
    text, caffemodel = _edited("det1", 'type: "PReLU"', 'type: "LRN"')
    with pytest.raises(CaffeImportError, match=r"layer 'PReLU1': type 'LRN' is not supported"):
        load_caffe(text, caffemodel)


def test_shape_mismatch_is_named():
    text, caffemodel = _edited("det2", "num_output: 48", "num_output: 40")
    with pytest.raises(CaffeImportError, match=r"layer 'conv2': weights have shapes \[\(48, 28, 3, 3\)"):
        load_caffe(text, caffemodel)


def test_missing_weights_are_named():
    text, caffemodel = _edited("det1", 'name: "conv3"', 'name: "conv3_renamed"')
    with pytest.raises(CaffeImportError, match=r"layer 'conv3_renamed': the caffemodel has no weights"):
        load_caffe(text, caffemodel)


def test_corrupt_caffemodel_is_a_clear_error():
    prototxt, caffemodel = weight_files("det1")
    with pytest.raises(CaffeImportError, match="caffemodel"):
        load_caffe(prototxt.decode(), caffemodel[:1000])


def test_weights_by_deploy_layer_name_ignore_training_layers():
    """A caffemodel holding a training net (data layer, extra head) imports the deploy layers only."""
    net = shipped_net("det2")
    extra_head = CaffeLayer("conv5-3", "InnerProduct", ["conv4"], ["conv5-3"], {},
                            [np.ones((10, 128), np.float32), np.ones(10, np.float32)])
    training = CaffeNet("train", "data", (1, 3, 24, 24),
                        [CaffeLayer("data", "ImageData", [], ["data", "label"])] + net.layers + [extra_head])
    prototxt, _ = weight_files("det2")
    again = load_caffe(prototxt.decode(), encode_caffemodel(training))
    assert [layer.name for layer in again.layers] == [layer.name for layer in net.layers]
    for a, b in zip(net.layers, again.layers):
        assert len(a.blobs) == len(b.blobs) and all(np.array_equal(x, y) for x, y in zip(a.blobs, b.blobs))


def test_reference_training_caffemodel_imports_by_deploy_names():
    folder = shared_path("reference", "mtcnn-caffe")
    net = load_caffe(str(folder / "det2.prototxt"), str(folder / "det2.caffemodel"))  # file has an extra conv5-3
    assert [layer.name for layer in net.layers if layer.blobs][-1] == "conv5-2"
