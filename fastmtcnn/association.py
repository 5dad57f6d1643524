"""Association for the stream tracker: which face of a frame continues which track, and the tracks' identity.

`FaceTracker` (fastmtcnn.video) finds faces; this module says whose they are. A `Tracks` holds one stream's
tracks: faces, keyed by their id (0, 1, ...), and *candidates* (weak faces of a pass followed unseen, keyed -2,
-3, ...; -1 marks a new face in `Found`). Faces are matched to tracks greedily by IoU with each track's predicted
box (`match_by_iou`); a face scored at the detector's O-Net threshold that continues no track gets the next id, a
weaker one becomes a candidate (up to a limit), and a candidate so scored becomes a face. A track not found
*coasts* on its predicted box for a few frames (output with `predicted` True) and its id is remembered for a
full pass to give back.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from . import kernels
from .detector import Faces
from .smoothing import OneEuroFilter

#: Two tracks whose faces overlap by this IoU are one face: the older track keeps it, a coasting box is not output.
DUPLICATE_IOU = 0.5
#: A track's velocity moves this fraction of the way to its last frame-to-frame change (the rest is its old
#: velocity): a box that jumps between two answers (a pass, then R-Net/O-Net) is not extrapolated in full
#: (measured on the filmed clips: README "Video streams").
VELOCITY_GAIN = 0.5


def match_by_iou(previous: np.ndarray, current: np.ndarray, min_iou: float) -> List[Tuple[int, int]]:
    """Greedy one-to-one matching, highest IoU first: pairs (previous index, current index) with IoU >= min_iou;
    previous (n, 4), current (m, 4) pixel-edge boxes x1, y1, x2, y2.

    Greedy equals the optimal (Hungarian) assignment whenever each box overlaps at most one box of the other
    frame by min_iou or more; the cascade's final NMS keeps faces of one frame apart, so that is the usual case.
    """
    return greedy_pairs(kernels.iou_matrix(np.asarray(previous, np.float32).reshape(-1, 4),
                                           np.asarray(current, np.float32).reshape(-1, 4)), min_iou)


def greedy_pairs(iou: np.ndarray, floor: float) -> List[Tuple[int, int]]:
    """One-to-one pairs (row, column) of an IoU matrix (n, m) with IoU >= floor, highest IoU first (ties: the
    first in row-major order)."""
    pairs: List[Tuple[int, int]] = []
    used_rows, used_columns = set(), set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        i, j = divmod(int(flat), iou.shape[1])
        if iou[i, j] < floor:
            break
        if i not in used_rows and j not in used_columns:
            pairs.append((i, j))
            used_rows.add(i)
            used_columns.add(j)
    return pairs


@dataclass
class Track:
    box: np.ndarray  # float32 (4,) pixel edges: last measured box, or the predicted one while coasting
    velocity: np.ndarray  # float32 (4,) box change per frame (constant-velocity prediction)
    score: float  # last measured O-Net score
    landmarks: np.ndarray  # float32 (5, 2), last measured (moved with the box while coasting)
    last_seen: int  # frame index of the last measurement
    smoother: Optional[OneEuroFilter] = None

    def predicted(self) -> np.ndarray:
        """float32 (4,): the box one frame on at the current velocity (pixel edges)."""
        return self.box + self.velocity


@dataclass
class Found:
    """Faces of one frame with the track each belongs to (-1: a new face)."""

    boxes: np.ndarray  # float32 (n, 4) pixel edges
    scores: np.ndarray  # float32 (n,)
    landmarks: np.ndarray  # float32 (n, 5, 2)
    tracks: np.ndarray  # int64 (n,)

    @classmethod
    def of(cls, faces: Faces, tracks: Sequence[int]) -> "Found":
        """`faces` (n,) with the track of each, int (n,)."""
        return cls(faces.boxes, faces.scores, faces.landmarks, np.asarray(tracks, np.int64).reshape(len(faces)))

    def __add__(self, other: "Found") -> "Found":
        return Found(*(np.concatenate([a, b]) for a, b in ((self.boxes, other.boxes), (self.scores, other.scores),
                                                           (self.landmarks, other.landmarks),
                                                           (self.tracks, other.tracks))))

    def rows(self, rows: np.ndarray) -> "Found":
        """The faces at `rows` (int64 indices or a bool mask)."""
        return Found(self.boxes[rows], self.scores[rows], self.landmarks[rows], self.tracks[rows])


NOTHING = Found(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32),
                np.zeros(0, np.int64))


def one_track_per_face(found: Found) -> Found:
    """`found` without the faces that repeat an older track's face (IoU >= DUPLICATE_IOU): two tracks that
    converged on one face (after a jump between frames, or a search around a lost face) go on as the older one;
    a face's track goes before a candidate's (negative keys)."""
    if len(found.tracks) < 2:
        return found
    order = np.lexsort((np.abs(found.tracks), found.tracks < 0))  # ids grow with age: older tracks first
    kept: List[int] = []
    for j in order:
        if not kept or kernels.iou_matrix(found.boxes[j:j + 1], found.boxes[kept]).max() < DUPLICATE_IOU:
            kept.append(int(j))
    return found.rows(np.sort(np.array(kept, np.int64)))


def overlaps(box: np.ndarray, boxes: np.ndarray) -> bool:
    """Whether float32 (4,) `box` covers one of `boxes` (n, 4) by IoU >= DUPLICATE_IOU."""
    return bool(len(boxes)) and kernels.iou_matrix(box[None].astype(np.float32), boxes).max() >= DUPLICATE_IOU


class Tracks:
    """One stream's tracks, keyed as the module says (iterate for the keys, index for a `Track`).

    Args:
        min_iou: a face continues a track when it overlaps the track's predicted box by at least this IoU.
        keep_lost: frames a lost track is remembered.
        coast: frames a track not found is output on its predicted box.
        candidates: most candidates followed at once (0: none).
        predict_motion: predict each box by its velocity (`VELOCITY_GAIN`; else: the last box).
        smoother: None or a factory `() -> filter` for each track's box and landmarks; `fps` for frames
            without timestamps.
    """

    def __init__(self, min_iou: float, keep_lost: int, coast: int, candidates: int, predict_motion: bool,
                 smoother: Optional[Callable[[], OneEuroFilter]] = None, fps: float = 30.0):
        self.min_iou, self.keep_lost, self.coast, self.candidates = min_iou, keep_lost, coast, candidates
        self.predict_motion, self.smoother, self.fps = predict_motion, smoother, fps
        self.reset()

    def reset(self) -> None:
        self._tracks: Dict[int, Track] = {}
        self._previous_time: Optional[float] = None
        self._next_id = 0
        self._next_candidate = -2  # -1 marks a new face in `Found`

    def __iter__(self) -> Iterator[int]:
        return iter(self._tracks)

    def __contains__(self, key: int) -> bool:
        return key in self._tracks

    def __getitem__(self, key: int) -> Track:
        return self._tracks[key]

    def alive(self, index: int) -> List[int]:
        """Keys of the tracks followed on frame `index`: seen within the last `coast` + 1 frames."""
        return [k for k, t in self._tracks.items() if index - t.last_seen <= self.coast + 1]

    def predicted(self, keys: Sequence[int]) -> np.ndarray:
        """float32 (n, 4): where each track's face should be on this frame."""
        boxes = [self._tracks[k].predicted() if self.predict_motion else self._tracks[k].box for k in keys]
        return np.array(boxes, np.float32).reshape(-1, 4)

    def boxes(self, keys: Sequence[int]) -> np.ndarray:
        """float32 (n, 4): each track's last box."""
        return np.array([self._tracks[k].box for k in keys], np.float32).reshape(-1, 4)

    def as_found(self, keys: Sequence[int]) -> Found:
        """Tracks `keys` as found again on their last box, score and landmarks (a face held still, or coasting
        once `_coast` moved it): the one place a `Found` is made of tracks."""
        tracks = [self._tracks[k] for k in keys]
        return Found(self.boxes(keys), np.array([t.score for t in tracks], np.float32),
                     np.array([t.landmarks for t in tracks], np.float32).reshape(-1, 5, 2), np.array(keys, np.int64))

    def pairs(self, keys: List[int], boxes: np.ndarray) -> List[Tuple[int, int]]:
        """`match_by_iou` of the predicted boxes of tracks `keys` with `boxes` (float32 (m, 4) pixel edges), faces'
        tracks first, then the candidates on the boxes left (a candidate next to a face must not take its box);
        pairs (index into `keys`, index into `boxes`)."""
        faces = [i for i, k in enumerate(keys) if k >= 0]
        pairs = [(faces[i], j)
                 for i, j in match_by_iou(self.predicted([keys[i] for i in faces]), boxes, self.min_iou)]
        rest = [i for i, k in enumerate(keys) if k < 0]
        if rest:
            left = np.setdiff1d(np.arange(len(boxes)), [j for _, j in pairs])
            pairs += [(rest[i], int(left[j])) for i, j in
                      match_by_iou(self.predicted([keys[i] for i in rest]), boxes[left], self.min_iou)]
        return pairs

    def matched(self, faces: Faces, keys: List[int]) -> Found:
        """The faces that overlap the predicted box of one of tracks `keys` (one each), with that track, in the
        order of `pairs`."""
        pairs = self.pairs(keys, faces.boxes)
        return self._continuing(faces, keys, pairs).rows(np.array([j for _, j in pairs], np.int64))

    def assign(self, faces: Faces) -> Found:
        """A pass's faces, each with the remembered track it continues (or -1: new)."""
        known = list(self._tracks)
        return self._continuing(faces, known, self.pairs(known, faces.boxes))

    @staticmethod
    def _continuing(faces: Faces, keys: List[int], pairs: List[Tuple[int, int]]) -> Found:
        """All `faces`, each with the track of `keys` that `pairs` (key index, face index) give it, else -1."""
        tracks = np.full(len(faces), -1, np.int64)
        for i, j in pairs:
            tracks[j] = keys[i]
        return Found.of(faces, tracks)

    def newly_lost(self, followed: Found, alive: List[int], index: int) -> List[int]:
        """The faces (track keys) seen on the last frame and not found on this one (frame `index`)."""
        kept = set(followed.tracks.tolist())
        return [k for k in alive if k >= 0 and k not in kept and self._tracks[k].last_seen == index - 1]

    def record(self, found: Found, alive: List[int], index: int, timestamp: Optional[float],
               face_score: float) -> Tuple[Faces, np.ndarray, np.ndarray]:
        """Update the tracks with frame `index`'s faces and candidates (`face_score`: the O-Net score of a face, below
        it a candidate); (Faces, ids int64 (n,), predicted bool (n,)) to output, by score, coasting faces included,
        candidates left out; `timestamp` in seconds (None: 1 / fps per frame for the smoother)."""
        for key in [k for k, t in self._tracks.items() if index - t.last_seen > self.keep_lost]:
            del self._tracks[key]
        ids = found.tracks.copy()
        for j in range(len(ids)):
            ids[j] = self._track_of(int(ids[j]), found, j, index, face_score)
            if ids[j] != -1:  # -1: a candidate over the limit
                self._measure(self._tracks[int(ids[j])], found, j, index)
        for key in [k for k, t in self._tracks.items() if k < 0 and t.last_seen < index]:
            del self._tracks[key]  # a candidate not found
        found = dataclasses.replace(found, tracks=ids).rows(ids >= 0)
        coasting = [k for k in alive if k >= 0 and k in self._tracks and self._tracks[k].last_seen < index
                    and index - self._tracks[k].last_seen <= self.coast
                    and not overlaps(self._tracks[k].predicted(), found.boxes)]
        shown = found + self._coast(coasting) if coasting else found
        predicted = np.concatenate([np.zeros(len(found.tracks), bool), np.ones(len(coasting), bool)])
        order = np.argsort(-shown.scores, kind="stable")
        faces = Faces(shown.boxes[order], shown.scores[order], shown.landmarks[order])
        return self._smooth(faces, shown.tracks[order], timestamp), shown.tracks[order], predicted[order]

    @staticmethod
    def _measure(track: Track, found: Found, row: int, index: int) -> None:
        """Track `track` was found as face `row` of `found` on frame `index`."""
        seen_in_a_row = track.last_seen == index - 1
        track.velocity = (VELOCITY_GAIN * (found.boxes[row] - track.box) + (1 - VELOCITY_GAIN) * track.velocity
                          if seen_in_a_row else np.zeros(4, np.float32)).astype(np.float32)
        track.box, track.score = found.boxes[row].copy(), float(found.scores[row])
        track.landmarks = found.landmarks[row]
        track.last_seen = index

    def _coast(self, keys: List[int]) -> Found:
        """Move tracks `keys` (not found) to their predicted boxes, landmarks along; those tracks to output."""
        for k in keys:
            track = self._tracks[k]
            moved = track.predicted() if self.predict_motion else track.box
            track.landmarks = track.landmarks + (moved[:2] - track.box[:2])
            track.box = moved
        return self.as_found(keys)

    def _track_of(self, key: int, found: Found, row: int, index: int, face_score: float) -> int:
        """The key of the track that face `row` of `found` continues (`key`, or a new one: a new face's id when
        scored `face_score`, else a new candidate's key, -1 past the limit); a candidate so scored becomes a face
        with the next id."""
        face = found.scores[row] >= face_score
        if key in self._tracks and (key >= 0 or not face):
            return key
        if key in self._tracks:  # a candidate becomes a face
            track = self._tracks.pop(key)
        elif face or sum(k < 0 for k in self._tracks) < self.candidates:
            track = Track(found.boxes[row], np.zeros(4, np.float32), 0.0, found.landmarks[row], index,
                          self.smoother() if self.smoother is not None else None)
        else:
            return -1
        if face:
            key, self._next_id = self._next_id, self._next_id + 1
        else:
            key, self._next_candidate = self._next_candidate, self._next_candidate - 1
        self._tracks[key] = track
        return key

    def _smooth(self, faces: Faces, ids: np.ndarray, timestamp: Optional[float]) -> Faces:
        if self.smoother is None:
            return faces
        if timestamp is not None and self._previous_time is not None:
            dt = timestamp - self._previous_time
        else:
            dt = 1.0 / self.fps
        self._previous_time = timestamp
        boxes, landmarks = faces.boxes.copy(), faces.landmarks.copy()
        for j, track_id in enumerate(ids):
            values = self._tracks[int(track_id)].smoother(np.concatenate([boxes[j], landmarks[j].ravel()]), dt)
            boxes[j], landmarks[j] = values[:4], values[4:].reshape(5, 2)
        return Faces(boxes, faces.scores, landmarks)
