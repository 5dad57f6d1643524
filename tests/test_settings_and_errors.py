"""One owner of the settings' ranges, one error hierarchy, the image checked once, every subcommand's --help."""
import dataclasses
import re

import cv2
import numpy as np
import pytest

import fastmtcnn
from fastmtcnn import (CascadeSettings, Detector, FastMTCNNError, ImageError, ImageFileNotFound, ImageTooLarge,
                       SettingsError, UnsupportedImage)
from fastmtcnn.cli import build_parser, main as cli_main
from fastmtcnn.image_input import LoadedImage, find_images, load_image

from conftest import ASTRONAUT


@pytest.mark.parametrize("changes, message", [
    ({"thresholds": "abc"}, "thresholds must be 3 numbers in [0, 1]"),
    ({"thresholds": (0.6, "x", 0.7)}, "thresholds[1] must be a number in [0, 1]"),
    ({"thresholds": (0.6, 0.7)}, "thresholds must be 3 numbers"),
    ({"max_image_pixels": 0}, "max_image_pixels must be a number in [1,"),
    ({"min_face_size": 3}, "min_face_size must be a number in [4, 100000]"),
    ({"min_face_size": float("inf")}, "min_face_size"),
    ({"min_face_size": True}, "min_face_size"),
    ({"scale_factor": 0.99}, "scale_factor must be a number in [0.1, 0.95]"),
    ({"nms_thresholds": (0.5, 0.7, 0.7)}, "nms_thresholds must be 4 numbers"),
    ({"nms_thresholds": (0.5, 0.7, 0.7, -1)}, "nms_thresholds[3] must be a number in [0, 1]"),
])
def test_bad_settings_fail_in_one_place_with_the_range(changes, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        CascadeSettings.create(**changes)


def test_counts_are_checked_in_one_place():
    from fastmtcnn.settings import check_count, is_count

    assert [is_count(v, 1) for v in (1, 7, 0, -1, True, 2.0, np.int64(3), "3", None)] == [
        True, True, False, False, False, False, False, False, False]
    assert is_count(0) and is_count(5, 1, 5) and not is_count(6, 1, 5)
    assert check_count("gap", 5, 1, 9, what="frames") == 5
    with pytest.raises(SettingsError, match=re.escape("gap must be an int in [1, 9] (frames), got 10")):
        check_count("gap", 10, 1, 9, what="frames")
    with pytest.raises(SettingsError, match=re.escape("gap must be an int >= 0, got False")):
        check_count("gap", False, 0)


@pytest.mark.parametrize("changes, message", [
    ({"workers": 0}, "workers must be an int >= 1 (detection threads, e.g. 2), got 0"),
    ({"max_body_bytes": 1.5}, "max_body_bytes must be an int >= 1 (bytes), got 1.5"),
    ({"stream_max_pixels": True}, "stream_max_pixels must be an int >= 1 (pixels), got True"),
    ({"queue_size": -1}, "queue_size must be an int >= 0 (requests waiting beyond the workers, e.g. 16)"),
])
def test_server_counts_say_what_to_pass(changes, message):
    from fastmtcnn.server.config import ServerConfig

    ServerConfig(queue_size=0).check()
    with pytest.raises(SettingsError, match=re.escape(message)):
        ServerConfig(**changes).check()


def test_settings_are_frozen_normalised_and_shared_by_the_detector():
    settings = CascadeSettings(min_face_size=40, thresholds=[0.5, 0.6, 0.7])
    assert settings.thresholds == (0.5, 0.6, 0.7) and isinstance(settings.min_face_size, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.min_face_size = 10
    with pytest.raises(SettingsError):
        settings.replace(scale_factor=2.0)
    assert Detector(settings=settings).settings is settings
    assert Detector(min_face_size=40, thresholds=(0.5, 0.6, 0.7)).settings == settings
    with pytest.raises(SettingsError, match="either settings="):
        Detector(min_face_size=30, settings=settings)
    with pytest.raises(SettingsError):
        Detector(thresholds="abc")


def test_errors_form_one_hierarchy_of_builtin_types(tmp_path):
    for error in (ImageError, ImageFileNotFound, ImageTooLarge, UnsupportedImage, SettingsError):
        assert issubclass(error, FastMTCNNError) and issubclass(error, ValueError)
    assert issubclass(ImageFileNotFound, FileNotFoundError)
    detector = Detector()
    with pytest.raises(ImageTooLarge):
        Detector(max_image_pixels=100).detect(np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(ImageTooLarge):
        Detector(min_face_size=4, max_image_pixels=50_000).detect(np.zeros((100, 100, 3), np.uint8))
    with pytest.raises(UnsupportedImage):
        detector.detect(b"not an image")
    with pytest.raises(ImageFileNotFound):
        detector.detect(tmp_path / "missing.png")


def test_a_loaded_image_is_used_as_is_and_gives_the_same_faces():
    detector = Detector()
    loaded = load_image(str(ASTRONAUT))
    assert isinstance(loaded, LoadedImage) and loaded.color == "bgr" and loaded.pixels.shape == (512, 512, 3)
    assert load_image(loaded) is loaded
    pixels, color = loaded  # still unpacks like the (pixels, colour) tuple it used to be
    np.testing.assert_array_equal(detector.detect(loaded).boxes, detector.detect(pixels).boxes)


def test_read_only_arrays_are_detected_like_writable_ones():
    image = cv2.imread(str(ASTRONAUT))
    frozen = image.copy()
    frozen.flags.writeable = False
    detector = Detector()
    np.testing.assert_array_equal(detector.detect(frozen).boxes, detector.detect(image).boxes)


def test_find_images_takes_every_format_detect_reads(tmp_path):
    image = cv2.imread(str(ASTRONAUT))[::8, ::8]
    written = [ext for ext in (".tif", ".png", ".gif", ".ppm", ".bmp")  # no GIF writer before OpenCV 4.11
               if cv2.haveImageWriter(ext) and cv2.imwrite(str(tmp_path / f"a{ext}"), image)]
    assert {".tif", ".png", ".ppm", ".bmp"} <= set(written)
    (tmp_path / "a.png").rename(tmp_path / "B.PNG")  # the extension's case does not matter
    (tmp_path / "notes.txt").write_text("not an image")
    found = find_images(tmp_path)
    assert found == sorted(["B.PNG"] + [f"a{ext}" for ext in written if ext != ".png"])
    for name in found:  # each one decodes, to the picture that was written
        assert load_image(tmp_path / name).pixels.shape == image.shape


def test_every_subcommand_answers_help(capsys):
    commands = [action for action in build_parser()._subparsers._group_actions][0].choices
    assert {"detect", "batch", "serve", "eval"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as exit_info:
            cli_main([name, "--help"])
        assert exit_info.value.code == 0
        assert f"usage: fastmtcnn {name}" in capsys.readouterr().out


def test_serve_help_shows_the_limits_defaults(capsys):
    with pytest.raises(SystemExit):
        cli_main(["serve", "-h"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 10485760)" in text and "(default: 16)" in text and "(default: 30.0)" in text


def test_set_num_threads_is_public_and_checked():
    before = cv2.getNumThreads()
    try:
        fastmtcnn.set_num_threads(1)
        assert cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(before)
    with pytest.raises(ValueError, match="positive int"):
        fastmtcnn.set_num_threads(0)
