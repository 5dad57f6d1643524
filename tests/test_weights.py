"""The shipped weights: recorded checksums, the converter, and identity with the authors' Caffe files."""
import hashlib

import numpy as np
import pytest

from fastmtcnn.caffe import encode_caffemodel, load_caffe
from fastmtcnn.nets import verify_weights, weight_files, weights_folder
from fastmtcnn.weights.convert import ARCHITECTURES, deploy_net, dump_prototxt, with_weights

from conftest import shared_path

STEMS = ("det1", "det2", "det3")


def test_shipped_files_match_recorded_checksums():
    recorded = verify_weights()
    assert sorted(recorded) == sorted(f"{stem}.{suffix}" for stem in STEMS for suffix in ("prototxt", "caffemodel"))


def test_checksum_check_detects_a_changed_file(tmp_path, monkeypatch):
    for name in ["SHA256SUMS"] + [f"{s}.{x}" for s in STEMS for x in ("prototxt", "caffemodel")]:
        (tmp_path / name).write_bytes((weights_folder() / name).read_bytes())
    data = bytearray((tmp_path / "det2.caffemodel").read_bytes())
    data[-5] ^= 1
    (tmp_path / "det2.caffemodel").write_bytes(bytes(data))
    monkeypatch.setattr("fastmtcnn.nets.weights_folder", lambda: tmp_path)
    with pytest.raises(RuntimeError, match="det2.caffemodel is corrupt"):
        verify_weights()


def _tf_layout(net):
    """The inverse of the converter's layout change: the arrays as mtcnn==0.1.1 stores them."""
    shapes = {}
    arrays = []
    for layer in net.layers:
        if layer.type == "Convolution":
            arrays += [layer.blobs[0].transpose(2, 3, 1, 0), layer.blobs[1]]
            shapes[layer.tops[0]] = layer.blobs[0].shape
        elif layer.type == "PReLU":
            arrays.append(layer.blobs[0].reshape((1, 1, -1)) if layer.bottoms[0] in shapes else layer.blobs[0])
        elif layer.type == "InnerProduct":
            weights = layer.blobs[0]
            if layer.name in ("conv4", "conv5") and weights.shape[1] in (576, 1152):  # after a conv: (C, 3, 3)
                channels = weights.shape[1] // 9
                weights = weights.reshape(-1, channels, 3, 3).transpose(0, 2, 3, 1).reshape(weights.shape[0], -1)
            arrays += [weights.T, layer.blobs[1]]
    return arrays


@pytest.mark.parametrize("stem", STEMS)
def test_converter_reproduces_shipped_files_from_tf_layout(stem):
    shipped = load_caffe(*[(b.decode() if i == 0 else b) for i, b in enumerate(weight_files(stem))])
    rebuilt = with_weights(deploy_net(stem), _tf_layout(shipped))
    prototxt, caffemodel = weight_files(stem)
    assert dump_prototxt(rebuilt).encode() == prototxt
    assert hashlib.sha256(encode_caffemodel(rebuilt)).digest() == hashlib.sha256(caffemodel).digest()


def test_converter_rejects_arrays_that_do_not_fit():
    arrays = _tf_layout(load_caffe(weight_files("det1")[0].decode(), weight_files("det1")[1]))
    with pytest.raises(ValueError, match="left over"):
        with_weights(deploy_net("det1"), arrays + [np.zeros(3, np.float32)])


@pytest.mark.parametrize("stem", STEMS)
def test_weights_bit_identical_to_the_authors_caffemodels(stem):
    folder = shared_path("reference", "mtcnn-caffe")
    original = load_caffe(str(folder / f"{stem}.prototxt"), str(folder / f"{stem}.caffemodel"))
    ours = load_caffe(weight_files(stem)[0].decode(), weight_files(stem)[1])
    assert [(l.name, l.type, l.bottoms, l.tops) for l in ours.layers] == \
        [(l.name, l.type, l.bottoms, l.tops) for l in original.layers]
    for a, b in zip(ours.layers, original.layers):
        assert len(a.blobs) == len(b.blobs), a.name
        for x, y in zip(a.blobs, b.blobs):
            assert x.shape == y.shape and x.tobytes() == y.tobytes(), a.name


def test_architectures_cover_three_nets():
    assert [ARCHITECTURES[stem][0] for stem in STEMS] == ["PNet", "RNet", "ONet"]
