"""The public API: `Detector(...).detect(image) -> Faces`.

Coordinates are pixels of the input image, x right, y down. Boxes are (x1, y1, x2, y2) with (x1, y1) the
top-left corner of the first pixel inside the box and (x2, y2) the bottom-right corner of the last one,
so the width is x2 - x1 (the authors' 1-based inclusive box [a, b] is [a - 1, b] here). Landmarks are
(x, y) points in image order: left eye in the image (the subject's right eye), right eye, nose,
left mouth corner, right mouth corner.
"""
from __future__ import annotations

import dataclasses
import json
import threading
from dataclasses import dataclass
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .engines import choose_engine
from .errors import SettingsError
from .image_input import ImageLike, load_image
from .nets import channel_map
from .pipeline import Cascade, CascadeResult
from .runtime import set_num_threads
from .settings import DEFAULT_MAX_PIXELS, DEFAULT_NMS_THRESHOLDS, DEFAULT_THRESHOLDS, CascadeSettings


@dataclass(frozen=True)
class Face:
    """One detected face: box (x1, y1, x2, y2), score in [0, 1], landmarks ((x, y) x 5)."""

    box: Tuple[float, float, float, float]
    score: float
    landmarks: Tuple[Tuple[float, float], ...]

    def to_dict(self) -> Dict[str, Any]:
        return {"box": [round(v, 3) for v in self.box], "score": round(self.score, 6),
                "landmarks": [[round(x, 3), round(y, 3)] for x, y in self.landmarks]}


class Faces:
    """Detections of one image, sorted by score (highest first).

    Attributes: `boxes` float32 (N, 4) x1, y1, x2, y2; `scores` float32 (N,); `landmarks` float32 (N, 5, 2).
    Iterating gives `Face` records; `len()` is the number of faces (0 when none were found).
    """

    def __init__(self, boxes: np.ndarray, scores: np.ndarray, landmarks: np.ndarray):
        order = np.argsort(-scores, kind="stable")
        self.boxes = np.ascontiguousarray(boxes[order], dtype=np.float32).reshape(-1, 4)
        self.scores = np.ascontiguousarray(scores[order], dtype=np.float32).reshape(-1)
        self.landmarks = np.ascontiguousarray(landmarks[order], dtype=np.float32).reshape(-1, 5, 2)

    @classmethod
    def from_cascade(cls, result: CascadeResult) -> "Faces":
        """Convert the cascade's 0-based inclusive boxes to pixel-edge boxes (x2, y2 one past the last pixel)."""
        boxes = result.boxes.copy()
        boxes[:, 2:] += 1
        return cls(boxes, result.scores, result.landmarks)

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, index: int) -> Face:
        return Face(tuple(float(v) for v in self.boxes[index]), float(self.scores[index]),
                    tuple((float(x), float(y)) for x, y in self.landmarks[index]))

    def __iter__(self) -> Iterator[Face]:
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        return f"Faces({len(self)} faces, scores={np.round(self.scores, 3).tolist()})"

    def to_list(self) -> List[Dict[str, Any]]:
        return [face.to_dict() for face in self]

    def to_json(self) -> str:
        """JSON array of faces: [{"box": [x1, y1, x2, y2], "score": s, "landmarks": [[x, y] x 5]}]."""
        return json.dumps(self.to_list())


