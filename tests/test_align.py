"""fastmtcnn.alignment: similarity alignment onto the ArcFace template and facenet-style margin crops."""
import cv2
import numpy as np
import pytest

from fastmtcnn import Detector
from fastmtcnn.alignment import (ARCFACE_TEMPLATE_112, align, align_faces, alignment_matrix, check_landmarks,
                             crop_face, facenet_box, similarity_transform, template_points)

from conftest import ASTRONAUT


def apply(matrix, points):
    return np.asarray(points, dtype=np.float64) @ matrix[:2, :2].T + matrix[:2, 2]


def similarity(angle_deg, scale, shift):
    matrix = cv2.getRotationMatrix2D((0.0, 0.0), angle_deg, scale)
    matrix[:, 2] += shift
    return matrix


def dot_centroids(crop, expected, radius=6):
    """Intensity-weighted centroid of the bright dot near each expected point."""
    gray = crop.astype(np.float64)
    ys, xs = np.mgrid[:gray.shape[0], :gray.shape[1]]
    found = []
    for x, y in expected:
        near = ((xs - x) ** 2 + (ys - y) ** 2 <= radius ** 2) * gray
        found.append(((near * xs).sum() / near.sum(), (near * ys).sum() / near.sum()))
    return np.array(found)


@pytest.fixture(scope="module")
def astronaut():
    image = cv2.imread(str(ASTRONAUT))
    faces = Detector().detect(image)
    assert len(faces) == 1
    return image, faces


@pytest.mark.parametrize("angle, scale, shift", [(0, 1.0, (0, 0)), (30, 0.5, (200, 150)), (-70, 2.3, (40, 300)),
                                                 (180, 1.1, (300, 300))])
def test_exact_template_points_land_on_the_template(angle, scale, shift):
    """Five dots at a similarity image of the template: the fit is exact and the crop shows the dots on it."""
    to_image = similarity(angle, scale, shift)
    to_image[:, 2] += 250 - apply(to_image, ARCFACE_TEMPLATE_112).mean(axis=0)  # keep the dots on the canvas
    points = apply(to_image, ARCFACE_TEMPLATE_112)
    matrix = alignment_matrix(points)
    np.testing.assert_allclose(apply(matrix, points), ARCFACE_TEMPLATE_112, atol=1e-6)
    np.testing.assert_allclose(matrix[:, :2] @ to_image[:, :2], np.eye(2), atol=1e-9)

    canvas = np.zeros((500, 500), np.uint8)
    supersample = 16  # antialiased sub-pixel dots
    for x, y in points:
        cv2.circle(canvas, (int(round(x * supersample)), int(round(y * supersample))), int(3 * scale * supersample),
                   255, -1, lineType=cv2.LINE_AA, shift=4)
    crop = align(canvas, points)
    assert crop.shape == (112, 112) and crop.dtype == np.uint8
    found = dot_centroids(crop, ARCFACE_TEMPLATE_112)
    assert np.abs(found - ARCFACE_TEMPLATE_112).max() < 1.0, found - ARCFACE_TEMPLATE_112


def test_known_similarity_is_undone(astronaut):
    """Warp the shipped photo with a known similarity and move its landmarks the same way: aligning the warped
    photo puts the landmarks where aligning the original puts them (to 1e-6 px), and the crops agree."""
    image, faces = astronaut
    points = faces.landmarks[0]
    warp = similarity(25, 0.8, (150, 60))
    warped = cv2.warpAffine(image, warp, (620, 620), flags=cv2.INTER_LINEAR)
    moved = apply(warp, points)
    original_matrix, warped_matrix = alignment_matrix(points), alignment_matrix(moved)
    np.testing.assert_allclose(apply(warped_matrix, moved), apply(original_matrix, points), atol=1e-6)
    a, b = align(image, points), align(warped, moved)
    assert a.shape == b.shape == (112, 112, 3)
    assert np.abs(a.astype(int) - b).mean() < 4  # only resampling differences


@pytest.mark.parametrize("angle, scale", [(25, 0.8), (-30, 1.2), (10, 0.6)])
def test_detected_landmarks_of_a_warped_face_align_like_the_original(astronaut, angle, scale):
    """End to end: detect on the rotated/scaled photo, align; the landmarks land within 1.5 px (mean; 2.5 px max)
    of where the original photo's landmarks land in its 112 crop. MTCNN is not exactly rotation-equivariant:
    measured 0.5 to 1.3 px mean, 1.7 px max, mostly the nose."""
    image, faces = astronaut
    warp = cv2.getRotationMatrix2D((256, 256), angle, scale)
    warp[:, 2] += (60, 40)
    warped = cv2.warpAffine(image, warp, (700, 700))
    found = Detector().detect(warped)
    assert len(found) == 1
    expected = apply(alignment_matrix(faces.landmarks[0]), faces.landmarks[0])
    got = apply(alignment_matrix(found.landmarks[0]), found.landmarks[0])
    distances = np.linalg.norm(got - expected, axis=1)
    assert distances.mean() < 1.5 and distances.max() < 2.5, distances
    # and those landmarks sit near the template (a real face is not the template: a few px)
    assert np.linalg.norm(got - ARCFACE_TEMPLATE_112, axis=1).max() < 8


