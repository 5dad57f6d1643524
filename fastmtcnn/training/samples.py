"""Training samples per stage, as in the paper: negatives (IoU < 0.3 with every face), positives
(IoU > 0.65), part faces (0.4 to 0.65) and landmark faces, in the ratio 3 : 1 : 1 : 2.

P-Net's come from random square crops of the training images. R-Net's and O-Net's are the cascade's own
hard examples: the boxes that the project's `Cascade.propose` (and `Cascade.refine` for O-Net) return on the
training images with the weights trained so far, labelled by IoU; random crops only top up a kind the
mining did not yield enough of. Landmark faces are the cascade's boxes around annotated faces first, then
random crops (the paper takes them from CelebA crops).
Every crop is cut by the detector's own kernel (`kernels.crop_resize_normalize`: zero padding outside the
image, INTER_AREA), so a net sees in training exactly what it sees in the cascade.

Box conventions: crop boxes are integer-valued 0-based inclusive (x1, y1, x2, y2), the cascade's; face boxes
are pixel edges (readers). Targets are what the cascade decodes: offsets (gt - box) / size with size
x2 - x1 for P-Net and x2 - x1 + 1 after it (`kernels.calibrate`), landmarks (point - x1) / (x2 - x1 + 1)
(`kernels.landmarks_in_boxes`), five x fractions then five y fractions.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .. import kernels
from ..evaluation.matching import iou_matrix
from ..nets import channel_map
from .readers import FaceRecord

NEGATIVE, POSITIVE, PART, LANDMARK = 0, 1, 2, 3
KIND_NAMES = ("negative", "positive", "part", "landmark")
#: The paper's mix, negatives : positives : part : landmark.
PAPER_RATIO = (3, 1, 1, 2)
NEGATIVE_IOU, PART_IOU, POSITIVE_IOU = 0.3, 0.4, 0.65
STAGE_SIZES = {"pnet": 12, "rnet": 24, "onet": 48}
_BGR = channel_map("bgr", 3)


@dataclass
class SampleSet:
    """Crops and targets of one stage.

    images: float16 (n, 3, S, S) normalised RGB in image orientation (as the cascade crops them);
    kinds: int8 (n,) NEGATIVE/POSITIVE/PART/LANDMARK; offsets: float32 (n, 4) (zero where unused);
    landmarks: float32 (n, 10) five x then five y fractions of the box (zero where unused);
    mined: bool (n,), True for crops of boxes the cascade proposed (R-Net/O-Net), False for random crops.
    """

    images: np.ndarray
    kinds: np.ndarray
    offsets: np.ndarray
    landmarks: np.ndarray
    mined: np.ndarray

    def __len__(self) -> int:
        return len(self.kinds)

    def counts(self) -> Dict[str, int]:
        """Samples per kind, and how many of them the cascade mined."""
        counts = {name: int(np.sum(self.kinds == kind)) for kind, name in enumerate(KIND_NAMES)}
        counts.update({f"mined_{name}": int(np.sum(self.mined & (self.kinds == kind)))
                       for kind, name in enumerate(KIND_NAMES)})
        return counts

    def subset(self, count: Optional[int], seed: int) -> "SampleSet":
        """A seeded random subset of `count` samples (all of them when count is None or larger)."""
        if count is None or count >= len(self):
            return self
        keep = np.sort(np.random.default_rng(seed).permutation(len(self))[:count])
        return SampleSet(self.images[keep], self.kinds[keep], self.offsets[keep], self.landmarks[keep],
                         self.mined[keep])

    def save(self, path: Path) -> None:
        """Write an .npz through a temporary file and a rename (an interrupted save leaves no cache)."""
        temporary = Path(f"{path}.tmp")
        with open(temporary, "wb") as handle:
            np.savez(handle, images=self.images, kinds=self.kinds, offsets=self.offsets, landmarks=self.landmarks,
                     mined=self.mined)
        temporary.replace(path)

    @classmethod
    def load(cls, path: Path) -> "SampleSet":
        with np.load(path) as data:
            mined = data["mined"] if "mined" in data.files else np.zeros(len(data["kinds"]), bool)
            return cls(data["images"], data["kinds"], data["offsets"], data["landmarks"], mined)

    @classmethod
    def concatenate(cls, parts: Sequence["SampleSet"], size: int) -> "SampleSet":
        if not parts:
            return cls(np.zeros((0, 3, size, size), np.float16), np.zeros(0, np.int8),
                       np.zeros((0, 4), np.float32), np.zeros((0, 10), np.float32), np.zeros(0, bool))
        return cls(*(np.concatenate([getattr(p, name) for p in parts])
                     for name in ("images", "kinds", "offsets", "landmarks", "mined")))


def to_caffe_orientation(images: np.ndarray) -> np.ndarray:
    """(N, 3, H, W) crops -> the authors' transposed blob (N, 3, W, H), float32, contiguous."""
    return np.ascontiguousarray(np.swapaxes(images, 2, 3), dtype=np.float32)


