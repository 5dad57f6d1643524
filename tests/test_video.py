"""fastmtcnn.video: the stream tracker against per-frame full detection on clips made from the shipped photos.

The clips (tests/video_clips.py) are written as MJPG .avi and read back through `read_frames`, so the
VideoCapture path is exercised and both sides see the same decoded frames. Targets (issue 13), asserted on
every clip with the tracker's defaults: >= 98% of the per-frame faces found (IoU >= 0.5), <= 1 id switch per
100 frames per face, landmarks within 1.5 px median. Per-frame faces are counted from 3/4 of the detector's min
face size (15 px) up: the one smaller face in the clips (12 px, under min face 20, hard_cut) is found by
per-frame detection in 7 of 35 frames and a track started from it is lost on the next frame
(test_the_only_faces_missed_are_under_min_face_size).
"""
import json
import re
import threading

import cv2
import numpy as np
import pytest

import video_clips
from fastmtcnn import Detector, SettingsError
from fastmtcnn.cli import main
from fastmtcnn.association import Found, one_track_per_face
from fastmtcnn.video import (DEFAULT_CHANGE_GAP, DEFAULT_COAST, DEFAULT_PASS_BUDGET, DEFAULT_REDETECT_EVERY,
                             LOST_FACE, SCHEDULED, FaceTracker, Frame, OneEuroFilter, TrackedFaces, VideoSourceError,
                             match_by_iou, read_frames, track_boxes)
from fastmtcnn.detector import Faces
from fastmtcnn.evaluation.matching import iou_matrix
from fastmtcnn.scene_change import CUT, MOTION, NEW_CONTENT

MIN_FACE = 20
NEVER = 10 ** 6  # redetect_every that leaves only frame 0 to the schedule


@pytest.fixture(scope="module")
def detector():
    return Detector(min_face_size=MIN_FACE, num_threads=1)


@pytest.fixture(scope="module")
def made(detector, tmp_path_factory):
    """name -> (clip, decoded frames, per-frame detections, .avi path), each clip made once per module."""
    folder = tmp_path_factory.mktemp("clips")
    cache = {}

    def get(name):
        if name not in cache:
            if name == "hard_cut":
                clip = video_clips.hard_cut(group_boxes=detector.detect(cv2.imread(str(video_clips.GROUP))).boxes)
            else:
                clip = video_clips.CLIPS[name]()
            path = video_clips.write_clip(clip, folder / f"{name}.avi")
            frames = [frame.image for frame in read_frames(path)]
            cache[name] = (clip, frames, [detector.detect(frame) for frame in frames], path)
        return cache[name]
    return get


def track(detector, frames, **options):
    tracker = FaceTracker(detector, **options)
    return [tracker.update(frame) for frame in frames]


def assert_targets(result, max_landmark_px=1.5):
    assert result["recall"] >= 0.98, result
    assert result["landmark_px"] <= max_landmark_px, result
    assert result["id_switches"] <= result["face_frames"] / 100, result


def scheduled_frames(count, every=DEFAULT_REDETECT_EVERY):
    return [index for index in range(count) if index % every == 0]


# --------------------------------------------------------------------------------------------- against per-frame

@pytest.mark.parametrize("name", ["pan_zoom", "crossing", "leave_enter", "hard_cut", "blank"])
def test_every_clip_meets_the_targets_with_the_defaults(detector, made, name):
    clip, frames, reference, _ = made(name)
    tracked = track(detector, frames)  # the defaults, no frame left out
    result = video_clips.compare_with_per_frame(tracked, reference, clip, min_face_size=MIN_FACE)
    assert_targets(result)
    assert sum(faces.full_pass for faces in tracked) <= len(frames) / 4  # mostly tracking frames


def test_faces_moving_before_a_still_camera_need_only_the_scheduled_passes(detector, made):
    clip, frames, reference, _ = made("crossing")
    tracked = track(detector, frames)
    result = video_clips.compare_with_per_frame(tracked, reference, clip, min_face_size=MIN_FACE)
    assert result["face_frames"] >= 0.95 * sum(len(faces) for faces in clip.faces)  # every scene face, every frame
    assert [t.frame_index for t in tracked if t.full_pass] == scheduled_frames(len(frames))


def test_camera_pan_and_zoom_get_passes_spaced_by_the_change_gap(detector, made):
    """A zoom brings content in that the shift does not explain: passes for camera motion, change_gap apart."""
    clip, frames, reference, _ = made("pan_zoom")
    tracked = track(detector, frames)
    passes = [t.frame_index for t in tracked if t.full_pass]
    assert {t.pass_reason for t in tracked if t.pass_reason} <= {SCHEDULED, MOTION, NEW_CONTENT}
    assert len(passes) > 3 and min(np.diff(passes)) >= DEFAULT_CHANGE_GAP


