"""`fastmtcnn video INPUT [--out tracks.jsonl] [--draw out.mp4] ...`: track faces through a video or a camera.

Output: one JSON line per frame, written and flushed as soon as the frame is done (stdout without --out):

    {"frame": 0, "time": 0.0, "full_pass": true, "faces": [{"id": 0, "box": [...], "score": s, "landmarks": [...]}]}

INPUT is a video file, a camera index (0, 1, ...) or a URL (rtsp://, http://...): anything cv2.VideoCapture opens
(`fastmtcnn.video_input`). `--realtime` processes the newest frame only, as a live consumer must (a file is
played at its frame rate): frames it is too slow for are dropped, and each line then also has "source_frame" (the
frame's index in the source) and "dropped" (frames skipped since the previous line). `--max-frames N` stops after
N lines. `--draw OUT` writes the frames with boxes, ids and landmarks (.mp4: mp4v, .avi: MJPG, .mkv: XVID).
Every line written is a whole record, however the run ends: Ctrl-C (exit 130), a camera or stream that drops or
a truncated file (one error line after the frames that could be read, exit 1). The drawn video is closed so it
plays. Progress on stderr: tqdm if installed (frames/s live), else a plain line once a second; --quiet turns it
off.
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

from .commands import (EXIT_INPUT_FAILED, EXIT_INTERRUPTED, EXIT_OK, Subcommands, add_command, add_detector_options,
                       detector_from_args, report_error)
from .drawing import draw_tracks
from .video import (DEFAULT_MARGIN, DEFAULT_REDETECT_EVERY, DEFAULT_SCENE_CHANGE, FaceTracker, TrackedFaces,
                    VideoSourceError)
from .native_log import STDERR_LOCK
from .video_input import VideoInput

#: Codec (FourCC) written for each --draw file extension; all three ship with opencv-python's FFmpeg.
DRAW_CODECS = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "XVID"}


class _DrawnVideo:
    """The --draw writer, opened on the first frame (its size is known then)."""

    def __init__(self, path: Path, fps: float):
        codec = DRAW_CODECS.get(path.suffix.lower())
        if codec is None:
            names = ", ".join(f"{suffix} ({fourcc})" for suffix, fourcc in DRAW_CODECS.items())
            raise ValueError(f"--draw {path}: use a .mp4, .avi or .mkv name; the codecs written: {names}")
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
        self.enabled, self.frames, self.faces, self.dropped = enabled, 0, 0, 0
        self.start = self.last = time.monotonic()
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=total, unit="frame", dynamic_ncols=True, file=sys.stderr, desc="fastmtcnn video")
            except ImportError:
                pass

    def update(self, faces: TrackedFaces, dropped: int = 0) -> None:
        self.frames += 1
        self.faces, self.dropped = len(faces), dropped
        with STDERR_LOCK:  # never while the video reader has stderr captured
            if self.bar is not None:
                self.bar.set_postfix(faces=self.faces, **({"dropped": dropped} if dropped else {}), refresh=False)
                self.bar.update(1)
            elif self.enabled and time.monotonic() - self.last >= 1.0:
                self.last = time.monotonic()
                print(f"\r{self.summary()}", end="", file=sys.stderr, flush=True)

    def summary(self) -> str:
        elapsed = time.monotonic() - self.start
        dropped = f", {self.dropped} dropped" if self.dropped else ""
        return (f"fastmtcnn video: {self.frames} frames{dropped}, "
                f"{self.frames / elapsed if elapsed else 0:.1f} frames/s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.frames:
            print(file=sys.stderr)


def run_video(source: VideoInput, tracker: FaceTracker, out: TextIO, draw: Optional[Path] = None,
              progress: bool = True, max_frames: Optional[int] = None) -> int:
    """Track faces through `source`, one JSON line per frame to `out` (see the module doc); returns the number of
    lines. The drawn video and the progress bar are closed however the loop ends (Ctrl-C too)."""
    bar = _Progress(min((n for n in (max_frames, source.expected) if n), default=None), progress)
    drawn = _DrawnVideo(draw, source.fps) if draw is not None else None
    frames, next_index = source.frames(), 0
    try:
        for frame in frames:
            faces = tracker.update(frame.image, timestamp=frame.time)
            record = faces.to_record()
            if source.realtime:
                record.update(source_frame=frame.index, dropped=frame.index - next_index)
            next_index = frame.index + 1
            out.write(json.dumps(record) + "\n")
            out.flush()
            if drawn is not None:
                drawn.write(draw_tracks(frame.image, faces))
            bar.update(faces, source.dropped)
            if max_frames is not None and bar.frames >= max_frames:
                break
    finally:
        frames.close()
        if drawn is not None:
            drawn.close()
        bar.close()
    return bar.frames


def video_command(args: argparse.Namespace) -> int:
    if args.max_frames is not None and args.max_frames < 1:
        raise ValueError(f"--max-frames must be >= 1, got {args.max_frames}")
    if args.draw is not None:
        _DrawnVideo(args.draw, 1.0)  # a bad --draw name fails before the detector is built
    detector = detector_from_args(args)
    tracker = FaceTracker(detector, redetect_every=args.redetect_every, margin=args.margin,
                          scene_change=args.scene_change or None, smoothing=True if args.smooth else None)
    source = VideoInput(args.input, realtime=args.realtime)
    out = open(args.out, "w", encoding="utf-8") if args.out is not None else sys.stdout
    try:
        run_video(source, tracker, out, args.draw, progress=not args.quiet, max_frames=args.max_frames)
    except KeyboardInterrupt:
        print(f"fastmtcnn video: interrupted after {tracker.frames_seen} frames; the lines written so far are "
              "complete" + (f", {args.draw} is closed" if args.draw else ""), file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if out is not sys.stdout:
            out.close()
    if source.dropped and not args.quiet:
        print(f"fastmtcnn video: {source.dropped} of {source.read_count} frames dropped to keep up (--realtime)",
              file=sys.stderr)
    if source.end_error() is not None:
        report_error(source.end_error())
        return EXIT_INPUT_FAILED
    return EXIT_OK


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
    video.add_argument("--realtime", action="store_true",
                       help="keep up with the source: process the newest frame, drop (and count) the ones missed; "
                            "a file plays at its frame rate")
    video.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N frames, >= 1")
    video.add_argument("--redetect-every", type=int, default=DEFAULT_REDETECT_EVERY, metavar="N",
                       help="full detection every N frames, >= 1 (1 = every frame)")
    video.add_argument("--margin", type=float, default=DEFAULT_MARGIN, metavar="FRACTION",
                       help="tracked boxes grow by this fraction of their side on each side before R-Net, >= 0")
    video.add_argument("--scene-change", type=float, default=DEFAULT_SCENE_CHANGE, metavar="LEVELS",
                       help="grey levels (0 to 255) an 8x8 cell must change by to look for new faces at once "
                            "(0 = off: new "
                            "faces wait for the next scheduled full pass)")
    video.add_argument("--smooth", action="store_true", help="One-Euro smoothing of boxes and landmarks")
    add_detector_options(video)
    video.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    video.set_defaults(run=video_command)
    return video
