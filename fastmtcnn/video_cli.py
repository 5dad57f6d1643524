"""`fastmtcnn video INPUT [--out tracks.jsonl] [--draw out.mp4] ...`: track faces through a video or a camera.

Output: one JSON line per frame, written and flushed as soon as the frame is done (stdout without --out):

    {"frame": 0, "time": 0.0, "full_pass": true, "faces": [{"id": 0, "box": [...], "score": s, "landmarks": [...]}]}

INPUT is a video file, a camera index (0, 1, ...) or a URL (rtsp://, http://...): anything cv2.VideoCapture opens.
`--draw OUT` writes the frames with boxes, ids and landmarks (.mp4: mp4v, .avi: MJPG, .mkv: XVID). Ctrl-C stops
cleanly: every line already written is a whole record and the drawn video is closed so it plays.
Progress on stderr: tqdm if installed (frames/s live), else a plain line once a second; --quiet turns it off.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional, TextIO

import cv2
import numpy as np

from .commands import Subcommands, add_command, add_detector_options, engine_from_args, settings_from_args
from .detector import Detector
from .video import (DEFAULT_MARGIN, DEFAULT_REDETECT_EVERY, DEFAULT_SCENE_CHANGE, FaceTracker, TrackedFaces,
                    VideoSourceError, frame_count, open_capture, read_frames)

#: Codec (FourCC) written for each --draw file extension; all three ship with opencv-python's FFmpeg.
DRAW_CODECS = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "XVID"}


def draw_tracks(image: np.ndarray, faces: TrackedFaces) -> np.ndarray:
    """A BGR copy of `image` with boxes, scores and landmarks (as `fastmtcnn detect --draw`) and each face's id."""
    from .cli import draw_faces

    canvas = draw_faces(image, faces)
    scale = max(1, round(max(image.shape[:2]) / 400))
    for box, track_id in zip(faces.boxes, faces.ids):
        x1, y2 = int(round(box[0])), int(round(box[3]))
        cv2.putText(canvas, f"id {track_id}", (x1, min(image.shape[0] - 2, y2 + 14 * scale)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (0, 255, 255), scale)
    return canvas


class _DrawnVideo:
    """The --draw writer, opened on the first frame (its size is known then)."""

    def __init__(self, path: Path, fps: float):
        codec = DRAW_CODECS.get(path.suffix.lower())
        if codec is None:
            raise ValueError(f"--draw {path}: use a .mp4, .avi or .mkv name (codecs {DRAW_CODECS})")
        self.path, self.codec, self.fps = path, codec, fps
        self.writer: Optional[cv2.VideoWriter] = None

    def write(self, image: np.ndarray) -> None:
        if self.writer is None:
            size = (image.shape[1], image.shape[0])
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*self.codec), self.fps, size)
            if not self.writer.isOpened():
                raise VideoSourceError(f"OpenCV cannot write {self.path} with codec {self.codec}: check the folder "
                                       "is writable, or try a .avi name (MJPG is in every OpenCV build)")
        self.writer.write(image)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


class _Progress:
    """Frames done and frames/s on stderr (tqdm when installed)."""

    def __init__(self, total: Optional[int], enabled: bool):
        self.enabled, self.frames, self.faces = enabled, 0, 0
        self.start = self.last = time.monotonic()
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=total, unit="frame", dynamic_ncols=True, file=sys.stderr, desc="fastmtcnn video")
            except ImportError:
                pass

    def update(self, faces: TrackedFaces) -> None:
        self.frames += 1
        self.faces = len(faces)
        if self.bar is not None:
            self.bar.set_postfix(faces=self.faces, refresh=False)
            self.bar.update(1)
        elif self.enabled and time.monotonic() - self.last >= 1.0:
            self.last = time.monotonic()
            print(f"\r{self.summary()}", end="", file=sys.stderr, flush=True)

    def summary(self) -> str:
        elapsed = time.monotonic() - self.start
        return f"fastmtcnn video: {self.frames} frames, {self.frames / elapsed if elapsed else 0:.1f} frames/s"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.frames:
            print(file=sys.stderr)


def run_video(source, tracker: FaceTracker, out: TextIO, draw: Optional[Path] = None,
              progress: bool = True) -> int:
    """Track faces through `source` (path, camera index, URL), one JSON line per frame to `out`; returns the
    number of frames. The drawn video and the progress bar are closed however the loop ends (Ctrl-C too)."""
    capture = open_capture(source)
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    bar = _Progress(frame_count(capture), progress)
    drawn = _DrawnVideo(draw, fps) if draw is not None else None
    try:
        for frame in read_frames(capture, fps):
            faces = tracker.update(frame.image, timestamp=frame.time)
            out.write(json.dumps(faces.to_record()) + "\n")
            out.flush()
            if drawn is not None:
                drawn.write(draw_tracks(frame.image, faces))
            bar.update(faces)
    finally:
        if drawn is not None:
            drawn.close()
        bar.close()
    return bar.frames


def _source(text: str):
    """A camera index for a plain number, else the path or URL as given."""
    return int(text) if text.isdigit() else text


def video_command(args: argparse.Namespace) -> int:
    detector = Detector(settings=settings_from_args(args), num_threads=args.threads, **engine_from_args(args))
    tracker = FaceTracker(detector, redetect_every=args.redetect_every, margin=args.margin,
                          scene_change=args.scene_change or None, smoothing=True if args.smooth else None)
    out = open(args.out, "w", encoding="utf-8") if args.out is not None else sys.stdout
    try:
        run_video(_source(args.input), tracker, out, args.draw, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"fastmtcnn video: interrupted after {tracker.frames_seen} frames; the lines written so far are "
              "complete" + (f", {args.draw} is closed" if args.draw else ""), file=sys.stderr)
        return 130
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def add_video_command(commands: Subcommands) -> argparse.ArgumentParser:
    """Register `fastmtcnn video`."""
    video = add_command(commands, "video", "track faces through a video file, camera or stream (JSONL per frame)",
                        "Track faces through INPUT (a video file, a camera index or a URL): one JSON line per frame "
                        "with stable face ids. The full cascade runs every --redetect-every frames, and at once on "
                        "a cut, a new face-sized change while the camera is still, or a lost face; R-Net + O-Net "
                        "on the tracked faces in between.")
    video.add_argument("input", metavar="INPUT", help="video file, camera index (0, 1...) or URL (rtsp://...)")
    video.add_argument("--out", type=Path, default=None, help="JSONL file to write (default: stdout)")
    video.add_argument("--draw", type=Path, default=None,
                       help="also write the video with faces and ids drawn (.mp4, .avi or .mkv)")
    video.add_argument("--redetect-every", type=int, default=DEFAULT_REDETECT_EVERY, metavar="N",
                       help="full detection every N frames (1 = every frame)")
    video.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                       help="tracked boxes grow by this fraction of their side on each side before R-Net")
    video.add_argument("--scene-change", type=float, default=DEFAULT_SCENE_CHANGE, metavar="LEVELS",
                       help="grey levels an 8x8 cell must change by to look for new faces at once (0 = off: new "
                            "faces wait for the next scheduled full pass)")
    video.add_argument("--smooth", action="store_true", help="One-Euro smoothing of boxes and landmarks")
    add_detector_options(video)
    video.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    video.set_defaults(run=video_command)
    return video
