"""Ray Data integration (optional: `pip install "fastmtcnn[ray]"`): face detection as a `map_batches` stage.

    import ray
    from fastmtcnn.ray_data import FaceDetector, detect_faces, read_folder

    ds = read_folder("photos/")             # read_binary_files of the CLI's files: columns bytes, path
    ds = detect_faces(ds, actors=4, min_face_size=20)                      # or, by hand:
    # ds = ds.map_batches(FaceDetector, fn_constructor_kwargs={"min_face_size": 20}, batch_size=16,
    #                     compute=ray.data.ActorPoolStrategy(size=4), num_cpus=1)
    ds.write_parquet("faces/")

`FaceDetector` builds one `Detector` per actor (in `__init__`); `__call__` takes a batch (a dict of numpy
arrays, Ray's "numpy" batch format) with one image column and returns a `pyarrow.Table` with one row per
input row:

    path (kept input columns), width, height, num_faces int32,
    boxes list<float32> (num_faces * 4: x1, y1, x2, y2 of each face),
    scores list<float32> (num_faces), landmarks list<float32> (num_faces * 10: x, y of the 5 points),
    error string ("" when the image was read)

Flat lists are plain Arrow/Parquet types (no tensor extension); `unflatten(row)` gives back (N, 4), (N,),
(N, 5, 2) arrays. Faces are in `Detector.detect` order (score, high to low).

Image columns: "bytes" (encoded files, e.g. from `read_binary_files`; decoded by OpenCV exactly as the CLI
does, so results equal `fastmtcnn batch`), "image" (uint8 arrays, e.g. from `read_images`, which decodes with
PIL in RGB: set `color="rgb"`, the default for arrays) or "path" (files read by the actor). A bad image gives
an "error" row; the job goes on. The class itself does not import Ray, so it also works on plain dicts.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from .detector import Detector
from .image_input import decode_image

IMAGE_COLUMNS = ("bytes", "image", "path")


class FaceDetector:
    """Callable class for `Dataset.map_batches`: one Detector per actor, faces of each row's image.

    Args:
        image_column: column holding the images; default: the first of "bytes", "image", "path" in the batch.
        color: channel order of array images ("rgb" as `ray.data.read_images` gives them, or "bgr").
        keep_columns: input columns copied to the output when present (default: "path").
        num_threads: OpenCV/Numba threads per actor (default 1: Ray runs one actor per CPU).
        **detector_kwargs: `Detector` settings (min_face_size, thresholds, scale_factor, ..., and the engine:
            backend="auto" | "opencv" | "openvino", precision="f32" | "bf16").
    """

    def __init__(self, image_column: Optional[str] = None, color: str = "rgb",
                 keep_columns: Sequence[str] = ("path",), num_threads: Optional[int] = 1, **detector_kwargs: Any):
        self.detector = Detector(num_threads=num_threads, **detector_kwargs)
        self.image_column = image_column
        self.color = color
        self.keep_columns = tuple(keep_columns)

    def _column(self, batch: Dict[str, Any]) -> str:
        if self.image_column is not None:
            if self.image_column not in batch:
                raise ValueError(f"image column {self.image_column!r} is not in the batch (columns: {list(batch)})")
            return self.image_column
        for name in IMAGE_COLUMNS:
            if name in batch:
                return name
        raise ValueError(f"no image column in the batch (columns: {list(batch)}): pass image_column=..., or use a "
                         "'bytes' (encoded files), 'image' (uint8 arrays) or 'path' column")

    def _load(self, value: Any, column: str) -> Tuple[np.ndarray, str]:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return decode_image(bytes(value), self.detector.max_image_pixels), "bgr"
        if isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim == 1 and column == "bytes":
            return decode_image(value.tobytes(), self.detector.max_image_pixels), "bgr"
        if isinstance(value, str):
            with open(value, "rb") as handle:
                return decode_image(handle.read(), self.detector.max_image_pixels, source=value), "bgr"
        return np.asarray(value), self.color

    def detect_one(self, value: Any, column: str = "image") -> Dict[str, Any]:
        try:
            image, color = self._load(value, column)
            faces = self.detector.detect(image, color=color)
        except (ValueError, TypeError, OSError) as error:
            return {"width": 0, "height": 0, "num_faces": 0, "boxes": [], "scores": [], "landmarks": [],
                    "error": str(error) or type(error).__name__}
        return {"width": int(image.shape[1]), "height": int(image.shape[0]), "num_faces": len(faces),
                "boxes": faces.boxes.reshape(-1).tolist(), "scores": faces.scores.tolist(),
                "landmarks": faces.landmarks.reshape(-1).tolist(), "error": ""}

    def __call__(self, batch: Dict[str, Any]):
        import pyarrow as pa

        column = self._column(batch)
        rows = [self.detect_one(value, column) for value in batch[column]]
        floats = pa.list_(pa.float32())
        table = {name: pa.array(_as_list(batch[name])) for name in self.keep_columns if name in batch}
        table.update(
            width=pa.array([r["width"] for r in rows], pa.int32()),
            height=pa.array([r["height"] for r in rows], pa.int32()),
            num_faces=pa.array([r["num_faces"] for r in rows], pa.int32()),
            boxes=pa.array([r["boxes"] for r in rows], floats),
            scores=pa.array([r["scores"] for r in rows], floats),
            landmarks=pa.array([r["landmarks"] for r in rows], floats),
            error=pa.array([r["error"] for r in rows], pa.string()),
        )
        return pa.table(table)


def unflatten(row: Dict[str, Any]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes (N, 4), scores (N,), landmarks (N, 5, 2)) float32 from one output row's flat lists."""
    return (np.asarray(row["boxes"], np.float32).reshape(-1, 4), np.asarray(row["scores"], np.float32).reshape(-1),
            np.asarray(row["landmarks"], np.float32).reshape(-1, 5, 2))