def test_the_only_faces_missed_are_under_min_face_size(detector, made):
    """hard_cut's 12 px face (under min face 20) flickers in per-frame detection, and a track started from any
    of its per-frame boxes is lost on the next frame (R-Net + O-Net reject it): it cannot be tracked."""
    clip, frames, reference, _ = made("hard_cut")
    every_face = video_clips.compare_with_per_frame(track(detector, frames), reference, clip)
    missed = every_face["missed"]
    assert all(max(b[2] - b[0], b[3] - b[1]) < 15 for _, b in missed), missed
    sides = np.concatenate([np.maximum(f.boxes[:, 2] - f.boxes[:, 0], f.boxes[:, 3] - f.boxes[:, 1])
                            for f in reference])
    # all that the metric leaves out (7 per-frame boxes with the newest OpenCV, 6 with 4.10: its MJPG and
    # resampling make slightly other frames; the tracker itself gives the same results on both)
    assert 0 < len(missed) <= np.count_nonzero(sides < video_clips.COUNTED_SIDE * MIN_FACE) <= 7
    cascade, channels = detector._cascade(), np.array([2, 1, 0], np.int32)
    for index, box in missed:
        if index + 1 < len(frames):
            boxes = track_boxes(np.array([box], np.float32), 0.1)
            nxt = frames[index + 1]
            assert len(cascade.output(nxt, channels, cascade.refine(nxt, channels, boxes)).boxes) == 0


@pytest.mark.parametrize("name", ["leave_enter", "hard_cut", "blank"])
def test_new_faces_and_cuts_are_found_without_waiting_for_the_schedule(detector, made, name):
    """A cut, or a face coming back after blank frames, is found on the frame it appears; a face walking in
    (leave_enter) within DEFAULT_CHANGE_GAP frames of the first frame per-frame detection finds it on (the change
    check sees it coming earlier, and passes for new content are that many frames apart)."""
    clip, frames, reference, _ = made(name)
    tracked = track(detector, frames, redetect_every=NEVER)  # no scheduled pass after frame 0 to wait for
    appearing = video_clips.new_faces(reference, MIN_FACE)
    assert appearing  # the clip has something to find
    wait = DEFAULT_CHANGE_GAP if name == "leave_enter" else 1
    for index, box in appearing:
        found = [k for k in range(index, index + wait) if iou_matrix(box[None], tracked[k].boxes).max(initial=0) >= 0.5]
        assert found, (index, box, [tracked[k].boxes for k in range(index, index + wait)])
        assert tracked[found[0]].pass_reason in (CUT, NEW_CONTENT)  # a full pass, or one over the new region
    result = video_clips.compare_with_per_frame(tracked, reference, clip, min_face_size=MIN_FACE)
    # >= 98%, or no more missed than the waits allowed above (leave_enter: 96% with opencv-python 4.10, whose
    # MJPG and resampling make slightly other frames of the clip; >= 98% with 5.1)
    assert result["recall"] >= 0.98 or result["reference"] - result["matched"] <= (wait - 1) * len(appearing), result


def test_without_scene_change_new_faces_wait_for_the_schedule(detector, made):
    clip, frames, reference, _ = made("leave_enter")
    waiting = track(detector, frames, scene_change=None, redetect_every=30)
    assert video_clips.compare_with_per_frame(waiting, reference, clip, min_face_size=MIN_FACE)["recall"] < 0.9


def test_face_leaving_gets_no_new_id_and_the_new_face_does(detector, made):
    _, frames, _, _ = made("leave_enter")
    tracked = track(detector, frames)
    leaving_ids = set(np.concatenate([t.ids for t in tracked[:30]]).tolist())
    assert leaving_ids and not leaving_ids & set(tracked[-1].ids.tolist())


def test_hard_cut_gives_new_ids(detector, made):
    clip, frames, _, _ = made("hard_cut")
    tracked = track(detector, frames)
    cut = clip.events[0]
    assert len(tracked[cut]) >= 5 and tracked[cut].full_pass
    assert not set(tracked[cut - 1].ids.tolist()) & set(tracked[-1].ids.tolist())


def test_blank_stretch_invents_nothing(detector, made):
    _, frames, _, _ = made("blank")
    tracked = track(detector, frames)
    assert all(t.predicted.all() for t in tracked[20:40])  # only the lost face coasting on its predicted box ...
    assert all(len(t) == 0 for t in tracked[20 + DEFAULT_COAST:40])  # ... for DEFAULT_COAST frames
    assert not any(t.full_pass for t in tracked[21:40])  # still grey frames cost no full pass


# --------------------------------------------------------------------------------------------- extra passes bound

