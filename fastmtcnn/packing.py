"""Small pyramid levels packed side by side into one P-Net input (one forward instead of one per level).

A P-Net forward has a fixed cost beside its work (OpenVINO: input and shape set-up, ~0.05-0.3 ms), which the
small levels of a pyramid are mostly made of. Packing puts those levels into one canvas, rows of levels ("shelves")
left to right, each at even offsets (P-Net's 2x2 pool then pairs the same rows and columns as for the level alone),
and forwards the canvas with P-Net's pool mask: everything but each level's own first-layer output is masked out of
the pool, so a level whose height or width is odd (its last pool window half outside it) still pools only itself.
Each level's score and offset maps are then the top-left `map_size` of the canvas maps at half its offsets,
exactly the maps of the level alone; no window that reads a neighbour or the gap is read.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

#: Added to P-Net's first-layer output outside every level (keeps it out of every max pool).
OUTSIDE = np.float32(-1e30)


def _even(value: int) -> int:
    return value + (value & 1)


def map_size(height: int, width: int) -> Tuple[int, int]:
    """P-Net's output map size for a (height, width) input: conv 3, pool 2 (ceil mode), conv 3, conv 3."""
    return -(-(height - 2) // 2) - 4, -(-(width - 2) // 2) - 4


@dataclass(frozen=True)
class Packing:
    """Where each level sits in the canvas: `offsets[k]` = (y, x) of level k (sizes[k] = (h, w)), both even."""

    sizes: Tuple[Tuple[int, int], ...]
    offsets: Tuple[Tuple[int, int], ...]
    height: int
    width: int

    def mask(self) -> np.ndarray:
        """P-Net's pool mask for the canvas: float32 (1, 1, height - 2, width - 2), 0 on each level's first-layer
        output (its (h - 2, w - 2) corner), OUTSIDE elsewhere."""
        mask = np.full((1, 1, self.height - 2, self.width - 2), OUTSIDE, np.float32)
        for (y, x), (h, w) in zip(self.offsets, self.sizes):
            mask[0, 0, y:y + h - 2, x:x + w - 2] = 0
        return mask

    def level_maps(self, prob: np.ndarray, reg: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
        """Level k's face probability (h', w') and offsets (4, h', w') from the canvas outputs prob (1, 2, H', W')
        and reg (1, 4, H', W'), as contiguous copies (the next forward overwrites the outputs)."""
        y, x = self.offsets[k][0] // 2, self.offsets[k][1] // 2
        rows, cols = map_size(*self.sizes[k])
        return (np.ascontiguousarray(prob[0, 1, y:y + rows, x:x + cols]),
                np.ascontiguousarray(reg[0, :, y:y + rows, x:x + cols]))


def pack_levels(sizes: Sequence[Tuple[int, int]]) -> Packing:
    """Shelf packing of levels (h, w) given largest first (a pyramid's order): the canvas is as wide as the first
    level (rounded up to even); each level goes right of the previous one on the current shelf when it fits, else
    starts a new shelf below. Offsets and the canvas size are even."""
    width = _even(max(w for _, w in sizes))
    offsets: List[Tuple[int, int]] = []
    x = y = shelf = 0
    for h, w in sizes:
        if x + w > width:
            y, x, shelf = y + _even(shelf), 0, 0
        offsets.append((y, x))
        x, shelf = x + _even(w), max(shelf, h)
    return Packing(tuple((int(h), int(w)) for h, w in sizes), tuple(offsets), _even(y + shelf), width)
