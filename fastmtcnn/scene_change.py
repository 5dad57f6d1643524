"""Cheap per-frame change detection for `FaceTracker`: when does a tracking frame need a full pass now?

A frame is reduced to a thumbnail of 8x8-pixel cell means (three exact 2x `cv2.INTER_AREA` halvings: 0.2-0.5
ms for 640x480 on one core) and compared with the previous frame's thumbnail. A cell *changed* when its grey
mean moved by more than `threshold` levels (0-255). Then:

1. **camera motion**: fewer than `cut_fraction` of all cells changed, but at least `MOTION_AREA` of the cells
   outside the tracked faces moved by half the threshold -> no pass: a pan, a zoom or a busy scene; new faces
   wait for the scheduled pass (or the loss of a tracked face);
2. **nothing to act on**: no cut-sized change and no blob of changed cells outside the tracked faces (their
   boxes enlarged by `MASK_MARGIN` of their side on each side) at least `min_face_size` pixels high and wide
   -> no pass;
3. otherwise the camera's shift is estimated by phase correlation (`cv2.phaseCorrelate` on the thumbnails,
   the tracked faces filled with the mean grey so that moving faces do not pull it) and the previous thumbnail
   is moved by it, so that a slow drift or a fast pan is not taken for change; on what still changed:
   **cut** (at least `cut_fraction` of all cells) -> full pass; **new content** (a face-sized blob outside the
   tracked faces) -> full pass; else no pass.

`PassBudget` bounds the extra full passes (a token bucket), whatever triggers them.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

#: Thumbnail cell side in pixels (2 ** HALVINGS).
HALVINGS = 3
CELL = 2 ** HALVINGS
#: Tracked boxes are masked out of the comparison with this fraction of their side added on each side (hair,
#: neck and the motion of one frame; measured on the made clips: see README "Video streams").
MASK_MARGIN = 0.5
#: A frame where at least this fraction of the cells outside the tracked faces changed by threshold / 2 (and
#: less than a cut) is camera motion: a face entering a still scene changes a small part of it (1-2% of the
#: cells in leave_enter; a pan changes 20-40% in pan_zoom).
MOTION_AREA = 0.1

CUT, NEW_CONTENT = "cut", "new content"


def thumbnail(pixels: np.ndarray, channels: np.ndarray) -> np.ndarray:
    """Grey mean of each CELL x CELL cell: uint8 (H, W, C) image -> float32 (H // CELL, W // CELL), 0-255.

    `channels` (int32 (3,)) names the source channels averaged (as the cascade's channel map); the last rows
    and columns that do not fill a cell are left out."""
    height, width = (pixels.shape[0] // CELL) * CELL, (pixels.shape[1] // CELL) * CELL
    if height == 0 or width == 0:
        return np.zeros((0, 0), np.float32)
    small = pixels[:height, :width]
    for _ in range(HALVINGS):
        small = cv2.resize(small, (small.shape[1] // 2, small.shape[0] // 2), interpolation=cv2.INTER_AREA)
    small = small.reshape(height // CELL, width // CELL, -1)
    return small[:, :, channels].astype(np.float32).mean(axis=2)


def face_mask(shape, boxes: np.ndarray, margin: float = MASK_MARGIN) -> np.ndarray:
    """bool (rows, cols) thumbnail mask, True outside every box: boxes float32 (n, 4) pixel edges, each grown by
    `margin` x its side on every side."""
    outside = np.ones(shape, bool)
    for x1, y1, x2, y2 in np.asarray(boxes, np.float64).reshape(-1, 4):
        grow_x, grow_y = margin * (x2 - x1), margin * (y2 - y1)
        left, top = max(int((x1 - grow_x) // CELL), 0), max(int((y1 - grow_y) // CELL), 0)
        right, bottom = int(np.ceil((x2 + grow_x) / CELL)), int(np.ceil((y2 + grow_y) / CELL))
        outside[top:max(bottom, top), left:max(right, left)] = False
    return outside


class SceneChange:
    """Compares each frame's thumbnail with the previous one and says whether a full pass should run now.

    Args:
        threshold: grey levels (0-255) a cell's mean must move by (after the camera's shift) to count as changed.
        min_face_size: pixels; smaller blobs of change are ignored.
        cut_fraction: this fraction of all cells changed = a cut.
    """

    def __init__(self, threshold: float, min_face_size: float, cut_fraction: float = 0.5):
        self.threshold, self.cut_fraction = float(threshold), float(cut_fraction)
        self.min_cells = max(1, int(np.ceil(min_face_size / CELL)))
        self._previous: Optional[np.ndarray] = None
        self._window: Optional[np.ndarray] = None

    def reset(self) -> None:
        self._previous = None

    def check(self, cells: np.ndarray, tracked_boxes: np.ndarray) -> Optional[str]:
        """CUT, NEW_CONTENT or None for this frame's `thumbnail`; `tracked_boxes` float32 (n, 4) pixel edges of
        the faces being tracked (their last and predicted boxes). Remembers `cells` for the next frame."""
        previous, self._previous = self._previous, cells
        if previous is None or previous.shape != cells.shape or min(cells.shape) < 2:
            return None
        raw = np.abs(cells - previous)
        changed = raw > self.threshold
        if not changed.any():
            return None
        visible = face_mask(cells.shape, tracked_boxes)
        cut_like = changed.mean() >= self.cut_fraction
        if not cut_like:
            if np.mean(raw[visible] > self.threshold / 2) >= MOTION_AREA:
                return None  # the camera moves (or much of the scene does): new faces wait for the schedule
            if not self._has_face_sized_blob(changed & visible):
                return None
        shift = self._camera_shift(previous, cells, visible)
        moved = cv2.warpAffine(previous, np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]),
                               (cells.shape[1], cells.shape[0]), borderMode=cv2.BORDER_REPLICATE)
        changed = np.abs(cells - moved) > self.threshold
        if changed.mean() >= self.cut_fraction:
            return CUT
        if cut_like:
            return None  # a fast pan: the shift explains it
        return NEW_CONTENT if self._has_face_sized_blob(changed & visible) else None

    def _camera_shift(self, previous: np.ndarray, cells: np.ndarray, visible: np.ndarray):
        """(dx, dy) in cells that moves `previous` onto `cells`, faces (visible False) left out."""
        if self._window is None or self._window.shape != cells.shape:
            self._window = cv2.createHanningWindow((cells.shape[1], cells.shape[0]), cv2.CV_32F)
        if not visible.any():
            return 0.0, 0.0
        fill = np.float32(cells[visible].mean())
        first = np.where(visible, previous, fill).astype(np.float32)  # copies: cv2 may write into its inputs
        second = np.where(visible, cells, fill).astype(np.float32)
        (dx, dy), _ = cv2.phaseCorrelate(first, second, self._window)
        return float(dx), float(dy)

    def _has_face_sized_blob(self, outside: np.ndarray) -> bool:
        if not outside.any():
            return False
        _, _, stats, _ = cv2.connectedComponentsWithStats(outside.astype(np.uint8), connectivity=8)
        sizes = stats[1:, [cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT]]
        return bool(np.any(np.all(sizes >= self.min_cells, axis=1)))


class PassBudget:
    """Token bucket for the extra full passes: up to `burst` in a row, then one per `refill_frames` frames."""

    def __init__(self, burst: int, refill_frames: int):
        self.burst, self.refill_frames = burst, refill_frames
        self.reset()

    def reset(self) -> None:
        self._tokens = float(self.burst)

    def tick(self) -> None:
        """One frame went by."""
        self._tokens = min(float(self.burst), self._tokens + 1.0 / self.refill_frames)

    def spend(self) -> bool:
        """Take one pass from the budget if there is one."""
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
