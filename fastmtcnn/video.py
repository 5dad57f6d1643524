"""Faces in video streams: track them between frames so most frames skip P-Net.

    >>> from fastmtcnn import Detector
    >>> from fastmtcnn.video import FaceTracker, read_frames
    >>> tracker = FaceTracker(Detector(min_face_size=20))
    >>> for frame in read_frames("call.mp4"):              # a file, a camera index, an RTSP URL, or frames
    ...     faces = tracker.update(frame.image, timestamp=frame.time)
    ...     faces.ids, faces.boxes, faces.landmarks          # int64 (N,), float32 (N, 4), (N, 5, 2)

The full cascade runs on frame 0, then whenever `redetect_every` frames went by without one (and on
`redetect()`). On the frames between, each tracked face's box is moved by its velocity (`association.VELOCITY_GAIN`),
enlarged by `margin` and squared, and only R-Net and O-Net run on it (`Cascade.refine` / `Cascade.output`; a
strong face of `SKIP_RNET_SIDE` px or more: O-Net alone, `skip_rnet`), at the lower `track_thresholds`
(hysteresis); a face they lose is searched for with P-Net around its predicted box
(`Cascade.propose_in_regions`), and if still not found it coasts on its predicted box for `coast` frames
(`TrackedFaces.predicted`). A lost face, a cut, new content or camera motion (`fastmtcnn.scene_change`) gets a
pass on the frame itself (new content over a small region, or a lost face: the cascade with P-Net only on the
part of each pyramid level over that region, or over what changed since the last pass, `Cascade.propose_in_areas`;
camera motion: P-Net on the pyramid levels of faces of at least `motion_smallest` of the tracked ones' size);
`change_gap`, `motion_gap` and `pass_budget` bound them. A pass's last step runs at the tracking O-Net
threshold: its faces over the detector's threshold are the detector's, those between are *candidates*, followed
like faces but not output until O-Net scores one at the detector's threshold (a head turning to the camera). Ids are carried by
greedy IoU matching with the tracks' predicted boxes (`match_by_iou`).

This module finds the faces; which track each continues is `fastmtcnn.association`, on which frames the passes
run is `fastmtcnn.pass_schedule`.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from . import kernels
from .association import NOTHING, Found, Tracks, match_by_iou, one_track_per_face
from .detector import Detector, Face, Faces
from .errors import FastMTCNNError, SettingsError
from .image_input import ImageLike, load_image
from .nets import channel_map
from .pass_schedule import LOST_FACE, PASS_REASONS, REQUESTED, SCHEDULED, PassSchedule
from .scene_change import MOTION, MUTE_GROW, NEW_CONTENT, PassBudget, SceneChange, cell_spans
from .settings import check_count, is_count
from .smoothing import OneEuroFilter, smoother_factory

#: Full cascade every this many frames (measured: see README "Video streams").
DEFAULT_REDETECT_EVERY = 25
#: Box enlargement on each side before R-Net, as a fraction of the box side (measured: README "Video streams").
DEFAULT_MARGIN = 0.1
#: Smallest IoU for a face to keep the id of a face of an earlier frame.
DEFAULT_MIN_IOU = 0.3
#: Grey levels an 8x8 cell's mean must move by between frames to count as changed (measured: README).
DEFAULT_SCENE_CHANGE = 20.0
#: Frames from a full pass to the next one for new content or camera motion (measured: README "Video streams").
DEFAULT_CHANGE_GAP = 3
#: Frames from a full pass to the next one for camera motion (measured: README "Video streams").
DEFAULT_MOTION_GAP = 3
#: Extra full passes (scene change, lost face): this many in a row, then one per this many frames (measured).
DEFAULT_PASS_BUDGET = (8, 10)
#: (R-Net, O-Net) scores a tracked face needs to stay tracked (a new face needs the detector's; measured).
DEFAULT_TRACK_THRESHOLDS = (0.5, 0.5)
#: After a region pass that finds no new face, its changed cells grown by this many 8x8 cells set off no region
#: pass until the next full pass or cut (`scene_change.SceneChange.region_result`; measured: README "Video
#: streams"). None: never muted.
DEFAULT_MUTE: Optional[int] = MUTE_GROW
#: P-Net search region around a lost face, in box sides on each side (measured).
DEFAULT_SEARCH = 1.0
#: Frames a face not found is output on its predicted box before it is dropped (measured).
DEFAULT_COAST = 3
#: A face O-Net scored at the detector's threshold on the last frame whose image (thumbnail cells under its box)
#: moved by at most this many grey levels since is *held*: its box, score and landmarks are kept without R-Net
#: and O-Net, on every other frame at most (measured: README "Video streams"; on webcam_talking and
#: head_pose_two_people the largest cell move under a face from one frame to the next is <= 2 levels on 28-33% of
#: the face-frames, <= 4 on 59-61%). None: never.
DEFAULT_HOLD: Optional[float] = 4.0
#: O-Net score on its last frame from which a tracked face skips R-Net (measured: README "Video streams").
DEFAULT_SKIP_RNET: Optional[float] = 0.7
#: A pass over new content's region decides where P-Net runs by tiles of this side, in pyramid level pixels
#: (`region_tiles`): at each scale, on the bounding box of the tiles it keeps, one input (`region_areas`).
REGION_TILE = 48
#: ... and also covers this many region widths above the region: a head turning above the body whose motion the
#: change check saw (measured on chaplin_street: README "Video streams"); a tile runs only when changed cells lie
#: under it or this many region widths below it (`tiles_near_change`).
REGION_ABOVE = 1.0
#: The search for a lost face runs O-Net on at most this many of R-Net's boxes per lost face, the best-scoring
#: (measured on chaplin_street: README "Video streams").
SEARCH_KEEP = 3
#: Tracked faces at least this many pixels wide and high may skip R-Net (`FaceTracker(skip_rnet=...)`; smaller ones
#: drift without R-Net's re-centring, measured on chaplin_street's 20-37 px faces).
SKIP_RNET_SIDE = 40
#: A full pass for camera motion looks for faces down to this fraction of the smallest tracked face's side only
#: (the full pyramid's coarser levels; smaller faces wait for another pass; measured: README "Video streams").
DEFAULT_MOTION_SMALLEST: Optional[float] = 0.5
#: Frames a lost face's id is remembered for a full pass to give it back.
DEFAULT_KEEP_LOST = 50
#: Candidate faces (O-Net score between the tracking and the detector's threshold in a pass) followed unseen, at
#: most this many: one becomes a face, with an id, once O-Net scores it at the detector's threshold (measured).
DEFAULT_CANDIDATES = 4
#: Public names, with those of `association`, `pass_schedule` and `smoothing` users import from here.
__all__ = ["FaceTracker", "TrackedFace", "TrackedFaces", "Frame", "VideoSourceError", "read_frames", "open_capture",
           "track_boxes", "match_by_iou", "OneEuroFilter", "SCHEDULED", "REQUESTED", "LOST_FACE", "PASS_REASONS"]


class VideoSourceError(FastMTCNNError, ValueError):
    """A video source cannot be opened or decoded; the message says what to pass instead."""


# --------------------------------------------------------------------------------------------- results

@dataclass(frozen=True)
class TrackedFace(Face):
    """A `Face` with its track id; `predicted` True when the box is the track's predicted box (the face was not
    found on this frame and coasts, see `FaceTracker`; score and landmarks are then its last measured ones)."""

    id: int = -1
    predicted: bool = False

    def to_dict(self) -> Dict[str, Any]:
        record = {"id": self.id, **super().to_dict()}
        if self.predicted:
            record["predicted"] = True
        return record


class TrackedFaces(Faces):
    """The faces of one frame (sorted by score, like `Faces`) with `ids` int64 (N,), stable across frames, and
    `predicted` bool (N,) (coasting faces: not found on this frame, shown on their predicted box); `ids[k]` and
    `predicted[k]` belong to `boxes[k]`.

    `frame_index` counts the frames given to the tracker from 0, `time` is the frame's timestamp in seconds
    (None when unknown) and `full_pass` says whether the full cascade ran on this frame; `pass_reason` says why
    (SCHEDULED, REQUESTED, CUT, NEW_CONTENT, MOTION, LOST_FACE; None without a full pass).
    """

    pass_reason: Optional[str] = None

    def __init__(self, faces: Faces, ids: Sequence[int], frame_index: int, time: Optional[float], full_pass: bool,
                 predicted: Optional[Sequence[bool]] = None):
        super().__init__(faces.boxes, faces.scores, faces.landmarks)  # already sorted: the order is kept
        self.ids = np.asarray(ids, np.int64).reshape(len(faces))
        self.predicted = (np.zeros(len(faces), bool) if predicted is None
                          else np.asarray(predicted, bool).reshape(len(faces)))
        self.frame_index, self.time, self.full_pass = frame_index, time, full_pass

    def __getitem__(self, index: int) -> TrackedFace:
        face = super().__getitem__(index)
        return TrackedFace(face.box, face.score, face.landmarks, int(self.ids[index]), bool(self.predicted[index]))

    def __repr__(self) -> str:
        return f"TrackedFaces(frame {self.frame_index}, ids={self.ids.tolist()})"

    def to_record(self) -> Dict[str, Any]:
        """The JSON line of this frame: {"frame", "time", "full_pass", "faces": [{"id", "box", ...}]}; a coasting
        face has "predicted": true."""
        time = None if self.time is None else round(self.time, 6)
        return {"frame": self.frame_index, "time": time, "full_pass": self.full_pass, "faces": self.to_list()}


# --------------------------------------------------------------------------------------------- the tracker

class FaceTracker:
    """Faces with stable ids over the frames of one stream, P-Net over the whole frame only now and then.

    Args:
        detector: the `Detector` whose settings, networks and kernels run (a new default one if None).
        redetect_every: full cascade on frame 0, then whenever this many frames went by without a full pass (1 =
            every frame): the safety net under the passes the change check and lost faces ask for.
        margin: fraction of a tracked box's side added on each side before R-Net (room for motion).
        min_iou: a face keeps an earlier face's id when their boxes overlap by at least this IoU.
        keep_lost: frames a lost face's id is remembered, to be given back if a full pass finds it there
            (default: `DEFAULT_KEEP_LOST`).
        predict_motion: move each box by its velocity before cropping (constant velocity; the velocity follows
            the frame-to-frame change of the box half-way each frame, `association.VELOCITY_GAIN`).
        redetect_on_loss: when a tracked face is not found (even by the search around it), run the cascade on
            that same frame (within `pass_budget`) instead of waiting for the next scheduled pass, over the part
            of the frame that changed since the last pass and the search regions of the lost faces (where the
            face went, or a new one came: `PassSchedule.lost_face_region`; the whole frame without the change
            check).
        scene_change: grey levels (0-255) an 8x8-pixel cell must change by for `fastmtcnn.scene_change` to see a
            cut or new content (a face-sized blob of change outside the tracked faces since the last pass): a cut
            gets a full pass on that frame, new content a pass over its region (see `change_gap`). None: new
            faces wait for the next scheduled pass, and a lost face's pass covers the whole frame.
        change_gap: a pass for new content or camera motion comes at least this many frames after the last pass
            (a cut gets one at once). New content over a small part of the frame gets a pass over that region
            only (P-Net on that part of each pyramid level, `pass_schedule.REGION_AREA`).
        mute: when a pass over a region finds no new face, its changed cells grown by this many 8x8-pixel cells
            set off no other region pass until the next full pass or cut (a body walking, a turned head keep
            changing: the same false alarm again). None: never.
        motion_gap: a full pass for camera motion comes at least this many frames after the last full pass (a
            moving camera changes most cells on every frame).
        pass_budget: (burst, refill_frames): the passes asked for by a cut, camera motion or a lost face are at
            most `burst` in a row, then one per `refill_frames` frames (scheduled passes and passes over new
            content are not counted).
        track_thresholds: (R-Net, O-Net) score a face already tracked needs to stay tracked (hysteresis: lower
            than the detector's thresholds, which a new face needs). None: the detector's.
        search: look for a tracked face that R-Net/O-Net lost on its predicted box with P-Net over a region
            this many box sides around it, at the pyramid scales of its size (then R-Net, O-Net); 0: no search.
        coast: frames a face not found keeps being output on its predicted box (`predicted` True) before it is
            dropped.
        candidates: faces a pass scores between the tracking and the detector's O-Net threshold (a turned head,
            a face in film grain) are followed unseen like faces, at most this many, dropped on the first frame
            they are not found; one that O-Net scores at the detector's threshold becomes a face with an id (on
            the frame a per-frame detection would find it, without waiting for a pass). 0: none.
        skip_rnet: a face O-Net scored this or more on its last measured frame, SKIP_RNET_SIDE px or larger,
            goes straight to O-Net on its squared predicted box (R-Net would only re-centre a box O-Net already
            placed); if O-Net loses it there, R-Net and O-Net run on the grown box as for any track. None: never.
        hold: a face O-Net scored at the detector's threshold on the last frame, whose image moved by at most this
            many grey levels since (the change check's 8x8-cell means under its box), keeps its box, score and
            landmarks without R-Net/O-Net on this frame; never two frames in a row (default 4, measured: see
            `DEFAULT_HOLD` and README "Video streams"). None: never (also without the change check,
            `scene_change=None`).
        motion_smallest: a full pass for camera motion runs P-Net only on the pyramid levels of faces at least
            this fraction of the smallest tracked face's side (a pan or zoom moves the faces it tracks; the
            finest levels, most of P-Net's time, wait for the next other pass). None: every level; without
            tracked faces every level too.
        smoothing: None (default: raw O-Net output), True (One-Euro defaults) or an `OneEuroFilter`-like
            factory `() -> filter` applied to each track's box and landmarks.
        fps: frame rate used for smoothing when `update` gets no timestamps (default 30).

    One tracker per stream. `update` holds a lock, so threads may share a tracker (frames are then taken in
    call order); the networks are the calling thread's own, as with `Detector.detect`.
    """

    def __init__(self, detector: Optional[Detector] = None, redetect_every: int = DEFAULT_REDETECT_EVERY,
                 margin: float = DEFAULT_MARGIN, min_iou: float = DEFAULT_MIN_IOU, keep_lost: Optional[int] = None,
                 predict_motion: bool = True, redetect_on_loss: bool = True,
                 scene_change: Optional[float] = DEFAULT_SCENE_CHANGE,
                 change_gap: int = DEFAULT_CHANGE_GAP, motion_gap: int = DEFAULT_MOTION_GAP,
                 pass_budget: Tuple[int, int] = DEFAULT_PASS_BUDGET,
                 track_thresholds: Optional[Tuple[float, float]] = DEFAULT_TRACK_THRESHOLDS,
                 search: float = DEFAULT_SEARCH, coast: int = DEFAULT_COAST,
                 candidates: int = DEFAULT_CANDIDATES, skip_rnet: Optional[float] = DEFAULT_SKIP_RNET,
                 hold: Optional[float] = DEFAULT_HOLD,
                 motion_smallest: Optional[float] = DEFAULT_MOTION_SMALLEST, smoothing: Any = None,
                 fps: float = 30.0, mute: Optional[int] = DEFAULT_MUTE):
        if detector is not None and not isinstance(detector, Detector):
            raise TypeError(f"detector must be a fastmtcnn.Detector, got {type(detector).__name__}")
        _check_settings(redetect_every, margin, min_iou, fps, scene_change, pass_budget, track_thresholds, search,
                        change_gap, motion_gap, coast, candidates, skip_rnet, hold, motion_smallest, mute)
        self.detector = detector if detector is not None else Detector()
        self.redetect_every, self.margin, self.min_iou = redetect_every, float(margin), float(min_iou)
        self.keep_lost = max(DEFAULT_KEEP_LOST if keep_lost is None else int(keep_lost), coast)
        self.redetect_on_loss, self.predict_motion = bool(redetect_on_loss), bool(predict_motion)
        thresholds = self.detector.settings.thresholds
        self.track_thresholds = tuple(float(t) for t in (track_thresholds or thresholds[1:]))
        self.search, self.coast, self.change_gap, self.motion_gap = float(search), coast, change_gap, motion_gap
        # every frame a full pass: per-frame detection, nothing to follow unseen
        self.candidates = candidates if redetect_every > 1 else 0
        self.skip_rnet = None if skip_rnet is None else float(skip_rnet)
        self.hold = None if hold is None or scene_change is None else float(hold)
        self.motion_smallest = None if motion_smallest is None else float(motion_smallest)
        self.fps = float(fps)
        self._tracks = Tracks(self.min_iou, self.keep_lost, coast, self.candidates, self.predict_motion,
                              smoother_factory(smoothing), self.fps)
        scene = None if scene_change is None else SceneChange(scene_change, self.detector.settings.min_face_size,
                                                              mute=mute)
        self._schedule = PassSchedule(redetect_every, change_gap, motion_gap, PassBudget(*pass_budget), scene)
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget every track and start counting frames (and ids) from 0 again."""
        self._tracks.reset()
        self._schedule.reset()
        self._frame_index = 0
        self._held: List[int] = []  # tracks held on the last frame

    @property
    def frames_seen(self) -> int:
        """Frames given to `update` since construction or `reset`."""
        return self._frame_index

    def redetect(self) -> None:
        """Run the full cascade on the next frame (e.g. after a scene cut the caller knows of)."""
        with self._lock:
            self._schedule.request()

    def update(self, frame: ImageLike, color: str = "bgr", timestamp: Optional[float] = None) -> TrackedFaces:
        """The faces of the next frame (same inputs as `Detector.detect`), with ids; `timestamp` in seconds."""
        pixels, order = load_image(frame, color, self.detector.max_image_pixels)
        channels = channel_map(order, pixels.shape[2])
        with self._lock:
            index = self._frame_index
            alive = self._tracks.alive(index)
            reason, region = self._schedule.plan(index, pixels, channels, np.concatenate(
                [self._tracks.predicted(alive), self._tracks.boxes(alive)]))
            full = bool(reason) and region is None
            followed = NOTHING if full else self._follow_or_hold(pixels, channels, alive, index)
            lost = self._tracks.newly_lost(followed, alive, index) if not reason and self.redetect_on_loss else []
            if lost and self._schedule.lost_face():
                reason = LOST_FACE
                region = self._schedule.lost_face_region(self._search_regions(lost), *pixels.shape[:2])
                full = region is None
            if full:
                self._held = []
                smallest = self._smallest_face(alive) if reason == MOTION else None
                found = self._with_pass(self._full_pass(pixels, channels, smallest), pixels, channels, alive,
                                        followed)
            elif region is not None:
                found = self._with_pass(self._area_pass(pixels, channels, region, reason), pixels, channels, alive,
                                        followed)
                if reason == NEW_CONTENT:
                    self._schedule.region_result(bool((found.tracks == -1).any()))
            else:
                found = followed
            faces, ids, predicted = self._record(found, alive, index, timestamp)
            self._frame_index = index + 1
            self._schedule.done(index, reason, full, found.boxes)
            result = TrackedFaces(faces, ids, index, timestamp, full, predicted)
            result.pass_reason = reason
            return result

    # ------------------------------------------------------------------------------ finding the faces
    def _full_pass(self, pixels: np.ndarray, channels: np.ndarray, smallest: Optional[float] = None) -> Faces:
        """The full cascade, its last step at the `_pass_threshold` (the faces over the detector's threshold are
        exactly `Detector.detect`'s: O-Net's NMS keeps a box by the boxes scored above it only); `smallest`
        (pixels): P-Net only on the pyramid levels of faces this large or larger."""
        self.detector.settings.check_pyramid_size(pixels.shape[0], pixels.shape[1])
        cascade = self.detector._cascade()
        refined = cascade.refine(pixels, channels, cascade.propose(pixels, channels, smallest_face=smallest))
        return Faces.from_cascade(cascade.output(pixels, channels, refined, threshold=self._pass_threshold()))

    def _smallest_face(self, alive: List[int]) -> Optional[float]:
        """Pixels: `motion_smallest` x the smallest side of the faces tracked (candidates too); None without any."""
        boxes = self._tracks.boxes(alive)
        if self.motion_smallest is None or not len(boxes):
            return None
        return self.motion_smallest * float(np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]).min())

    def _pass_threshold(self) -> Optional[float]:
        """O-Net threshold of a pass: the tracking one when candidates are followed, else the detector's."""
        return min(self.track_thresholds[1], self.detector.settings.thresholds[2]) if self.candidates else None

    def _follow(self, pixels: np.ndarray, channels: np.ndarray, ids: List[int]) -> Found:
        """The faces of tracks `ids` on this frame: R-Net/O-Net on their predicted boxes grown by `margin`, then a
        P-Net search around those still missing; each at the tracking thresholds."""
        if not ids:
            return NOTHING
        found = self._onet_only(pixels, channels, [k for k in ids if self._skips_rnet(k)])
        seen = set(found.tracks.tolist())
        rest = [k for k in ids if k not in seen]
        if rest:
            boxes = track_boxes(self._tracks.predicted(rest), self.margin)
            found = found + self._tracks.matched(self._refine(pixels, channels, boxes), rest)
        seen = set(found.tracks.tolist())
        missing = [k for k in ids if k not in seen]
        if missing and self.search > 0:
            candidates = self._search_candidates(pixels, channels, self._tracks.predicted(missing))
            most = SEARCH_KEEP * len(missing)
            found = found + self._tracks.matched(self._refine(pixels, channels, candidates, most), missing)
        return one_track_per_face(found)

    def _follow_or_hold(self, pixels: np.ndarray, channels: np.ndarray, ids: List[int], index: int) -> Found:
        """`_follow` for tracks `ids`, but the faces `_still` on frame `index` keep their last measurement."""
        held = self._still(ids, index)
        found = self._follow(pixels, channels, [k for k in ids if k not in held])
        self._held = held
        return one_track_per_face(found + self._tracks.as_found(held)) if held else found

    def _still(self, ids: List[int], index: int) -> List[int]:
        """The tracks of `ids` to hold on frame `index`: faces measured (not held) on the last frame at the
        detector's O-Net threshold, whose image moved by at most `hold` grey levels since."""
        if self.hold is None:
            return []
        strong = [k for k in ids if k >= 0 and k not in self._held and self._tracks[k].last_seen == index - 1
                  and self._tracks[k].score >= self.detector.settings.thresholds[2]]
        if not strong:
            return []
        still = self._schedule.unchanged(self._tracks.boxes(strong), self.hold)
        return [k for k, is_still in zip(strong, still) if is_still]

    def _skips_rnet(self, key: int) -> bool:
        """Whether track `key` goes straight to O-Net: a face scored `skip_rnet` or more, SKIP_RNET_SIDE px or more."""
        track = self._tracks[key]
        return (self.skip_rnet is not None and key >= 0 and track.score >= self.skip_rnet
                and min(track.box[2] - track.box[0], track.box[3] - track.box[1]) >= SKIP_RNET_SIDE)

    def _onet_only(self, pixels: np.ndarray, channels: np.ndarray, ids: List[int]) -> Found:
        """The faces of tracks `ids` found by O-Net alone (tracking threshold) on their squared predicted boxes."""
        if not ids:
            return NOTHING
        boxes = track_boxes(self._tracks.predicted(ids), 0.0)
        cascade = self.detector._cascade()
        onet = cascade.output(pixels, channels, boxes, threshold=self.track_thresholds[1])
        return self._tracks.matched(Faces.from_cascade(onet), ids)

    def _refine(self, pixels: np.ndarray, channels: np.ndarray, boxes: np.ndarray,
                most: Optional[int] = None) -> Faces:
        """R-Net and O-Net at the tracking thresholds on 0-based inclusive boxes float32 (n, 4) (O-Net on the
        `most` best R-Net boxes at most)."""
        cascade = self.detector._cascade()
        rnet, onet = self.track_thresholds
        refined = cascade.refine(pixels, channels, boxes, threshold=rnet, most=most)
        return Faces.from_cascade(cascade.output(pixels, channels, refined, threshold=onet))

    def _search_candidates(self, pixels: np.ndarray, channels: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """P-Net candidates (0-based inclusive float32 (n, 4)) around each box: at each scale of the full pyramid
        that sees faces of 0.6x to 1.6x the box's side, a square region (1 + 2 x `search`) of those faces wide,
        centred on the box."""
        settings = self.detector.settings
        scales = kernels.pyramid_scales(*pixels.shape[:2], settings.min_face_size, settings.scale_factor)
        size = int(round(kernels.PNET_CELL * (1 + 2 * self.search)))
        regions, region_scales = [], []
        for x1, y1, x2, y2 in boxes.astype(np.float64):
            side = max(x2 - x1, y2 - y1, 1.0)
            centre_x, centre_y = (x1 + x2 - 1) / 2, (y1 + y2 - 1) / 2
            for scale in scales[(scales >= 12.0 / (1.6 * side)) & (scales <= 12.0 / (0.6 * side))]:
                half = size / scale / 2
                left, top = round(centre_x - half), round(centre_y - half)
                side_px = round(2 * half)
                regions.append((left, top, left + side_px - 1, top + side_px - 1))
                region_scales.append(size / side_px)
        if not regions:
            return np.zeros((0, 4), np.float32)
        return self.detector._cascade().propose_in_regions(pixels, channels, np.array(regions, np.float32),
                                                           np.array(region_scales), size)

    def _search_regions(self, ids: List[int]) -> np.ndarray:
        """Pixel edges float64 (n, 4) of the predicted boxes of tracks `ids` grown by `search` x their longer side
        on each side (around them the search looked in squares of about that size, one per scale it ran)."""
        boxes = self._tracks.predicted(ids).astype(np.float64).reshape(-1, 4)
        grow = self.search * (boxes[:, 2:] - boxes[:, :2]).max(axis=1, keepdims=True)
        return boxes + np.concatenate([-grow, -grow, grow, grow], axis=1)

    def _area_pass(self, pixels: np.ndarray, channels: np.ndarray, region, reason: str) -> Faces:
        """The full cascade (its last step at the `_pass_threshold`) with P-Net on a part of each pyramid level:
        for new content, the bounding box of the tiles over or above the changed cells around `region` (pixel
        edges, `region_areas`); for a lost face, `region` grown by a P-Net window (`grown_areas`)."""
        cascade = self.detector._cascade()
        scales = cascade.pyramid_scales(*pixels.shape[:2])
        areas = (region_areas(region, scales, self._schedule.changed_cells()) if reason == NEW_CONTENT
                 else grown_areas(region, scales))
        refined = cascade.refine(pixels, channels, cascade.propose_in_areas(pixels, channels, areas))
        return Faces.from_cascade(cascade.output(pixels, channels, refined, threshold=self._pass_threshold()))

    def _with_pass(self, faces: Faces, pixels: np.ndarray, channels: np.ndarray, alive: List[int],
                   followed: Found) -> Found:
        """A pass's faces, each with the remembered track it continues (or -1); then the tracks it did not find,
        followed at the tracking thresholds (hysteresis), where no face of the pass is."""
        found = self._tracks.assign(faces)
        rest = [k for k in alive if k not in set(found.tracks.tolist())]
        if not followed.tracks.size:
            followed = self._follow(pixels, channels, rest)
        keep = [j for j in range(len(followed.tracks)) if followed.tracks[j] in rest
                and (not len(faces) or kernels.iou_matrix(followed.boxes[j:j + 1], faces.boxes).max() < self.min_iou)]
        return found + followed.rows(np.array(keep, np.int64))

    def _record(self, found: Found, alive: List[int], index: int, timestamp: Optional[float]):
        """Update the tracks with this frame's faces and candidates; (Faces, ids, predicted) to output, coasting
        faces included, candidates left out (`Tracks.record`; a face needs the detector's O-Net threshold)."""
        return self._tracks.record(found, alive, index, timestamp, self.detector.settings.thresholds[2])


def _check_settings(redetect_every, margin, min_iou, fps, scene_change, pass_budget, track_thresholds, search,
                    change_gap, motion_gap, coast, candidates, skip_rnet, hold, motion_smallest, mute) -> None:
    """SettingsError (a ValueError) naming what to pass for the first `FaceTracker` setting out of range."""
    check_count("redetect_every", redetect_every, 1, what="1 = full detection on every frame")
    if not 0 <= margin <= 2:
        raise SettingsError(f"margin must be a fraction of the box side in [0, 2], e.g. 0.2, got {margin!r}")
    if not 0 < min_iou <= 1:
        raise SettingsError(f"min_iou must be in (0, 1], e.g. 0.3, got {min_iou!r}")
    if not fps > 0:
        raise SettingsError(f"fps must be > 0, got {fps!r}")
    if scene_change is not None and not 0 < scene_change < 255:
        raise SettingsError(f"scene_change must be grey levels in (0, 255), e.g. 20, or None, got {scene_change!r}")
    if not isinstance(pass_budget, tuple) or len(pass_budget) != 2 or not all(is_count(n, 1) for n in pass_budget):
        raise SettingsError(f"pass_budget must be (burst, refill_frames), two ints >= 1, e.g. (8, 10), "
                            f"got {pass_budget!r}")
    if track_thresholds is not None and (len(track_thresholds) != 2
                                         or not all(0 <= t < 1 for t in track_thresholds)):
        raise SettingsError(f"track_thresholds must be (R-Net, O-Net) scores in [0, 1), e.g. (0.5, 0.5), or None, "
                            f"got {track_thresholds!r}")
    if not 0 <= search <= 4:
        raise SettingsError(f"search must be box sides in [0, 4] (0 = no search), e.g. 1.0, got {search!r}")
    check_count("change_gap", change_gap, 1, what="frames, e.g. 5")
    check_count("motion_gap", motion_gap, 1, what="frames, e.g. 5")
    if mute is not None:
        check_count("mute", mute, 0, what="8x8-pixel cells, e.g. 1, or None")
    check_count("coast", coast, 0, what="frames, e.g. 3")
    check_count("candidates", candidates, 0, what="0 = none, e.g. 4")
    if skip_rnet is not None and not 0 <= skip_rnet <= 1:
        raise SettingsError(f"skip_rnet must be an O-Net score in [0, 1], e.g. 0.7, or None, got {skip_rnet!r}")
    if hold is not None and not 0 <= hold < 255:
        raise SettingsError(f"hold must be grey levels in [0, 255), e.g. 2, or None, got {hold!r}")
    if motion_smallest is not None and not 0 < motion_smallest <= 1:
        raise SettingsError(f"motion_smallest must be a fraction of a face side in (0, 1], e.g. 0.5, or None, "
                            f"got {motion_smallest!r}")


def _tile_starts(start: float, stop: float, side: int, step: float) -> List[int]:
    """Whole-pixel starts of `side`-long tiles, `step` apart, covering [start, stop) (one centred tile if it
    fits)."""
    if stop - start <= side:
        return [int(round((start + stop - side) / 2))]
    count = int(math.ceil((stop - start - side) / step)) + 1
    return [int(round(start + k * (stop - start - side) / (count - 1))) for k in range(count)]


def region_tiles(region: Tuple[float, float, float, float], scales: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Square tiles (0-based inclusive float32 (n, 4), image pixels) of REGION_TILE level pixels that overlap by a
    P-Net window, covering `region` (pixel edges) grown by a P-Net window at each of `scales`, and upwards by
    REGION_ABOVE of its width; and the index into `scales` of each tile (int64 (n,))."""
    x1, y1, x2, y2 = region
    tiles, levels = [], []
    for level, scale in enumerate(scales):
        side, pad = round(REGION_TILE / scale), kernels.PNET_CELL / scale
        step = (REGION_TILE - kernels.PNET_CELL) / scale
        for top in _tile_starts(y1 - pad - REGION_ABOVE * (x2 - x1), y2 + pad, side, step):
            for left in _tile_starts(x1 - pad, x2 + pad, side, step):
                tiles.append((left, top, left + side - 1, top + side - 1))
                levels.append(level)
    return np.array(tiles, np.float32).reshape(-1, 4), np.array(levels, np.int64)


def tiles_near_change(tiles: np.ndarray, changed: np.ndarray, below: float) -> np.ndarray:
    """bool (n,): whether a changed cell (bool (rows, cols) grid of `scene_change.CELL`-pixel cells) lies under
    each tile (0-based inclusive float32 (n, 4)) or under the `below` pixels beneath it (a head turning above the
    moving body the change check saw)."""
    edges = np.asarray(tiles, np.float64).reshape(-1, 4) + [0, 0, 1, 1]
    top, left, bottom, right = cell_spans(edges, changed.shape, below).T
    counts = np.zeros((changed.shape[0] + 1, changed.shape[1] + 1), np.int64)  # changed cells above-left of each
    counts[1:, 1:] = changed.cumsum(axis=0).cumsum(axis=1)
    inside = counts[bottom, right] - counts[top, right] - counts[bottom, left] + counts[top, left]
    return (bottom > top) & (right > left) & (inside > 0)


def region_areas(region: Tuple[float, float, float, float], scales: np.ndarray, changed: np.ndarray) -> np.ndarray:
    """float64 (L, 4): for each of `scales`, the pixel edges x1, y1, x2, y2 of the tiles `region_tiles` lays at
    that scale and `tiles_near_change` keeps (their bounding box); NaN where it keeps none."""
    tiles, levels = region_tiles(region, scales)
    kept = tiles_near_change(tiles, changed, REGION_ABOVE * (region[2] - region[0]))
    edges, levels = tiles[kept].astype(np.float64) + [0, 0, 1, 1], levels[kept]
    areas = np.full((len(scales), 4), np.nan)
    for k in np.unique(levels):
        mine = edges[levels == k]
        areas[k] = mine[:, 0].min(), mine[:, 1].min(), mine[:, 2].max(), mine[:, 3].max()
    return areas


def grown_areas(region: Tuple[float, float, float, float], scales: np.ndarray) -> np.ndarray:
    """float64 (L, 4): `region` (pixel edges) grown by a P-Net window (12 / scale pixels) on each side, per scale."""
    pads = kernels.PNET_CELL / np.asarray(scales, np.float64)
    x1, y1, x2, y2 = region
    return np.stack([x1 - pads, y1 - pads, x2 + pads, y2 + pads], axis=1)


def track_boxes(boxes: np.ndarray, margin: float) -> np.ndarray:
    """Boxes for R-Net from last frame's faces: pixel-edge float32 (n, 4) -> enlarged by `margin` x side on
    each side, squared and truncated like the cascade's own candidates, 0-based inclusive float32 (n, 4)."""
    inclusive = boxes.astype(np.float32).copy()
    inclusive[:, 2:] -= 1
    width = inclusive[:, 2] - inclusive[:, 0]
    height = inclusive[:, 3] - inclusive[:, 1]
    grown = inclusive + np.stack([-width, -height, width, height], axis=1) * np.float32(margin)
    return kernels.truncate_boxes(kernels.square(np.ascontiguousarray(grown, np.float32)))



# --------------------------------------------------------------------------------------------- frame sources

@dataclass(frozen=True)
class Frame:
    """One frame of a stream: `index` from 0, `time` in seconds (None if unknown), `image` (uint8 BGR (H, W, 3)
    from OpenCV; from an iterable, the item as given)."""

    index: int
    time: Optional[float]
    image: np.ndarray


VideoSource = Union[str, Path, int, "cv2.VideoCapture", Iterable[np.ndarray]]


def read_frames(source: VideoSource, fps: Optional[float] = None) -> Iterator[Frame]:
    """Frames of `source`: a video file, a camera index, a URL (rtsp://, http://...), an open cv2.VideoCapture,
    or any iterable of images (then `time` is index / fps, or None without `fps`).

    Raises VideoSourceError (a ValueError) when the source cannot be opened or yields no decodable frame."""
    if isinstance(source, (str, Path, int)) and not isinstance(source, bool):
        return _capture_frames(open_capture(source), str(source), fps)
    if isinstance(source, cv2.VideoCapture):
        if not source.isOpened():
            raise VideoSourceError("the cv2.VideoCapture is not open: pass an opened capture, a path or a camera index")
        return _capture_frames(source, "the capture", fps)
    if isinstance(source, np.ndarray) and source.ndim in (2, 3) and source.dtype == np.uint8:
        raise TypeError("read_frames got a single image: pass a list or iterator of frames, or a video path")
    if isinstance(source, Iterable):
        return _iterable_frames(source, fps)
    raise TypeError(f"cannot read frames from a {type(source).__name__}: pass a video path, a camera index, a URL, "
                    "a cv2.VideoCapture or an iterable of uint8 images")


def open_capture(source: Union[str, Path, int]) -> "cv2.VideoCapture":
    """An opened cv2.VideoCapture for a path, URL or camera index, or a VideoSourceError that says why not."""
    if isinstance(source, (str, Path)) and "://" not in str(source):
        check_video_path(Path(source))
    capture = cv2.VideoCapture(source if isinstance(source, int) else str(source))
    if not capture.isOpened():
        raise VideoSourceError(f"OpenCV cannot open {source}: not a video, an unreachable camera or URL, or a "
                               "container/codec this OpenCV build lacks; convert the file, e.g. "
                               "`ffmpeg -i IN -c:v mjpeg OUT.avi`")
    return capture


def check_video_path(path: Path) -> None:
    """VideoSourceError unless `path` is an existing file (not a folder)."""
    if not path.exists():
        raise VideoSourceError(f"video file not found: {path} (pass a video file, a camera index or a URL)")
    if path.is_dir():
        raise VideoSourceError(f"{path} is a folder: pass a video file (for images use `fastmtcnn batch`)")


def frame_time(capture: "cv2.VideoCapture", index: int, fps: Optional[float]) -> Optional[float]:
    """Seconds of the frame just read: the container's position, else index / fps (None without fps)."""
    milliseconds = capture.get(cv2.CAP_PROP_POS_MSEC)
    return milliseconds / 1000.0 if milliseconds and milliseconds > 0 else (index / fps if fps else None)


def frame_count(capture: "cv2.VideoCapture") -> Optional[int]:
    """The number of frames the container announces, or None (cameras, streams, unknown)."""
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    return count if count > 0 else None


def _capture_frames(capture: "cv2.VideoCapture", name: str, fps: Optional[float]) -> Iterator[Frame]:
    try:
        fps = fps or capture.get(cv2.CAP_PROP_FPS) or None
        index = 0
        while True:
            ok, image = capture.read()
            if not ok or image is None:
                if index == 0:
                    raise VideoSourceError(f"no frame could be decoded from {name}: the file is empty or its codec "
                                           "is missing from this OpenCV build (convert it, e.g. "
                                           "`ffmpeg -i IN -c:v mjpeg OUT.avi`)")
                return
            yield Frame(index, frame_time(capture, index, fps), image)
            index += 1
    finally:
        capture.release()


def _iterable_frames(frames: Iterable[np.ndarray], fps: Optional[float]) -> Iterator[Frame]:
    for index, image in enumerate(frames):
        yield Frame(index, index / fps if fps else None, image)

