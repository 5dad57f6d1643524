"""Seeded synthetic multi-face composites: annotated faces pasted at several scales into other images.

Training sets of portraits (one large centred face per image, as the shared training set) never show P-Net
and R-Net a small face, nor a negative crop between crowded faces. A composite is a square canvas (320 to
400 px) of g x g training images (g in GRIDS: square crops scaled into the cells, their faces shrinking with
them, a face cut by its crop kept as `ignore`), on which 2 to 6 single annotated faces of other images are
pasted, each with a margin of its surroundings, resized so the face is 12 px to 45% of the canvas
(log-uniform: as many small faces as large ones), no two pastes overlapping. The margin fades linearly into
the canvas (feathered edges: no rectangle for a net to learn); a tile face a paste hides in part becomes
`ignore` (never a positive, never under a negative), one hidden for more than 90% is dropped. Boxes and
landmarks move with the pixels (pixel-edge coordinates scale as `cv2.resize` maps them: u -> u * factor).

Everything is planned from the seed when the records are made (boxes known up front, no pixels held):
`CompositeRecord.load()` cuts and pastes on demand, so thousands of composites cost no memory and worker
processes rebuild the same pixels. The same (records, count, seed) gives the same composites.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .readers import FaceRecord

#: Smallest pasted face side (px): P-Net's window.
MIN_FACE = 12
#: Largest pasted face side, as a share of the canvas' short side.
MAX_FACE_SHARE = 0.45
#: Context kept around a pasted face, per side, as a share of its box side; the outer half of it fades out.
MARGIN = 0.3
#: Canvas side range (px).
CANVAS_SHORT_SIDE = (320, 400)
PLACEMENT_TRIES = 30
#: A tile face covered by pasted faces for more than this share of its box is dropped (less: `ignore`).
COVERED_SHARE = 0.9
#: Tiles per side of a composite (a 400 px training image with a 200 px face gives faces of ~90 to ~30 px).
GRIDS = (2, 3, 4, 6)


@dataclass(frozen=True)
class Paste:
    """One pasted face: `region` (x1, y1, x2, y2 integer pixel edges in the donor image) resized to `size`
    (width, height) with its top-left corner at `at` (x, y) in the canvas; `feather` px of linear fade."""

    donor: FaceRecord
    region: Tuple[int, int, int, int]
    size: Tuple[int, int]
    at: Tuple[int, int]
    feather: float

    def move(self, points: np.ndarray) -> np.ndarray:
        """Donor pixel-edge coordinates (..., 2) -> canvas coordinates."""
        x1, y1, x2, y2 = self.region
        factor = np.array([self.size[0] / (x2 - x1), self.size[1] / (y2 - y1)])
        return (points - np.array([x1, y1])) * factor + np.array(self.at)


@dataclass
class CompositeRecord(FaceRecord):
    """A FaceRecord whose image is a `side` x `side` canvas: `tiles` (whole training images, square crops,
    pasted edge to edge in a grid) then `pastes` (single faces with feathered margins); `boxes`/`landmarks`/
    `ignore` hold the tiles' faces (a face cut by its tile's crop is `ignore`) then the pasted ones."""

    side: int = 0
    tiles: Tuple[Paste, ...] = ()
    pastes: Tuple[Paste, ...] = ()

    def load(self) -> np.ndarray:
        """BGR uint8 (side, side, 3), the same pixels on every call."""
        image = np.zeros((self.side, self.side, 3), np.uint8)
        for paste in self.tiles + self.pastes:
            blend(image, paste)
        return image


def feather_mask(width: int, height: int, feather: float) -> np.ndarray:
    """float32 (height, width): 1 inside, falling linearly to ~0 over `feather` px at every edge."""
    def ramp(n: int) -> np.ndarray:
        distance = np.minimum(np.arange(n), np.arange(n)[::-1]) + 0.5
        return np.clip(distance / max(feather, 1e-6), 0.0, 1.0).astype(np.float32)
    return np.minimum.outer(ramp(height), ramp(width))


def blend(canvas: np.ndarray, paste: Paste) -> None:
    """Paste `paste` into the BGR uint8 `canvas` in place (alpha = its feather mask)."""
    x1, y1, x2, y2 = paste.region
    patch = paste.donor.load()[y1:y2, x1:x2]
    shrinking = paste.size[0] < x2 - x1
    patch = cv2.resize(patch, paste.size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    alpha = feather_mask(paste.size[0], paste.size[1], paste.feather)[:, :, None]
    x, y = paste.at
    window = canvas[y:y + paste.size[1], x:x + paste.size[0]]
    window[:] = np.round(alpha * patch + (1.0 - alpha) * window).astype(np.uint8)


def _image_size(record: FaceRecord, sizes: Dict[str, Tuple[int, int]]) -> Tuple[int, int]:
    """(width, height) of a record's image from its pixels or its file header (cached by path)."""
    if record.pixels is not None:
        return record.pixels.shape[1], record.pixels.shape[0]
    if record.image not in sizes:
        from ..image_header import read_image_size

        with open(record.image, "rb") as handle:
            size = read_image_size(handle.read(1 << 20))
        sizes[record.image] = (size.width, size.height)
    return sizes[record.image]


