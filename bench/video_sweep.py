"""`python -m bench.video_sweep [margin|every|change|all]`: the measurements behind FaceTracker's defaults.

margin: tracking only (a full pass on frame 0, none after), `pan_zoom` and `crossing` replayed at 1x / 2x / 3x
    speed (60 / 30 / 20 frames on the same path), margins 0 / 0.05 / 0.1 / 0.2, with and without
    constant-velocity prediction: recall, landmark distance and id switches against per-frame detection.
every: for each clip, the cost of a full pass and of a tracking step measured on the same frames one after
    the other (so under the same load; a step with no face to track is not counted), and what they give for
    redetect_every N = 1 / 5 / 10 / 15 / 20 / 30
    (frames/s and the ratio to per-frame detection); then recall, landmarks and id switches of the tracker
    (defaults otherwise) at each N.
change: scene_change thresholds 10 / 15 / 20 / 25 / 30 / 40 and off, on every clip: recall, full passes, and
    the frames whose faces were missed; then pass_budget (burst, refill) choices on the stress clips
    (`cut_every_frame`, `textured_pan`) and on leave_enter: full passes taken.
1 OpenCV thread, min face 20. Prints plain lines; takes minutes (run it on a quiet machine, under `nice`).
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2

from fastmtcnn import Detector
from fastmtcnn.video import FaceTracker

from .test_bench_video import clips_module

MARGINS = (0.0, 0.05, 0.1, 0.2)
EVERY = (1, 5, 10, 15, 20, 30)
SCENE_CHANGE = (10, 15, 20, 25, 30, 40, None)
BUDGETS = ((4, 10), (8, 10), (8, 5), (12, 10), (8, 20))
MIN_FACE = 20


def _clip(name: str, detector: Detector, frames=None):
    """The made clip, its frames replaced by their MJPG round trip (as the tests and README figures see them)."""
    clips = clips_module()
    if name == "hard_cut":
        clip = clips.hard_cut(group_boxes=detector.detect(cv2.imread(str(clips.GROUP))).boxes)
    else:
        clip = clips.CLIPS[name]() if frames is None else clips.CLIPS[name](frames)
    with tempfile.TemporaryDirectory() as folder:
        clip.frames = clips.read_clip(clips.write_clip(clip, Path(folder) / f"{name}.avi"))
    return clip


def _track_and_score(detector: Detector, clip, reference, **options):
    """(TrackedFaces per frame, compare_with_per_frame result) of a FaceTracker with `options` on the clip."""
    tracker = FaceTracker(detector, **options)
    tracked = [tracker.update(frame) for frame in clip.frames]
    return tracked, clips_module().compare_with_per_frame(tracked, reference, clip, min_face_size=MIN_FACE)


def _scores(result) -> str:
    return (f"recall {result['recall']:.3f} ({result['matched']}/{result['reference']}) landmarks "
            f"{result['landmark_px']:.2f} px switches {result['id_switches']}/{result['face_frames']}")


def sweep_margin(detector: Detector) -> None:
    clips = clips_module()
    for name in ("pan_zoom", "crossing"):
        for count in (60, 30, 20):
            clip = _clip(name, detector, count)
            reference = [detector.detect(frame) for frame in clip.frames]
            for margin in MARGINS:
                for predict in (False, True):
                    tracker = FaceTracker(detector, redetect_every=10 ** 9, margin=margin, predict_motion=predict,
                                          redetect_on_loss=False, scene_change=None)
                    result = clips.compare_with_per_frame([tracker.update(f) for f in clip.frames], reference, clip)
                    print(f"margin {name} x{60 // count} margin={margin} predict={predict}: {_scores(result)}",
                          flush=True)


def sweep_every(detector: Detector) -> None:
    clips = clips_module()
    for name in clips.CLIPS:
        clip = _clip(name, detector)
        reference, full, step = [], [], []
        tracker = FaceTracker(detector, redetect_every=10 ** 9, redetect_on_loss=False, scene_change=None)
        for frame in clip.frames:
            start = time.perf_counter()
            reference.append(detector.detect(frame))
            middle = time.perf_counter()
            tracked = tracker.update(frame)
            full.append(middle - start)
            if not tracked.full_pass and len(tracked):
                step.append(time.perf_counter() - middle)
            if not len(tracked) and len(reference[-1]):
                tracker.redetect()  # time tracking steps on the faces after a cut too
        full_s, step_s = statistics.median(full), statistics.median(step)
        for n in EVERY:
            per_frame = (full_s + (n - 1) * step_s) / n
            tracked, result = _track_and_score(detector, clip, reference, redetect_every=n)
            print(f"every {name} N={n}: {1 / per_frame:.1f} fps, x{full_s / per_frame:.2f} per-frame (full pass "
                  f"{full_s * 1000:.1f} ms, step {step_s * 1000:.2f} ms); {_scores(result)}, "
                  f"{sum(t.full_pass for t in tracked)} full passes", flush=True)


def sweep_change(detector: Detector) -> None:
    clips = clips_module()
    for name in clips.CLIPS:
        clip = _clip(name, detector)
        reference = [detector.detect(frame) for frame in clip.frames]
        for level in SCENE_CHANGE:
            tracked, result = _track_and_score(detector, clip, reference, scene_change=level)
            print(f"change {name} scene_change={level}: {_scores(result)}, {sum(t.full_pass for t in tracked)} full "
                  f"passes, missed on frames {sorted({index for index, _ in result['missed']})}", flush=True)
    for name, clip in (("cut_every_frame", clips.cut_every_frame()), ("textured_pan", clips.textured_pan()),
                       ("leave_enter", _clip("leave_enter", detector))):
        for budget in BUDGETS:
            tracker = FaceTracker(detector, pass_budget=budget)
            passes = [t.frame_index for t in (tracker.update(f) for f in clip.frames) if t.full_pass]
            print(f"budget {name} pass_budget={budget}: {len(passes)} full passes of {len(clip.frames)} frames "
                  f"{passes}", flush=True)


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    part = args[0] if args else "all"
    parts = {"margin": sweep_margin, "every": sweep_every, "change": sweep_change}
    if part not in (*parts, "all"):
        print("usage: python -m bench.video_sweep [margin|every|change|all]", file=sys.stderr)
        return 2
    detector = Detector(min_face_size=MIN_FACE, num_threads=1)
    for name, sweep in parts.items():
        if part in (name, "all"):
            sweep(detector)
    return 0


if __name__ == "__main__":
    sys.exit(main())
