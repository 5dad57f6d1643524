"""The public API on shipped images: results, colour orders, bad inputs, the CLI and threads."""
import json
import threading

import cv2
import numpy as np
import pytest

import fastmtcnn
from fastmtcnn import Detector, Faces, ImageError
from fastmtcnn.cli import main as cli_main

from conftest import ASTRONAUT, GROUP

# Where tests/fixtures/group_640x480.jpg pastes examples/astronaut.jpg (512x512): (x, y, side).
GROUP_LAYOUT = [(10, 10, 300), (330, 20, 180), (520, 40, 100), (350, 260, 140), (520, 300, 70), (120, 330, 110)]


@pytest.fixture(scope="module")
def detector():
    return Detector()


@pytest.fixture(scope="module")
def astronaut_face(detector):
    faces = detector.detect(str(ASTRONAUT))
    assert len(faces) == 1
    return faces


def assert_same_faces(a: Faces, b: Faces, atol=1e-4):
    assert len(a) == len(b)
    np.testing.assert_allclose(a.boxes, b.boxes, atol=atol)
    np.testing.assert_allclose(a.scores, b.scores, atol=atol)
    np.testing.assert_allclose(a.landmarks, b.landmarks, atol=atol)


def test_astronaut_face_and_landmarks_are_where_a_face_is(astronaut_face):
    face = astronaut_face[0]
    x1, y1, x2, y2 = face.box
    assert face.score > 0.99
    assert 150 < x1 < 220 and 50 < y1 < 110 and 250 < x2 < 320 and 170 < y2 < 230 and 60 < x2 - x1 < 130
    eye_left, eye_right, nose, mouth_left, mouth_right = face.landmarks
    assert eye_left[0] < nose[0] < eye_right[0] and mouth_left[0] < mouth_right[0]  # image order, left to right
    assert max(eye_left[1], eye_right[1]) < nose[1] < min(mouth_left[1], mouth_right[1])  # eyes, nose, mouth
    for x, y in face.landmarks:
        assert x1 <= x <= x2 and y1 <= y <= y2


def test_group_finds_every_pasted_copy_at_its_scale(detector, astronaut_face):
    """Each scaled copy's face is the astronaut's face scaled the same way (boxes and landmarks)."""
    faces = detector.detect(str(GROUP))
    assert len(faces) == len(GROUP_LAYOUT)
    for x, y, side in GROUP_LAYOUT:
        scale = side / 512
        expected_box = astronaut_face.boxes[0] * scale + [x, y, x, y]
        ious = [_iou(expected_box, box) for box in faces.boxes]
        k = int(np.argmax(ious))
        assert ious[k] > 0.75, (x, y, side, ious)
        expected_points = astronaut_face.landmarks[0] * scale + [x, y]
        error = np.linalg.norm(faces.landmarks[k] - expected_points, axis=1).mean()
        assert error < max(2.0, 0.06 * side), (side, error)


def _iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_result_types_order_and_json(detector):
    faces = detector.detect(cv2.imread(str(GROUP)))
    assert faces.boxes.dtype == faces.scores.dtype == faces.landmarks.dtype == np.float32
    assert faces.boxes.shape == (len(faces), 4) and faces.landmarks.shape == (len(faces), 5, 2)
    assert np.all(np.diff(faces.scores) <= 0)
    records = list(faces)
    assert [r.score for r in records] == pytest.approx(faces.scores.tolist())
    decoded = json.loads(faces.to_json())
    assert len(decoded) == len(faces)
    np.testing.assert_allclose([d["box"] for d in decoded], faces.boxes, atol=1e-3)
    np.testing.assert_allclose([d["landmarks"] for d in decoded], faces.landmarks, atol=1e-3)


def test_no_face_is_an_empty_result_not_none(detector):
    for image in (np.full((200, 300, 3), 127, np.uint8), np.zeros((5, 5, 3), np.uint8)):
        faces = detector.detect(image)
        assert len(faces) == 0 and faces.boxes.shape == (0, 4) and faces.landmarks.shape == (0, 5, 2)
        assert faces.to_json() == "[]"


def test_color_orders_and_channel_counts(detector):
    bgr = cv2.imread(str(GROUP))
    from_bgr = detector.detect(bgr)
    assert_same_faces(from_bgr, detector.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), color="rgb"))
    assert_same_faces(from_bgr, detector.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)))
    assert_same_faces(from_bgr, detector.detect(np.asfortranarray(bgr)))  # any memory layout
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    assert_same_faces(detector.detect(gray), detector.detect(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)))
    assert_same_faces(detector.detect(gray), detector.detect(gray[:, :, None]))
    swapped = detector.detect(bgr, color="rgb")  # wrong order still finds faces but not the same numbers
    assert not np.allclose(swapped.scores[:3], from_bgr.scores[:3], atol=1e-6)


def test_file_path_and_bytes_equal_array(detector):
    from_array = detector.detect(cv2.imread(str(GROUP)))
    assert_same_faces(from_array, detector.detect(GROUP))
    assert_same_faces(from_array, detector.detect(GROUP.read_bytes()))


