"""Shape buckets (`fastmtcnn.pipeline.ShapeBuckets`): padded P-Net levels and rounded crop batches give exactly
the faces of unpadded shapes, on both engines; the pool mask is what keeps the padding out."""
import cv2
import numpy as np
import pytest

from fastmtcnn import Detector, engines
from fastmtcnn.errors import SettingsError
from fastmtcnn.nets import PNET, PNET_PADDED
from fastmtcnn.pipeline import SHAPE_BUCKETS, ShapeBuckets

from conftest import FIXTURES, REPO_ROOT, openvino_installed

ENGINES = [pytest.param("opencv", marks=pytest.mark.skipif(
               not engines.opencv_runs_masked_pnet(),
               reason=f"OpenCV {cv2.__version__} DNN gives the masked P-Net wrong results: buckets refused there")),
           pytest.param("openvino", marks=pytest.mark.skipif(
               not openvino_installed(), reason='OpenVINO not installed: pip install "fastmtcnn[openvino]"'))]


def network(backend, spec):
    return engines.OpenCVNetwork(spec) if backend == "opencv" else engines.OpenVINONetwork(spec, "f32", 1)


def test_bucket_sizes():
    buckets = ShapeBuckets(side=16, batch=16, small=8)
    assert buckets.level(12, 12) == (16, 16)
    assert buckets.level(288, 384) == (288, 384)
    assert buckets.level(205, 273) == (208, 288)
    assert [buckets.crops(n, 256) for n in (1, 2, 3, 5, 8, 9, 16, 17, 250)] == [1, 2, 4, 8, 8, 16, 16, 32, 256]
    assert buckets.crops(97, 100) == 100  # never above the batch buffer


def test_buckets_are_opt_in():
    assert not engines.choose_engine("opencv").buckets
    if engines.opencv_runs_masked_pnet():
        assert engines.choose_engine("opencv", buckets=True).buckets
    if openvino_installed():
        assert not engines.choose_engine("openvino").buckets
        assert Detector(backend="openvino", shape_buckets=True).engine.buckets


@pytest.mark.parametrize("backend", ENGINES)
@pytest.mark.parametrize("height, width", [(12, 12), (13, 13), (25, 31), (37, 50), (64, 48)])
def test_padded_pnet_with_its_mask_equals_the_unpadded_one(backend, height, width):
    """Odd sizes end in a partial ceil-mode pool window: the mask keeps the padding out of it (without the
    mask the last row/column differs, so this test can fail)."""
    rng = np.random.default_rng(height * width)
    blob = rng.standard_normal((1, 3, height, width)).astype(np.float32)
    padded_h, padded_w = SHAPE_BUCKETS.level(height, width)
    padded = np.zeros((1, 3, padded_h, padded_w), np.float32)
    padded[:, :, :height, :width] = blob
    mask = np.zeros((1, 1, padded_h - 2, padded_w - 2), np.float32)
    mask[:, :, height - 2:] = -1e30
    mask[:, :, :, width - 2:] = -1e30
    expected = [np.array(o) for o in network(backend, PNET).forward(blob)]
    masked_net = network(backend, PNET_PADDED)
    got = [np.array(o)[:, :, :expected[0].shape[2], :expected[0].shape[3]] for o in masked_net.forward(padded, mask)]
    for want, have in zip(expected, got):
        np.testing.assert_allclose(have, want, rtol=0, atol=1e-6)
    if height % 2 or width % 2:
        unmasked = [np.array(o) for o in masked_net.forward(padded, np.zeros_like(mask))]
        assert np.abs(unmasked[1][:, :, :want.shape[2], :want.shape[3]] - expected[1]).max() > 1e-3


def sizes_of(image):
    """The image and three resized copies of sizes no other test uses (odd and even sides)."""
    return [image] + [cv2.resize(image, size, interpolation=cv2.INTER_AREA) for size in ((517, 403), (333, 251),
                                                                                          (402, 302))]


@pytest.mark.parametrize("backend", ENGINES)
@pytest.mark.parametrize("min_face_size", [20, 40])
def test_buckets_give_the_same_faces(backend, min_face_size):
    plain = Detector(min_face_size=min_face_size, backend=backend, shape_buckets=False, cache_dir=False)
    bucketed = Detector(min_face_size=min_face_size, backend=backend, shape_buckets=True, cache_dir=False)
    assert bucketed._cascade().buckets is not None and plain._cascade().buckets is None
    images = sizes_of(cv2.imread(str(FIXTURES / "group_640x480.jpg")))
    images += sizes_of(cv2.imread(str(REPO_ROOT / "examples" / "astronaut.jpg")))
    found = 0
    for image in images:
        want, have = plain.detect(image), bucketed.detect(image)
        assert len(have) == len(want)
        np.testing.assert_allclose(have.scores, want.scores, rtol=0, atol=1e-5)
        np.testing.assert_allclose(have.boxes, want.boxes, rtol=0, atol=1e-3)
        np.testing.assert_allclose(have.landmarks, want.landmarks, rtol=0, atol=1e-3)
        found += len(want)
    assert found >= len(images)


@pytest.mark.parametrize("backend", ENGINES)
def test_buckets_with_chunked_crop_batches(backend):
    """max_batch 5: R-Net crops run in chunks, each rounded up to at most the 5-crop buffer."""
    image = cv2.imread(str(FIXTURES / "group_640x480.jpg"))
    plain = Detector(backend=backend, shape_buckets=False, cache_dir=False)
    bucketed = Detector(backend=backend, shape_buckets=True, cache_dir=False)
    for detector in (plain, bucketed):
        detector._cascade().settings = detector.settings.replace(max_batch=5)
    want, have = plain.detect(image), bucketed.detect(image)
    assert len(have) == len(want) > 0
    np.testing.assert_allclose(have.boxes, want.boxes, rtol=0, atol=1e-3)


@pytest.mark.skipif(engines.opencv_runs_masked_pnet(), reason=f"OpenCV {cv2.__version__} runs the masked P-Net")
def test_buckets_on_an_opencv_that_pools_the_mask_wrong_are_refused():
    with pytest.raises(SettingsError, match="opencv-python >= 5"):
        Detector(backend="opencv", shape_buckets=True)


@pytest.mark.parametrize("backend", ENGINES)
def test_buckets_give_the_same_region_candidates_and_survive_shrinking(backend):
    """The tracker's region search and the server's buffer shrinking go through the masked P-Net too."""
    from fastmtcnn.nets import channel_map

    image = cv2.imread(str(FIXTURES / "group_640x480.jpg"))
    regions = np.array([[100, 100, 300, 300], [0, 0, 200, 200], [300, 50, 500, 250]], np.float32)
    found = []
    for buckets in (False, True):
        cascade = Detector(backend=backend, shape_buckets=buckets, cache_dir=False)._cascade()
        found.append(cascade.propose_in_regions(image, channel_map("bgr", 3), regions, np.full(3, 36 / 201), 36))
        cascade.shrink_buffers()
    assert len(found[0]) > 0
    np.testing.assert_allclose(found[1], found[0], atol=1e-3)
