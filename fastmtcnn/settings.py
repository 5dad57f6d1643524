"""The detector's settings: one frozen object that owns every accepted range; and the one integer-count check.

`CascadeSettings` is built by `Detector`, the CLI, the batch workers and the server alike; it checks itself on
construction, so a bad value fails in one place with one message (a `SettingsError`, which is a `ValueError`).
`check_count` / `is_count` check the whole-number settings elsewhere (`FaceTracker`'s frame counts,
`ServerConfig`'s limits, thread counts) the same way, with the same error type.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple

from .errors import SettingsError

#: Largest image accepted by default (pixels): 50 megapixels, e.g. 8660 x 5773.
DEFAULT_MAX_PIXELS = 50_000_000
#: The authors' face-score thresholds of P-Net, R-Net and O-Net.
DEFAULT_THRESHOLDS = (0.6, 0.7, 0.7)
#: NMS overlaps: P-Net within a level, P-Net across levels, R-Net (union), O-Net (over the smaller box).
DEFAULT_NMS_THRESHOLDS = (0.5, 0.7, 0.7, 0.7)
#: min_face_size range in pixels: P-Net's window is 12 px, so below 4 the first level upscales the image 3x+.
MIN_FACE_SIZE_RANGE = (4.0, 100_000.0)
#: scale_factor range: the ratio between pyramid levels.
SCALE_FACTOR_RANGE = (0.1, 0.95)


def _number(name: str, value: Any, low: float, high: float, example: str) -> float:
    """`value` as a finite float in [low, high], or a SettingsError naming the setting and the range."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, (bool, str, bytes)) or not (math.isfinite(number) and low <= number <= high):
        raise SettingsError(f"{name} must be a number in [{low:g}, {high:g}] (e.g. {example}), got {value!r}")
    return number


def is_count(value: Any, low: int = 0, high: Optional[int] = None) -> bool:
    """Whether `value` is a Python int (not a bool) in [low, high] (no upper bound when `high` is None)."""
    return (isinstance(value, int) and not isinstance(value, bool) and value >= low
            and (high is None or value <= high))


def check_count(name: str, value: Any, low: int = 1, high: Optional[int] = None, what: str = "") -> int:
    """`value` if `is_count(value, low, high)`, else a SettingsError naming the setting, the accepted range and
    `what` it counts (shown in brackets, e.g. "frames, e.g. 5")."""
    if not is_count(value, low, high):
        accepted = f">= {low}" if high is None else f"in [{low}, {high}]"
        detail = f" ({what})" if what else ""
        raise SettingsError(f"{name} must be an int {accepted}{detail}, got {value!r}")
    return value


def _numbers(name: str, values: Any, count: int, example: Sequence[float]) -> Tuple[float, ...]:
    """`values` as `count` floats in [0, 1], or a SettingsError that shows the expected form."""
    shown = ", ".join(f"{v:g}" for v in example)
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) != count:
        raise SettingsError(f"{name} must be {count} numbers in [0, 1] like ({shown}), got {values!r}")
    return tuple(_number(f"{name}[{k}]", v, 0.0, 1.0, f"{example[k]:g}") for k, v in enumerate(values))


@dataclass(frozen=True)
class CascadeSettings:
    """Thresholds, NMS overlaps and limits of the cascade (defaults: the authors' code).

    min_face_size: smallest face side in pixels (sets the first pyramid scale, 12 / min_face_size).
    scale_factor: ratio between pyramid levels.
    thresholds: face-score thresholds of P-Net, R-Net, O-Net, each in [0, 1].
    nms_*: overlaps in [0, 1]; O-Net's is over the smaller box ("min"), the others over the union.
    max_batch: R-Net/O-Net forwards take at most this many crops at once (bounds memory).
    max_image_pixels: larger images, and images whose first pyramid level would be larger, are refused.
    """

    min_face_size: float = 20.0
    scale_factor: float = 0.709
    thresholds: Tuple[float, float, float] = DEFAULT_THRESHOLDS
    nms_pnet_level: float = DEFAULT_NMS_THRESHOLDS[0]
    nms_pnet_all: float = DEFAULT_NMS_THRESHOLDS[1]
    nms_rnet: float = DEFAULT_NMS_THRESHOLDS[2]
    nms_onet: float = DEFAULT_NMS_THRESHOLDS[3]
    max_batch: int = 256
    max_image_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        checked = {
            "min_face_size": _number("min_face_size", self.min_face_size, *MIN_FACE_SIZE_RANGE, "20"),
            "scale_factor": _number("scale_factor", self.scale_factor, *SCALE_FACTOR_RANGE, "0.709"),
            "thresholds": _numbers("thresholds", self.thresholds, 3, DEFAULT_THRESHOLDS),
            "max_batch": int(_number("max_batch", self.max_batch, 1, 4096, "256")),
            "max_image_pixels": int(_number("max_image_pixels", self.max_image_pixels, 1, 1e12, "50000000")),
        }
        for name, default in zip(("nms_pnet_level", "nms_pnet_all", "nms_rnet", "nms_onet"), DEFAULT_NMS_THRESHOLDS):
            checked[name] = _number(name, getattr(self, name), 0.0, 1.0, f"{default:g}")
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @classmethod
    def create(cls, min_face_size: float = 20.0, thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
               scale_factor: float = 0.709, nms_thresholds: Sequence[float] = DEFAULT_NMS_THRESHOLDS,
               max_image_pixels: int = DEFAULT_MAX_PIXELS) -> "CascadeSettings":
        """Settings from the public keyword form (`nms_thresholds` as one sequence of four overlaps)."""
        level, across, rnet, onet = _numbers("nms_thresholds", nms_thresholds, 4, DEFAULT_NMS_THRESHOLDS)
        return cls(min_face_size=min_face_size, scale_factor=scale_factor, thresholds=thresholds,  # type: ignore[arg-type]
                   nms_pnet_level=level, nms_pnet_all=across, nms_rnet=rnet, nms_onet=onet,
                   max_image_pixels=max_image_pixels)

    def replace(self, **changes: Any) -> "CascadeSettings":
        """A copy with some fields changed (checked like a new object)."""
        return dataclasses.replace(self, **changes)

    def check_pyramid_size(self, height: int, width: int) -> None:
        """The first pyramid level is the image scaled by 12 / min_face_size: bound it like the image."""
        from .errors import ImageTooLarge

        level_pixels = height * width * (12.0 / self.min_face_size) ** 2
        if level_pixels > self.max_image_pixels:
            raise ImageTooLarge(f"a {width}x{height} image at min_face_size={self.min_face_size:g} needs a "
                                f"{level_pixels:.0f}-pixel pyramid level, over max_image_pixels="
                                f"{self.max_image_pixels}: raise min_face_size or downscale the image")
