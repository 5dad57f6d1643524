"""Torch nets <-> the authors' Caffe files: det{1,2,3}.prototxt + .caffemodel, written with our own writer.

Every torch parameter has its Caffe blob's shape (the nets work in Caffe's transposed orientation), so the
exchange is a copy by layer name: convolution (out, in, kh, kw) + bias, PReLU slopes (C,), fully connected
(out, in) + bias. The files are what `fastmtcnn.caffe.load_caffe` reads and `Detector(weights=DIR)` runs.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Union

import numpy as np
import torch

from ..caffe import CaffeNet, dump_prototxt, encode_caffemodel, infer_shapes, load_caffe
from ..nets import weight_files
from ..weights.convert import deploy_net
from .nets import STEMS, MTCNNNet, build_net


def to_caffe(net: MTCNNNet) -> CaffeNet:
    """The deploy CaffeNet of `net` with its current weights as float32 blobs (checked by infer_shapes)."""
    caffe_net = deploy_net(net.stem)
    for layer in caffe_net.layers:
        module = net.layers[layer.name]
        layer.blobs = [param.detach().cpu().numpy().astype(np.float32).copy()
                       for param in (getattr(module, "weight", None), getattr(module, "bias", None))
                       if isinstance(param, torch.Tensor)]
    infer_shapes(caffe_net)
    return caffe_net


def load_blobs(net: MTCNNNet, caffe_net: CaffeNet) -> MTCNNNet:
    """Copy a CaffeNet's blobs into `net` by layer name; raises ValueError on a missing layer or shape."""
    blobs: Dict[str, list] = {layer.name: layer.blobs for layer in caffe_net.layers}
    with torch.no_grad():
        for name, module in net.layers.items():
            params = [p for p in (getattr(module, "weight", None), getattr(module, "bias", None))
                      if isinstance(p, torch.Tensor)]
            if not params:
                continue
            source = blobs.get(name, [])
            if [tuple(p.shape) for p in params] != [tuple(b.shape) for b in source]:
                raise ValueError(f"{net.stem} layer {name!r}: blobs {[b.shape for b in source]} do not fit "
                                 f"the parameters {[tuple(p.shape) for p in params]}")
            for param, blob in zip(params, source):
                param.copy_(torch.from_numpy(np.ascontiguousarray(blob)))
    return net


def load_net(stage: str, weights_dir: Union[str, Path, None] = None) -> MTCNNNet:
    """A torch stage holding the shipped weights (weights_dir None) or those of a weights folder."""
    prototxt, caffemodel = weight_files(STEMS[stage], None if weights_dir is None else str(weights_dir))
    return load_blobs(build_net(stage), load_caffe(prototxt.decode("utf-8"), caffemodel))


def export_net(net: MTCNNNet, out_dir: Union[str, Path]) -> Path:
    """Write `<out_dir>/<stem>.prototxt` and `.caffemodel`; returns the caffemodel path. Both are written
    to a temporary folder first and renamed into place, so no reader ever sees a truncated file."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    caffe_net = to_caffe(net)
    files = {f"{net.stem}.prototxt": dump_prototxt(caffe_net).encode("utf-8"),
             f"{net.stem}.caffemodel": encode_caffemodel(caffe_net)}
    with tempfile.TemporaryDirectory(dir=out, prefix=".export-") as staging:
        for name, data in files.items():
            (Path(staging) / name).write_bytes(data)
        for name in files:
            os.replace(Path(staging) / name, out / name)
    return out / f"{net.stem}.caffemodel"


def publish_weights(source: Union[str, Path], out_dir: Union[str, Path]) -> None:
    """Copy the complete det1/2/3 set of `source` into `out_dir`, each file through a temporary copy and an
    atomic rename, det3's caffemodel last: `Detector(weights=out_dir)` finds either no set or a whole one."""
    out = Path(out_dir)
    names = [f"{stem}.{suffix}" for stem in STEMS.values() for suffix in ("prototxt", "caffemodel")]
    missing = [name for name in names if not (Path(source) / name).is_file()]
    if missing:
        raise ValueError(f"cannot publish {source}: {', '.join(missing)} missing")
    with tempfile.TemporaryDirectory(dir=out, prefix=".publish-") as staging:
        for name in names:
            shutil.copyfile(Path(source) / name, Path(staging) / name)
        for name in names:
            os.replace(Path(staging) / name, out / name)
