"""Running a detector over every image of an annotated set, with an optional progress line."""
from __future__ import annotations

import math
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional, Sequence, TextIO, Tuple

from .data import Prediction, Predictions, as_prediction

#: Seconds between two redraws of the progress line.
_REDRAW_SECONDS = 0.1


class ProgressLine:
    """A one-line progress indicator (``\\r``-rewritten, at most ~10 Hz), thread-safe.

    enabled: True draws it, False does not, None draws it only if `stream` is a terminal.
    """

    def __init__(self, total: int, label: str, enabled: Optional[bool] = False,
                 stream: Optional[TextIO] = None):
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = bool(enabled)
        self.total, self.label = total, label
        self.done = 0
        self.started = time.perf_counter()
        self._last_drawn = 0.0
        self._lock = threading.Lock()

    def update(self, count: int = 1) -> None:
        """Count `count` more items done and redraw if it is time to."""
        with self._lock:
            self.done += count
            now = time.perf_counter()
            if not self.enabled or (now - self._last_drawn < _REDRAW_SECONDS and self.done < self.total):
                return
            self._last_drawn = now
            self.stream.write(self._line(now))
            self.stream.flush()

    def _line(self, now: float) -> str:
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        remaining = (self.total - self.done) / rate if rate > 0 else float("nan")
        eta = f"{remaining:5.0f}s" if math.isfinite(remaining) else "    ?"
        return f"\r{self.label} {self.done}/{self.total} {rate:6.1f} img/s  eta {eta} "

    def close(self) -> None:
        """End the line (if one was drawn)."""
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def predict_dataset(records: Sequence[dict], root: str, detect: Callable[[str], Any],
                    progress: Optional[bool] = False, jobs: int = 1) -> Tuple[Predictions, float]:
    """Run ``detect(path)`` on every image of a set.

    records: per-image dicts (:func:`.data.load_dataset`); root: folder the ``image`` paths are
    relative to; detect: callable path -> result (see :func:`.data.as_prediction`).  With jobs > 1,
    that many images are processed concurrently, so ``detect`` must then be thread-safe.  progress:
    as :class:`ProgressLine`'s ``enabled``.  Returns (predictions keyed by the relative ``image``
    path, summed per-call detect time in seconds).
    """
    images = [record["image"] for record in records]
    progress_line = ProgressLine(len(images), "detect", progress)
    seconds = [0.0] * len(images)

    def predict(index: int) -> Prediction:
        started = time.perf_counter()
        result = detect(os.path.join(root, images[index]))
        seconds[index] = time.perf_counter() - started
        progress_line.update()
        return as_prediction(result)

    try:
        if jobs > 1:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                results = list(pool.map(predict, range(len(images))))
        else:
            results = [predict(index) for index in range(len(images))]
    finally:
        progress_line.close()
    return dict(zip(images, results)), float(sum(seconds))