@pytest.mark.parametrize("bad,error,message", [
    (np.zeros((64, 64, 3), np.float64), TypeError, "dtype must be uint8, got float64"),
    (np.full((64, 64, 3), np.nan, np.float32), TypeError, "dtype must be uint8, got float32"),
    (np.zeros((64, 64, 3), np.int16), TypeError, "dtype must be uint8"),
    (np.zeros((0, 0, 3), np.uint8), ValueError, "image is empty"),
    (np.zeros((0, 0), np.uint8), ValueError, "image is empty"),
    (np.zeros((64, 64, 2), np.uint8), ValueError, r"shape \(64, 64, 2\) is not an image"),
    (np.zeros((1, 2, 3, 4, 5), np.uint8), ValueError, "is not an image"),
    (np.zeros(64, np.uint8), ValueError, "is not an image"),
    (None, TypeError, "got NoneType"),
    ([[1, 2], [3, 4]], TypeError, "got list"),
    (b"", ValueError, "empty"),
    (b"plain text, not an image", ValueError, "not an image OpenCV can decode"),
])
def test_bad_inputs_raise_clear_errors(detector, bad, error, message):
    with pytest.raises(error, match=message) as raised:
        detector.detect(bad)
    assert "pass" in str(raised.value) or "uint8" in str(raised.value)


def test_bad_files_raise_clear_errors(detector, tmp_path):
    fake = tmp_path / "notes.jpg"
    fake.write_text("this is a text file renamed .jpg\n")
    with pytest.raises(ImageError, match="not an image OpenCV can decode"):
        detector.detect(fake)
    with pytest.raises(FileNotFoundError, match="image file not found"):
        detector.detect(tmp_path / "missing.jpg")
    with pytest.raises(ValueError, match="image file not found"):  # also a ValueError
        detector.detect(str(tmp_path / "missing.jpg"))
    with pytest.raises(ValueError, match="is a folder"):
        detector.detect(tmp_path)


def test_huge_images_and_bad_arguments_are_refused(detector):
    with pytest.raises(ValueError, match="over the limit"):
        Detector(max_image_pixels=10_000).detect(np.zeros((200, 200, 3), np.uint8))
    with pytest.raises(ValueError, match="raise min_face_size or downscale"):  # 6x upscaled first level
        Detector(min_face_size=4, max_image_pixels=100_000).detect(np.zeros((200, 200, 3), np.uint8))
    with pytest.raises(ValueError, match="color must be 'bgr'"):
        detector.detect(np.zeros((64, 64, 3), np.uint8), color="hsv")
    for kwargs in ({"min_face_size": 0}, {"min_face_size": float("nan")}, {"scale_factor": 1.2},
                   {"thresholds": (0.6, 0.7)}, {"thresholds": (0.6, 0.7, 1.5)}, {"num_threads": 0}):
        with pytest.raises(ValueError):
            Detector(**kwargs)


def test_threads_share_one_detector_with_serial_results(detector):
    images = [cv2.imread(str(GROUP)), cv2.imread(str(ASTRONAUT)), cv2.imread(str(GROUP))[::2, ::2]]
    serial = [detector.detect(image) for image in images]
    results, errors = {}, []

    def work(worker):
        try:
            for call in range(6):
                k = (worker + call) % len(images)
                results[(worker, call)] = (k, detector.detect(images[k]))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for k, faces in results.values():
        assert_same_faces(serial[k], faces, atol=0)


@pytest.mark.parametrize("workers", [1, 3])
def test_detect_batch_keeps_order_and_isolates_bad_images(detector, workers):
    good = cv2.imread(str(GROUP))
    results = detector.detect_batch([good, np.zeros((4, 4, 2), np.uint8), str(ASTRONAUT), None], workers=workers)
    assert len(results) == 4
    assert_same_faces(results[0], detector.detect(good), atol=0)
    assert isinstance(results[1], ValueError) and "not an image" in str(results[1])
    assert isinstance(results[2], Faces) and len(results[2]) == 1
    assert isinstance(results[3], TypeError)


# ------------------------------------------------------------------------------------ CLI
def test_cli_version_names_the_libraries(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["--version"])
    assert exit_info.value.code == 0
    line = capsys.readouterr().out
    assert line.startswith(f"fastmtcnn {fastmtcnn.__version__} (opencv-python {cv2.__version__},")
    assert f"numpy {np.__version__}" in line


def test_cli_json_and_draw(tmp_path, capsys):
    out = tmp_path / "drawn.png"
    assert cli_main(["detect", str(GROUP), "--json", "--draw", str(out)]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["image"] == str(GROUP) and len(line["faces"]) == len(GROUP_LAYOUT)
    drawn, original = cv2.imread(str(out)), cv2.imread(str(GROUP))
    assert drawn.shape == original.shape and np.abs(drawn.astype(int) - original).sum() > 0


def test_cli_text_output_and_unreadable_file(tmp_path, capsys):
    fake = tmp_path / "broken.jpg"
    fake.write_bytes(b"\xff\xd8\xff truncated")
    assert cli_main(["detect", str(ASTRONAUT), str(fake), str(tmp_path / "nope.png")]) == 1
    captured = capsys.readouterr()
    assert "astronaut.jpg: 1 face" in captured.out
    errors = captured.err.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("fastmtcnn: error: ") for e in errors)
    assert "broken.jpg" in errors[0] and "nope.png" in errors[1]


def test_version_and_surface():
    assert fastmtcnn.__version__ and {"Detector", "Faces", "Face"} <= set(fastmtcnn.__all__)