def test_camera_pan_over_texture_runs_passes_spaced_by_the_change_gap(detector):
    frames = video_clips.textured_pan().frames  # every cell changes on every frame
    tracked = track(detector, frames)
    passes = [t.frame_index for t in tracked if t.full_pass]
    assert CUT not in {t.pass_reason for t in tracked}  # the shift explains the frame-to-frame change
    assert min(np.diff(passes)) >= DEFAULT_CHANGE_GAP and len(passes) <= len(frames) / DEFAULT_CHANGE_GAP


def test_extra_passes_are_bounded_by_the_budget(detector):
    frames = video_clips.cut_every_frame().frames
    burst, refill = DEFAULT_PASS_BUDGET
    extra = [t.frame_index for t in track(detector, frames) if t.full_pass and t.frame_index % DEFAULT_REDETECT_EVERY]
    assert extra[:burst] == list(range(1, burst + 1))  # cuts are acted on at once ...
    assert len(extra) <= burst + len(frames) / refill  # ... up to the budget
    small = [t.frame_index for t in track(detector, frames, pass_budget=(2, 30)) if t.full_pass]
    assert len(small) <= 2 + 2 + len(scheduled_frames(len(frames)))


def test_redetect_every_frame_is_per_frame_detection(detector, made):
    _, frames, reference, _ = made("crossing")
    for ours, theirs in zip(track(detector, frames[:12], redetect_every=1), reference):
        assert ours.full_pass
        np.testing.assert_array_equal(ours.boxes, theirs.boxes)
        np.testing.assert_array_equal(ours.landmarks, theirs.landmarks)


def test_redetect_on_demand_and_on_loss(detector, made):
    _, frames, _, _ = made("pan_zoom")
    tracker = FaceTracker(detector, redetect_every=1000, scene_change=None)
    assert [tracker.update(f).full_pass for f in frames[:3]] == [True, False, False]
    tracker.redetect()
    assert tracker.update(frames[3]).full_pass
    grey = tracker.update(np.full_like(frames[4], 128))  # the face vanishes: the tracking step loses it,
    assert grey.full_pass and grey.pass_reason == LOST_FACE  # so the full cascade looks again on that frame
    assert len(grey) == 1 and grey.predicted.all()  # nothing found: the face coasts on its predicted box
    assert not tracker.update(frames[5]).full_pass  # scene_change off: the face coming back waits
    tracker.reset()
    first = tracker.update(frames[6])
    assert first.frame_index == 0 and first.full_pass and first.ids.tolist() == [0]
    watching = FaceTracker(detector, redetect_every=1000)
    [watching.update(f) for f in (frames[0], frames[1], np.full_like(frames[4], 128))]
    back = watching.update(frames[5])
    assert back.full_pass and len(back) == 1  # scene_change on: the face coming back is a cut, looked for at once
    no_loss_rule = FaceTracker(detector, redetect_every=1000, scene_change=None, redetect_on_loss=False)
    [no_loss_rule.update(f) for f in frames[:3]]
    assert not no_loss_rule.update(np.full_like(frames[4], 128)).full_pass


def test_trackers_in_threads_match_one_thread(detector, made):
    _, frames, _, _ = made("crossing")
    expected = track(detector, frames[:15])
    results = [None, None]

    def run(slot):
        results[slot] = track(detector, frames[:15])
    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        for ours, theirs in zip(result, expected):
            np.testing.assert_array_equal(ours.boxes, theirs.boxes)
            np.testing.assert_array_equal(ours.ids, theirs.ids)


def test_smoothing_keeps_recall_and_is_off_by_default(detector, made):
    clip, frames, reference, _ = made("pan_zoom")
    raw = track(detector, frames)
    smooth = track(detector, frames, smoothing=True)
    assert any(not np.array_equal(a.boxes, b.boxes) for a, b in zip(raw, smooth))
    assert video_clips.compare_with_per_frame(smooth, reference, clip)["recall"] >= 0.95


# --------------------------------------------------------------------------------------------- pieces

def test_match_by_iou_is_greedy_by_overlap_and_one_to_one():
    previous = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [100, 100, 110, 110]], np.float32)
    current = np.array([[21, 0, 31, 10], [1, 0, 11, 10], [0, 1, 10, 11], [200, 200, 210, 210]], np.float32)
    pairs = sorted(match_by_iou(previous, current, 0.3))
    assert pairs == [(0, 1), (1, 0)]  # box 0 takes its best match (tie broken by order); far boxes stay apart
    assert match_by_iou(previous, current[:0], 0.3) == []
    assert match_by_iou(previous, current, 0.95) == []


