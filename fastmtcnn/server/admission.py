"""Admission control: how many detection requests are held (running or queued) at once."""
from __future__ import annotations

import threading
from typing import Tuple


class Slots:
    """Admission control: at most `capacity` detection requests held at once (thread-safe)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._lock = threading.Lock()
        self.held = 0
        self.queued = 0
        self.running = 0

    def try_acquire(self) -> bool:
        with self._lock:
            if self.held >= self.capacity:
                return False
            self.held += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.held -= 1

    def job_queued(self) -> None:
        with self._lock:
            self.queued += 1

    def job_started(self) -> None:
        with self._lock:
            self.queued -= 1
            self.running += 1

    def job_finished(self, started: bool) -> None:
        with self._lock:
            if started:
                self.running -= 1
            else:
                self.queued -= 1

    def snapshot(self) -> Tuple[int, int, int]:
        with self._lock:
            return self.held, self.queued, self.running