# ------------------------------------------------------------------------------------ labels and targets
def label_boxes(boxes: np.ndarray, record: FaceRecord) -> Tuple[np.ndarray, np.ndarray]:
    """Kind (int8 (n,): NEGATIVE, POSITIVE, PART, or -1 = unused: IoU 0.3 to 0.4 or overlapping an ignored
    face) and best-matching face index (int (n,)) of crop boxes float32 (n, 4) 0-based inclusive."""
    edges = boxes.astype(np.float64) + np.array([0, 0, 1, 1])
    ious = iou_matrix(edges, record.boxes)
    kinds = np.full(len(boxes), -1, np.int8)
    if not len(record.boxes):
        kinds[:] = NEGATIVE
        return kinds, np.zeros(len(boxes), int)
    cared = np.where(record.ignore[None, :], -1.0, ious)
    best = cared.argmax(axis=1)
    best_iou = cared[np.arange(len(boxes)), best]
    kinds[ious.max(axis=1) < NEGATIVE_IOU] = NEGATIVE
    kinds[(best_iou >= PART_IOU) & (best_iou <= POSITIVE_IOU)] = PART
    kinds[best_iou > POSITIVE_IOU] = POSITIVE
    return kinds, best


def offset_targets(boxes: np.ndarray, faces: np.ndarray, extent_plus_one: bool) -> np.ndarray:
    """float32 (n, 4): offsets that `kernels.calibrate(boxes, ., extent_plus_one)` turns into the face boxes
    `faces` (pixel edges, (n, 4)), i.e. the cascade's 0-based inclusive box [x1, y1, x2 - 1, y2 - 1]."""
    extra = 1.0 if extent_plus_one else 0.0
    size = np.column_stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2).astype(np.float64) + extra
    inclusive = faces.astype(np.float64) - np.array([0, 0, 1, 1])
    return ((inclusive - boxes) / np.maximum(size, 1e-6)).astype(np.float32)


def landmark_targets(boxes: np.ndarray, points: np.ndarray) -> np.ndarray:
    """float32 (n, 10): points (n, 5, 2) as the fractions `kernels.landmarks_in_boxes` decodes."""
    width = (boxes[:, 2:3] - boxes[:, 0:1] + 1).astype(np.float64)
    height = (boxes[:, 3:4] - boxes[:, 1:2] + 1).astype(np.float64)
    xs = (points[:, :, 0] - boxes[:, 0:1]) / width
    ys = (points[:, :, 1] - boxes[:, 1:2]) / height
    return np.concatenate([xs, ys], axis=1).astype(np.float32)


