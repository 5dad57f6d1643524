"""Pass scheduling for the stream tracker: on which frame the full cascade (or the cascade over a region) runs.

`FaceTracker` (fastmtcnn.video) asks a `PassSchedule` once per frame. A pass runs on frame 0 and when
`redetect_every` frames went by without a full pass (*scheduled*), on request (`request`), and for what the change
check (`fastmtcnn.scene_change`) sees: a cut at once, new content and camera motion `change_gap` frames after
the last pass at the earliest (motion also `motion_gap` after the last full pass). New content over at most
`REGION_AREA` of the frame gets a pass over its region only (its cells then muted if it finds no new face:
`region_result`); a lost face gets a pass over what changed since the last pass (`lost_face_region`). The
other passes asked for by the change check, and all passes for lost faces, share a `PassBudget`.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .scene_change import CUT, MOTION, NEW_CONTENT, PassBudget, SceneChange, cell_bounds, thumbnail

#: New content over at most this fraction of the frame gets a pass over its region only; larger, a full pass.
REGION_AREA = 0.4
#: Why a full pass ran (`TrackedFaces.pass_reason`); CUT and NEW_CONTENT come from `fastmtcnn.scene_change`.
SCHEDULED, REQUESTED, LOST_FACE = "scheduled", "requested", "lost face"
PASS_REASONS = (SCHEDULED, REQUESTED, CUT, NEW_CONTENT, MOTION, LOST_FACE)

Region = Tuple[float, float, float, float]


class PassSchedule:
    """When passes run, for one stream (the `FaceTracker` arguments of the same names).

    Args:
        redetect_every: frames from a full pass to the next scheduled one.
        change_gap: frames from a pass to one for new content or camera motion.
        motion_gap: frames from a full pass to one for camera motion.
        budget: the full passes asked for by the change check or a lost face.
        scene: the change check, or None (no passes for cuts, new content or motion).
    """

    def __init__(self, redetect_every: int, change_gap: int, motion_gap: int, budget: PassBudget,
                 scene: Optional[SceneChange]):
        self.redetect_every, self.change_gap, self.motion_gap = redetect_every, change_gap, motion_gap
        self.budget, self.scene = budget, scene
        self.reset()

    def reset(self) -> None:
        self._last_pass = self._last_full = 0
        self._requested = True
        self.budget.reset()
        if self.scene is not None:
            self.scene.reset()

    def request(self) -> None:
        """A full pass on the next frame."""
        self._requested = True

    def plan(self, index: int, pixels: np.ndarray, channels: np.ndarray,
             tracked_boxes: np.ndarray) -> Tuple[Optional[str], Optional[Region]]:
        """(why frame `index` gets a pass or None, the region of a pass over new content only or None);
        `tracked_boxes` float32 (n, 4) pixel edges of the faces followed (their predicted and last boxes)."""
        self.budget.tick()
        reason = self._reason(index, self._change(index, pixels, channels, tracked_boxes))
        return reason, self._small_region() if reason == NEW_CONTENT else None

    def unchanged(self, boxes: np.ndarray, levels: float) -> np.ndarray:
        """bool (n,): whether the image under each box (float32 (n, 4) pixel edges) moved by at most `levels` grey
        levels since the previous frame (`SceneChange.unchanged`; all False without the change check)."""
        if self.scene is None:
            return np.zeros(len(boxes), bool)
        return self.scene.unchanged(boxes, levels)

    def changed_cells(self) -> np.ndarray:
        """bool (rows, cols) of 8x8-pixel cells (`scene_change.CELL`): where the change check saw the new content of
        the last region (`plan`)."""
        return self.scene.changed

    def region_result(self, new_face: bool) -> None:
        """The pass over the last region (`plan`) found a new face or not (`SceneChange.region_result`: if not,
        its changed cells set off no region pass until the next full pass or cut)."""
        if self.scene is not None:
            self.scene.region_result(new_face)

    def lost_face(self) -> bool:
        """Whether a face lost on this frame may have a pass now (within the budget)."""
        return self.budget.spend()

    def lost_face_region(self, search_boxes: np.ndarray, height: int, width: int) -> Optional[Region]:
        """Where the pass for a lost face looks (pixel edges x1, y1, x2, y2): around every cell changed since the
        last pass (`SceneChange.changed_since_key`, faces included: where the face went, or where a new one came)
        and the `search_boxes` (float (n, 4) pixel edges around the lost faces), clipped to the height x width
        frame (the rest is as the last pass saw it). None, i.e. a full pass, without the change check."""
        changed = None if self.scene is None else self.scene.changed_since_key()
        if changed is None:
            return None
        changed_box = cell_bounds(changed)
        boxes = np.asarray(search_boxes, np.float64).reshape(-1, 4)
        if changed_box is not None:
            boxes = np.concatenate([boxes, [changed_box]])
        if not len(boxes):
            return None
        x1, y1 = max(boxes[:, 0].min(), 0.0), max(boxes[:, 1].min(), 0.0)
        x2, y2 = min(boxes[:, 2].max(), float(width)), min(boxes[:, 3].max(), float(height))
        if x2 <= x1 or y2 <= y1:
            return None
        return x1, y1, x2, y2

    def done(self, index: int, reason: Optional[str], full: bool, boxes: np.ndarray) -> None:
        """Frame `index` is over; `reason` None if it had no pass, else `full` (or over a region), finding `boxes`
        (float32 (n, 4) pixel edges)."""
        self._requested = False
        if reason:
            self._last_pass = index
            self._last_full = index if full else self._last_full
            if self.scene is not None:
                self.scene.key_frame(boxes, full)

    def _reason(self, index: int, change: Optional[str]) -> Optional[str]:
        """Why the full cascade runs on this frame (SCHEDULED, REQUESTED, a `scene_change` reason), or None."""
        if index - self._last_full >= self.redetect_every or index == 0:
            return SCHEDULED
        if self._requested:
            return REQUESTED
        if change != CUT and index - self._last_pass < self.change_gap:
            return None
        if change == NEW_CONTENT and self._small_region() is not None:
            return change  # a pass over the region only: cheap, outside the budget
        if change == MOTION and index - self._last_full < self.motion_gap:
            return None
        if change is not None and self.budget.spend():
            return change
        return None

    def _change(self, index: int, pixels: np.ndarray, channels: np.ndarray, tracked_boxes: np.ndarray) -> Optional[str]:
        """What the change check sees on this frame (a cut, new content, motion) or None; within `change_gap`
        frames of the last pass only a cut is looked for (nothing else would be acted on)."""
        if self.scene is None:
            return None
        return self.scene.check(thumbnail(pixels, channels), tracked_boxes,
                                since_key=index - self._last_pass >= self.change_gap)

    def _small_region(self) -> Optional[Region]:
        """The new content's region if it covers at most REGION_AREA of the frame (else None: a full pass)."""
        x1, y1, x2, y2 = self.scene.region
        return self.scene.region if (x2 - x1) * (y2 - y1) <= REGION_AREA * self.scene.frame_area else None
