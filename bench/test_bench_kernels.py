"""The compiled kernels of `fastmtcnn.kernels` on realistic sizes (one thread; they are serial).

Inputs are deterministic: boxes come from the cascade on the VGA benchmark image where that matters
(crop sizes, P-Net score map), from a seeded generator of clustered face-like boxes for NMS.
"""
import numpy as np
import pytest

from fastmtcnn import kernels
from fastmtcnn.nets import channel_map

from .conftest import bench_image, record, set_threads

CHANNELS = channel_map("bgr", 3)
pytestmark = pytest.mark.benchmark(group="kernels", min_rounds=20, max_time=0.5, warmup=True)


@pytest.fixture(autouse=True)
def one_thread():
    set_threads(1)


def clustered_boxes(count, seed=0, clusters=40, width=640, height=480):
    """`count` float32 boxes around `clusters` face positions (jittered, sizes 12..200) and their scores,
    like P-Net candidates pooled over pyramid levels."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform([0, 0], [width, height], (clusters, 2))
    sides = rng.uniform(12, 200, clusters)
    which = rng.integers(0, clusters, count)
    side = sides[which] * rng.uniform(0.8, 1.25, count)
    centre = centres[which] + rng.normal(0, 1, (count, 2)) * side[:, None] * 0.15
    boxes = np.concatenate([centre - side[:, None] / 2, centre + side[:, None] / 2], axis=1).astype(np.float32)
    scores = rng.uniform(0.6, 1.0, count).astype(np.float32)
    return np.ascontiguousarray(boxes), scores


@pytest.fixture(scope="module")
def vga_state():
    """VGA image, its P-Net map at the first pyramid level (min face 20) and its stage-1 candidates."""
    from fastmtcnn import Detector
    image = bench_image("vga")
    cascade = Detector(min_face_size=20, num_threads=1)._cascade()
    height, width = image.pixels.shape[:2]
    scale = kernels.pyramid_scales(height, width, 20, 0.709)[0]
    level_h, level_w = kernels.pyramid_level_size(height, width, scale)
    blob = np.empty((1, 3, level_h, level_w), np.float32)
    kernels.resize_normalize_into(image.pixels, CHANNELS, blob[0])
    prob, reg = cascade.pnet.forward(blob)
    candidates = cascade.propose(image.pixels, CHANNELS)
    return {"image": image, "scale": float(scale), "prob": np.ascontiguousarray(prob[0, 1]),
            "reg": np.ascontiguousarray(reg[0]), "candidates": candidates}


@pytest.mark.parametrize("mode", ["union", "min"])
def test_nms_2000(benchmark, mode):
    boxes, scores = clustered_boxes(2000)
    keep = benchmark(kernels.nms, boxes, scores, 0.7, mode == "min")
    record(benchmark, boxes=len(boxes), kept=len(keep), overlap=mode, threshold=0.7)


@pytest.mark.parametrize("size", [24, 48])
def test_crop_resize_normalize_300(benchmark, vga_state, size):
    """300 crops from the VGA image (stage-1 candidates, repeated if fewer) into size x size blobs."""
    candidates = vga_state["candidates"]
    if len(candidates) == 0:
        candidates = clustered_boxes(300)[0]
    boxes = np.ascontiguousarray(np.resize(candidates, (300, 4)), np.float32)
    out = np.empty((300, 3, size, size), np.float32)
    benchmark(kernels.crop_resize_normalize, vga_state["image"].pixels, boxes, CHANNELS, out)
    sides = boxes[:, 2] - boxes[:, 0] + 1
    record(benchmark, vga_state["image"], 20, boxes=300, crop=f"{size}x{size}",
           box_side_median=float(np.median(sides)))


def test_candidates_from_scores(benchmark, vga_state):
    """P-Net map of the VGA image's first pyramid level (min face 20), threshold 0.6."""
    prob, reg = vga_state["prob"], vga_state["reg"]
    boxes, _, _ = benchmark(kernels.candidates_from_scores, prob, reg, vga_state["scale"], 0.6)
    record(benchmark, vga_state["image"], 20, map_size=f"{prob.shape[1]}x{prob.shape[0]}", candidates=len(boxes))


def test_resize_normalize_vga_level0(benchmark, vga_state):
    """First pyramid level of the VGA image at min face 20 (the largest resize of a detect call)."""
    image = vga_state["image"].pixels
    level_h, level_w = kernels.pyramid_level_size(*image.shape[:2], vga_state["scale"])
    out = np.empty((3, level_h, level_w), np.float32)
    benchmark(kernels.resize_normalize_into, image, CHANNELS, out)
    record(benchmark, vga_state["image"], 20, level=f"{level_w}x{level_h}")


@pytest.mark.parametrize("name", ["calibrate", "square", "truncate_boxes"])
def test_box_arithmetic_1000(benchmark, name):
    boxes, _ = clustered_boxes(1000, seed=1)
    offsets = np.random.default_rng(2).normal(0, 0.1, (1000, 4)).astype(np.float32)
    if name == "calibrate":
        benchmark(kernels.calibrate, boxes, offsets, True)
    else:
        benchmark(getattr(kernels, name), boxes)
    record(benchmark, boxes=1000)
