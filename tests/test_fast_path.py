"""The compiled pipeline against a plain numpy/cv2 transcription of the authors' detect_face.m."""
import cv2
import numpy as np
import pytest

from fastmtcnn import Detector

import reference_mtcnn
from conftest import BACKENDS, FIXTURES, REPO_ROOT, shared_path


def compare_with_reference(detector, image, min_face_size, color="bgr"):
    ours = detector.detect(image, color=color)
    boxes, scores, landmarks = reference_mtcnn.detect(image, min_face_size=min_face_size, color=color)
    order = np.argsort(-scores, kind="stable")
    boxes, scores, landmarks = boxes[order], scores[order], landmarks[order]
    assert len(ours) == len(scores)
    # Identical up to float rounding (the resampling sums run in a different order).
    np.testing.assert_allclose(ours.scores, scores, atol=1e-5)
    np.testing.assert_allclose(ours.boxes, boxes, atol=1e-3)
    np.testing.assert_allclose(ours.landmarks, landmarks, atol=1e-3)


@pytest.fixture(scope="module", params=[20, 40])
def min_face_size(request):
    return request.param


@pytest.fixture(scope="module", params=BACKENDS)
def detector(request, min_face_size):
    return Detector(min_face_size=min_face_size, backend=request.param)


def test_shipped_images_match_reference(detector):
    group = cv2.imread(str(FIXTURES / "group_640x480.jpg"))
    astronaut = cv2.imread(str(REPO_ROOT / "examples" / "astronaut.jpg"))
    size = detector.settings.min_face_size
    compare_with_reference(detector, group, size)
    compare_with_reference(detector, astronaut, size)
    compare_with_reference(detector, cv2.cvtColor(group, cv2.COLOR_BGR2GRAY), size)
    compare_with_reference(detector, cv2.cvtColor(astronaut, cv2.COLOR_BGR2RGB), size, color="rgb")
    compare_with_reference(detector, np.ascontiguousarray(group[37:451, 13:600]), size)  # odd sizes, border faces


@pytest.mark.parametrize("name", ["dlib_2007_007763_vga.jpg", "dlib_2007_007763_1080p.jpg",
                                  "helen_1673608778_1_vga.jpg", "helen_2294325056_1_1080p.jpg"])
def test_shared_photos_match_reference(detector, name):
    image = cv2.imread(str(shared_path("data", "bench", name)))
    compare_with_reference(detector, image, detector.settings.min_face_size)