def _donor_region(box: np.ndarray, width: int, height: int) -> Tuple[int, int, int, int]:
    """The face box with MARGIN of context per side, integer pixel edges inside the donor image."""
    margin = MARGIN * max(box[2] - box[0], box[3] - box[1])
    x1, y1 = max(0, int(math.floor(box[0] - margin))), max(0, int(math.floor(box[1] - margin)))
    x2, y2 = min(width, int(math.ceil(box[2] + margin))), min(height, int(math.ceil(box[3] + margin)))
    return x1, y1, x2, y2


def _overlaps(box: np.ndarray, taken: List[np.ndarray]) -> bool:
    return any(box[0] < t[2] and t[0] < box[2] and box[1] < t[3] and t[1] < box[3] for t in taken)


def _plan_paste(rng: np.random.Generator, donor: FaceRecord, face: int, canvas: Tuple[int, int],
                taken: List[np.ndarray], sizes: Dict[str, Tuple[int, int]]) -> Optional[Paste]:
    """A paste of the donor's face `face` at a seeded scale and place clear of `taken` regions, or None."""
    box = donor.boxes[face]
    region = _donor_region(box, *_image_size(donor, sizes))
    face_side = max(box[2] - box[0], box[3] - box[1])
    largest = max(MIN_FACE + 1.0, MAX_FACE_SHARE * min(canvas))
    side = math.exp(rng.uniform(math.log(MIN_FACE), math.log(largest)))
    factor = side / face_side
    size = (max(2, int(round((region[2] - region[0]) * factor))), max(2, int(round((region[3] - region[1]) * factor))))
    if size[0] >= canvas[0] or size[1] >= canvas[1]:
        return None
    for _ in range(PLACEMENT_TRIES):
        at = (int(rng.integers(0, canvas[0] - size[0] + 1)), int(rng.integers(0, canvas[1] - size[1] + 1)))
        placed = np.array([at[0], at[1], at[0] + size[0], at[1] + size[1]], np.float64)
        if not _overlaps(placed, taken):
            taken.append(placed)
            return Paste(donor, region, size, at, feather=0.5 * MARGIN * side)
    return None