def test_track_boxes_grow_square_and_truncate():
    boxes = np.array([[100, 50, 140, 110]], np.float32)  # pixel edges: 40 x 60
    grown = track_boxes(boxes, 0.25)
    side = grown[0, 2] - grown[0, 0]
    assert side == grown[0, 3] - grown[0, 1]  # square
    assert abs(side - 59 * 1.5) <= 1  # longer side (inclusive 59) plus 25% each side
    assert np.all(grown == np.trunc(grown))  # integer-valued like the cascade's candidates
    assert abs((grown[0, 0] + grown[0, 2]) / 2 - 119.5) <= 1  # same centre


def test_tracked_faces_keep_ids_with_their_faces_and_serialise():
    faces = Faces(np.array([[0, 0, 10, 10], [20, 20, 40, 40]], np.float32), np.array([0.5, 0.9], np.float32),
                  np.zeros((2, 5, 2), np.float32))  # Faces sorts: the 0.9 face comes first
    tracked = TrackedFaces(faces, [3, 7], 4, 0.125, False)
    assert tracked.ids.tolist() == [3, 7] and tracked.boxes.tolist() == faces.boxes.tolist()
    assert tracked[0].id == 3 and tracked[0].box == (20.0, 20.0, 40.0, 40.0)
    record = json.loads(json.dumps(tracked.to_record()))
    assert record["frame"] == 4 and record["time"] == 0.125 and record["full_pass"] is False
    assert [face["id"] for face in record["faces"]] == [3, 7]
    with pytest.raises(ValueError):
        TrackedFaces(faces, [1], 0, None, True)


def test_one_euro_filter_smooths_noise_and_follows_motion():
    rng = np.random.default_rng(0)
    still = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    outputs = [still(np.array([10.0]) + rng.normal(0, 1, 1), 1 / 30)[0] for _ in range(200)]
    assert np.std(outputs[50:]) < 0.5  # raw noise std is 1
    moving = OneEuroFilter(min_cutoff=1.0, beta=1.0)
    for step in range(60):
        value = moving(np.array([step * 5.0]), 1 / 30)[0]
    assert abs(value - 59 * 5.0) < 10  # the speed term keeps lag small on fast motion
    with pytest.raises(ValueError):
        OneEuroFilter(min_cutoff=0)


def test_read_frames_from_frames_and_errors(tmp_path):
    images = [np.zeros((8, 8, 3), np.uint8)] * 3
    frames = list(read_frames(images, fps=4))
    assert [(f.index, f.time) for f in frames] == [(0, 0.0), (1, 0.25), (2, 0.5)]
    assert list(read_frames(iter(images)))[2] == Frame(2, None, images[2])
    with pytest.raises(VideoSourceError, match="not found"):
        read_frames(tmp_path / "missing.mp4")
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(ValueError, match="cannot open|no frame"):
        list(read_frames(tmp_path / "notes.mp4"))
    with pytest.raises(VideoSourceError, match="folder"):
        read_frames(tmp_path)
    with pytest.raises(TypeError, match="single image"):
        read_frames(images[0])
    with pytest.raises(TypeError):
        read_frames(3.5)


def test_unreachable_camera_and_url_are_clear_errors():
    for source in (99, "rtsp://127.0.0.1:1/none"):  # no camera 99; nothing listens on port 1
        with pytest.raises(VideoSourceError, match="cannot open"):
            read_frames(source)


def test_rgb_frames_track_like_bgr(detector, made):
    _, frames, _, _ = made("pan_zoom")
    bgr = track(detector, frames[:4])
    rgb = FaceTracker(detector)
    for ours, frame in zip(bgr, frames[:4]):
        theirs = rgb.update(np.ascontiguousarray(frame[:, :, ::-1]), color="rgb")
        np.testing.assert_array_equal(ours.boxes, theirs.boxes)
        np.testing.assert_array_equal(ours.ids, theirs.ids)


def test_read_frames_gives_file_times(made):
    _, frames, _, path = made("pan_zoom")
    times = [frame.time for frame in read_frames(path)]
    assert len(times) == len(frames)
    np.testing.assert_allclose(times[:3], [0, 1 / video_clips.FPS, 2 / video_clips.FPS], atol=1e-3)


def test_bad_tracker_settings_say_what_to_pass(detector):
    for options in ({"redetect_every": 0}, {"redetect_every": 2.5}, {"margin": -0.1}, {"min_iou": 0},
                    {"fps": 0}, {"scene_change": 0}, {"scene_change": 300}, {"pass_budget": (0, 10)},
                    {"pass_budget": (8,)}, {"pass_budget": "8, 10"}):
        with pytest.raises(SettingsError):
            FaceTracker(detector, **options)
    for name, value, message in (("change_gap", 0, "change_gap must be an int >= 1 (frames, e.g. 5), got 0"),
                                 ("coast", -1, "coast must be an int >= 0 (frames, e.g. 3), got -1"),
                                 ("candidates", 1.0, "candidates must be an int >= 0 (0 = none, e.g. 4)")):
        with pytest.raises(SettingsError, match=re.escape(message)):
            FaceTracker(detector, **{name: value})
    with pytest.raises(TypeError, match="Detector"):
        FaceTracker("detector")
    with pytest.raises(TypeError, match="smoothing"):
        FaceTracker(detector, smoothing=3)
    with pytest.raises(TypeError):
        FaceTracker(detector).update([[1, 2], [3, 4]])