def read_folder(input_dir, read_images: bool = False, num_cpus: float = 0, read_tasks: int = 2):
    """A Ray dataset of the images `fastmtcnn batch` would process (jpg/jpeg/png/webp/bmp, any case, recursive,
    sorted): columns bytes, path (`read_binary_files`), or image, path with `read_images=True` (PIL, RGB).

    Reading runs with `num_cpus` (default 0): when the detector actors hold every CPU (say 2 actors on 2 CPUs)
    read tasks that need a CPU are never scheduled and the job waits forever. At most `read_tasks` read at once.
    """
    import inspect
    from pathlib import Path

    import ray.data

    from .image_input import find_images

    files = [str(Path(input_dir) / path) for path in find_images(Path(input_dir))]
    if not files:
        raise ValueError(f"no images (jpg, jpeg, png, webp, bmp) under {input_dir}")
    reader = ray.data.read_images if read_images else ray.data.read_binary_files
    kwargs: Dict[str, Any] = {"include_paths": True}
    if read_images:
        kwargs["mode"] = "RGB"
    parameters = inspect.signature(reader).parameters
    if "num_cpus" in parameters:  # newer Ray: named remote args (ray_remote_args is deprecated)
        kwargs["num_cpus"] = num_cpus
    else:
        kwargs["ray_remote_args"] = {"num_cpus": num_cpus}
    if num_cpus == 0 and "concurrency" in parameters:
        kwargs["concurrency"] = read_tasks  # 0-CPU tasks are otherwise unbounded: dozens of worker processes
    return reader(files, **kwargs)


def detect_faces(dataset, actors: int = 2, batch_size: int = 16, num_cpus: float = 1, **kwargs: Any):
    """`dataset.map_batches(FaceDetector, ...)` on a fixed pool of `actors` actors, `num_cpus` each; kwargs go
    to FaceDetector. Leave CPUs for the stages before it, or read with num_cpus=0 (`read_folder` does)."""
    import ray.data

    return dataset.map_batches(FaceDetector, fn_constructor_kwargs=kwargs, batch_size=batch_size,
                               batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=actors),
                               num_cpus=num_cpus)


def _as_list(values: Any) -> list:
    return values.tolist() if isinstance(values, np.ndarray) else list(values)