# ------------------------------------------------------------------------------------ random crops
def _square_boxes(x1: np.ndarray, y1: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Integer-valued 0-based inclusive squares float32 (n, 4)."""
    x1, y1, size = np.floor(x1), np.floor(y1), np.maximum(np.round(size), 2)
    return np.column_stack([x1, y1, x1 + size - 1, y1 + size - 1]).astype(np.float32)


def random_background_boxes(rng: np.random.Generator, height: int, width: int, count: int,
                            min_size: int = 12) -> np.ndarray:
    """`count` squares anywhere in a height x width image, side `min_size` to half the short side (pixels):
    float32 (count, 4) 0-based inclusive."""
    top = max(min_size + 1, min(height, width) // 2)
    size = rng.integers(min_size, top, count).astype(np.float64)
    x1 = rng.uniform(0, np.maximum(width - size, 1))
    y1 = rng.uniform(0, np.maximum(height - size, 1))
    return _square_boxes(x1, y1, size)


def random_face_boxes(rng: np.random.Generator, face: np.ndarray, count: int, jitter: float = 0.2) -> np.ndarray:
    """`count` squares float32 (count, 4) 0-based inclusive around one face (pixel edges (4,)): side 0.8 min to
    1.25 max of its sides, centre moved by up to `jitter` of the side; gives positives and part faces (and some
    negatives)."""
    width, height = face[2] - face[0], face[3] - face[1]
    size = rng.uniform(0.8 * min(width, height), 1.25 * max(width, height), count)
    cx = (face[0] + face[2]) / 2 + rng.uniform(-jitter, jitter, count) * width
    cy = (face[1] + face[3]) / 2 + rng.uniform(-jitter, jitter, count) * height
    return _square_boxes(cx - size / 2, cy - size / 2, size)


def random_near_face_boxes(rng: np.random.Generator, face: np.ndarray, count: int) -> np.ndarray:
    """`count` small squares float32 (count, 4) 0-based inclusive, side 12 px to 0.6 of the face's longer side,
    overlapping the neighbourhood of a face (pixel edges (4,)): hard negatives (eyes, mouths, hair, edges)."""
    width, height = face[2] - face[0], face[3] - face[1]
    size = rng.uniform(12, max(13.0, 0.6 * max(width, height)), count)
    x1 = face[0] + rng.uniform(-0.5, 1.0, count) * width - size / 2
    y1 = face[1] + rng.uniform(-0.5, 1.0, count) * height - size / 2
    return _square_boxes(x1, y1, size)


def _candidates(rng: np.random.Generator, record: FaceRecord, image_shape: Tuple[int, ...]) -> np.ndarray:
    height, width = image_shape[:2]
    parts = [random_background_boxes(rng, height, width, 24)]
    for face in record.boxes[~record.ignore]:
        parts += [random_face_boxes(rng, face, 24), random_near_face_boxes(rng, face, 12)]
    return np.concatenate(parts)


def _take(rng: np.random.Generator, indices: np.ndarray, count: int) -> np.ndarray:
    return rng.permutation(indices)[:count]


# ------------------------------------------------------------------------------------ assembling a stage
@dataclass(frozen=True)
class Quota:
    """Samples to take per image and kind (the paper's 3 : 1 : 1 : 2 scaled by `per_image`)."""

    negative: int = 3
    positive: int = 1
    part: int = 1
    landmark: int = 2

    @classmethod
    def scaled(cls, per_image: float) -> "Quota":
        return cls(*(int(round(r * per_image)) for r in PAPER_RATIO))

    def of(self, kind: int) -> int:
        return (self.negative, self.positive, self.part, self.landmark)[kind]


#: Where each of the five points (image-left eye, image-right eye, nose, image-left and image-right mouth corner)
#: comes from in a mirrored face: the left and right points swap.
MIRRORED_ORDER = [1, 0, 2, 4, 3]


def _flip(image: np.ndarray, record: FaceRecord) -> Tuple[np.ndarray, FaceRecord]:
    """Mirror an image and its faces (landmark order stays image-left first). Points map x -> width - x,
    as box edges do: the shipped cascade's landmarks on a mirrored image sum with the original ones to
    width + 0.4 px (300 training images, standard error 0.1), so width - 1 - x would teach O-Net a shift."""
    width = image.shape[1]
    boxes = record.boxes.copy()
    boxes[:, [0, 2]] = width - record.boxes[:, [2, 0]]
    points = record.landmarks[:, MIRRORED_ORDER].copy()
    points[:, :, 0] = width - points[:, :, 0]
    return np.ascontiguousarray(image[:, ::-1]), FaceRecord(record.image, boxes, points, record.ignore)


def _crop_set(image: np.ndarray, boxes: np.ndarray, kinds: np.ndarray, match: np.ndarray, record: FaceRecord,
              size: int, extent_plus_one: bool) -> SampleSet:
    images = np.empty((max(len(boxes), 1), 3, size, size), np.float32)
    if len(boxes):
        kernels.crop_resize_normalize(image, np.ascontiguousarray(boxes, np.float32), _BGR, images)
    offsets = np.zeros((len(boxes), 4), np.float32)
    points = np.zeros((len(boxes), 10), np.float32)
    if len(record.boxes):
        faces = record.boxes[match]
        with_box = (kinds == POSITIVE) | (kinds == PART)
        offsets[with_box] = offset_targets(boxes[with_box], faces[with_box], extent_plus_one)
        marked = kinds == LANDMARK
        points[marked] = landmark_targets(boxes[marked], record.landmarks[match[marked]])
    return SampleSet(images[:len(boxes)].astype(np.float16), kinds.astype(np.int8), offsets, points,
                     np.zeros(len(boxes), bool))


@dataclass
class _Chosen:
    """The crops picked for one image so far: per pick, boxes (k, 4), their kind, the face each matches and
    whether the cascade mined them."""

    boxes: List[np.ndarray] = dataclasses.field(default_factory=list)
    kinds: List[np.ndarray] = dataclasses.field(default_factory=list)
    match: List[np.ndarray] = dataclasses.field(default_factory=list)
    mined: List[np.ndarray] = dataclasses.field(default_factory=list)

    def add(self, boxes: np.ndarray, match: np.ndarray, picked: np.ndarray, kind: int, mined: bool) -> int:
        """Record `boxes[picked]` (float32 (n, 4)) as samples of `kind`, each of face `match[picked]`; how many."""
        self.boxes.append(boxes[picked])
        self.kinds.append(np.full(len(picked), kind, np.int8))
        self.match.append(match[picked])
        self.mined.append(np.full(len(picked), mined))
        return len(picked)

    def samples(self, image: np.ndarray, record: FaceRecord, stage: str) -> SampleSet:
        """The crops and targets of what was picked, for `stage`."""
        if not self.boxes:
            return SampleSet.concatenate([], STAGE_SIZES[stage])
        samples = _crop_set(image, np.concatenate(self.boxes), np.concatenate(self.kinds),
                            np.concatenate(self.match), record, STAGE_SIZES[stage], stage != "pnet")
        samples.mined = np.concatenate(self.mined)
        return samples


def image_samples(image: np.ndarray, record: FaceRecord, stage: str, quota: Quota, rng: np.random.Generator,
                  proposals: Optional[np.ndarray] = None) -> SampleSet:
    """One image's samples for `stage` (image: BGR uint8 (H, W, 3), `record` its faces): from `proposals`
    (the cascade's boxes, float32 (n, 4)) first when given, topped up with random crops. Landmark faces are
    boxes with IoU >= 0.4 around a face that has all five points, the cascade's own first: O-Net must place
    the points in the boxes R-Net gives it, which need not be drawn like the annotated ones."""
    pools = []
    if proposals is not None and len(proposals):
        pools.append(np.ascontiguousarray(proposals, np.float32))
    pools.append(_candidates(rng, record, image.shape))
    chosen = _Chosen()
    for kind in (NEGATIVE, POSITIVE, PART):
        need = quota.of(kind)
        for pool, boxes in enumerate(pools):
            if need <= 0:
                break
            kinds, match = label_boxes(boxes, record)
            picked = _take(rng, np.flatnonzero(kinds == kind), need)
            need -= chosen.add(boxes, match, picked, kind, pool < len(pools) - 1)
    has_points = ~record.ignore & np.all(np.isfinite(record.landmarks), axis=(1, 2))
    if quota.landmark and has_points.any():
        need = quota.landmark
        random_pool = np.concatenate([random_face_boxes(rng, face, 16, jitter=0.1)
                                      for face in record.boxes[has_points]])
        for pool, boxes in enumerate(pools[:-1] + [random_pool]):
            kinds, match = label_boxes(boxes, record)
            picked = _take(rng, np.flatnonzero(((kinds == POSITIVE) | (kinds == PART)) & has_points[match]), need)
            need -= chosen.add(boxes, match, picked, LANDMARK, pool < len(pools) - 1)
    return chosen.samples(image, record, stage)


@dataclass(frozen=True)
class Mining:
    """Where R-Net/O-Net candidates come from: the cascade in `weights_dir` (see `cascade_proposer`). Plain
    data, so worker processes can build their own cascade from it."""

    stage: str
    weights_dir: Optional[str] = None  # None: the shipped weights
    min_face_size: Optional[float] = None
    thresholds: Tuple[float, float, float] = (0.6, 0.7, 0.7)

    def proposer(self) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        return cascade_proposer(self.stage, self.weights_dir, self.min_face_size, self.thresholds)


Proposer = Callable[[np.ndarray, np.ndarray], np.ndarray]
_WORKER_PROPOSER: List[Optional[Proposer]] = [None]


def _one_image(record: FaceRecord, number: int, stage: str, quota: Quota, seed: int,
               propose: Optional[Proposer]) -> SampleSet:
    """The samples of image `number`, from its own seeded generator (so any split over workers agrees)."""
    rng = np.random.default_rng((seed, number))
    image = record.load()
    if rng.integers(2):
        image, record = _flip(image, record)
    proposals = None if propose is None else propose(image, record.boxes)
    return image_samples(image, record, stage, quota, rng, proposals)


def _start_worker(mining: Optional[Mining]) -> None:
    from ..runtime import set_num_threads

    set_num_threads(1)
    _WORKER_PROPOSER[0] = None if mining is None else mining.proposer()


def _worker_image(job) -> SampleSet:
    return _one_image(*job, _WORKER_PROPOSER[0])


def stage_samples(records: Sequence[FaceRecord], stage: str, quota: Quota, seed: int,
                  propose: Union[Proposer, Mining, None] = None, progress: Optional[Callable[[int], None]] = None,
                  workers: int = 1) -> SampleSet:
    """All samples of a stage. `propose(bgr_image, face_boxes) -> boxes float32 (n, 4)` mines R-Net/O-Net
    candidates (a `Mining`, or a callable for one process); None = random crops only (P-Net). Half the
    images are mirrored (seeded per image). `workers` > 1 cuts the images in that many processes (a
    `Mining` or None only); the result is the same for any number of workers."""
    jobs = [(record, number, stage, quota, seed) for number, record in enumerate(records)]
    parts = []
    if workers <= 1 or len(records) < 2:
        proposer = propose.proposer() if isinstance(propose, Mining) else propose
        for job in jobs:
            parts.append(_one_image(*job, proposer))
            if progress is not None:
                progress(1)
        return SampleSet.concatenate(parts, STAGE_SIZES[stage])
    if propose is not None and not isinstance(propose, Mining):
        raise ValueError("workers > 1 needs propose=Mining(...) (each worker builds its own cascade) or None")
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")  # no fork of a process holding OpenCV/Numba threads
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(propose,)) as pool:
        for part in pool.map(_worker_image, jobs, chunksize=8):
            parts.append(part)
            if progress is not None:
                progress(1)
    return SampleSet.concatenate(parts, STAGE_SIZES[stage])


#: The mining cascade's min_face_size steps; "auto" takes the largest <= MINING_FACE_FRACTION x the smallest face.
MINING_MIN_FACES = (20.0, 40.0, 80.0)
MINING_FACE_FRACTION = 0.6


def mining_min_face(faces: np.ndarray) -> float:
    """min_face_size for mining an image with face boxes (n, 4) (pixel edges): the largest step of
    MINING_MIN_FACES at most 0.6 x its smallest face side (20 for a face-free image). Candidates of
    faces far smaller than the annotated ones are never positives, and the pyramid costs (12 / min_face)^2."""
    if not len(faces):
        return MINING_MIN_FACES[0]
    smallest = float(np.min(np.minimum(faces[:, 2] - faces[:, 0], faces[:, 3] - faces[:, 1])))
    fitting = [size for size in MINING_MIN_FACES if size <= MINING_FACE_FRACTION * smallest]
    return fitting[-1] if fitting else MINING_MIN_FACES[0]


def cascade_proposer(stage: str, weights_dir: Optional[str], min_face_size: Optional[float] = None,
                     thresholds: Tuple[float, float, float] = (0.6, 0.7, 0.7)
                     ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """propose(bgr_image, face_boxes) -> boxes float32 (n, 4), 0-based inclusive: for R-Net samples what
    `Cascade.propose` (P-Net + NMS + calibration + squaring) returns with the weights in `weights_dir`,
    for O-Net samples `Cascade.refine` of those. min_face_size None = per image, `mining_min_face`."""
    from ..engines import choose_engine
    from ..pipeline import Cascade
    from ..settings import CascadeSettings

    engine = dataclasses.replace(choose_engine("opencv"), weights_dir=weights_dir)

    cascades: Dict[float, Cascade] = {}

    def propose(image: np.ndarray, faces: np.ndarray) -> np.ndarray:
        size = float(min_face_size) if min_face_size is not None else mining_min_face(faces)
        if size not in cascades:
            cascades[size] = Cascade(CascadeSettings(min_face_size=size, thresholds=thresholds), engine=engine)
        cascade = cascades[size]
        boxes = cascade.propose(image, _BGR)
        return cascade.refine(image, _BGR, boxes) if stage == "onet" else boxes

    return propose


# ------------------------------------------------------------------------------------ face-free images
def synthetic_backgrounds(count: int, seed: int, size: int = 256) -> List[FaceRecord]:
    """Face-free BGR images made here (smooth noise at several scales, gradients, rectangles, ellipses and
    lines): extra negatives with textures the face crops lack."""
    rng = np.random.default_rng(seed)
    records = []
    for index in range(count):
        canvas = np.zeros((size, size, 3), np.float32)
        for cells in (4, 16, 64):
            noise = rng.uniform(0, 255, (cells, cells, 3)).astype(np.float32)
            canvas += cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC) * rng.uniform(0.1, 0.5)
        image = np.clip(canvas / canvas.max() * 255, 0, 255).astype(np.uint8)
        for _ in range(int(rng.integers(3, 12))):
            color = tuple(int(c) for c in rng.integers(0, 256, 3))
            x1, y1, x2, y2 = (int(v) for v in rng.integers(0, size, 4))
            shape = rng.integers(3)
            if shape == 0:
                cv2.rectangle(image, (x1, y1), (x2, y2), color, int(rng.integers(-1, 6)) or -1)
            elif shape == 1:
                cv2.ellipse(image, (x1, y1), (int(rng.integers(3, 60)), int(rng.integers(3, 60))),
                            float(rng.uniform(0, 180)), 0, 360, color, int(rng.integers(-1, 6)) or -1)
            else:
                cv2.line(image, (x1, y1), (x2, y2), color, int(rng.integers(1, 8)))
        records.append(FaceRecord(f"synthetic_background_{index}", np.zeros((0, 4), np.float32),
                                  np.zeros((0, 5, 2), np.float32), np.zeros(0, bool), image))
    return records
