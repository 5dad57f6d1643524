"""The MTCNN cascade: image -> pyramid -> P-Net -> candidates -> R-Net -> O-Net -> faces.

Faithful to the authors' `detect_face.m`; all box arithmetic is in `kernels` (Numba), all network
evaluation behind `engines.Network` (OpenCV DNN or OpenVINO: this module never learns which). Boxes between
stages are float32 (n, 4) x1, y1, x2, y2 in 0-based inclusive pixel indices (the authors' 1-based values
minus one). A `Cascade` holds three networks and reusable buffers, so it is not thread-safe: `Detector`
gives each thread its own.

Work per image is bounded: each stage keeps at most `STAGE_CAPS` candidates (the best-scoring ones), sized far
above what any real photo yields at the accepted settings, so only degenerate inputs or thresholds near 0 reach
them; and `run` takes a `Deadline`, checked between pyramid levels, crop batches and stages.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from . import kernels
from .deadline import NO_DEADLINE, Deadline
from .engines import Engine, Network, choose_engine
from .nets import ONET, PNET, PNET_PADDED, RNET
from .packing import OUTSIDE, Packing, map_size, pack_levels
from .settings import CascadeSettings

_EMPTY_BOXES = np.zeros((0, 4), np.float32)


@dataclass(frozen=True)
class StageCaps:
    """Most candidates kept per step (the highest scores; ties: the later candidate, as NMS picks them).

    pnet_level: P-Net windows over the threshold in one pyramid level, before that level's NMS.
    proposals: P-Net boxes after the cross-level NMS, i.e. R-Net crops.
    refined: R-Net boxes after its NMS, i.e. O-Net crops.
    On the 82 shared photos (bench, dlib, 300-W Helen; up to 1920x1080) at the default settings the largest
    counts are 3,276 windows in a level, 2,053 proposals and 66 refined boxes (60x, 10x and 60x below the caps);
    at min_face_size=4, the smallest accepted, 10,307, 13,941 and 73.
    Thresholds near 0 reach them (every window is a candidate): the work stays bounded, the result is then
    that of the best-scoring candidates.
    """

    pnet_level: int = 200_000
    proposals: int = 20_000
    refined: int = 4_000


STAGE_CAPS = StageCaps()
#: Lengths (level pixels) the parts of levels P-Net runs on are rounded up to where every new input shape costs a
#: compilation (OpenVINO: 1.5-10 ms per P-Net shape): powers of two and 1.5 x them, so the shapes repeat.
PART_SIZES = np.array(sorted({int(m * 2 ** k) for k in range(3, 14) for m in (2, 3)}))


@dataclass(frozen=True)
class ShapeBuckets:
    """The few shapes the networks see when `Engine.buckets` is on (opt-in), whatever the image size.

    OpenVINO prepares kernels for every new input shape (1.5-10 ms per P-Net level, 3-9 ms per R-Net/O-Net batch
    size, measured); real traffic, whose photos come in many sizes, pays it on first sight of each. With buckets
    each P-Net level is padded (bottom, right) to a multiple of `side` pixels, with a pool mask that keeps the
    padding out of P-Net's ceil-mode max pool, so the score and offset maps over the level are exactly the
    unpadded ones (the rest is cut off); R-Net/O-Net batches of more than `small` crops are rounded up to a
    multiple of `batch` (up to powers of two below it), the extra crops' outputs cut off.
    """

    side: int = 16
    batch: int = 16
    small: int = 8

    def level(self, height: int, width: int) -> Tuple[int, int]:
        """(height, width) a level of that size is padded to."""
        return -(-height // self.side) * self.side, -(-width // self.side) * self.side

    def crops(self, count: int, most: int) -> int:
        """The batch size `count` crops are forwarded in (at most `most`)."""
        rounded = 1 << (count - 1).bit_length() if count <= self.small else -(-count // self.batch) * self.batch
        return min(rounded, most)


SHAPE_BUCKETS = ShapeBuckets()


def best_scores(scores: np.ndarray, cap: int) -> np.ndarray:
    """Indices (ascending, int64) of the `cap` highest of more than `cap` `scores` (ties: the later indices)."""
    return np.sort(np.argsort(scores, kind="stable")[len(scores) - cap:])


@dataclass
class CascadeResult:
    """Raw output: boxes float32 (n, 4) 0-based inclusive, scores (n,), landmarks (n, 5, 2) x, y pixels."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    @classmethod
    def empty(cls) -> "CascadeResult":
        return cls(_EMPTY_BOXES, np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))


