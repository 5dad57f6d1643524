"""Synthetic 640x480 clips for the stream tests and the video benchmark, made from the shipped photos.

Each clip is a list of BGR uint8 frames plus, for every frame, the boxes where the pasted faces are (the
"scene truth", used to count id switches); `write_clip` stores them as MJPG .avi (the codec every
opencv-python wheel can write and read) so the tests also go through `cv2.VideoCapture`.

    pan_zoom       one face (examples/astronaut.jpg) panning and zooming in and out
    crossing       two faces moving across each other, one above the other
    leave_enter    a face leaves on the left, later another enters from the right
    hard_cut       the astronaut, then a hard cut to the group photo (6 faces)
    blank          a face, a stretch of blank grey frames, the face again

Two more exercise the bound on extra full passes (no faces to score): `textured_pan` (the camera pans over a
face-free textured scene) and `cut_every_frame` (two pictures alternating).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
ASTRONAUT = REPO_ROOT / "examples" / "astronaut.jpg"
GROUP = REPO_ROOT / "tests" / "fixtures" / "group_640x480.jpg"
SIZE = (640, 480)  # width, height
FPS = 30.0

# Face regions (x1, y1, x2, y2) of the photos, with room around the face (MTCNN's boxes are tighter).
ASTRONAUT_FACE = (150, 25, 300, 205)
GROUP_FACE = (95, 20, 185, 135)


@dataclass
class Clip:
    name: str
    frames: List[np.ndarray]
    faces: List[List[Tuple[int, Tuple[float, float, float, float]]]] = field(default_factory=list)
    # per frame: (scene face number, pasted patch box) for each face in view; face numbers are the truth ids
    events: List[int] = field(default_factory=list)  # frames where a face appears that was not there before


def _photo(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise FileNotFoundError(f"cannot read {path}")
    return image


def _background(seed: int = 0) -> np.ndarray:
    """A smooth, face-free grey-brown backdrop (blurred noise), 480x640x3."""
    noise = np.random.default_rng(seed).integers(60, 200, (30, 40, 3), dtype=np.uint8)
    return cv2.resize(cv2.GaussianBlur(noise, (5, 5), 0), SIZE, interpolation=cv2.INTER_CUBIC)


def _paste(canvas: np.ndarray, patch: np.ndarray, x: float, y: float) -> Tuple[float, float, float, float]:
    """Paste `patch` with its top-left at (x, y) (rounded, clipped to the canvas); returns its box."""
    height, width = patch.shape[:2]
    x0, y0 = int(round(x)), int(round(y))
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + width, canvas.shape[1]), min(y0 + height, canvas.shape[0])
    if cx1 > cx0 and cy1 > cy0:
        canvas[cy0:cy1, cx0:cx1] = patch[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    return float(x0), float(y0), float(x0 + width), float(y0 + height)


def _patch(photo: np.ndarray, region: Tuple[int, int, int, int], side: int) -> np.ndarray:
    x1, y1, x2, y2 = region
    crop = photo[y1:y2, x1:x2]
    scale = side / max(crop.shape[:2])
    return cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def pan_zoom(frames: int = 60) -> Clip:
    """The astronaut photo moved and zoomed: the face pans ~4 px/frame and its size goes 0.8x -> 1.3x -> 0.9x."""
    photo = _photo(ASTRONAUT)
    clip = Clip("pan_zoom", [])
    for t in range(frames):
        phase = t / max(frames - 1, 1)
        scale = 0.8 + 0.5 * np.sin(np.pi * phase) - 0.1 * phase
        centre_x = 120 + 360 * phase  # where the face centre goes, in the frame
        centre_y = 200 + 60 * np.sin(2 * np.pi * phase)
        face_x, face_y = (ASTRONAUT_FACE[0] + ASTRONAUT_FACE[2]) / 2, (ASTRONAUT_FACE[1] + ASTRONAUT_FACE[3]) / 2
        matrix = np.float32([[scale, 0, centre_x - scale * face_x], [0, scale, centre_y - scale * face_y]])
        clip.frames.append(cv2.warpAffine(photo, matrix, SIZE, flags=cv2.INTER_LINEAR,
                                          borderMode=cv2.BORDER_REPLICATE))
        box = np.array(ASTRONAUT_FACE, np.float64) * scale + np.tile(matrix[:, 2], 2)
        clip.faces.append([(0, tuple(box))])
    return clip


def crossing(frames: int = 60) -> Clip:
    """Two faces (astronaut, 110 px; a group-photo face, 100 px) cross paths, one 70 px above the other."""
    first = _patch(_photo(ASTRONAUT), ASTRONAUT_FACE, 130)
    second = _patch(_photo(GROUP), GROUP_FACE, 120)
    background = _background(1)
    clip = Clip("crossing", [])
    for t in range(frames):
        phase = t / max(frames - 1, 1)
        canvas = background.copy()
        a = _paste(canvas, first, 40 + 440 * phase, 150)
        b = _paste(canvas, second, 480 - 440 * phase, 230)
        clip.frames.append(canvas)
        clip.faces.append([(0, a), (1, b)])
    return clip


def leave_enter(frames: int = 70) -> Clip:
    """Face 0 walks out on the left (gone by ~frame 28); face 1 comes in from the right from frame 35."""
    first = _patch(_photo(ASTRONAUT), ASTRONAUT_FACE, 130)
    second = _patch(_photo(GROUP), GROUP_FACE, 120)
    background = _background(2)
    clip = Clip("leave_enter", [], events=[35])
    for t in range(frames):
        canvas = background.copy()
        faces = []
        x = 200 - 12 * t
        if x > -first.shape[1]:
            faces.append((0, _paste(canvas, first, x, 160)))
        if t >= 35:
            faces.append((1, _paste(canvas, second, 640 - 9 * (t - 35), 180)))
        clip.frames.append(canvas)
        clip.faces.append(faces)
    return clip


def hard_cut(frames: int = 60, cut: int = 25, group_boxes=()) -> Clip:
    """The astronaut (pan_zoom) for `cut` frames, then the group photo (6 faces) panning 0.8 px/frame.
    `group_boxes` (k, 4), the faces of the unmoved group photo, become scene faces 1..k after the cut."""
    moving, group = pan_zoom(frames), _photo(GROUP)
    clip = Clip("hard_cut", [], events=[cut])
    for t in range(frames):
        if t < cut:
            clip.frames.append(moving.frames[t])
            clip.faces.append(moving.faces[t])
            continue
        dx = (t - cut) * 0.8
        clip.frames.append(cv2.warpAffine(group, np.float32([[1, 0, dx], [0, 1, 0]]), SIZE,
                                          borderMode=cv2.BORDER_REPLICATE))
        clip.faces.append([(k + 1, (x1 + dx, y1, x2 + dx, y2)) for k, (x1, y1, x2, y2) in enumerate(group_boxes)])
    return clip


def blank(frames: int = 60, start: int = 20, stop: int = 40) -> Clip:
    """pan_zoom's face, blank grey frames from `start` to `stop`, then the face again."""
    moving = pan_zoom(frames)
    clip = Clip("blank", [], events=[stop])
    for t in range(frames):
        if start <= t < stop:
            clip.frames.append(np.full((SIZE[1], SIZE[0], 3), 128, np.uint8))
            clip.faces.append([])
        else:
            clip.frames.append(moving.frames[t])
            clip.faces.append(moving.faces[t])
    return clip


