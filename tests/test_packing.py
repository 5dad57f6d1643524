"""Level packing (`fastmtcnn.packing`): small pyramid levels in one masked P-Net input give exactly the maps, and so
the faces, of the levels run alone, on both engines."""
import dataclasses

import cv2
import numpy as np
import pytest

from fastmtcnn import Detector, engines
from fastmtcnn.nets import PNET, PNET_PADDED
from fastmtcnn.packing import map_size, pack_levels

from conftest import FIXTURES, REPO_ROOT, openvino_installed

ENGINES = [pytest.param("opencv", marks=pytest.mark.skipif(
               not engines.opencv_runs_masked_pnet(),
               reason=f"OpenCV {cv2.__version__} DNN gives the masked P-Net wrong results: no packing there")),
           pytest.param("openvino", marks=pytest.mark.skipif(
               not openvino_installed(), reason='OpenVINO not installed: pip install "fastmtcnn[openvino]"'))]
#: A VGA pyramid's small levels at min face 20 (odd and even sides), largest first.
SIZES = [(103, 137), (73, 98), (52, 69), (37, 49), (26, 35), (19, 25), (14, 18), (12, 13)]


def network(backend, spec):
    return engines.OpenCVNetwork(spec) if backend == "opencv" else engines.OpenVINONetwork(spec, "f32", 1)


def test_levels_sit_at_even_offsets_inside_the_canvas_without_overlapping():
    packing = pack_levels(SIZES)
    assert packing.width == 138 and packing.height % 2 == 0
    covered = np.zeros((packing.height, packing.width), int)
    for (y, x), (h, w) in zip(packing.offsets, packing.sizes):
        assert y % 2 == 0 and x % 2 == 0
        assert y + h <= packing.height and x + w <= packing.width
        covered[y:y + h, x:x + w] += 1
    assert covered.max() == 1
    assert covered.sum() / covered.size > 0.7  # shelves waste little of the canvas
    mask = packing.mask()
    assert mask.shape == (1, 1, packing.height - 2, packing.width - 2)
    assert (mask == 0).sum() == sum((h - 2) * (w - 2) for h, w in SIZES)


@pytest.mark.parametrize("backend", ENGINES)
def test_packed_maps_equal_each_level_alone(backend):
    """Without the mask the odd-sized levels' last row/column would see the neighbour (checked, so this can fail)."""
    rng = np.random.default_rng(7)
    levels = [rng.uniform(-1, 1, (1, 3, h, w)).astype(np.float32) for h, w in SIZES]
    packing = pack_levels(SIZES)
    canvas = rng.uniform(-1, 1, (1, 3, packing.height, packing.width)).astype(np.float32)  # gaps: other pixels
    for (y, x), level in zip(packing.offsets, levels):
        canvas[0, :, y:y + level.shape[2], x:x + level.shape[3]] = level[0]
    alone, masked = network(backend, PNET), network(backend, PNET_PADDED)
    outputs = [np.array(o) for o in masked.forward(canvas, packing.mask())]
    unmasked = [np.array(o) for o in masked.forward(canvas, np.zeros_like(packing.mask()))]
    differs = 0.0
    for k, level in enumerate(levels):
        want_prob, want_reg = (np.array(o) for o in alone.forward(level))
        assert want_prob.shape[2:] == map_size(*SIZES[k])
        prob, reg = packing.level_maps(*outputs, k)
        np.testing.assert_allclose(prob, want_prob[0, 1], rtol=0, atol=1e-6)
        np.testing.assert_allclose(reg, want_reg[0], rtol=0, atol=1e-6)
        differs = max(differs, np.abs(packing.level_maps(*unmasked, k)[1] - want_reg[0]).max())
    assert differs > 1e-3


def detector(backend, min_face_size, pack_area, buckets=False):
    found = Detector(min_face_size=min_face_size, backend=backend, cache_dir=False, shape_buckets=buckets)
    found.engine = dataclasses.replace(found.engine, pack_area=pack_area)
    found._local = type(found._local)()
    return found


def images():
    found = []
    for path in (FIXTURES / "group_640x480.jpg", REPO_ROOT / "examples" / "astronaut.jpg"):
        image = cv2.imread(str(path))
        found += [image] + [cv2.resize(image, size, interpolation=cv2.INTER_AREA) for size in ((517, 403), (333, 251))]
    return found


@pytest.mark.parametrize("backend", ENGINES)
@pytest.mark.parametrize("min_face_size, buckets", [(20, False), (40, False), (20, True)])
def test_packing_gives_the_same_faces(backend, min_face_size, buckets):
    plain, packed = detector(backend, min_face_size, 0, buckets), detector(backend, min_face_size, 40_000, buckets)
    assert packed._cascade().pnet_masked is not None and plain._cascade().pnet_masked is None
    found = 0
    for image in images():
        channels = np.array([2, 1, 0], np.int32)
        np.testing.assert_array_equal(packed._cascade().propose(image, channels),
                                      plain._cascade().propose(image, channels))
        want, have = plain.detect(image), packed.detect(image)
        assert len(have) == len(want)
        np.testing.assert_array_equal(have.boxes, want.boxes)
        np.testing.assert_array_equal(have.scores, want.scores)
        np.testing.assert_array_equal(have.landmarks, want.landmarks)
        found += len(want)
    assert found >= 6


def test_packing_is_chosen_per_engine():
    for (backend, precision), area in engines.PACKED_LEVEL_AREA.items():
        assert backend == "openvino" or engines.opencv_runs_masked_pnet()
        assert area > 0
    opencv = engines.choose_engine("opencv")
    assert opencv.pack_area == engines.PACKED_LEVEL_AREA.get(("opencv", "f32"), 0)
    if openvino_installed():
        assert engines.choose_engine("openvino").pack_area == engines.PACKED_LEVEL_AREA.get(("openvino", "f32"), 0)


@pytest.mark.parametrize("backend", ENGINES)
def test_packing_gives_the_same_candidates_on_small_and_odd_images(backend):
    """Images whose whole pyramid is packed (one level alone too, or a single packable level run alone)."""
    plain, packed = detector(backend, 12, 0), detector(backend, 12, 15_000)
    image, channels = cv2.imread(str(FIXTURES / "group_640x480.jpg")), np.array([2, 1, 0], np.int32)
    candidates = 0
    for size in ((12, 12), (13, 17), (31, 29), (60, 45), (121, 97), (200, 151)):
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        want = plain._cascade().propose(small, channels)
        np.testing.assert_array_equal(packed._cascade().propose(small, channels), want)
        candidates += len(want)
    assert candidates > 0
