"""The query string of /v1/detect and /v1/stream: `min_face_size` (pixels) and `thresholds=a,b,c`."""
from __future__ import annotations

from typing import Mapping, Optional, Tuple

from .responses import ApiError

#: The query parameters /v1/detect and /v1/stream take; any other one gets a 400 naming these.
KNOWN_PARAMETERS = ("min_face_size", "thresholds")


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
    """(min_face_size, thresholds) of a query, None where absent; ApiError 400 for an unknown parameter or a
    value that is no number. Ranges are checked by `ServerConfig.settings` (422)."""
    unknown = sorted(set(query) - set(KNOWN_PARAMETERS))
    if unknown:
        names = ", ".join(repr(name[:40]) for name in unknown[:5])
        raise ApiError(400, "unknown_parameter", f"unknown query parameter {names}: the known ones are "
                                                 f"{' and '.join(KNOWN_PARAMETERS)} (e.g. ?min_face_size=40"
                                                 "&thresholds=0.6,0.7,0.7)")
    return _parse_min_face_size(query.get("min_face_size")), _parse_thresholds(query.get("thresholds"))