def test_template_sizes():
    np.testing.assert_allclose(template_points(112), ARCFACE_TEMPLATE_112)
    np.testing.assert_allclose(template_points(224), ARCFACE_TEMPLATE_112 * 2)
    expected_128 = ARCFACE_TEMPLATE_112 * 1.0
    expected_128[:, 0] += 8.0  # insightface's estimate_norm for 128
    np.testing.assert_allclose(template_points(128), expected_128)
    np.testing.assert_allclose(template_points(96), ARCFACE_TEMPLATE_112 * 96 / 112)
    image = np.zeros((300, 300, 3), np.uint8)
    assert align(image, ARCFACE_TEMPLATE_112 * 2, size=224).shape == (224, 224, 3)


def test_similarity_transform_is_least_squares_without_reflection():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    matrix = similarity(40, 1.7, (5, -3))
    dst = apply(matrix, src) + rng.normal(0, 0.5, (5, 2))
    fit = similarity_transform(src, dst)
    assert np.linalg.det(fit[:, :2]) > 0
    residual = np.square(apply(fit, src) - dst).sum()
    for delta in np.eye(6) * 1e-3:  # a local minimum among similarities (a, b, tx, ty)
        a, b = fit[0, 0], fit[1, 0]
        tweaked = np.array([[a + delta[0], -(b + delta[1]), fit[0, 2] + delta[2]],
                            [b + delta[1], a + delta[0], fit[1, 2] + delta[3]]])
        assert np.square(apply(tweaked, src) - dst).sum() >= residual - 1e-9
    mirrored = src * [-1, 1]  # a reflection is never returned
    assert np.linalg.det(similarity_transform(src, mirrored)[:, :2]) > 0


@pytest.mark.parametrize("bad, message", [
    (np.zeros((4, 2)), r"shape \(5, 2\)"),
    (np.zeros((5, 3)), r"shape \(5, 2\)"),
    (np.zeros((2, 5, 2)), "several faces"),
    ([[1, 2], [3, np.nan], [5, 6], [7, 8], [9, 10]], "NaN"),
    (np.full((5, 2), np.inf), "NaN or infinite"),
    ("eyes", "numbers"),
])
def test_bad_landmarks_raise_clear_value_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        align(np.zeros((50, 50, 3), np.uint8), bad)


def test_other_bad_arguments():
    image = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(ValueError, match="all coincide"):
        align(image, np.ones((5, 2)))
    with pytest.raises(ValueError, match="crop_face"):
        align(image, ARCFACE_TEMPLATE_112, template="facenet")
    with pytest.raises(ValueError, match="template"):
        align(image, ARCFACE_TEMPLATE_112, template="dlib")
    with pytest.raises(ValueError, match="size"):
        align(image, ARCFACE_TEMPLATE_112, size=0)
    with pytest.raises(TypeError, match="numpy array"):
        align("photo.jpg", ARCFACE_TEMPLATE_112)
    with pytest.raises(ValueError, match="x2 > x1"):
        crop_face(image, (10, 10, 5, 20))
    with pytest.raises(ValueError, match="outside"):
        crop_face(image, (100, 100, 120, 120))
    with pytest.raises(ValueError, match="NaN"):
        crop_face(image, (1, np.nan, 5, 20))
    assert check_landmarks(np.arange(10)).shape == (5, 2)


def test_crop_face_follows_facenet_pytorch(astronaut):
    image, faces = astronaut
    box = faces.boxes[0]
    left, top, right, bottom = facenet_box(box, image.shape, 160, 32)
    x1, y1, x2, y2 = (float(v) for v in box)
    grow = 32 * (x2 - x1) / (160 - 32)
    assert left == int(x1 - grow / 2) and right == int(x2 + grow / 2)
    expected = cv2.resize(image[top:bottom, left:right], (160, 160), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(crop_face(image, box), expected)
    # clipped at the border, never padded
    assert facenet_box((0, 0, 40, 40), image.shape, 160, 32)[:2] == (0, 0)
    assert facenet_box((480, 480, 512, 512), image.shape, 160, 32)[2:] == (512, 512)


def test_align_faces(astronaut):
    image, faces = astronaut
    arcface = align_faces(image, faces)
    facenet = align_faces(image, faces, template="facenet", size=96, margin=0)
    assert [c.shape for c in arcface] == [(112, 112, 3)] and [c.shape for c in facenet] == [(96, 96, 3)]
    np.testing.assert_array_equal(arcface[0], align(image, faces.landmarks[0]))
