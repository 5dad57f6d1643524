"""Smoothing of tracked boxes and landmarks over frames (`FaceTracker(smoothing=...)`; off by default)."""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np


class OneEuroFilter:
    """One-Euro low-pass filter (Casiez et al., CHI 2012) over a float vector: little lag when values move
    fast, strong smoothing when they stay. `min_cutoff` Hz, `beta` (speed coefficient), `d_cutoff` Hz."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0):
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("OneEuroFilter needs min_cutoff > 0, d_cutoff > 0 and beta >= 0 "
                             f"(e.g. 1.0, 0.05, 1.0), got {min_cutoff}, {beta}, {d_cutoff}")
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self._value: Optional[np.ndarray] = None
        self._speed: Optional[np.ndarray] = None

    @staticmethod
    def _alpha(cutoff: np.ndarray, dt: float) -> np.ndarray:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, value: np.ndarray, dt: float) -> np.ndarray:
        """Filtered `value` (any shape) given `dt` seconds since the previous call."""
        value = np.asarray(value, np.float64)
        if self._value is None or dt <= 0:
            self._value, self._speed = value, np.zeros_like(value)
            return value
        speed = (value - self._value) / dt
        self._speed = self._speed + self._alpha(np.asarray(self.d_cutoff), dt) * (speed - self._speed)
        cutoff = self.min_cutoff + self.beta * np.abs(self._speed)
        self._value = self._value + self._alpha(cutoff, dt) * (value - self._value)
        return self._value


def smoother_factory(smoothing: Any) -> Optional[Callable[[], Any]]:
    """The per-track filter factory for `FaceTracker(smoothing=...)`: None/False -> None, True -> OneEuroFilter,
    a callable -> itself."""
    if smoothing is None or smoothing is False:
        return None
    if smoothing is True:
        return OneEuroFilter
    if callable(smoothing):
        return smoothing
    raise TypeError(f"smoothing must be None, True or a callable returning a filter, got {type(smoothing).__name__}")