# --------------------------------------------------------------------------------------------- command line

def test_cli_writes_jsonl_and_drawn_video(made, tmp_path):
    _, frames, _, path = made("crossing")
    out, drawn = tmp_path / "tracks.jsonl", tmp_path / "drawn.avi"
    assert main(["video", str(path), "--out", str(out), "--draw", str(drawn), "--quiet", "--threads", "1"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(len(frames)))
    assert {face["id"] for face in records[5]["faces"]} == {0, 1}
    assert len(video_clips.read_clip(drawn)) == len(frames)


def test_cli_ctrl_c_leaves_whole_records_and_a_playable_video(made, tmp_path, monkeypatch):
    _, _, _, path = made("crossing")
    real_update = FaceTracker.update

    def update(self, frame, *args, **kwargs):
        if self.frames_seen == 7:
            raise KeyboardInterrupt
        return real_update(self, frame, *args, **kwargs)
    monkeypatch.setattr(FaceTracker, "update", update)
    out, drawn = tmp_path / "tracks.jsonl", tmp_path / "drawn.avi"
    assert main(["video", str(path), "--out", str(out), "--draw", str(drawn), "--quiet"]) == 130
    lines = out.read_text().splitlines()
    assert len(lines) == 7 and all(json.loads(line)["faces"] for line in lines)
    assert len(video_clips.read_clip(drawn)) == 7


def test_cli_unreadable_input_and_bad_draw_name(tmp_path, capsys, made):
    assert main(["video", str(tmp_path / "missing.mp4"), "--quiet"]) == 1  # an input error (docs/cli.md)
    assert "not found" in capsys.readouterr().err
    (tmp_path / "text.avi").write_text("hello")
    assert main(["video", str(tmp_path / "text.avi"), "--quiet"]) == 1
    assert "ffmpeg" in capsys.readouterr().err
    _, _, _, path = made("pan_zoom")
    assert main(["video", str(path), "--draw", str(tmp_path / "out.gif"), "--quiet"]) == 2
    assert ".mp4, .avi or .mkv" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------- kernels and real clips

def test_iou_kernel_equals_the_evaluation_iou():
    rng = np.random.default_rng(4)
    corners = rng.uniform(0, 200, (2, 30, 2)).astype(np.float32)
    boxes = np.concatenate([corners.min(0), corners.max(0)], axis=1)
    boxes[3] = [5, 5, 5, 9]  # no area
    from fastmtcnn import kernels
    np.testing.assert_allclose(kernels.iou_matrix(boxes[:12], boxes[12:]), iou_matrix(boxes[:12], boxes[12:]),
                               atol=1e-6)
    assert kernels.iou_matrix(boxes[:0], boxes).shape == (0, 30)


def test_region_tiles_cover_the_region():
    from fastmtcnn.video import _tile_starts
    for start, stop, side, step in ((10.0, 300.0, 80, 60.0), (-20.0, 30.0, 80, 60.0), (0.0, 81.0, 80, 60.0)):
        starts = _tile_starts(start, stop, side, step)
        assert starts[0] <= start + 0.5 and starts[-1] + side >= stop - 0.5
        assert all(b - a <= step + 0.5 for a, b in zip(starts, starts[1:]))  # neighbours overlap by side - step


def test_region_tiles_reach_above_the_region():
    """New content is often a moving body: the tiles also cover REGION_ABOVE of the region's width above it (where
    the head is), at every scale, and a face-sized margin on the other sides."""
    from fastmtcnn.video import REGION_ABOVE, region_tiles
    region = (200.0, 150.0, 260.0, 330.0)  # a body 60 px wide
    scales = np.array([0.6, 0.3, 0.15])
    tiles, levels = region_tiles(region, scales)
    assert REGION_ABOVE > 0
    for level, scale in enumerate(scales):
        mine = tiles[levels == level]
        pad = 12 / scale
        assert mine[:, 1].min() <= 150 - pad - REGION_ABOVE * 60 + 1  # above: a window and the width
        assert mine[:, 3].max() + 1 >= 330 + pad - 1 and mine[:, 0].min() <= 200 - pad + 1


def test_coasting_faces_are_marked_in_the_record(detector, made):
    _, frames, _, _ = made("pan_zoom")
    tracker = FaceTracker(detector, redetect_every=1000, scene_change=None, redetect_on_loss=False)
    [tracker.update(f) for f in frames[:3]]
    grey = tracker.update(np.full_like(frames[4], 128))
    record = grey.to_record()["faces"]
    assert len(record) == 1 and record[0]["predicted"] is True and grey[0].predicted
    assert "predicted" not in tracker.update(frames[4]).to_record()["faces"][0]  # found again: measured


def test_tracked_faces_stay_on_the_lower_tracking_thresholds(detector, made):
    """Hysteresis: with the detector's thresholds for tracked faces too, the tracker keeps no face below them;
    with the default lower ones it keeps faces O-Net scores between them (turned heads, occlusion)."""
    _, frames, _, _ = made("crossing")
    strict = track(detector, frames, track_thresholds=detector.settings.thresholds[1:])
    assert all((t.scores >= detector.settings.thresholds[2]).all() for t in strict)
    assert FaceTracker(detector).track_thresholds < tuple(detector.settings.thresholds[1:])


def test_a_filmed_clip_keeps_the_per_frame_faces():
    """walking_and_pause (../shared/data/video, 41 frames, 480x270): people walking towards the camera."""
    from conftest import shared_path
    from bench.video_eval import clip_frames, evaluate
    path = shared_path("data", "video", "walking_and_pause.gif")
    result = evaluate(clip_frames(str(path)), Detector(min_face_size=20, num_threads=1))
    assert result["recall_strong"] >= 0.98 and result["recall_all"] >= 0.95, result
    assert result["id_switches"] <= result["face_frames"] / 100, result


def test_two_tracks_on_one_face_go_on_as_the_older_one():
    boxes = np.array([[100, 100, 200, 200], [104, 102, 204, 202], [300, 100, 400, 200]], np.float32)
    found = Found(boxes, np.array([0.9, 0.99, 0.8], np.float32), np.zeros((3, 5, 2), np.float32),
                   np.array([7, 2, 5], np.int64))
    kept = one_track_per_face(found)
    assert kept.tracks.tolist() == [2, 5]  # track 7 repeats older track 2's face; track 5 is another face
    assert np.array_equal(kept.boxes, boxes[[1, 2]])


def test_candidates_are_followed_unseen_and_become_faces_at_the_detector_threshold(detector):
    def found(scores, tracks):
        boxes = np.array([[100 + 80 * k, 100, 160 + 80 * k, 160] for k in range(len(scores))], np.float32)
        return Found(boxes, np.array(scores, np.float32), np.zeros((len(scores), 5, 2), np.float32),
                      np.array(tracks, np.int64))

    tracker = FaceTracker(detector, candidates=1)
    faces, ids, _ = tracker._record(found([0.9, 0.6, 0.55], [-1, -1, -1]), [], 0, None)
    assert ids.tolist() == [0] and faces.scores.tolist() == [np.float32(0.9)]  # the weak ones are not output
    assert sorted(tracker._tracks) == [-2, 0]  # one candidate (the limit), the best-scored first
    faces, ids, _ = tracker._record(found([0.6], [-2]), [-2], 1, None)
    assert not len(faces) and -2 in tracker._tracks  # still weak: followed, unseen
    faces, ids, _ = tracker._record(found([0.8], [-2]), [-2], 2, None)
    assert ids.tolist() == [1] and -2 not in tracker._tracks  # scored at the detector's threshold: a face
    tracker._record(found([0.6], [-1]), [], 3, None)
    assert -3 in tracker._tracks
    tracker._record(found([], []), [-3], 4, None)
    assert not [k for k in tracker._tracks if k < 0]  # a candidate not found is dropped at once
    assert FaceTracker(detector, redetect_every=1).candidates == 0  # per-frame detection: none


def test_a_pass_gives_the_detectors_faces_and_the_weaker_ones_apart(detector, made):
    """The full pass runs O-Net at the tracking threshold (for candidates): its faces over the detector's
    threshold are exactly `Detector.detect`'s."""
    _, frames, reference, _ = made("crossing")
    tracker = FaceTracker(detector)
    channels = np.array([2, 1, 0], np.int32)
    for frame, theirs in list(zip(frames, reference))[:6]:
        faces = tracker._full_pass(frame, channels)
        strong = faces.scores >= detector.settings.thresholds[2]
        np.testing.assert_array_equal(faces.boxes[strong], theirs.boxes)
        np.testing.assert_array_equal(faces.landmarks[strong], theirs.landmarks)
        assert (faces.scores[~strong] >= tracker.track_thresholds[1]).all()


def test_bad_candidates_setting_says_what_to_pass(detector):
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="candidates"):
            FaceTracker(detector, candidates=bad)


