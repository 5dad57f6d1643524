"""`python -m bench.video_eval [CLIP ...]`: the stream tracker against per-frame detection on real clips.

Each CLIP (default: every clip in ../shared/data/video; `made:NAME` for a made clip of tests/video_clips.py) is
decoded once; then, frame by frame, `Detector.detect` (the reference) and `FaceTracker.update` run one after the
other on the same frame, each timed, so both see the same load (the speed-up is the ratio of their sums in this
one run). Reported per clip:

- recall of the per-frame *strong* faces (score >= 0.95) and of *all* per-frame faces, matched one-to-one at
  IoU >= 0.5 (greedy, highest IoU first), and the frame ranges where some face was missed;
- id switches and fragments: per-frame faces are linked into true tracks (IoU >= 0.3 with the track's last box,
  gaps up to 5 frames); a *switch* is a true track matched to another tracker id than at its last matched frame,
  a *fragment* a true track matched again after being missed; switches per 100 matched face-frames;
- *landmarks*: median over the matched faces the tracker measured (not coasting) of the mean distance of its five
  points from the per-frame face's, as a percentage of the per-frame box side;
- faces of the tracker that match no per-frame face (*extra*; how many of them are coasting predicted boxes);
- passes by reason (full ones, and those over a part of the frame: new content, lost faces), the change check's
  *false alarms* (its passes that started no new track), frames/s of both, speed-up.

Options: --threads (default 1), --min-face-size (20), --backend (auto), tracker options (--redetect-every ...),
--versus NAME=VALUE (A/B: a second tracker with that keyword changed, interleaved with the first on the same
reference: B's line follows A's), --cpu-time (time both with `time.process_time`, the process's CPU time, instead of wall time: steadier on a
loaded machine with 1 thread), --json FILE.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from fastmtcnn import Detector, kernels, set_num_threads
from fastmtcnn.scene_change import CUT, MOTION, NEW_CONTENT
from fastmtcnn.association import greedy_pairs
from fastmtcnn.video import FaceTracker, read_frames

VIDEO_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "video"
STRONG = 0.95
MATCH_IOU = 0.5
LINK_IOU, LINK_GAP = 0.3, 5


def clip_frames(name: str) -> List[np.ndarray]:
    """Decoded BGR frames of a clip path, a clip name under ../shared/data/video, or `made:NAME`."""
    if name.startswith("made:"):
        import tempfile
        from .test_bench_video import clips_module
        clips = clips_module()
        clip = clips.CLIPS[name[5:]]()
        with tempfile.TemporaryDirectory() as folder:
            return clips.read_clip(clips.write_clip(clip, Path(folder) / "clip.avi"))
    path = Path(name)
    if not path.exists():
        matches = sorted(VIDEO_DIR.glob(name + "*"))
        if not matches:
            raise SystemExit(f"video_eval: no clip {name} (a path, a name in {VIDEO_DIR}, or made:NAME)")
        path = matches[0]
    return [frame.image for frame in read_frames(path)]


def true_tracks(per_frame) -> List[np.ndarray]:
    """For each frame, int (n,) true-track label of each per-frame face (IoU-linked over gaps <= LINK_GAP)."""
    labels, last_box, last_seen = [], [], []
    for index, faces in enumerate(per_frame):
        alive = [k for k in range(len(last_box)) if index - last_seen[k] <= LINK_GAP]
        known = np.array([last_box[k] for k in alive], np.float32).reshape(-1, 4)
        frame_labels = np.full(len(faces), -1)
        for i, j in greedy_pairs(kernels.iou_matrix(known, faces.boxes), LINK_IOU):
            frame_labels[j] = alive[i]
        for j in range(len(faces)):
            if frame_labels[j] < 0:
                frame_labels[j] = len(last_box)
                last_box.append(None)
                last_seen.append(index)
            last_box[frame_labels[j]], last_seen[frame_labels[j]] = faces.boxes[j], index
        labels.append(frame_labels)
    return labels


def ranges(frames: Sequence[int]) -> str:
    """'3-7, 12' for [3, 4, 5, 6, 7, 12]."""
    parts, start = [], None
    for k, frame in enumerate(frames):
        if start is None:
            start = frame
        if k + 1 == len(frames) or frames[k + 1] != frame + 1:
            parts.append(str(start) if start == frame else f"{start}-{frame}")
            start = None
    return ", ".join(parts)


def score(tracked, per_frame) -> Dict:
    """Recall (strong / all), missed frames, id switches and fragments of the tracker against per-frame faces."""
    labels = true_tracks(per_frame)
    found = {"strong": [0, 0], "all": [0, 0]}
    missed = {"strong": [], "all": []}
    last_id, state = {}, {}  # true track -> last tracker id matched; "on" / "lost" after its first match
    switches = fragments = matched_frames = extra = extra_predicted = 0
    landmark_gaps = []  # per matched measured face: mean point distance / per-frame box side
    for index, (ours, theirs) in enumerate(zip(tracked, per_frame)):
        pairs = dict(greedy_pairs(kernels.iou_matrix(theirs.boxes, ours.boxes), MATCH_IOU))
        unmatched = np.setdiff1d(np.arange(len(ours)), list(pairs.values()))
        extra += len(unmatched)
        extra_predicted += int(ours.predicted[unmatched].sum())
        for j in range(len(theirs)):
            kinds = ("strong", "all") if theirs.scores[j] >= STRONG else ("all",)
            for kind in kinds:
                found[kind][1] += 1
                found[kind][0] += j in pairs
                if j not in pairs and (not missed[kind] or missed[kind][-1] != index):
                    missed[kind].append(index)
            label = int(labels[index][j])
            if j in pairs:
                matched_frames += 1
                if not ours.predicted[pairs[j]]:
                    side = max(float(theirs.boxes[j, 2] - theirs.boxes[j, 0]), 1.0)
                    gap = np.linalg.norm(ours.landmarks[pairs[j]] - theirs.landmarks[j], axis=1).mean()
                    landmark_gaps.append(gap / side)
                track_id = int(ours.ids[pairs[j]])
                switches += label in last_id and last_id[label] != track_id
                fragments += state.get(label) == "lost"
                last_id[label], state[label] = track_id, "on"
            elif label in state:
                state[label] = "lost"
    recall = {kind: hits / total if total else 1.0 for kind, (hits, total) in found.items()}
    return {"recall_strong": recall["strong"], "recall_all": recall["all"],
            "strong": found["strong"], "all": found["all"],
            "missed_strong": ranges(missed["strong"]), "missed_all": ranges(missed["all"]),
            "extra": extra, "extra_predicted": extra_predicted, "id_switches": switches, "fragments": fragments, "face_frames": matched_frames,
            "switches_per_100": 100.0 * switches / matched_frames if matched_frames else 0.0,
            "landmark_gap": float(np.median(landmark_gaps)) if landmark_gaps else 0.0,
            "true_tracks": int(max((int(f.max()) for f in labels if len(f)), default=-1)) + 1}


def passes(tracked) -> Dict:
    """Full passes by reason, and the *false alarms* of the change check: its passes (cut, new content, motion) that
    started no new track."""
    reasons, false_alarms, seen = {}, 0, set()
    for faces in tracked:
        ids = set(faces.ids.tolist())
        if faces.pass_reason:
            reasons[faces.pass_reason] = reasons.get(faces.pass_reason, 0) + 1
            false_alarms += faces.pass_reason in (CUT, NEW_CONTENT, MOTION) and not ids - seen
        seen |= ids
    return {"pass_reasons": reasons, "change_false_alarms": false_alarms}


def evaluate(frames: List[np.ndarray], detector: Detector, clock=time.perf_counter, **options) -> Dict:
    """Reference and tracker on the same frames, interleaved and timed with `clock`; the scores and the speed."""
    return compare(frames, detector, [options], clock)[0]


def compare(frames: List[np.ndarray], detector: Detector, variants: Sequence[Dict],
            clock=time.perf_counter) -> List[Dict]:
    """`evaluate` for several trackers (one per dict of `FaceTracker` options) against one per-frame reference:
    on each frame the reference, then every tracker (their order turned by one each frame), each timed, so all
    see the same load; the scores and the speed of each."""
    trackers = [FaceTracker(detector, **options) for options in variants]
    per_frame, tracked = [], [[] for _ in variants]
    reference_s, tracker_s = 0.0, [0.0] * len(variants)
    for index, frame in enumerate(frames):
        start = clock()
        per_frame.append(detector.detect(frame))
        reference_s += clock() - start
        for turn in range(len(variants)):
            k = (index + turn) % len(variants)
            start = clock()
            tracked[k].append(trackers[k].update(frame))
            tracker_s[k] += clock() - start
    results = []
    for faces, seconds in zip(tracked, tracker_s):
        result = score(faces, per_frame)
        result.update(passes(faces))
        result.update(frames=len(frames), full_passes=sum(f.full_pass for f in faces),
                      region_passes=sum(f.pass_reason == NEW_CONTENT and not f.full_pass for f in faces),
                      part_passes=sum(bool(f.pass_reason) and not f.full_pass for f in faces),
                      fps=len(frames) / seconds, reference_fps=len(frames) / reference_s,
                      speedup=reference_s / seconds)
        results.append(result)
    return results


def line(name: str, r: Dict) -> str:
    return (f"{name:24s} strong {r['recall_strong']:.3f} ({r['strong'][0]}/{r['strong'][1]}) "
            f"all {r['recall_all']:.3f} ({r['all'][0]}/{r['all'][1]}) switches {r['id_switches']} "
            f"({r['switches_per_100']:.2f}/100) fragments {r['fragments']} tracks {r['true_tracks']} "
            f"extra {r['extra']} ({r['extra_predicted']} predicted) landmarks {100 * r['landmark_gap']:.2f}% "
            f"passes {r['full_passes']}/{r['frames']} full, {r['part_passes']} over a part ({r['region_passes']} "
            f"new content) {r['pass_reasons']} "
            f"false alarms {r['change_false_alarms']} "
            f"{r['fps']:.0f} fps (per-frame {r['reference_fps']:.0f}) "
            f"x{r['speedup']:.2f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.video_eval", description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="*", help="clip paths, names under ../shared/data/video, or made:NAME")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--min-face-size", type=float, default=20.0)
    parser.add_argument("--backend", default="auto", help="detector engine: auto, opencv or openvino")
    parser.add_argument("--redetect-every", type=int)
    parser.add_argument("--margin", type=float)
    parser.add_argument("--scene-change", type=float)
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="any other FaceTracker keyword (a Python literal), e.g. --option keep_lost=30")
    parser.add_argument("--versus", action="append", default=[], metavar="NAME=VALUE",
                        help="A/B: also a tracker with this keyword changed (a Python literal; repeat for more), "
                             "interleaved frame by frame with the first on the same per-frame reference")
    parser.add_argument("--cpu-time", action="store_true", help="time with the process's CPU time (1 thread)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    parser.add_argument("--misses", action="store_true", help="print the missed frame ranges")
    args = parser.parse_args(argv)
    import ast
    options = {key: value for key, value in (("redetect_every", args.redetect_every), ("margin", args.margin),
                                             ("scene_change", args.scene_change)) if value is not None}
    if args.scene_change == 0:
        options["scene_change"] = None
    for item in args.option:
        key, value = item.split("=", 1)
        options[key] = ast.literal_eval(value)
    set_num_threads(args.threads)
    detector = Detector(min_face_size=args.min_face_size, num_threads=args.threads, backend=args.backend)
    print(f"engine {detector.engine.describe()}, {args.threads} thread(s), options {options or 'defaults'}")
    names = args.clips or sorted(path.name for path in VIDEO_DIR.iterdir() if path.suffix in (".mp4", ".gif"))
    results, clock = {}, time.process_time if args.cpu_time else time.perf_counter
    versus = dict(options, **{key: ast.literal_eval(value) for key, value in
                              (item.split("=", 1) for item in args.versus)})
    variants = [options, versus] if args.versus else [options]
    for name in names:
        runs = compare(clip_frames(name), detector, variants, clock)
        results[name] = runs[0] if len(runs) == 1 else {"A": runs[0], "B": runs[1]}
        for label, result in zip("AB" if args.versus else " ", runs):
            print(line(name if not args.versus else f"{label} {name}", result), flush=True)
            if args.misses:
                print(f"    missed strong: {result['missed_strong']}\n    missed all: {result['missed_all']}")
    if args.json:
        args.json.write_text(json.dumps({"options": options, "versus": versus if args.versus else None,
                                         "threads": args.threads, "clips": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
