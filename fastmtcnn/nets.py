"""The three MTCNN networks as in-memory ONNX models, built from the Caffe files shipped in `fastmtcnn.weights`.

This is the only module that knows the weights' input convention. The authors' nets were trained on
images fed by MATLAB: RGB, normalised as `(x - 127.5) * 0.0078125`, transposed (blob N, 3, W, H).
We fold the transpose into the weights at import (`caffe_to_onnx(transpose_spatial=True)`), so every
net here takes an ordinary float32 blob (N, 3, H, W) in RGB order and returns maps in image orientation.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from .caffe import load_caffe
from .errors import SettingsError
from .onnx_export import caffe_to_onnx

#: Which source channel feeds the nets' R, G, B inputs, by (colour order, channel count).
_CHANNEL_MAPS: Dict[Tuple[str, int], Tuple[int, int, int]] = {
    ("bgr", 3): (2, 1, 0), ("rgb", 3): (0, 1, 2),
    ("bgr", 4): (2, 1, 0), ("rgb", 4): (0, 1, 2),  # BGRA / RGBA: alpha ignored
    ("bgr", 1): (0, 0, 0), ("rgb", 1): (0, 0, 0),  # gray
}


@dataclass(frozen=True)
class NetSpec:
    """One stage: weight file stem, output blob names (score first), input size (P-Net: the smallest; any
    larger H, W), and for P-Net whether it takes a pool mask as a second input (padded levels, see `onnx_export`)."""

    stem: str
    outputs: Tuple[str, ...]
    input_size: int
    pool_mask: bool = False


PNET = NetSpec("det1", ("prob1", "conv4-2"), 12)
#: P-Net for levels padded to a few sizes: forward(blob, mask), see `pipeline.ShapeBuckets`.
PNET_PADDED = NetSpec("det1", ("prob1", "conv4-2"), 12, pool_mask=True)
RNET = NetSpec("det2", ("prob1", "conv5-2"), 24)
ONET = NetSpec("det3", ("prob1", "conv6-2", "conv6-3"), 48)


def channel_map(color: str, channels: int) -> np.ndarray:
    """int32 (3,): source channel index for the nets' R, G and B inputs."""
    return np.array(_CHANNEL_MAPS[(color, channels)], dtype=np.int32)


def weights_folder():
    """The shipped weights: package data `fastmtcnn.weights` when installed, ../weights in a source tree."""
    try:
        return resources.files("fastmtcnn.weights")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "weights"


def weight_files(stem: str, weights_dir: Optional[str] = None) -> Tuple[bytes, bytes]:
    """(prototxt bytes, caffemodel bytes) of a net: shipped in the package, or `<weights_dir>/<stem>.*`."""
    folder = weights_folder() if weights_dir is None else Path(weights_dir)
    return (folder / f"{stem}.prototxt").read_bytes(), (folder / f"{stem}.caffemodel").read_bytes()


def verify_weights() -> Dict[str, str]:
    """Check the shipped weight files against weights/SHA256SUMS; returns {file: sha256} or raises."""
    folder = weights_folder()
    recorded = dict(line.split()[::-1] for line in (folder / "SHA256SUMS").read_text().splitlines() if line.strip())
    for name, digest in recorded.items():
        actual = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        if actual != digest:
            raise RuntimeError(f"weights file {name} is corrupt: sha256 {actual}, expected {digest}")
    return recorded


def onnx_model(spec: NetSpec, weights_dir: Optional[str] = None) -> bytes:
    """The in-memory ONNX model of one stage, from the shipped weights or those in `weights_dir`
    (det1/det2/det3 .prototxt + .caffemodel, e.g. written by `fastmtcnn train`). Built once per process
    and weight files (a rewritten file is read again), shared by all threads."""
    if weights_dir is None:
        return _onnx_model(spec, None, None)
    folder = Path(weights_dir)
    files = [folder / f"{spec.stem}.{suffix}" for suffix in ("prototxt", "caffemodel")]
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise SettingsError(f"weights folder {folder} lacks {', '.join(missing)}: pass a folder holding "
                            "det1/det2/det3 .prototxt and .caffemodel (as written by `fastmtcnn train`)")
    return _onnx_model(spec, str(folder.resolve()), tuple(path.stat().st_mtime_ns for path in files))


def input_name(spec: NetSpec, weights_dir: Optional[str] = None) -> str:
    """The name of the image input of a stage's model (the prototxt's input, "data" in the authors' files)."""
    return _input_name(spec.stem, None if weights_dir is None else str(Path(weights_dir).resolve()))


@functools.lru_cache(maxsize=None)
def _input_name(stem: str, weights_dir: Optional[str]) -> str:
    prototxt, caffemodel = weight_files(stem, weights_dir)
    return load_caffe(prototxt.decode("utf-8"), caffemodel).input_name


def check_weights(weights_dir: Optional[str]) -> None:
    """Load the three stages from `weights_dir` now (None: the shipped weights, nothing to check), so a bad folder
    is a SettingsError before a service starts or a batch begins, not at the first detection."""
    if weights_dir is not None:
        for spec in (PNET, RNET, ONET):
            onnx_model(spec, weights_dir)


@functools.lru_cache(maxsize=None)
def _onnx_model(spec: NetSpec, weights_dir: Optional[str], stamp: Optional[Tuple[int, ...]]) -> bytes:
    prototxt, caffemodel = weight_files(spec.stem, weights_dir)
    net = load_caffe(prototxt.decode("utf-8"), caffemodel)
    return caffe_to_onnx(net, transpose_spatial=True, dynamic_spatial=spec.stem == PNET.stem, pool_mask=spec.pool_mask)