def test_a_candidate_on_a_face_gives_way_to_the_face():
    boxes = np.array([[100, 100, 200, 200], [102, 101, 202, 201], [300, 100, 400, 200]], np.float32)
    found = Found(boxes, np.array([0.6, 0.9, 0.55], np.float32), np.zeros((3, 5, 2), np.float32),
                   np.array([-2, 9, -3], np.int64))
    assert one_track_per_face(found).tracks.tolist() == [9, -3]  # the face's track, however young; -3 elsewhere


# --------------------------------------------------------------------------------------------- cheaper tracking steps

def count_calls(monkeypatch, cascade, name):
    """A list that grows by the number of boxes of each call of `cascade.<name>` (R-Net `refine`, O-Net `output`)."""
    calls, original = [], getattr(cascade, name)

    def counted(pixels, channels, boxes, *args, **kwargs):
        calls.append(len(boxes))
        return original(pixels, channels, boxes, *args, **kwargs)
    monkeypatch.setattr(cascade, name, counted)
    return calls


def test_strong_large_faces_skip_rnet_and_keep_the_targets(detector, made, monkeypatch):
    """crossing's faces (100-110 px, O-Net >= 0.7): with `skip_rnet` the tracking steps run O-Net alone on them,
    without, R-Net first; both meet the targets."""
    clip, frames, reference, _ = made("crossing")
    rnet = count_calls(monkeypatch, detector._cascade(), "refine")
    counts = {}
    for skip in (None, 0.7):
        rnet.clear()
        tracked = track(detector, frames, skip_rnet=skip)
        assert_targets(video_clips.compare_with_per_frame(tracked, reference, clip, min_face_size=MIN_FACE))
        counts[skip] = len(rnet)
    passes = sum(t.full_pass for t in tracked)
    assert counts[None] >= len(frames) - passes  # R-Net on every tracking step
    assert counts[0.7] <= 2 * passes + 5  # R-Net in the passes (and after a rare miss) only


