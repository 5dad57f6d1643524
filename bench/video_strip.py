"""`python -m bench.video_strip [OUT]`: the README's strip of tracked frames (docs/video_strip.jpg by default).

Runs `FaceTracker` (defaults, 1 thread) over the made `crossing` clip (tests/video_clips.py) and puts four
drawn frames side by side at half size: boxes, scores, landmarks and the ids that stay with each face.
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from fastmtcnn import Detector
from fastmtcnn.video import FaceTracker
from fastmtcnn.drawing import draw_tracks

from .test_bench_video import clips_module

REPO_ROOT = Path(__file__).resolve().parent.parent
SHOWN = (0, 22, 36, 59)  # frames of the strip: before, while and after the faces cross


def strip(frames_shown=SHOWN) -> np.ndarray:
    """BGR uint8 (240, 320 * len(frames_shown), 3)."""
    frames = clips_module().crossing().frames
    tracker = FaceTracker(Detector(min_face_size=20, num_threads=1))
    tiles = []
    for index, frame in enumerate(frames):
        faces = tracker.update(frame)
        if index in frames_shown:
            tile = draw_tracks(frame, faces)
            cv2.putText(tile, f"frame {index}" + (" (full pass)" if faces.full_pass else ""), (10, 470),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
            tiles.append(cv2.resize(tile, (320, 240), interpolation=cv2.INTER_AREA))
    return np.hstack(tiles)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else REPO_ROOT / "docs" / "video_strip.jpg"
    if not cv2.imwrite(str(out), strip(), [cv2.IMWRITE_JPEG_QUALITY, 85]):
        print(f"cannot write {out}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
