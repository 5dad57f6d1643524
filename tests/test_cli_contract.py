"""The CLI contract (docs/cli.md): one exit-code table for every command, one test per row across commands,
and the output rules (--json error records, --draw names that never collide, -h showing the accepted ranges)."""
import json
import shutil

import cv2
import pytest

import video_clips
from fastmtcnn.cli import build_parser, main
from fastmtcnn.commands import EXIT_INPUT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

from conftest import ASTRONAUT


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A good input for each command: image, folder, video clip, annotated set."""
    root = tmp_path_factory.mktemp("inputs")
    (root / "photos").mkdir()
    shutil.copy(ASTRONAUT, root / "photos" / "astronaut.jpg")
    clip = video_clips.write_clip(video_clips.crossing(6), root / "clip.avi")
    annotated = root / "set.jsonl"
    annotated.write_text(json.dumps({"image": "photos/astronaut.jpg", "faces": [{"box": [180, 60, 280, 190]}]}))
    return {"detect": [str(ASTRONAUT)], "batch": [str(root / "photos")], "video": [str(clip), "--quiet"],
            "eval": [str(annotated)]}


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("fastmtcnn: error: ") and err.count("fastmtcnn: error:") == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize("command", ["detect", "batch", "video", "eval"])
def test_exit_0_every_input_processed(command, inputs, tmp_path):
    extra = ["--out", str(tmp_path / "r.jsonl"), "--quiet"] if command == "batch" else ["--threads", "1"]
    assert main([command, *inputs[command], *extra]) == EXIT_OK


@pytest.mark.parametrize("command, missing", [("detect", "missing.jpg"), ("batch", "missing_folder"),
                                              ("video", "missing.mp4"), ("eval", "missing.jsonl")])
def test_exit_1_an_input_is_missing(command, missing, tmp_path, capsys):
    extra = ["--out", str(tmp_path / "r.jsonl")] if command == "batch" else []
    assert main([command, str(tmp_path / missing), *extra]) == EXIT_INPUT_FAILED
    err = _one_error_line(capsys)
    assert missing in err and ("not found" in err or "does not exist" in err or "no such file" in err)


@pytest.mark.parametrize("command", ["detect", "batch", "video", "eval", "serve"])
def test_exit_2_a_setting_out_of_range_prints_the_range_and_the_value_as_given(command, inputs, tmp_path, capsys):
    args = inputs.get(command, [])[:1] + (["--out", str(tmp_path / "r.jsonl")] if command == "batch" else [])
    assert main([command, *args, "--min-face-size", "2"]) == EXIT_USAGE
    err = _one_error_line(capsys)
    assert "min_face_size must be a number in [4, 100000]" in err and err.rstrip().endswith("got 2")


@pytest.mark.parametrize("command", ["detect", "batch", "video", "eval", "serve"])
def test_exit_2_every_command_that_builds_a_detector_takes_weights(command, inputs, tmp_path, capsys):
    args = inputs.get(command, [])[:1] + (["--out", str(tmp_path / "r.jsonl")] if command == "batch" else [])
    assert main([command, *args, "--weights", str(tmp_path / "no_weights")]) == EXIT_USAGE
    assert f"weights folder {tmp_path / 'no_weights'} lacks" in _one_error_line(capsys)


@pytest.mark.parametrize("command", ["detect", "batch", "video", "eval", "serve", "train"])
def test_exit_2_argparse_usage_errors(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--no-such-option"])
    assert exit_info.value.code == EXIT_USAGE
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["detect", "batch", "video", "eval"])
def test_exit_130_interrupted(command, inputs, tmp_path, monkeypatch, capsys):
    from fastmtcnn.detector import Detector
    from fastmtcnn.video import FaceTracker

    def interrupted(*args, **kwargs):  # Ctrl-C in the middle of the work
        raise KeyboardInterrupt
    monkeypatch.setattr(Detector, "detect", interrupted)
    monkeypatch.setattr(FaceTracker, "update", interrupted)
    args = [inputs[command][0]] + (["--out", str(tmp_path / "r.jsonl"), "--quiet"] if command == "batch" else [])
    assert main([command, *args]) == EXIT_INTERRUPTED
    assert "interrupted" in capsys.readouterr().err


def test_json_gives_a_failed_input_its_error_record(tmp_path, capsys):
    assert main(["detect", str(ASTRONAUT), str(tmp_path / "nope.png"), "--json"]) == EXIT_INPUT_FAILED
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["image"] for r in records] == [str(ASTRONAUT), str(tmp_path / "nope.png")]
    assert records[0]["faces"] and "not found" in records[1]["error"] and "faces" not in records[1]


def test_draw_keeps_relative_paths_so_names_never_collide(tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(ASTRONAUT, tmp_path / folder / "x.jpg")
    cv2.imwrite(str(tmp_path / "a" / "x.png"), cv2.imread(str(ASTRONAUT))[:200, :200])
    out = tmp_path / "drawn"
    images = [str(tmp_path / "a" / "x.jpg"), str(tmp_path / "b" / "x.jpg"), str(tmp_path / "a" / "x.png")]
    assert main(["detect", *images, "--draw", str(out)]) == EXIT_OK
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg"))
    assert written == ["a/x.jpg_faces.jpg", "a/x.png_faces.jpg", "b/x_faces.jpg"]


@pytest.mark.parametrize("name", ["out.xyz", "noextension"])
def test_draw_to_a_name_opencv_cannot_write_is_a_usage_error(name, tmp_path, capsys):
    assert main(["detect", str(ASTRONAUT), "--draw", str(tmp_path / name)]) == EXIT_USAGE
    assert "use a .jpg or .png name" in _one_error_line(capsys)


def test_help_shows_the_accepted_ranges_and_no_doubled_percent(capsys):
    parser = build_parser()
    for command in ("detect", "batch", "video", "eval", "serve"):
        with pytest.raises(SystemExit):
            parser.parse_args([command, "-h"])
        text = " ".join(capsys.readouterr().out.split())
        assert "4 to 100000" in text and "--weights DIR" in text, command
    with pytest.raises(SystemExit):
        main(["train", "-h"])
    assert "%%" not in capsys.readouterr().out


def test_version_has_no_nested_parentheses(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    out = capsys.readouterr().out
    assert "image formats this OpenCV decodes: JPEG, PNG" in out
    for line in out.splitlines():
        depth = 0
        for char in line:
            depth += {"(": 1, ")": -1}.get(char, 0)
            assert depth <= 1, line


def test_decoder_complaints_become_our_warning_not_raw_lines(tmp_path, capfd):
    data = ASTRONAUT.read_bytes()
    middle = len(data) // 2  # damaged scan data, end-of-image marker kept: decoded with a libjpeg complaint
    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes(data[:middle] + b"\xff\xd0" * 50 + b"\x00" * 500 + data[middle + 600:])
    assert main(["detect", str(damaged), "--json"]) == EXIT_OK
    captured = capfd.readouterr()
    record = json.loads(captured.out)
    assert record["faces"] and "the decoder reported damaged data (Corrupt JPEG data" in record["warning"]
    assert captured.err.startswith(f"fastmtcnn: warning: {damaged}: the decoder") and captured.err.count("\n") == 1
    (tmp_path / "photos").mkdir()
    shutil.copy(damaged, tmp_path / "photos" / "d.jpg")
    assert main(["batch", str(tmp_path / "photos"), "--out", str(tmp_path / "r.jsonl"), "--quiet"]) == EXIT_OK
    assert "Corrupt JPEG data" in json.loads((tmp_path / "r.jsonl").read_text())["warning"]
    assert "Corrupt JPEG" not in capfd.readouterr().err
