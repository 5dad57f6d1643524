"""Make weights/det{1,2,3}.{prototxt,caffemodel} from the MIT-licensed MTCNN weights in `mtcnn==0.1.1`.

The `mtcnn` wheel (Iván de Paz Centeno, MIT) ships Kaipeng Zhang's original MTCNN weights (MIT) as
`mtcnn/data/mtcnn_weights.npy`: a pickled dict {"pnet"|"rnet"|"onet": [arrays in layer order]} in
TensorFlow layout. This script writes them back in Caffe's layout and formats with our own writers:

    pip download --no-deps mtcnn==0.1.1 -d /tmp/mtcnn
    python -m fastmtcnn.weights.convert /tmp/mtcnn/mtcnn-0.1.1-py3-none-any.whl

Layout changes (TF -> Caffe): convolution (kh, kw, in, out) -> (out, in, kh, kw); fully connected
(in, out) with `in` flattened in (H, W, C) order -> (out, in) flattened in (C, H, W) order; PReLU
(1, 1, C) -> (C,). The numbers are unchanged (tests/test_weights.py compares them with the originals).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np

from fastmtcnn.caffe import CaffeLayer, CaffeNet, Identifier, dump_prototxt, encode_caffemodel, infer_shapes

#: sha256 of mtcnn/data/mtcnn_weights.npy in mtcnn-0.1.1-py3-none-any.whl
SOURCE_SHA256 = "9e04e975abf93c7173e956df4b496d6da269e08b9e87f2daec963ee1176576b0"
SOURCE_MEMBER = "mtcnn/data/mtcnn_weights.npy"
WEIGHTS_DIR = Path(__file__).resolve().parent
CHECKSUMS = "SHA256SUMS"

# The three deploy nets as in the authors' det1/det2/det3.prototxt: (type, name, argument[, bottom]).
# Convolution: (out, kernel); Pooling: (kernel, stride); InnerProduct: out; others: None.
# A layer reads the previous layer's top unless a bottom is given (the output heads).
ARCHITECTURES: Dict[str, Any] = {
    "det1": ("PNet", 12, "pnet", [
        ("Convolution", "conv1", (10, 3)), ("PReLU", "PReLU1", None), ("Pooling", "pool1", (2, 2)),
        ("Convolution", "conv2", (16, 3)), ("PReLU", "PReLU2", None),
        ("Convolution", "conv3", (32, 3)), ("PReLU", "PReLU3", None),
        ("Convolution", "conv4-1", (2, 1)), ("Convolution", "conv4-2", (4, 1), "conv3"),
        ("Softmax", "prob1", None, "conv4-1")]),
    "det2": ("RNet", 24, "rnet", [
        ("Convolution", "conv1", (28, 3)), ("PReLU", "prelu1", None), ("Pooling", "pool1", (3, 2)),
        ("Convolution", "conv2", (48, 3)), ("PReLU", "prelu2", None), ("Pooling", "pool2", (3, 2)),
        ("Convolution", "conv3", (64, 2)), ("PReLU", "prelu3", None),
        ("InnerProduct", "conv4", 128), ("PReLU", "prelu4", None),
        ("InnerProduct", "conv5-1", 2), ("InnerProduct", "conv5-2", 4, "conv4"),
        ("Softmax", "prob1", None, "conv5-1")]),
    "det3": ("ONet", 48, "onet", [
        ("Convolution", "conv1", (32, 3)), ("PReLU", "prelu1", None), ("Pooling", "pool1", (3, 2)),
        ("Convolution", "conv2", (64, 3)), ("PReLU", "prelu2", None), ("Pooling", "pool2", (3, 2)),
        ("Convolution", "conv3", (64, 3)), ("PReLU", "prelu3", None), ("Pooling", "pool3", (2, 2)),
        ("Convolution", "conv4", (128, 2)), ("PReLU", "prelu4", None),
        ("InnerProduct", "conv5", 256), ("Dropout", "drop5", None), ("PReLU", "prelu5", None),
        ("InnerProduct", "conv6-1", 2), ("InnerProduct", "conv6-2", 4, "conv5"),
        ("InnerProduct", "conv6-3", 10, "conv5"), ("Softmax", "prob1", None, "conv6-1")]),
}

def _params(kind: str, argument: Any) -> Dict[str, List[Any]]:
    if kind == "Convolution":
        return {"convolution_param": [{"num_output": [argument[0]], "kernel_size": [argument[1]], "stride": [1]}]}
    if kind == "Pooling":
        return {"pooling_param": [{"pool": [Identifier("MAX")], "kernel_size": [argument[0]], "stride": [argument[1]]}]}
    if kind == "InnerProduct":
        return {"inner_product_param": [{"num_output": [argument]}]}
    return {}


def deploy_net(net_key: str) -> CaffeNet:
    """The deploy architecture of det1/det2/det3, without weights."""
    title, size, _, spec = ARCHITECTURES[net_key]
    layers, previous = [], "data"
    for kind, name, argument, *bottom in spec:
        source = bottom[0] if bottom else previous
        top = source if kind in ("PReLU", "Dropout") else name  # in place, as in the authors' files
        layers.append(CaffeLayer(name, kind, [source], [top], _params(kind, argument)))
        previous = top
    return CaffeNet(title, "data", (1, 3, size, size), layers)


def _caffe_blobs(kind: str, tf_arrays: Sequence[np.ndarray], bottom_shape: Sequence[int]) -> List[np.ndarray]:
    if kind == "Convolution":
        return [tf_arrays[0].transpose(3, 2, 0, 1), tf_arrays[1]]
    if kind == "PReLU":
        return [tf_arrays[0].reshape(-1)]
    weights = tf_arrays[0].T  # InnerProduct: (out, in)
    if len(bottom_shape) == 4:  # TF flattened (H, W, C); Caffe flattens (C, H, W)
        _, channels, height, width = bottom_shape
        weights = weights.reshape(-1, height, width, channels).transpose(0, 3, 1, 2).reshape(weights.shape[0], -1)
    return [weights, tf_arrays[1]]


_BLOB_COUNT = {"Convolution": 2, "InnerProduct": 2, "PReLU": 1}


def with_weights(net: CaffeNet, tf_arrays: Sequence[np.ndarray]) -> CaffeNet:
    """Fill `net`'s layers with the TF-layout arrays (taken in layer order) converted to Caffe layout."""
    arrays = list(tf_arrays)
    for layer in net.layers:
        count = _BLOB_COUNT.get(layer.type, 0)
        taken, arrays = arrays[:count], arrays[count:]
        if count:
            bottom = infer_shapes(CaffeNet(net.name, net.input_name, net.input_shape,
                                           net.layers[:net.layers.index(layer)]))[layer.bottoms[0]]
            layer.blobs = [np.ascontiguousarray(a, dtype=np.float32) for a in _caffe_blobs(layer.type, taken, bottom)]
    if arrays:
        raise ValueError(f"{net.name}: {len(arrays)} arrays left over; the source does not match the architecture")
    infer_shapes(net)  # raises on any shape mismatch
    return net


