"""`python -m bench.video_sweep [NAME ...] [--clips CLIP ...]`: the measurements behind FaceTracker's defaults.

Each sweep changes one `FaceTracker` setting around the defaults and runs `bench.video_eval.evaluate` (the tracker
and per-frame detection interleaved on the same frames) on the five filmed clips of ../shared/data/video (never on
made clips: defaults are chosen on real footage). One line per (setting, clip): recall of strong / all per-frame
faces, id switches, full passes, the change check's false alarms, speed-up; then the setting's worst clip.
Sweeps (default: all): every, change_gap, motion_gap, loss, scene_change, track_thresholds, candidates, margin,
search, coast, skip_rnet, hold, motion_smallest, mute.
1 thread, min face 20, OpenCV DNN unless --backend. Takes minutes per sweep: run it on a quiet machine.
"""
from __future__ import annotations

import argparse
import sys
from typing import Dict, List

from fastmtcnn import Detector, set_num_threads

from .video_eval import VIDEO_DIR, clip_frames, evaluate

SWEEPS: Dict[str, tuple] = {
    "every": ("redetect_every", (10, 20, 30, 40)),
    "change_gap": ("change_gap", (2, 3, 5)),
    "motion_gap": ("motion_gap", (3, 6, 10)),
    "loss": ("redetect_on_loss", (True, False)),
    "scene_change": ("scene_change", (15.0, 20.0, 30.0, None)),
    "track_thresholds": ("track_thresholds", ((0.4, 0.4), (0.5, 0.5), (0.6, 0.6), None)),
    "candidates": ("candidates", (0, 2, 4, 8)),
    "margin": ("margin", (0.05, 0.1, 0.2)),
    "search": ("search", (0.0, 0.5, 1.0)),
    "coast": ("coast", (0, 3, 6)),
    "skip_rnet": ("skip_rnet", (None, 0.7, 0.9)),
    "hold": ("hold", (None, 2.0, 4.0)),
    "motion_smallest": ("motion_smallest", (None, 0.5, 0.7)),
    "mute": ("mute", (None, 1, 2)),
}


def sweep(name: str, clips: Dict[str, List], detector: Detector) -> None:
    option, values = SWEEPS[name]
    for value in values:
        worst = None
        for clip, frames in clips.items():
            r = evaluate(frames, detector, **{option: value})
            print(f"{option}={value} {clip:24s} strong {r['recall_strong']:.3f} all {r['recall_all']:.3f} "
                  f"switches {r['id_switches']} passes {r['full_passes']} {r['pass_reasons']} "
                  f"false alarms {r['change_false_alarms']} x{r['speedup']:.2f}", flush=True)
            key = (r["recall_all"], r["speedup"])
            worst = key if worst is None else min(worst, key)
        print(f"{option}={value} worst clip: all {worst[0]:.3f}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.video_sweep", description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="*", help=f"which settings, of {', '.join(SWEEPS)} (default: all)")
    parser.add_argument("--clips", nargs="*", help="clip names under ../shared/data/video (default: all five)")
    parser.add_argument("--backend", default="opencv")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.sweeps) - set(SWEEPS))
    if unknown:
        parser.error(f"no sweep {', '.join(unknown)}: choose from {', '.join(SWEEPS)}")
    set_num_threads(1)
    detector = Detector(min_face_size=20, num_threads=1, backend=args.backend)
    names = args.clips or sorted(p.name for p in VIDEO_DIR.iterdir() if p.suffix in (".mp4", ".gif"))
    clips = {name: clip_frames(name) for name in names}
    for name in args.sweeps or SWEEPS:
        sweep(name, clips, detector)
    return 0


if __name__ == "__main__":
    sys.exit(main())