def test_small_or_weak_faces_do_not_skip_rnet(detector):
    from fastmtcnn.video import SKIP_RNET_SIDE
    tracker = FaceTracker(detector)
    found = Found(np.array([[0, 0, SKIP_RNET_SIDE, SKIP_RNET_SIDE], [0, 0, SKIP_RNET_SIDE - 1, 90],
                             [0, 0, 90, 90]], np.float32), np.array([0.9, 0.99, 0.6], np.float32),
                   np.zeros((3, 5, 2), np.float32), np.full(3, -1, np.int64))
    tracker._record(found, [], 0, None)
    keys = sorted(tracker._tracks)  # a candidate (-2: O-Net 0.6), a face of 40 px (0), one 39 px wide (1)
    assert keys == [-2, 0, 1] and [tracker._skips_rnet(k) for k in keys] == [False, True, False]
    tracker.skip_rnet = None
    assert not tracker._skips_rnet(0)


def test_a_still_face_is_held_every_other_frame(detector, made, monkeypatch):
    """The same frame over and over: with `hold`, O-Net measures the face on every other tracking frame only,
    and a held face keeps its last box, score and landmarks; without, O-Net runs on every frame."""
    _, frames, _, _ = made("crossing")
    still = [frames[0]] * 9
    onet = count_calls(monkeypatch, detector._cascade(), "output")
    held = track(detector, still, hold=2.0)
    with_hold = len(onet)
    onet.clear()
    measured = track(detector, still, hold=None)
    assert len(onet) - with_hold >= 3  # frames 1, 3, 5, 7 held
    for k in (1, 3, 5, 7):
        np.testing.assert_array_equal(held[k].boxes, held[k - 1].boxes)
        np.testing.assert_array_equal(held[k].landmarks, held[k - 1].landmarks)
        assert held[k].ids.tolist() == held[k - 1].ids.tolist() and not held[k].predicted.any()
    assert [len(t) for t in held] == [len(t) for t in measured]


def test_velocity_follows_the_box_change_part_way():
    """A box that jumps once (a pass, then R-Net/O-Net) moves the prediction by VELOCITY_GAIN of the jump."""
    from fastmtcnn.association import VELOCITY_GAIN, Tracks
    tracks = Tracks(min_iou=0.3, keep_lost=5, coast=1, candidates=0, predict_motion=True)

    def at(x, index):
        box = np.array([[x, 100, x + 60, 160]], np.float32)
        return tracks.record(Found(box, np.array([0.99], np.float32), np.zeros((1, 5, 2), np.float32),
                                    np.array([0 if index else -1], np.int64)), [0] if index else [], index, None, 0.7)
    at(100, 0)
    at(110, 1)
    assert 0 < VELOCITY_GAIN < 1
    np.testing.assert_allclose(tracks[0].velocity, [10 * VELOCITY_GAIN, 0, 10 * VELOCITY_GAIN, 0])
    at(110, 2)  # still: the velocity decays instead of stopping dead
    np.testing.assert_allclose(tracks[0].velocity, [10 * VELOCITY_GAIN * (1 - VELOCITY_GAIN), 0,
                                                    10 * VELOCITY_GAIN * (1 - VELOCITY_GAIN), 0])


