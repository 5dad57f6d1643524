"""`fastmtcnn video` sources: --max-frames, --realtime (drops counted), truncated files and unopenable cameras
reported in our own one-line errors (no OpenCV/FFmpeg log lines through), a JSONL complete up to the last frame."""
import json

import pytest

import video_clips
from fastmtcnn.cli import main
from fastmtcnn.native_log import NativeLog
from fastmtcnn.video_input import VideoInput


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return video_clips.write_clip(video_clips.crossing(40), tmp_path_factory.mktemp("clips") / "crossing.avi")


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_max_frames_stops_after_n_whole_lines(clip, tmp_path):
    out = tmp_path / "t.jsonl"
    assert main(["video", str(clip), "--out", str(out), "--max-frames", "5", "--quiet", "--threads", "1"]) == 0
    assert [r["frame"] for r in _records(out)] == [0, 1, 2, 3, 4]
    assert main(["video", str(clip), "--max-frames", "0", "--quiet"]) == 2


def test_realtime_counts_what_it_drops(clip, tmp_path, capsys, monkeypatch):
    import fastmtcnn.video as video

    real_update = video.FaceTracker.update

    def slow_update(self, *args, **kwargs):  # slower than the clip's frame rate: frames must be dropped
        import time
        time.sleep(3.0 / video_clips.FPS)
        return real_update(self, *args, **kwargs)
    monkeypatch.setattr(video.FaceTracker, "update", slow_update)
    out = tmp_path / "t.jsonl"
    assert main(["video", str(clip), "--out", str(out), "--realtime", "--threads", "1"]) == 0
    records = _records(out)
    assert 2 <= len(records) < 40  # slower than real time: some frames dropped, at least two lines
    assert sum(r["dropped"] for r in records) + len(records) == records[-1]["source_frame"] + 1
    assert all(b["source_frame"] - a["source_frame"] == b["dropped"] + 1 for a, b in zip(records, records[1:]))
    assert "frames dropped to keep up" in capsys.readouterr().err


def test_truncated_file_gives_the_frames_it_could_read_then_one_error(clip, tmp_path, capfd):
    cut = tmp_path / "cut.avi"
    data = clip.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "t.jsonl"
    assert main(["video", str(cut), "--out", str(out), "--quiet", "--threads", "1"]) == 1
    records = _records(out)
    assert 5 <= len(records) < 40 and [r["frame"] for r in records] == list(range(len(records)))
    err = capfd.readouterr().err
    assert f"{cut} is truncated or corrupt: {len(records)} of the 40 frames" in err
    assert err.count("fastmtcnn: error:") == 1 and "[ WARN" not in err and "[ERROR" not in err


def test_camera_that_cannot_open_is_one_line_of_ours(capfd):
    assert main(["video", "97", "--quiet"]) == 1  # no camera 97 on any test machine
    err = capfd.readouterr().err
    assert err.startswith("fastmtcnn: error: camera 97 cannot be opened") and err.count("\n") == 1
    assert "convert" not in err


def test_junk_file_is_one_line_of_ours(tmp_path, capfd):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    assert main(["video", str(junk), "--quiet"]) == 1
    err = capfd.readouterr().err
    assert err.startswith(f"fastmtcnn: error: {junk}") and err.count("\n") == 1


def test_native_log_lines_are_caught_and_cleaned():
    import os
    log = NativeLog()
    with log:
        os.write(2, b"[ WARN:0@0.279] global cap_v4l.cpp:999 open VIDEOIO(V4L2:/dev/video0): can't open camera\n")
        os.write(2, b"[mov,mp4 @ 0x55d5] moov atom not found\n")
    assert log.lines() == ["VIDEOIO(V4L2:/dev/video0): can't open camera", "moov atom not found"]
    for k in range(3000):  # a stream that warns on every frame: the file stays bounded, the newest lines kept
        with log:
            os.write(2, f"[h264 @ 0x1] error while decoding MB {k}\n".encode())
    assert os.fstat(log._file.fileno()).st_size <= 64 * 1024 and log.lines(1) == ["error while decoding MB 2999"]


def test_video_input_reads_every_frame(clip):
    source = VideoInput(str(clip))
    assert source.kind == "file" and source.expected == 40
    assert sum(1 for _ in source.frames()) == 40 and source.end_error() is None