class Cascade:
    """One thread's networks and buffers. `run(image, channels)` detects faces in one image."""

    def __init__(self, settings: CascadeSettings, caps: StageCaps = STAGE_CAPS, engine: Optional[Engine] = None):
        """`engine`: what runs the networks (default: OpenCV DNN, `choose_engine("opencv")`)."""
        self.settings = settings
        self.caps = caps
        self.engine = engine or choose_engine("opencv")
        self.buckets = SHAPE_BUCKETS if self.engine.buckets else None
        # parts of levels (`propose_in_areas`) in a few lengths where each new input shape costs a compilation
        self._part_sizes = PART_SIZES if self.engine.backend == "openvino" else None
        self.pnet, self.rnet, self.onet = (self.engine.network(spec) for spec in (self._pnet_spec, RNET, ONET))
        self.pnet_masked = self._masked_pnet()  # runs the packed small levels (`propose`), None when not packing
        self._packed: Optional[Tuple[Packing, np.ndarray, np.ndarray]] = None  # the last packing, canvas, mask
        self._crops: dict = {}  # input size -> reused float32 (max_batch, 3, size, size) blob
        self._pyramid = np.empty(0, np.float32)  # reused storage of the pyramid level blobs
        self._warm_up()

    @property
    def _pnet_spec(self):
        return PNET if self.buckets is None else PNET_PADDED

    def _masked_pnet(self) -> Optional[Network]:
        if not self.engine.pack_area:
            return None
        return self.pnet if self.buckets is not None else self.engine.network(PNET_PADDED)

    def _warm_up(self) -> None:
        """Run every stage once on synthetic data: compiles the kernels and sizes OpenCV's buffers."""
        image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        read_only = image.copy()
        read_only.flags.writeable = False  # Numba compiles read-only arrays (e.g. np.frombuffer) separately
        channels = np.array([2, 1, 0], np.int32)
        boxes = np.array([[8, 8, 40, 40], [-4, 20, 30, 70]], np.float32)
        for pixels in (image, read_only):
            self.propose(pixels, channels)
            self.refine(pixels, channels, boxes)
            self.output(pixels, channels, boxes)
            if self.engine.pack_area:  # the 64x64 pyramid was all packed (canvas views): a level alone too
                kernels.resize_normalize_into(pixels, channels, self._level_blob(14, 14)[0])
            self.propose_in_areas(pixels, channels, np.array([[8.0, 8.0, 40.0, 40.0]] * 3))  # parts of levels

    def shrink_buffers(self) -> None:
        """Free what a large image made P-Net's OpenCV buffers grow to: OpenCV keeps them at their largest size
        until the network is dropped, so P-Net is rebuilt (tens of ms) and run once on a 12x12 input."""
        self.pnet = self.engine.network(self._pnet_spec)  # the same engine and weights
        self.pnet_masked = self._masked_pnet()
        self._pyramid = np.empty(0, np.float32)
        self._packed = None
        blob = self._level_blob(12, 12)
        blob[...] = 0
        self._forward_level(blob)

    # ------------------------------------------------------------------------------ stage 1: P-Net
    def pyramid_scales(self, height: int, width: int) -> np.ndarray:
        """float64 (L,): the pyramid's scales for a height x width pixel image, largest first (`kernels`)."""
        return kernels.pyramid_scales(height, width, self.settings.min_face_size, self.settings.scale_factor)

    def propose(self, image: np.ndarray, channels: np.ndarray, deadline: Deadline = NO_DEADLINE,
                smallest_face: Optional[float] = None) -> np.ndarray:
        """Stage 1: squared, truncated candidate boxes float32 (n, 4) from P-Net over the pyramid. Levels of at
        most `Engine.pack_area` pixels are packed into one P-Net input (`packing`), the others run alone.
        `smallest_face` (pixels): only the pyramid's levels that see faces this large or larger (the same
        levels as the full pyramid's, its finest ones left out; the stream tracker's motion passes)."""
        height, width = image.shape[:2]
        scales = self.pyramid_scales(height, width)
        if smallest_face is not None:
            scales = scales[scales <= kernels.PNET_CELL / smallest_face]
        sizes = [kernels.pyramid_level_size(height, width, scale) for scale in scales]
        packed = [k for k, (level_h, level_w) in enumerate(sizes) if level_h * level_w <= self.engine.pack_area]
        packed = packed if len(packed) > 1 else []
        found: List[Tuple[np.ndarray, ...]] = [()] * len(sizes)
        for k, scale in enumerate(scales):
            if k in packed:
                continue
            deadline.check()
            blob = self._level_blob(*sizes[k])
            kernels.resize_normalize_into(image, channels, blob[0])
            prob, reg = self._forward_level(blob)  # views valid until the next forward: read them now (no copies)
            found[k] = self._level_candidates(prob[0, 1], reg[0], scale)
        if packed:
            deadline.check()
            packing, canvas, mask = self._canvas(tuple(sizes[k] for k in packed))
            for (y, x), (level_h, level_w), k in zip(packing.offsets, packing.sizes, packed):
                kernels.resize_normalize_into(image, channels, canvas[0, :, y:y + level_h, x:x + level_w])
            prob, reg = self.pnet_masked.forward(canvas, mask)
            for index, k in enumerate(packed):
                found[k] = self._level_candidates(*packing.level_maps(prob, reg, index), scales[k])
        return self._merge_levels(*(list(parts) for parts in zip(*found))) if found else _EMPTY_BOXES

    def _level_candidates(self, prob: np.ndarray, reg: np.ndarray, scale: float) -> Tuple[np.ndarray, ...]:
        """One level's P-Net maps prob (h, w), reg (4, h, w) -> its (boxes, scores, offsets) after its NMS."""
        level = kernels.candidates_from_scores(prob, reg, scale, self.settings.thresholds[0])
        if len(level[1]) > self.caps.pnet_level:
            level = tuple(part[best_scores(level[1], self.caps.pnet_level)] for part in level)
        keep = kernels.nms(level[0], level[1], self.settings.nms_pnet_level, False)
        return level[0][keep], level[1][keep], level[2][keep]

    def _canvas(self, sizes: Tuple[Tuple[int, int], ...]) -> Tuple[Packing, np.ndarray, np.ndarray]:
        """The packing of these level sizes, its canvas blob float32 (1, 3, H, W) and pool mask, kept for the
        next image of the same size. Outside the levels the canvas holds zeros (finite: the mask then wins). The
        canvas is padded to a shape bucket whether buckets are on or not: it is masked anyway, so a new image size
        seldom brings a new canvas shape (OpenVINO prepares kernels per shape) for the cost of a few pixels."""
        if self._packed is None or self._packed[0].sizes != sizes:
            packing = pack_levels(sizes)
            height, width = SHAPE_BUCKETS.level(packing.height, packing.width)
            packing = dataclasses.replace(packing, height=height, width=width)
            self._packed = packing, np.zeros((1, 3, packing.height, packing.width), np.float32), packing.mask()
        return self._packed

    def propose_in_regions(self, image: np.ndarray, channels: np.ndarray, regions: np.ndarray,
                           scales: np.ndarray, size: int) -> np.ndarray:
        """Stage 1 on parts of the image (the stream tracker's search around a face): P-Net on each square region
        (float32 (n, 4) 0-based inclusive, may reach past the image) resized to size x size, `scales[k]` being
        size / its side; squared, truncated candidates float32 (m, 4) in image pixels, as `propose`. One input
        shape for every region: OpenCV DNN sets a network up again (milliseconds) for each new shape."""
        boxes, scores, offsets = [], [], []
        blob = self._level_blob(size, size)
        for region, scale in zip(regions, scales):
            kernels.crop_resize_normalize(image, region[None], channels, blob)
            prob, reg = self._forward_level(blob)
            level = self._level_candidates(prob[0, 1], reg[0], scale)
            boxes.append(level[0] + region[:2][[0, 1, 0, 1]])
            scores.append(level[1])
            offsets.append(level[2])
        return self._merge_levels(boxes, scores, offsets)

    def propose_in_areas(self, image: np.ndarray, channels: np.ndarray, areas: np.ndarray) -> np.ndarray:
        """Stage 1 on a part of each pyramid level (the stream tracker's passes over new content or a lost face's
        surroundings): P-Net on the level's pixels under `areas[k]` (float (L, 4) pixel edges x1, y1, x2, y2 of the image, one row per scale
        of `pyramid_scales`; an empty row skips its level), one input per level. The windows it scores are the
        full pyramid's (same level, same 2-pixel grid), so their candidates are those `propose` finds there;
        squared, truncated candidates float32 (m, 4), as `propose`."""
        height, width = image.shape[:2]
        boxes, scores, offsets = [], [], []
        for scale, area in zip(self.pyramid_scales(height, width), np.asarray(areas, np.float64)):
            level_h, level_w = kernels.pyramid_level_size(height, width, scale)
            rows = _level_span(area[1], area[3], level_h / height, level_h, self._part_sizes)
            cols = _level_span(area[0], area[2], level_w / width, level_w, self._part_sizes)
            if rows is None or cols is None:
                continue
            part = self._level_blob(rows[1] - rows[0], cols[1] - cols[0])
            kernels.resize_part_normalize_into(image, channels, rows[0], cols[0], level_h, level_w, part[0])
            prob, reg = self._forward_level(part)
            map_h, map_w = map_size(level_h, level_w)
            level_prob = np.zeros((map_h, map_w), np.float32)  # 0: below any threshold outside the part
            level_reg = np.zeros((4, map_h, map_w), np.float32)
            top, left = rows[0] // 2, cols[0] // 2
            part_h, part_w = prob.shape[2:]
            level_prob[top:top + part_h, left:left + part_w] = prob[0, 1]
            level_reg[:, top:top + part_h, left:left + part_w] = reg[0]
            level = self._level_candidates(level_prob, level_reg, scale)
            boxes.append(level[0])
            scores.append(level[1])
            offsets.append(level[2])
        return self._merge_levels(boxes, scores, offsets)

    def _level_blob(self, level_h: int, level_w: int) -> np.ndarray:
        """A float32 (1, 3, level_h, level_w) view of the cascade's one pyramid buffer (grown when too small);
        each level overwrites the previous one, whose outputs have been read by then. With buckets the view is
        the top-left corner of a zeroed (1, 3, padded_h, padded_w) blob (`_forward_level` forwards that)."""
        padded_h, padded_w = (level_h, level_w) if self.buckets is None else self.buckets.level(level_h, level_w)
        size = 3 * padded_h * padded_w
        if self._pyramid.size < size:
            self._pyramid = np.empty(size, np.float32)
        blob = self._pyramid[:size].reshape(1, 3, padded_h, padded_w)
        if self.buckets is None:
            return blob
        blob[:, :, level_h:] = 0
        blob[:, :, :level_h, level_w:] = 0
        return blob[:, :, :level_h, :level_w]

    def _forward_level(self, level: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """P-Net on one level blob (from `_level_blob`): (prob (1, 2, h, w), offsets (1, 4, h, w)) views. With
        buckets, the padded blob around `level` runs with a mask of the padding, and the maps are cut to the level."""
        if self.buckets is None:
            return self.pnet.forward(level)
        level_h, level_w = level.shape[2:]
        padded_h, padded_w = self.buckets.level(level_h, level_w)
        blob = self._pyramid[:3 * padded_h * padded_w].reshape(1, 3, padded_h, padded_w)
        mask = np.zeros((1, 1, padded_h - 2, padded_w - 2), np.float32)
        mask[:, :, level_h - 2:] = OUTSIDE
        mask[:, :, :, level_w - 2:] = OUTSIDE
        map_h, map_w = map_size(level_h, level_w)
        return tuple(output[:, :, :map_h, :map_w] for output in self.pnet.forward(blob, mask))

    def _merge_levels(self, boxes: List[np.ndarray], scores: List[np.ndarray], offsets: List[np.ndarray]) -> np.ndarray:
        if not boxes:
            return _EMPTY_BOXES
        # The authors calibrate P-Net boxes with width x2 - x1 (no +1), unlike the later stages.
        return self._stage_end(np.concatenate(boxes), np.concatenate(scores), np.concatenate(offsets),
                               self.settings.nms_pnet_all, self.caps.proposals, extent_plus_one=False)

    @staticmethod
    def _stage_end(boxes: np.ndarray, scores: np.ndarray, offsets: np.ndarray, overlap: float, cap: int,
                   extent_plus_one: bool) -> np.ndarray:
        """End of stages 1 and 2: NMS (union overlap), the `cap` best survivors, calibrated with their offsets,
        squared and truncated to whole pixels. float32 (m, 4)."""
        keep = kernels.nms(boxes, scores, overlap, False)
        if len(keep) > cap:
            keep = keep[best_scores(scores[keep], cap)]
        calibrated = kernels.calibrate(boxes[keep], offsets[keep], extent_plus_one)
        return kernels.truncate_boxes(kernels.square(calibrated))

    # ------------------------------------------------------------------------------ stage 2: R-Net
    def refine(self, image: np.ndarray, channels: np.ndarray, boxes: np.ndarray,
               deadline: Deadline = NO_DEADLINE, threshold: Optional[float] = None,
               most: Optional[int] = None) -> np.ndarray:
        """Stage 2: R-Net on 24x24 crops of `boxes`; returns squared, truncated boxes float32 (m, 4).
        `threshold`: instead of the settings' R-Net threshold (the stream tracker's lower one for known faces);
        `most`: keep at most this many, the best-scoring (the stream tracker's search for a lost face)."""
        if not len(boxes):
            return _EMPTY_BOXES
        prob, offsets = self._forward_crops(self.rnet, image, channels, boxes, deadline)
        passed = prob[:, 1] > (self.settings.thresholds[1] if threshold is None else threshold)
        cap = self.caps.refined if most is None else min(most, self.caps.refined)
        return self._stage_end(boxes[passed], prob[passed, 1], offsets[passed], self.settings.nms_rnet, cap,
                               extent_plus_one=True)

    # ------------------------------------------------------------------------------ stage 3: O-Net
    def output(self, image: np.ndarray, channels: np.ndarray, boxes: np.ndarray,
               deadline: Deadline = NO_DEADLINE, threshold: Optional[float] = None) -> CascadeResult:
        """Stage 3: O-Net on 48x48 crops of `boxes` (float32 (n, 4) 0-based inclusive pixels); calibrated boxes,
        scores and landmarks (pixels) after the final NMS. `threshold`: instead of the settings' O-Net threshold."""
        if not len(boxes):
            return CascadeResult.empty()
        prob, offsets, points = self._forward_crops(self.onet, image, channels, boxes, deadline)
        threshold = self.settings.thresholds[2] if threshold is None else threshold
        return CascadeResult(*kernels.output_faces(boxes, prob, offsets, points, threshold, self.settings.nms_onet))

    def _forward_crops(self, network: Network, image: np.ndarray, channels: np.ndarray,
                       boxes: np.ndarray, deadline: Deadline = NO_DEADLINE) -> Tuple[np.ndarray, ...]:
        """Crop, resize and normalise the boxes into one reused batch blob and forward it, max_batch boxes
        at a time (so memory stays bounded however many candidates an image has). With one chunk the outputs are
        returned as the engine gives them (read once by the caller); with several, each chunk's are copied, since
        the next forward may overwrite them (`Network`)."""
        size, step = network.spec.input_size, self.settings.max_batch
        if size not in self._crops:
            self._crops[size] = np.zeros((step, 3, size, size), np.float32)  # zeros: rounded-up batches read past n
        blob = self._crops[size]
        if len(boxes) <= step:  # one forward: its outputs are read once, by the caller, before the next forward
            deadline.check()
            kernels.crop_resize_normalize(image, boxes, channels, blob)
            return self._forward_batch(network, blob, len(boxes))
        chunks = []
        for start in range(0, len(boxes), step):
            deadline.check()
            chunk = boxes[start:start + step]
            kernels.crop_resize_normalize(image, chunk, channels, blob)
            chunks.append([output.copy() for output in self._forward_batch(network, blob, len(chunk))])
        return tuple(np.concatenate([chunk[k] for chunk in chunks]) for k in range(len(chunks[0])))

    def _forward_batch(self, network: Network, blob: np.ndarray, count: int) -> Tuple[np.ndarray, ...]:
        """The outputs of the first `count` crops of `blob`, forwarded in a bucketed batch size when buckets are on
        (each crop's outputs depend on that crop alone)."""
        if self.buckets is None:
            return network.forward(blob[:count])
        outputs = network.forward(blob[:self.buckets.crops(count, len(blob))])
        return tuple(output[:count] for output in outputs)

    # ------------------------------------------------------------------------------ all stages
    def run(self, image: np.ndarray, channels: np.ndarray, deadline: Deadline = NO_DEADLINE) -> CascadeResult:
        """Faces in `image` uint8 (H, W, C); `channels` int32 (3,) maps source channels to R, G, B.
        Raises DetectionCancelled (between steps) once `deadline` has passed."""
        candidates = self.propose(image, channels, deadline)
        deadline.check()
        refined = self.refine(image, channels, candidates, deadline)
        deadline.check()
        return self.output(image, channels, refined, deadline)


def _level_span(low: float, high: float, level_per_pixel: float, level_size: int,
                sizes: Optional[np.ndarray] = None) -> Optional[Tuple[int, int]]:
    """Level pixels (start, stop) under image pixels [low, high) along one axis, for P-Net on that part alone:
    start even (P-Net's 2-pixel grid), at least one 12-pixel window long, and an even length unless it ends with
    the level (so its pooling windows are the level's own); None when empty or the level is too small. With
    `sizes` (even, ascending), the length is the first of them that fits the part, or the whole level."""
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low or level_size < kernels.PNET_CELL:
        return None
    start = max(0, int(np.floor(low * level_per_pixel)))
    start -= start % 2
    stop = min(level_size, int(np.ceil(high * level_per_pixel)))
    length = max(stop - start, kernels.PNET_CELL)
    if sizes is not None:
        length = int(sizes[np.searchsorted(sizes, length)]) if length <= sizes[-1] else level_size
    if stop - start < length:
        stop = min(level_size, start + length)
        start = max(0, stop - length)
        start -= start % 2
    if stop < level_size and (stop - start) % 2:
        stop += 1
    return start, stop
