"""Cheap per-frame change detection for `FaceTracker`: when does a tracking frame need a full pass now?

A frame is reduced to a thumbnail of 8x8-pixel cell grey means (`kernels.cell_means`: exact integer sums, so
the result does not depend on the OpenCV version; ~0.2 ms for 640x360 on one core). Two thumbnails are compared
after aligning them by the whole-cell shift that best explains them (`kernels.best_shift`, up to `MAX_SHIFT`
cells: the camera's pan), and a cell *changed* when it lies more than `threshold` grey levels (0-255) outside
the range of the 3x3 cells around its place in the other (`kernels.changed_cells`: motion under a cell mixes
neighbouring cells, so it stays inside that range):

1. **cut**: at least `cut_fraction` of all cells changed since the previous frame (each cell against the one
   cell at its place: a cut need not leave the range of a textured neighbourhood) -> full pass;
2. **new content**: since the *key frame* (the last frame that had a full pass), a blob of changed cells at least
   `min_face_size` pixels high and wide appeared outside the tracked faces (their boxes, and those of the key
   frame, enlarged by `MASK_MARGIN` of their side on each side) -> a pass over that region (`region`). Comparing with the key frame and not
   with the previous frame lets slow change add up: a face walking in, a zoom, compression noise that hides a
   face's entrance frame to frame. The check repeats on every frame until a full pass makes a new key frame, so
   a pass refused by the budget is taken as soon as the budget allows. After a region pass that found no new face
   (`region_result`), the cells that set it off, grown by `MUTE_GROW` cells, are *muted*: they set off no other
   region pass until the next full pass or a cut (a body walking, a turned head: the same change again);
3. **camera motion**: new content while the camera moved since the key frame, or over `MOTION_AREA` or more of
   the cells outside the faces (a zoom, a shaking camera, a busy scene) -> full pass.
The tracker spaces the passes for new content and motion (`FaceTracker(change_gap=...)`) and bounds them all
with `PassBudget`.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from . import kernels

#: Thumbnail cell side in pixels.
CELL = 8
#: Largest camera shift between two compared thumbnails, in cells (8 px each).
MAX_SHIFT = 3
#: Tracked boxes are masked out of the comparison with this fraction of their side added on each side (hair,
#: neck and the motion of one frame; measured on the clips: see README "Video streams").
MASK_MARGIN = 0.5
#: ... and this many box heights downwards: the body of a tracked person moves with it (measured on the clips).
MASK_BELOW = 3.0
#: After a region pass that found no new face, the changed cells that set it off, grown by this many cells on
#: each side, set off no region pass until the next full pass or a cut (measured: README "Video streams").
MUTE_GROW = 1
#: A blob is face-sized when a (min_face_size / CELL)-cell square window has at least this fraction changed.
BLOB_FILL = 0.5

#: New content over at least this fraction of the cells outside the faces is camera motion (a zoom, a pan
#: beyond MAX_SHIFT, a shaking camera) or a busy scene (measured on the clips: see README "Video streams").
MOTION_AREA = 0.2

CUT, NEW_CONTENT, MOTION = "cut", "new content", "camera motion"


def thumbnail(pixels: np.ndarray, channels: np.ndarray) -> np.ndarray:
    """Grey mean of each CELL x CELL cell: uint8 (H, W, C) image -> float32 (H // CELL, W // CELL), 0-255.

    `channels` (int32 (3,)) names the source channels averaged (as the cascade's channel map); the last rows
    and columns that do not fill a cell are left out."""
    pixels = np.ascontiguousarray(pixels)
    depth = pixels.shape[2] if pixels.ndim == 3 else 1
    return kernels.cell_means(pixels.reshape(pixels.shape[0], -1), depth, np.asarray(channels, np.int32), CELL)


def face_mask(shape, boxes: np.ndarray, margin: float = MASK_MARGIN, below: float = MASK_BELOW) -> np.ndarray:
    """bool (rows, cols) thumbnail mask, True outside every box: boxes float32 (n, 4) pixel edges, each grown by
    `margin` x its side on every side and by `below` x its height downwards (the body under a face)."""
    outside = np.ones(shape, bool)
    for x1, y1, x2, y2 in np.asarray(boxes, np.float64).reshape(-1, 4):
        grow_x, grow_y = margin * (x2 - x1), margin * (y2 - y1)
        left, top = max(int((x1 - grow_x) // CELL), 0), max(int((y1 - grow_y) // CELL), 0)
        right = int(np.ceil((x2 + grow_x) / CELL))
        bottom = int(np.ceil((y2 + max(grow_y, below * (y2 - y1))) / CELL))
        outside[top:max(bottom, top), left:max(right, left)] = False
    return outside


def changed_since(previous: np.ndarray, cells: np.ndarray, threshold: float, weight: np.ndarray, reach: int = 0):
    """(bool grid of the cells changed since `previous`, (dy, dx) the camera's shift in cells): the shift is
    found where `weight` is True, and only when some cell changed with the camera taken as still."""
    changed = kernels.changed_cells(previous, cells, 0, 0, np.float32(threshold), reach)
    if not changed.any():
        return changed, (0, 0)
    dy, dx = kernels.best_shift(previous, cells, weight, MAX_SHIFT)
    if dy == 0 and dx == 0:
        return changed, (0, 0)
    return kernels.changed_cells(previous, cells, dy, dx, np.float32(threshold), reach), (dy, dx)


def has_blob(changed: np.ndarray, side: int, fill: float = BLOB_FILL) -> bool:
    """Whether some side x side window of the bool grid has at least `fill` of its cells True."""
    if changed.shape[0] < side or changed.shape[1] < side:
        return False
    table = np.zeros((changed.shape[0] + 1, changed.shape[1] + 1), np.int32)
    table[1:, 1:] = changed.cumsum(0).cumsum(1)
    windows = table[side:, side:] - table[:-side, side:] - table[side:, :-side] + table[:-side, :-side]
    return bool(windows.max() >= fill * side * side)


def grow(cells: np.ndarray, reach: int = MUTE_GROW) -> np.ndarray:
    """bool (rows, cols): the True cells of the bool grid `cells` and every cell within `reach` cells of one
    (rows, columns and diagonals: a (2 reach + 1)-cell square around each)."""
    cells = np.asarray(cells)
    if cells.dtype != bool or cells.ndim != 2:
        raise TypeError(f"cells must be a 2-D bool grid, got {cells.dtype} {cells.shape}")
    if isinstance(reach, bool) or not isinstance(reach, (int, np.integer)) or reach < 0:
        raise ValueError(f"reach must be an int >= 0 (cells), got {reach!r}")
    rows, cols = cells.shape
    padded = np.zeros((rows + 2 * reach, cols + 2 * reach), bool)
    for dy in range(2 * reach + 1):
        for dx in range(2 * reach + 1):
            padded[dy:dy + rows, dx:dx + cols] |= cells
    return padded[reach:reach + rows, reach:reach + cols]


def cell_bounds(cells: np.ndarray) -> Optional[Tuple[float, float, float, float]]:
    """Pixel edges (x1, y1, x2, y2) of the bounding box of the True cells of a bool (rows, cols) grid of CELL-pixel
    cells; None when none is True."""
    rows, cols = np.nonzero(cells)
    if not len(rows):
        return None
    return tuple(float(v) * CELL for v in (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1))


def cell_spans(boxes: np.ndarray, shape: Tuple[int, int], below: float = 0.0) -> np.ndarray:
    """int64 (n, 4) (top, left, bottom, right), bottom/right exclusive: the CELL-pixel cells of a (rows, cols)
    grid under each box (float (n, 4) pixel edges) and under the `below` pixels beneath it, clipped to the grid
    (empty where bottom <= top or right <= left)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    rows, cols = shape
    top = np.clip(np.floor(boxes[:, 1] / CELL), 0, rows)
    left = np.clip(np.floor(boxes[:, 0] / CELL), 0, cols)
    bottom = np.clip(np.ceil((boxes[:, 3] + below) / CELL), 0, rows)
    right = np.clip(np.ceil(boxes[:, 2] / CELL), 0, cols)
    return np.stack([top, left, bottom, right], axis=1).astype(np.int64)


class SceneChange:
    """Compares each frame's thumbnail with the previous one (cuts) and with the key frame's (new content).

    Args:
        threshold: grey levels (0-255) a cell's mean must move by (after the camera's shift) to count as changed.
        min_face_size: pixels; smaller blobs of change are ignored.
        cut_fraction: this fraction of all cells changed = a cut.
        mute: cells the changed cells of a region pass that found no new face are grown by before they are muted
            (`region_result`); None: nothing is muted.
    """

    def __init__(self, threshold: float, min_face_size: float, cut_fraction: float = 0.5,
                 mute: Optional[int] = MUTE_GROW):
        self.threshold, self.cut_fraction, self.mute = float(threshold), float(cut_fraction), mute
        self.min_cells = max(1, int(np.ceil(min_face_size / CELL)))
        self.reset()

    def reset(self) -> None:
        #: After NEW_CONTENT: (x1, y1, x2, y2) pixel edges around every changed cell outside the faces.
        self.region: Optional[Tuple[float, float, float, float]] = None
        #: ... and the changed cells outside the faces: bool (rows, cols), True where changed.
        self.changed: Optional[np.ndarray] = None
        #: Cells that set off no region pass (`region_result`) until the next full pass or cut: bool (rows, cols).
        self.muted: Optional[np.ndarray] = None
        self.frame_area = 0.0  # pixels the thumbnail covers
        self._previous: Optional[np.ndarray] = None
        self._before: Optional[np.ndarray] = None  # the thumbnail before `_previous`
        self._key: Optional[np.ndarray] = None
        self._key_boxes = np.zeros((0, 4), np.float32)

    def key_frame(self, boxes: np.ndarray, full: bool = True) -> None:
        """The last checked frame had a pass (`full`, or over a region) that found `boxes` (float32 (n, 4)): new
        content is measured from it on; a full pass also unmutes every cell."""
        self._key, self._key_boxes = self._previous, np.asarray(boxes, np.float32).reshape(-1, 4)
        if full:
            self.muted = None

    def region_result(self, new_face: bool) -> None:
        """The region pass for the last NEW_CONTENT found a new face or not; if not, its changed cells grown by
        `mute` cells are muted (they set off no region pass) until the next full pass or cut."""
        if new_face or self.changed is None or self.mute is None:
            return
        grown = grow(self.changed, self.mute)
        self.muted = grown if self.muted is None or self.muted.shape != grown.shape else self.muted | grown

    def check(self, cells: np.ndarray, tracked_boxes: np.ndarray, since_key: bool = True) -> Optional[str]:
        """CUT, NEW_CONTENT, MOTION or None for this frame's `thumbnail`; `tracked_boxes` float32 (n, 4) pixel edges of
        the faces being tracked (their last and predicted boxes). Remembers `cells` for the next frame.
        `since_key` False: only the cut test (the tracker would not act on new content or motion now)."""
        previous, self._previous = self._previous, cells
        self._before = previous
        if previous is None or previous.shape != cells.shape or min(cells.shape) < 2:
            self._key = cells  # until the tracker names a key frame: the first one
            return None
        outside = face_mask(cells.shape, np.concatenate([tracked_boxes.reshape(-1, 4), self._key_boxes]))
        if self._is_cut(previous, cells, outside):
            self.muted = None
            return CUT
        if not since_key or self._key is None or self._key.shape != cells.shape:
            return None
        changed, shift = changed_since(self._key, cells, self.threshold, outside, reach=1)
        changed &= outside
        if not has_blob(changed, self.min_cells):
            return None
        if shift != (0, 0) or changed.sum() >= MOTION_AREA * outside.sum():
            return MOTION
        if (self.muted is not None and self.muted.shape == changed.shape
                and not has_blob(changed & ~self.muted, self.min_cells)):
            return None  # the blobs are the same false alarms again
        self.changed = changed
        self.frame_area = float(cells.size * CELL * CELL)
        self.region = cell_bounds(changed)
        return NEW_CONTENT

    def changed_since_key(self) -> Optional[np.ndarray]:
        """bool (rows, cols): the cells of the last checked frame changed since the key frame (after the camera's
        shift), faces included; None before there is a key frame of this size."""
        if self._key is None or self._previous is None or self._key.shape != self._previous.shape:
            return None
        weight = np.ones(self._previous.shape, bool)
        return changed_since(self._key, self._previous, self.threshold, weight, reach=1)[0]

    def unchanged(self, boxes: np.ndarray, levels: float) -> np.ndarray:
        """bool (n,): whether every thumbnail cell under each box (float32 (n, 4) pixel edges) moved by at most
        `levels` grey levels between the last two checked frames (False before there are two)."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        if self._before is None or self._before.shape != self._previous.shape:
            return np.zeros(len(boxes), bool)
        moved = np.abs(self._previous - self._before)
        still = np.zeros(len(boxes), bool)
        for k, (top, left, bottom, right) in enumerate(cell_spans(boxes, moved.shape)):
            still[k] = bottom > top and right > left and moved[top:bottom, left:right].max() <= levels
        return still

    def _is_cut(self, previous: np.ndarray, cells: np.ndarray, outside: np.ndarray) -> bool:
        """`cut_fraction` of the cells changed since `previous`, with the camera taken as still and after its
        shift (the shift is looked for only when the still camera sees a cut: a pan must not pass for one)."""
        still = kernels.changed_cells(previous, cells, 0, 0, np.float32(self.threshold), 0)
        if still.mean() < self.cut_fraction:
            return False
        return changed_since(previous, cells, self.threshold, outside, reach=0)[0].mean() >= self.cut_fraction


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
