"""The query string of /v1/detect and /v1/stream: `min_face_size` (pixels) and `thresholds=a,b,c`."""
from __future__ import annotations

from typing import Mapping, Optional, Tuple

from .responses import ApiError


def _parse_min_face_size(value: Optional[str]) -> Optional[float]:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise ApiError(400, "bad_query", f"min_face_size must be a number of pixels, got {value[:40]!r}") from None


def _parse_thresholds(value: Optional[str]) -> Optional[Tuple[float, ...]]:
    if value is None:
        return None
    try:
        return tuple(float(part) for part in value.split(","))
    except ValueError:
        raise ApiError(400, "bad_query", f"thresholds must be three comma-separated numbers like 0.6,0.7,0.7, "
                                         f"got {value[:60]!r}") from None


def parse_query(query: Mapping[str, str]) -> Tuple[Optional[float], Optional[Tuple[float, ...]]]:
    """(min_face_size, thresholds) of a query, None where absent; ApiError 400 for a value that is no number.
    Ranges are checked by `ServerConfig.settings` (422)."""
    return _parse_min_face_size(query.get("min_face_size")), _parse_thresholds(query.get("thresholds"))
