"""Drawing detections on images: the one place `detect --draw`, `video --draw` and the docs' figures draw faces.

Both functions return a BGR copy of the image; the input is not changed. Line widths and text grow with the
image (one pixel per 400 pixels of its longer side).
"""
from __future__ import annotations

import cv2
import numpy as np

from .detector import Faces

#: Colours of the five landmarks (left eye, right eye, nose, left and right mouth corner), BGR.
LANDMARK_COLORS = ((255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 0, 255), (0, 255, 255))


def _thickness(image: np.ndarray) -> int:
    return max(1, round(max(image.shape[:2]) / 400))


def draw_faces(image: np.ndarray, faces: Faces) -> np.ndarray:
    """A BGR copy of `image` (H, W, 3) with each face's box, score and five landmarks drawn on it."""
    canvas = image.copy()
    thickness = _thickness(image)
    for face in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        cv2.rectangle(canvas, (x1, y1), (x2 - 1, y2 - 1), (0, 255, 0), thickness)
        cv2.putText(canvas, f"{face.score:.2f}", (x1, max(0, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4 * thickness, (0, 255, 0), thickness)
        for (x, y), color in zip(face.landmarks, LANDMARK_COLORS):
            cv2.circle(canvas, (int(round(x)), int(round(y))), thickness + 1, color, -1)
    return canvas


def draw_tracks(image: np.ndarray, faces) -> np.ndarray:
    """`draw_faces` plus each face's id under its box: a copy of `image` (uint8 (H, W, 3) BGR); `faces` is a
    `fastmtcnn.video.TrackedFaces` of that image (pixel boxes)."""
    canvas = draw_faces(image, faces)
    scale = _thickness(image)
    for box, track_id in zip(faces.boxes, faces.ids):
        x1, y2 = int(round(box[0])), int(round(box[3]))
        cv2.putText(canvas, f"id {track_id}", (x1, min(image.shape[0] - 2, y2 + 14 * scale)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (0, 255, 255), scale)
    return canvas