def _moved_faces(paste: Paste) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The donor's faces that `paste` shows (boxes (n, 4), landmarks (n, 5, 2), ignore (n,) in canvas
    coordinates): faces inside its region as annotated, faces the region cuts as `ignore`."""
    donor, (x1, y1, x2, y2) = paste.donor, paste.region
    boxes = donor.boxes
    inside = (boxes[:, 0] >= x1) & (boxes[:, 1] >= y1) & (boxes[:, 2] <= x2) & (boxes[:, 3] <= y2)
    cut = ~inside & (boxes[:, 0] < x2) & (boxes[:, 2] > x1) & (boxes[:, 1] < y2) & (boxes[:, 3] > y1)
    shown = inside | cut
    moved = paste.move(np.clip(boxes[shown].reshape(-1, 2, 2), [x1, y1], [x2, y2])).reshape(-1, 4)
    return moved, paste.move(donor.landmarks[shown]), donor.ignore[shown] | cut[shown]


def _covered(faces: Tuple[np.ndarray, np.ndarray, np.ndarray], regions: List[np.ndarray]):
    """Tile faces under the pasted `regions` (which do not overlap each other): those covered for more than
    COVERED_SHARE of their box dropped, those covered in part made `ignore`."""
    boxes, points, ignore = faces
    covered = np.zeros(len(boxes))
    for region in regions:
        width = np.clip(np.minimum(boxes[:, 2], region[2]) - np.maximum(boxes[:, 0], region[0]), 0, None)
        height = np.clip(np.minimum(boxes[:, 3], region[3]) - np.maximum(boxes[:, 1], region[1]), 0, None)
        covered += width * height
    covered /= np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-6)
    keep = covered <= COVERED_SHARE
    return boxes[keep], points[keep], (ignore | (covered > 0))[keep]


def _tiles(rng: np.random.Generator, records: Sequence[FaceRecord], side: int, grid: int,
           sizes: Dict[str, Tuple[int, int]]) -> List[Paste]:
    """grid x grid random records, each a seeded square crop (the short side) scaled to one cell."""
    cell = side // grid
    tiles = []
    for row in range(grid):
        for column in range(grid):
            record = records[int(rng.integers(len(records)))]
            width, height = _image_size(record, sizes)
            crop = min(width, height)
            x1, y1 = int(rng.integers(0, width - crop + 1)), int(rng.integers(0, height - crop + 1))
            tiles.append(Paste(record, (x1, y1, x1 + crop, y1 + crop), (cell, cell), (column * cell, row * cell),
                               feather=0.0))
    return tiles


def make_composite(records: Sequence[FaceRecord], index: int, seed: int, grids: Sequence[int] = GRIDS,
                   faces: Tuple[int, int] = (2, 6), sizes: Optional[Dict[str, Tuple[int, int]]] = None
                   ) -> CompositeRecord:
    """Composite `index` of `seed`: a square canvas (side 320 to 400 px) of g x g tiles of `records`
    (g drawn from `grids`; the tiles' faces shrink with them), then faces[0] to faces[1] single faces of
    other records pasted where they overlap no face (only faces that are not ignored are pasted)."""
    sizes = {} if sizes is None else sizes
    rng = np.random.default_rng((seed, index))
    grid = int(rng.choice(grids))
    side = grid * (int(rng.integers(*CANVAS_SHORT_SIDE)) // grid)
    tiles = _tiles(rng, records, side, grid, sizes)
    pastes, taken, pasted = [], [], []
    donors = [k for k, r in enumerate(records) if (~r.ignore).any()]
    for _ in range(int(rng.integers(faces[0], faces[1] + 1)) if donors else 0):
        donor = records[donors[int(rng.integers(len(donors)))]]
        face = int(rng.choice(np.flatnonzero(~donor.ignore)))
        paste = _plan_paste(rng, donor, face, (side, side), taken, sizes)
        if paste is not None:
            pastes.append(paste)
            pasted.append((paste.move(donor.boxes[face].reshape(1, 2, 2)).reshape(1, 4),
                           paste.move(donor.landmarks[face:face + 1]), np.zeros(1, bool)))
    shown = [_covered(_moved_faces(tile), taken) for tile in tiles] + pasted
    boxes, points, ignore = (np.concatenate([part[k] for part in shown]) for k in range(3))
    return CompositeRecord(f"composite_{seed}_{index}", boxes.astype(np.float32), points.astype(np.float32), ignore,
                           side=side, tiles=tuple(tiles), pastes=tuple(pastes))


def synthetic_composites(records: Sequence[FaceRecord], count: int, seed: int) -> List[CompositeRecord]:
    """`count` seeded composites of `records` (see the module docstring); [] when count is 0 or no record
    has a face to paste."""
    usable = [record for record in records if len(record.boxes)]
    if count <= 0 or len(usable) < 2:
        return []
    sizes: Dict[str, Tuple[int, int]] = {}
    return [make_composite(usable, index, seed, sizes=sizes) for index in range(count)]