def textured_pan(frames: int = 60, speed: int = 10) -> Clip:
    """A face-free scene of random 8 px colour blocks panned `speed` px per frame: camera motion everywhere."""
    rng = np.random.default_rng(3)
    width = SIZE[0] + speed * frames
    scene = cv2.resize(rng.integers(0, 256, (SIZE[1] // 8, width // 8, 3), dtype=np.uint8), (width // 8 * 8, SIZE[1]),
                       interpolation=cv2.INTER_NEAREST)
    clip = Clip("textured_pan", [])
    for t in range(frames):
        clip.frames.append(np.ascontiguousarray(scene[:, speed * t:speed * t + SIZE[0]]))
        clip.faces.append([])
    return clip


def cut_every_frame(frames: int = 60) -> Clip:
    """The group photo and its mirror image, alternating: a hard cut on every frame."""
    group = _photo(GROUP)
    pictures = (group, np.ascontiguousarray(group[:, ::-1]))
    return Clip("cut_every_frame", [pictures[t % 2] for t in range(frames)], [[] for _ in range(frames)])


CLIPS: Dict[str, Callable[[], Clip]] = {"pan_zoom": pan_zoom, "crossing": crossing, "leave_enter": leave_enter,
                                        "hard_cut": hard_cut, "blank": blank}


def write_clip(clip: Clip, path: Path) -> Path:
    """Write the frames as MJPG .avi at FPS; raises RuntimeError if this OpenCV cannot write it."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write MJPG .avi to {path}")
    for frame in clip.frames:
        writer.write(frame)
    writer.release()
    return path


def read_clip(path: Path) -> List[np.ndarray]:
    """The frames as decoded back (MJPG is lossy: tests compare against detection on these same frames)."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


# --------------------------------------------------------------------------------------------- scoring

#: Per-frame faces are counted from this fraction of the detector's min face size up (a 20 px face's boxes are
#: 18.7-20 px in these clips); the only face of the clips under it is hard_cut's 12 px one (boxes 13.6-14.2 px).
COUNTED_SIDE = 0.75

def _centre_inside(box, region) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return region[0] <= cx <= region[2] and region[1] <= cy <= region[3]


def new_faces(per_frame, min_face_size: float = 0, min_iou: float = 0.3) -> List[Tuple[int, np.ndarray]]:
    """(frame, box) of each per-frame face (longer side >= min_face_size) that overlaps no face of the frame
    before by min_iou: a face entering, a cut, the end of a blank stretch."""
    from fastmtcnn.evaluation.matching import iou_matrix

    found = []
    for index in range(1, len(per_frame)):
        boxes = per_frame[index].boxes
        sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        overlaps = iou_matrix(boxes, per_frame[index - 1].boxes)
        for j in np.flatnonzero(sides >= min_face_size):
            if overlaps.shape[1] == 0 or overlaps[j].max() < min_iou:
                found.append((index, boxes[j]))
    return found


def compare_with_per_frame(tracked, per_frame, clip: Clip, iou: float = 0.5, min_face_size: float = 0):
    """Tracker results against per-frame detection of the same frames.

    tracked: TrackedFaces per frame; per_frame: Faces per frame. Per-frame faces whose box's longer side is under
    COUNTED_SIDE x `min_face_size` (the detector's setting) are not counted: the detector is asked for faces of
    min_face_size and up, and a face of that size gets boxes of 0.9-1.0x it. Returns dict:
    recall (per-frame faces matched at IoU >= iou), matched, reference, missed ([(frame, box)] not matched),
    landmark_px (median over matched faces of their mean point distance), id_switches (a scene face's tracker
    id changing between two consecutive frames where the tracker has it; coming back after an absence is a new
    track, not a switch), face_frames (frames x scene faces the tracker has).
    """
    from fastmtcnn.evaluation.matching import iou_matrix

    matched = reference = 0
    distances, missed = [], []
    for index, (ours, theirs) in enumerate(zip(tracked, per_frame)):
        overlaps = iou_matrix(theirs.boxes, ours.boxes)
        sides = np.maximum(theirs.boxes[:, 2] - theirs.boxes[:, 0], theirs.boxes[:, 3] - theirs.boxes[:, 1])
        counted = np.flatnonzero(sides >= COUNTED_SIDE * min_face_size)
        reference += len(counted)
        used = set()
        for j in counted:
            candidates = [k for k in np.argsort(-overlaps[j]) if overlaps[j, k] >= iou and k not in used]
            if not candidates:
                missed.append((index, theirs.boxes[j].tolist()))
                continue
            used.add(candidates[0])
            matched += 1
            distances.append(float(np.linalg.norm(ours.landmarks[candidates[0]] - theirs.landmarks[j], axis=1).mean()))
    switches, presences, last = 0, 0, {}
    for index, ours in enumerate(tracked):
        for scene_id, region in (clip.faces[index] if index < len(clip.faces) else []):
            inside = [int(ours.ids[k]) for k in range(len(ours)) if _centre_inside(ours.boxes[k], region)]
            if not inside:
                continue
            presences += 1
            if scene_id in last and last[scene_id][0] == index - 1 and last[scene_id][1] != inside[0]:
                switches += 1
            last[scene_id] = (index, inside[0])
    return {"recall": matched / reference if reference else 1.0, "matched": matched, "reference": reference,
            "missed": missed,
            "landmark_px": float(np.median(distances)) if distances else 0.0, "id_switches": switches,
            "face_frames": presences}