def test_bad_skip_rnet_and_hold_say_what_to_pass(detector):
    for options in ({"skip_rnet": 1.5}, {"skip_rnet": -0.1}, {"hold": -1}, {"hold": 300}):
        with pytest.raises(ValueError, match=next(iter(options))):
            FaceTracker(detector, **options)
    assert FaceTracker(detector, hold=2.0, scene_change=None).hold is None  # holding needs the change check


def test_motion_passes_run_p_net_on_the_levels_of_the_tracked_faces_only(detector, made, monkeypatch):
    """pan_zoom (one face, camera pan and zoom): a motion pass's P-Net looks for faces down to `motion_smallest`
    of the tracked face's side, the scheduled pass on frame 0 at every level; both settings meet the targets."""
    clip, frames, reference, _ = made("pan_zoom")
    cascade = detector._cascade()
    calls, original = [], cascade.propose

    def recorded(pixels, channels, *args, smallest_face=None, **kwargs):
        calls.append(smallest_face)
        return original(pixels, channels, *args, smallest_face=smallest_face, **kwargs)
    monkeypatch.setattr(cascade, "propose", recorded)
    for fraction in (None, 0.5):
        calls.clear()
        tracked = track(detector, frames, motion_smallest=fraction)
        assert_targets(video_clips.compare_with_per_frame(tracked, reference, clip, min_face_size=MIN_FACE))
        reasons = [t.pass_reason for t in tracked if t.full_pass]
        assert len(calls) == len(reasons) and reasons[0] == SCHEDULED and calls[0] is None
        motion = [smallest for smallest, reason in zip(calls, reasons) if reason == MOTION]
        assert len(motion) >= 3
        if fraction is None:
            assert all(smallest is None for smallest in motion)
        else:  # half the tracked face's side, over the detector's smallest face: the finest levels left out
            sides = [min(np.diff(t.boxes.reshape(2, 2), axis=0).ravel()) for t in tracked if len(t) == 1]
            assert all(MIN_FACE < smallest <= 0.5 * max(sides) for smallest in motion), (motion, sides)


def test_propose_with_a_smallest_face_runs_the_coarser_levels_only(detector, made, monkeypatch):
    _, frames, _, _ = made("pan_zoom")
    cascade, image, channels = detector._cascade(), frames[0], np.array([2, 1, 0], np.int32)
    scales = cascade.pyramid_scales(*image.shape[:2])
    levels, original = [], cascade._level_candidates  # every level, run alone or packed (OpenVINO)
    monkeypatch.setattr(cascade, "_level_candidates",
                        lambda prob, reg, scale: levels.append(scale) or original(prob, reg, scale))
    every = cascade.propose(image, channels)
    assert len(levels) == len(scales)
    levels.clear()
    coarse = cascade.propose(image, channels, smallest_face=60.0)
    np.testing.assert_array_equal(levels, scales[scales <= 12 / 60.0])
    assert len(levels) < len(scales)
    assert 0 < len(coarse) < len(every)  # the finest levels give most proposals
    levels.clear()
    np.testing.assert_array_equal(cascade.propose(image, channels, smallest_face=MIN_FACE / 2), every)
    assert len(levels) == len(scales)


def test_bad_motion_smallest_says_what_to_pass(detector):
    for value in (0, 1.5, -0.5):
        with pytest.raises(ValueError, match="motion_smallest"):
            FaceTracker(detector, motion_smallest=value)


def test_region_tiles_run_only_over_or_above_the_changed_cells():
    from fastmtcnn.scene_change import CELL
    from fastmtcnn.video import tiles_near_change
    changed = np.zeros((45, 80), bool)
    changed[20, 30] = True  # pixels 240-247 x 160-167
    tiles = np.array([[236, 156, 251, 171],    # over the cell
                      [236, 100, 251, 115],    # above it, within 50 px
                      [236, 60, 251, 75],      # above it, beyond 50 px
                      [236, 176, 251, 191],    # below it
                      [300, 156, 315, 171],    # beside it
                      [-40, -40, 600, 400]], np.float32)  # over everything, past the frame
    assert tiles_near_change(tiles, changed, below=50).tolist() == [True, True, False, False, False, True]
    assert tiles_near_change(tiles, changed, below=0).tolist() == [True, False, False, False, False, True]
    assert not tiles_near_change(tiles, np.zeros_like(changed), below=50).any()
    assert CELL == 8