class Detector:
    """MTCNN face detector (Zhang et al. 2016) on OpenCV DNN or OpenVINO.

    Args:
        min_face_size: smallest face side to find, in pixels (sets the first pyramid scale, 12 / min_face_size).
        thresholds: face-score thresholds of P-Net, R-Net and O-Net.
        scale_factor: ratio between pyramid levels.
        nms_thresholds: overlaps (P-Net within a level, P-Net across levels, R-Net, O-Net "min" overlap).
        num_threads: threads for OpenCV and Numba, or None to leave them alone. Process-wide: this calls
            `fastmtcnn.set_num_threads`, which changes every detector (and OpenCV user) in the process.
            OpenVINO runs each forward on this many threads (None: OpenCV's current count).
        max_image_pixels: larger images, or images whose first pyramid level is larger, are refused.
        settings: a ready `CascadeSettings` instead of the five keywords above (which must then be left alone).
        backend: "opencv" (OpenCV DNN), "openvino" (needs `pip install "fastmtcnn[openvino]"`) or "auto"
            (OpenVINO when it is installed, else OpenCV DNN). `self.backend` says which one runs.
        precision: "f32" (exact: OpenVINO gives OpenCV DNN's faces) or "bf16" (OpenVINO only, an approximation;
            on a CPU without native BF16 it falls back to "f32" with a logged warning). `self.precision` says
            which one runs.
        weights: folder with det1/det2/det3 .prototxt + .caffemodel (e.g. from `fastmtcnn train`);
            None = the authors' weights shipped with the package.
        cache_dir: OpenVINO's compiled-model cache (later processes load the nets instead of compiling them):
            None = $FASTMTCNN_CACHE_DIR, else the user's cache folder (~/.cache/fastmtcnn/openvino on Linux);
            a folder; or False for no cache. OpenCV DNN writes nothing.
        shape_buckets: pad P-Net levels and round R-Net/O-Net batches to a few shapes (same faces; OpenVINO
            prepares kernels once per shape). None = off: measured, it costs more than it saves (README Engines).
            OpenVINO, or OpenCV DNN from 5.x (4.x computes the masked P-Net wrong: SettingsError).

    The accepted ranges are `CascadeSettings`'; a value outside them raises `SettingsError` (a ValueError).
    Thread-safe: each thread that calls `detect` gets its own networks and buffers.
    """

    def __init__(self, min_face_size: float = 20, thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                 scale_factor: float = 0.709, nms_thresholds: Sequence[float] = DEFAULT_NMS_THRESHOLDS,
                 num_threads: Optional[int] = None, max_image_pixels: int = DEFAULT_MAX_PIXELS,
                 *, settings: Optional[CascadeSettings] = None, backend: str = "auto", precision: str = "f32",
                 weights: Optional[str] = None, cache_dir: Union[str, bool, None] = None,
                 shape_buckets: Optional[bool] = None):
        from_keywords = CascadeSettings.create(min_face_size, thresholds, scale_factor, nms_thresholds,
                                               max_image_pixels)
        if settings is not None and from_keywords != CascadeSettings():
            raise SettingsError("pass either settings=CascadeSettings(...) or the individual keywords, not both")
        self.settings = settings if settings is not None else from_keywords
        if num_threads is not None:
            set_num_threads(num_threads)
        self.engine = dataclasses.replace(choose_engine(backend, precision, num_threads, cache_dir, shape_buckets),
                                          weights_dir=None if weights is None else str(weights))
        self._local = threading.local()
        self._cascade()  # build and warm the nets and kernels now, not on the first request

    @property
    def max_image_pixels(self) -> int:
        return self.settings.max_image_pixels

    def _cascade(self) -> Cascade:
        cascade = getattr(self._local, "cascade", None)
        if cascade is None:
            cascade = self._local.cascade = Cascade(self.settings, engine=self.engine)
        return cascade

    @property
    def backend(self) -> str:
        """The engine that runs the networks: "opencv" or "openvino"."""
        return self.engine.backend

    @property
    def precision(self) -> str:
        """The precision the networks run in: "f32" or "bf16"."""
        return self.engine.precision

    def detect(self, image: ImageLike, color: str = "bgr") -> Faces:
        """Faces in `image`: a uint8 array (H, W, 3) in `color` order ('bgr' as from cv2.imread, or 'rgb'),
        (H, W) gray, (H, W, 4) BGRA/RGBA, a file path, encoded image bytes (always decoded as BGR), or the
        `LoadedImage` that `fastmtcnn.image_input.load_image` returned (used as is, not checked again)."""
        pixels, order = load_image(image, color, self.settings.max_image_pixels)
        self.settings.check_pyramid_size(pixels.shape[0], pixels.shape[1])
        result = self._cascade().run(pixels, channel_map(order, pixels.shape[2]))
        return Faces.from_cascade(result)

    def detect_batch(self, images: Sequence[ImageLike], color: str = "bgr",
                     workers: int = 1) -> List[Union[Faces, Exception]]:
        """`detect` on each image, results in input order; a bad image gives its ValueError/TypeError
        in its slot instead of failing the batch. `workers` > 1 runs that many threads."""
        def one(image: ImageLike) -> Union[Faces, Exception]:
            try:
                return self.detect(image, color)
            except (ValueError, TypeError) as error:
                return error

        if workers <= 1:
            return [one(image) for image in images]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fastmtcnn") as pool:
            return list(pool.map(one, images))
