"""Thumbnail kernels of the stream tracker's change check (`fastmtcnn.scene_change`).

A frame becomes a grid of cell means (exact integer sums, so every OpenCV version and platform gives the same
thumbnail); two thumbnails are aligned by the integer cell shift that best explains them (the camera's motion)
and compared cell by cell, each cell against the range of its 3x3 neighbourhood in the other (motion under one
cell is not change). float32 grids, 0-255.

Numba rather than Cython (like every kernel, see the package docstring): the cell sums are integer loops over
the frame's bytes and the shift search a loop over (2 max_shift + 1)^2 shifts of the grid, which NumPy would
run as a shifted copy per shift; Numba compiles them on first use, cached, without a build step, and
`nogil=True` keeps the server's event loop running during a frame's check.
"""
import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def cell_means(rows_of_pixels, depth, channels, cell):
    """Grey mean of each cell x cell block: uint8 (H, W * depth) (an (H, W, depth) image's rows, C-contiguous) ->
    float32 (H // cell, W // cell), 0-255, the mean of the source channels `channels` (int32 (3,), may repeat
    one channel). Rows and columns that do not fill a cell are left out."""
    rows, cols = rows_of_pixels.shape[0] // cell, rows_of_pixels.shape[1] // depth // cell
    width = cols * cell * depth
    out = np.zeros((rows, cols), np.float32)
    line = np.zeros(width, np.int32)
    c0, c1, c2 = channels[0], channels[1], channels[2]
    scale = 1.0 / (3.0 * cell * cell)
    for r in range(rows):
        line[:] = 0
        for y in range(r * cell, (r + 1) * cell):
            source = rows_of_pixels[y]
            for i in range(width):
                line[i] += source[i]
        for c in range(cols):
            total = 0
            for x in range(c * cell, (c + 1) * cell):
                total += line[x * depth + c0] + line[x * depth + c1] + line[x * depth + c2]
            out[r, c] = np.float32(total * scale)
    return out


@njit(cache=True, nogil=True)
def best_shift(previous, cells, weight, max_shift):
    """(dy, dx) in whole cells, |d| <= max_shift, minimising the mean absolute difference between cells[y, x] and
    previous[y - dy, x - dx] (clamped to the grid) where `weight` (bool, same shape) is True; (0, 0) unless the best
    shift explains at least a quarter of the still camera's difference (a flat or noisy background, or a moving
    object, must not pass for a pan)."""
    rows, cols = cells.shape
    best, best_dy, best_dx, still = np.inf, 0, 0, np.inf
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            total, count = 0.0, 0
            for y in range(rows):
                for x in range(cols):
                    if weight[y, x]:
                        py, px = min(max(y - dy, 0), rows - 1), min(max(x - dx, 0), cols - 1)
                        total += abs(cells[y, x] - previous[py, px])
                        count += 1
            if count == 0:
                continue
            cost = total / count
            if dy == 0 and dx == 0:
                still = cost
            if cost < best:
                best, best_dy, best_dx = cost, dy, dx
    if not best < 0.75 * still:
        return 0, 0
    return best_dy, best_dx


@njit(cache=True, nogil=True)
def changed_cells(previous, cells, dy, dx, threshold, reach):
    """bool (rows, cols): cells[y, x] (float32 (rows, cols), grey levels) lies more than `threshold` grey levels
    outside the range (min to max) of previous's cells within `reach` cells of (y - dy, x - dx) (clamped to the
    grid; reach 1: the 3x3 neighbourhood, 0: that cell only); cells with no (y - dy, x - dx) in the grid are False
    (the shift brought them in: nothing to compare them with). A shift of less than a cell mixes neighbouring
    cells, so with reach 1 it stays inside that range: only new content leaves it."""
    rows, cols = cells.shape
    out = np.zeros((rows, cols), np.bool_)
    for y in range(max(0, dy), min(rows, rows + dy)):  # cells the shift brings in from outside are not compared
        for x in range(max(0, dx), min(cols, cols + dx)):
            low, high = np.inf, -np.inf
            for ny in range(y - dy - reach, y - dy + reach + 1):
                for nx in range(x - dx - reach, x - dx + reach + 1):
                    value = previous[min(max(ny, 0), rows - 1), min(max(nx, 0), cols - 1)]
                    low, high = min(low, value), max(high, value)
            out[y, x] = cells[y, x] < low - threshold or cells[y, x] > high + threshold
    return out
