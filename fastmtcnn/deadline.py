"""Deadlines for detections: checked between the cascade's steps so a late or cancelled request stops working.

`Deadline(seconds, cancel)` raises `DetectionCancelled` from `check()` once `seconds` (monotonic clock) have
passed since it was made, or once the `cancel` event is set. `NO_DEADLINE.check()` never raises.
"""
from __future__ import annotations

import threading
import time
from typing import Optional

from .errors import DetectionCancelled


class Deadline:
    """Stop point of one detection: `seconds` from now (None: no time limit) and/or a `cancel` event."""

    def __init__(self, seconds: Optional[float] = None, cancel: Optional[threading.Event] = None):
        self.seconds = seconds
        self.at = None if seconds is None else time.monotonic() + seconds
        self.cancel = cancel

    def check(self) -> None:
        """Raise DetectionCancelled if the deadline passed or the cancel event is set; otherwise return."""
        if self.cancel is not None and self.cancel.is_set():
            raise DetectionCancelled("detection cancelled (the service is stopping)")
        if self.at is not None and time.monotonic() > self.at:
            raise DetectionCancelled(f"detection did not finish within {self.seconds:g} s")


NO_DEADLINE = Deadline()
