"""Streams: `FaceTracker` against per-frame `Detector.detect` on the same made 640x480 clip, 1 thread, min face 20.

Clips (tests/video_clips.py, frames kept in memory: decoding is not timed): `pan_zoom` (one face panning and
zooming), `crossing` (two faces), `leave_enter` (a face leaves, another enters: the scene-change passes),
`hard_cut` (one face, then a cut to the 6-face group photo). Each round runs
per-frame detection over the whole clip (the untimed pedantic set-up, timed here by hand) and then the tracker
over the same frames (the benchmark), so the two alternate round by round under the same load. `extra_info`
gives frames/s of both (median and fastest round) and the ratio of the medians measured in that run.
"""
import importlib.util
import os
import statistics
import sys
import time
from functools import lru_cache
from pathlib import Path

import cv2
import pytest

from fastmtcnn.video import DEFAULT_MARGIN, DEFAULT_REDETECT_EVERY, DEFAULT_SCENE_CHANGE, FaceTracker

from .conftest import ROUNDS, record

TESTS = Path(__file__).resolve().parent.parent / "tests"
#: Rounds per clip (each round = the clip by per-frame detection, then by the tracker): at most 5, fewer when
#: FASTMTCNN_BENCH_ROUNDS asks for fewer (CI), or FASTMTCNN_BENCH_VIDEO_ROUNDS exactly.
VIDEO_ROUNDS = int(os.environ.get("FASTMTCNN_BENCH_VIDEO_ROUNDS") or min(5, ROUNDS))


@lru_cache(maxsize=None)
def clips_module():
    """tests/video_clips.py (the tests' clip maker; tests/ is not a package)."""
    if "video_clips" not in sys.modules:
        spec = importlib.util.spec_from_file_location("video_clips", TESTS / "video_clips.py")
        sys.modules["video_clips"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["video_clips"])
    return sys.modules["video_clips"]


@lru_cache(maxsize=None)
def made_clip(name: str, group_boxes: tuple = ()):
    clips = clips_module()
    return clips.hard_cut(group_boxes=group_boxes) if name == "hard_cut" else clips.CLIPS[name]()


@pytest.mark.parametrize("clip_name", ["pan_zoom", "crossing", "leave_enter", "hard_cut"])
def test_video_tracker(benchmark, detector_factory, clip_name):
    if benchmark.disabled:
        pytest.skip("a timing benchmark (it records the tracker's fps): run it with --benchmark-only")
    benchmark.group = "video 640x480 min face 20, 1 thread"
    detector = detector_factory(20, 1)
    group = tuple(map(tuple, detector.detect(cv2.imread(str(clips_module().GROUP))).boxes.tolist()))
    frames = made_clip(clip_name, group if clip_name == "hard_cut" else ()).frames
    per_frame_seconds, faces_per_frame = [], []

    def per_frame_then_new_tracker():
        start = time.perf_counter()
        found = [len(detector.detect(frame)) for frame in frames]
        per_frame_seconds.append(time.perf_counter() - start)
        faces_per_frame.append(sum(found) / len(found))
        return (FaceTracker(detector),), {}

    def track(tracker):
        return [tracker.update(frame) for frame in frames]

    tracked = benchmark.pedantic(track, setup=per_frame_then_new_tracker, rounds=VIDEO_ROUNDS, iterations=1,
                                 warmup_rounds=0)
    tracker_seconds = benchmark.stats.stats.data
    tracker_fps, per_frame_fps = len(frames) / statistics.median(tracker_seconds), \
        len(frames) / statistics.median(per_frame_seconds)
    record(benchmark, None, 20, clip=clip_name, frames=len(frames), image_size="640x480",
           redetect_every=DEFAULT_REDETECT_EVERY, margin=DEFAULT_MARGIN, scene_change=DEFAULT_SCENE_CHANGE,
           full_passes=sum(faces.full_pass for faces in tracked),
           faces_per_frame_tracker=round(sum(len(faces) for faces in tracked) / len(frames), 3),
           faces_per_frame_per_frame=round(faces_per_frame[-1], 3),
           tracker_fps_median=round(tracker_fps, 1), tracker_fps_fastest=round(len(frames) / min(tracker_seconds), 1),
           per_frame_fps_median=round(per_frame_fps, 1),
           per_frame_fps_fastest=round(len(frames) / min(per_frame_seconds), 1),
           speedup_median=round(tracker_fps / per_frame_fps, 2),
           per_frame_seconds=[round(s, 4) for s in per_frame_seconds])
