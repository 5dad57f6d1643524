"""Video sources for `fastmtcnn video`: a file, a camera index or a stream URL, with errors in our own words.

OpenCV and FFmpeg write their own log lines to the process's stderr (`[ WARN:0@0.03] ... can't open camera by
index`, `moov atom not found`); a `fastmtcnn.native_log.NativeLog` catches them while the source is opened or
read, and `VideoInput` turns them into one-line `VideoSourceError`s. `VideoInput.frames()` reads every frame, or with
`realtime=True` the newest one only (a reader thread keeps the source at its own pace, a file at its frame rate;
frames the consumer was too slow for are dropped and counted). After the frames, `end_error()` says whether the
source ended early: a truncated or corrupt file, a camera or stream that dropped.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator, List, Optional, Union

import cv2

from .native_log import NativeLog
from .video import Frame, VideoSourceError, check_video_path, frame_count, frame_time


class VideoInput:
    """An opened video source: `text` is a camera index ("0"), a URL ("rtsp://...") or a file path."""

    def __init__(self, text: Union[str, int], realtime: bool = False):
        text = str(text)
        self.name, self.realtime = text, realtime
        self.kind = "camera" if text.isdigit() else "stream" if "://" in text else "file"
        self.log = NativeLog()
        self.read_count = 0  # frames read from the source
        self.dropped = 0  # frames read but skipped (realtime mode)
        self._ended_early: Optional[str] = None
        if self.kind == "file":
            check_video_path(Path(text))
        with self.log:
            self.capture = cv2.VideoCapture(int(text) if self.kind == "camera" else text)
            opened = self.capture.isOpened()
        if not opened:
            raise VideoSourceError(self._cannot_open())
        self.fps = self.capture.get(cv2.CAP_PROP_FPS) or 30.0
        self.expected = frame_count(self.capture) if self.kind == "file" else None

    def _cannot_open(self) -> str:
        if self.kind == "camera":
            return (f"camera {self.name} cannot be opened{self.log.said()}: check it is connected and not used by "
                    "another program, or pass another index")
        if self.kind == "stream":
            return f"cannot open the stream {self.name}{self.log.said()}: check the URL and that the server is up"
        return (f"{self.name} is not a video OpenCV can open{self.log.said()}: a truncated or corrupt file, or a "
                "container/codec this OpenCV build lacks (convert it, e.g. `ffmpeg -i IN -c:v mjpeg OUT.avi`)")

    def _read(self):
        with self.log:
            ok, image = self.capture.read()
        if not ok or image is None:
            return None
        self.read_count += 1
        index = self.read_count - 1
        return Frame(index, frame_time(self.capture, index, self.fps), image)

    def frames(self) -> Iterator[Frame]:
        """The frames, in order (`Frame.index` counts the source's frames, so dropped ones leave gaps)."""
        try:
            yield from (self._latest_frames() if self.realtime else iter(self._read, None))
        finally:
            self.close()
        if self.read_count == 0:
            raise VideoSourceError(f"no frame could be decoded from {self.name}{self.log.said()}: the file is empty, "
                                   "corrupt, or its codec is missing from this OpenCV build (convert it, e.g. "
                                   "`ffmpeg -i IN -c:v mjpeg OUT.avi`)")
        self._ended_early = self._why_ended_early()

    def _latest_frames(self) -> Iterator[Frame]:
        """Realtime: a reader thread keeps only the newest frame; a file is read at its own frame rate."""
        slot: List[Optional[Frame]] = [None]
        ready, stop, done = threading.Condition(), threading.Event(), threading.Event()

        def reader() -> None:
            start = time.monotonic()
            while not stop.is_set():
                frame = self._read()
                if frame is None:
                    break
                if self.kind == "file":  # a file: at its own pace, as a camera would deliver it
                    time.sleep(max(0.0, start + frame.index / self.fps - time.monotonic()))
                with ready:
                    slot[0] = frame
                    ready.notify()
            done.set()
            with ready:
                ready.notify()

        thread = threading.Thread(target=reader, name="fastmtcnn-video-reader", daemon=True)
        thread.start()
        last = -1
        try:
            while True:
                with ready:
                    while slot[0] is None and not done.is_set():
                        ready.wait(0.5)
                    frame, slot[0] = slot[0], None
                if frame is None:
                    return
                self.dropped += frame.index - last - 1
                last = frame.index
                yield frame
        finally:
            stop.set()
            thread.join(timeout=5)

    def _why_ended_early(self) -> Optional[str]:
        if self.kind == "file":
            if self.expected is not None and self.read_count < self.expected - 1:  # containers may round by one
                return (f"{self.name} is truncated or corrupt: {self.read_count} of the {self.expected} frames its "
                        f"header announces could be read{self.log.said()}; the frames before are in the output")
            return None
        if self.kind == "camera":
            return (f"camera {self.name} stopped after {self.read_count} frames{self.log.said()} (disconnected?); "
                    "the frames before are in the output")
        lines = self.log.lines()
        return (f"the stream {self.name} dropped after {self.read_count} frames{self.log.said()}; the frames "
                "before are in the output") if lines else None

    def end_error(self) -> Optional[str]:
        """After `frames()` ran out: why the source ended before its end (None: a normal end)."""
        return self._ended_early

    def close(self) -> None:
        self.capture.release()