def read_source(path: Path) -> Dict[str, List[np.ndarray]]:
    """The {"pnet", "rnet", "onet"} arrays from the mtcnn wheel (or its extracted .npy), checksum-verified."""
    data = path.read_bytes()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as wheel:
            data = wheel.read(SOURCE_MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != SOURCE_SHA256:
        raise ValueError(f"{path}: {SOURCE_MEMBER} has sha256 {digest}, expected {SOURCE_SHA256} (mtcnn==0.1.1)")
    # allow_pickle is safe here: the bytes were just verified against the known release.
    return np.load(io.BytesIO(data), allow_pickle=True).item()


def convert(source: Path, out_dir: Path = WEIGHTS_DIR) -> Dict[str, str]:
    """Write det{1,2,3}.prototxt/.caffemodel and SHA256SUMS into out_dir; return {file name: sha256}."""
    arrays = read_source(source)
    sums: Dict[str, str] = {}
    for net_key, (_, _, source_key, _) in ARCHITECTURES.items():
        net = with_weights(deploy_net(net_key), arrays[source_key])
        for suffix, payload in (("prototxt", dump_prototxt(net).encode()), ("caffemodel", encode_caffemodel(net))):
            name = f"{net_key}.{suffix}"
            (out_dir / name).write_bytes(payload)
            sums[name] = hashlib.sha256(payload).hexdigest()
    (out_dir / CHECKSUMS).write_text("".join(f"{digest}  {name}\n" for name, digest in sorted(sums.items())))
    return sums


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="mtcnn-0.1.1-py3-none-any.whl or its mtcnn_weights.npy")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="output folder (default: this folder)")
    args = parser.parse_args(argv)
    for name, digest in convert(args.source, args.out).items():
        print(f"{digest}  {args.out / name}")


if __name__ == "__main__":
    main()
