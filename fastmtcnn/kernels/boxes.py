"""Box kernels: P-Net score maps to candidates, NMS, calibration, squaring, truncation, O-Net's stage end.

Numba rather than Cython (the package docstring gives the general reasons): these are short loops whose work
depends on the data (NMS suppresses as it goes, P-Net's candidates are the cells over a threshold, MATLAB's `fix`
is mirrored per value), which NumPy would run as many temporaries and Cython would need a compiler at install
time for.

Boxes are float32 (N, 4) x1, y1, x2, y2 in 0-based *inclusive* pixel indices, i.e. the authors' MATLAB 1-based
values minus 1. float64 is only used for scalars (so that MATLAB's double arithmetic is mirrored where it decides
an integer, e.g. `fix`) and for O(n) scratch in `nms`.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

#: P-Net geometry: it sees 12x12 windows with a stride of 2 pixels.
PNET_STRIDE = 2
PNET_CELL = 12


# --------------------------------------------------------------------------------------------------
# Boxes
# --------------------------------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def candidates_from_scores(prob, reg, scale, threshold):
    """P-Net output map of one pyramid level -> candidate boxes (the authors' generateBoundingBox).

    prob: float32 (h, w) face probability; reg: float32 (4, h, w) offsets dx1, dy1, dx2, dy2; scale:
    pyramid scale (float); threshold: float, compared in float32 (``prob >= float32(threshold)``, as
    NumPy 2 and MATLAB single arithmetic do). Cells are visited row-major (i = row, j = column).
    Returns (boxes float32 (n, 4) in image pixels, scores float32 (n,), offsets float32 (n, 4)).
    """
    h, w = prob.shape
    t = np.float32(threshold)
    s = np.float64(scale)
    n = 0
    for i in range(h):
        for j in range(w):
            if prob[i, j] >= t:
                n += 1
    boxes = np.empty((n, 4), np.float32)
    scores = np.empty(n, np.float32)
    offsets = np.empty((n, 4), np.float32)
    k = 0
    for i in range(h):
        for j in range(w):
            if prob[i, j] >= t:
                # MATLAB (1-based): x1 = fix((stride*j0 + 1)/scale), x2 = fix((stride*j0 + cell)/scale) with
                # j0 the 0-based column; the trailing "- 1.0" is where the MATLAB +1 is handled (-> 0-based).
                # float64 division so fix() truncates exactly as MATLAB's double does.
                boxes[k, 0] = np.float32(np.trunc((PNET_STRIDE * j + 1.0) / s) - 1.0)
                boxes[k, 1] = np.float32(np.trunc((PNET_STRIDE * i + 1.0) / s) - 1.0)
                boxes[k, 2] = np.float32(np.trunc((PNET_STRIDE * j + float(PNET_CELL)) / s) - 1.0)
                boxes[k, 3] = np.float32(np.trunc((PNET_STRIDE * i + float(PNET_CELL)) / s) - 1.0)
                scores[k] = prob[i, j]
                for c in range(4):
                    offsets[k, c] = reg[c, i, j]
                k += 1
    return boxes, scores, offsets


#: Below this many boxes NMS compares all pairs; above it, boxes are binned on a grid (same result).
NMS_GRID_MIN_BOXES = 1024


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _suppresses(ax1, ay1, ax2, ay2, a_area, bx1, by1, bx2, by2, b_area, threshold, use_min):
    """True when kept box a suppresses box b: not overlap <= threshold (a NaN overlap suppresses).

    float64 scalars, inclusive pixel counts (+1); overlap over the union, or over the smaller box when use_min.
    """
    iw = max(0.0, min(ax2, bx2) - max(ax1, bx1) + 1.0)
    ih = max(0.0, min(ay2, by2) - max(ay1, by1) + 1.0)
    inter = iw * ih
    if use_min:
        overlap = inter / min(a_area, b_area)
    else:
        overlap = inter / (a_area + b_area - inter)
    return not overlap <= threshold


@njit(cache=True, nogil=True, error_model="numpy")
def nms(boxes, scores, threshold, use_min):
    """Greedy non-maximum suppression, the authors' nms.m.

    boxes: float32 (n, 4) 0-based inclusive; scores: float32 (n,); threshold: float; use_min: bool,
    overlap = inter / min(area_i, area_j) when True, inter / union when False. Areas and intersections
    count inclusive pixels (+1). Boxes are taken by descending score, equal scores latest index first
    (MATLAB's stable ascending sort, taking the last); a box is suppressed unless overlap <= threshold
    (so a NaN overlap suppresses, as in MATLAB). Returns int64 (k,) kept indices in pick order.
    Overlaps are computed in float64 scalars like MATLAB's double.

    Work: all pairs for small sets; for large sets (NMS_GRID_MIN_BOXES) of proper boxes (finite, positive extents) and a
    threshold >= 0, only boxes that intersect are compared (`_nms_binned`): the same picks, near-linear
    time for P-Net's candidates. Releases the GIL.
    """
    n = boxes.shape[0]
    order = np.argsort(scores, kind="mergesort")
    # Sorted copies (descending pick order) so the inner loop walks memory sequentially.
    bx1 = np.empty(n, np.float64)
    by1 = np.empty(n, np.float64)
    bx2 = np.empty(n, np.float64)
    by2 = np.empty(n, np.float64)
    area = np.empty(n, np.float64)
    proper = True
    for a in range(n):
        i = order[n - 1 - a]
        bx1[a] = boxes[i, 0]
        by1[a] = boxes[i, 1]
        bx2[a] = boxes[i, 2]
        by2[a] = boxes[i, 3]
        width = bx2[a] - bx1[a] + 1.0
        height = by2[a] - by1[a] + 1.0
        area[a] = width * height
        if not (width > 0.0 and height > 0.0 and math.isfinite(width) and math.isfinite(height)):
            proper = False
    if n >= NMS_GRID_MIN_BOXES and proper and threshold >= 0.0:
        suppressed = _nms_binned(bx1, by1, bx2, by2, area, threshold, use_min)
    else:  # all pairs, O(n * kept); here (not in a function of its own) so LLVM sees unaliased arrays
        suppressed = np.zeros(n, np.bool_)
        for a in range(n):
            if suppressed[a]:
                continue
            ax1, ay1, ax2, ay2, a_area = bx1[a], by1[a], bx2[a], by2[a], area[a]
            # Branch-free inner loop (it also revisits already suppressed boxes, which is harmless):
            # this vectorises and is ~2x faster than skipping them.
            for b in range(a + 1, n):
                if _suppresses(ax1, ay1, ax2, ay2, a_area, bx1[b], by1[b], bx2[b], by2[b], area[b], threshold,
                               use_min):
                    suppressed[b] = True
    keep = np.empty(n, np.int64)
    k = 0
    for a in range(n):
        if not suppressed[a]:
            keep[k] = order[n - 1 - a]
            k += 1
    return keep[:k].copy()


@njit(cache=True, nogil=True, inline="always")
def _grid_index(offset, cell, size):
    """floor(offset / cell) clamped to [0, size - 1] (clamped as a float first: no integer overflow)."""
    index = math.floor(offset / cell)
    if index < 0.0:
        return 0
    if index > size - 1.0:
        return size - 1
    return int(index)


@njit(cache=True, nogil=True, error_model="numpy")
def _nms_binned(bx1, by1, bx2, by2, area, threshold, use_min):
    """`nms`'s all-pairs loop for proper boxes (finite, extents > 0) and threshold >= 0, comparing only nearby
    boxes; takes the float64 (n,) coordinates and areas in pick order, returns bool (n,) suppressed.

    Two such boxes that do not intersect have overlap 0 <= threshold, so only intersecting pairs can
    suppress. Boxes are put in size classes (side up to 2^c pixels) and, per class, in a grid of 2^c cells
    by their top-left corner; a kept box visits the cells whose boxes can reach it. Same result as all pairs.
    """
    n = bx1.shape[0]
    size_class = np.empty(n, np.int64)
    classes = 1
    for a in range(n):
        side = max(bx2[a] - bx1[a], by2[a] - by1[a]) + 1.0
        c = 0
        while (1 << c) < side and c < 40:
            c += 1
        size_class[a] = c
        classes = max(classes, c + 1)
    # per class: origin, reach (largest extent - 1), cell size, grid shape, offset into the cell table
    origin_x = np.full(classes, np.inf)
    origin_y = np.full(classes, np.inf)
    last_x = np.full(classes, -np.inf)
    last_y = np.full(classes, -np.inf)
    reach = np.zeros(classes)
    count = np.zeros(classes, np.int64)
    for a in range(n):
        c = size_class[a]
        origin_x[c] = min(origin_x[c], bx1[a])
        origin_y[c] = min(origin_y[c], by1[a])
        last_x[c] = max(last_x[c], bx1[a])
        last_y[c] = max(last_y[c], by1[a])
        reach[c] = max(reach[c], bx2[a] - bx1[a], by2[a] - by1[a])
        count[c] += 1
    cell = np.ones(classes)
    grid_w = np.ones(classes, np.int64)
    grid_h = np.ones(classes, np.int64)
    first_cell = np.zeros(classes + 1, np.int64)
    for c in range(classes):
        if count[c]:
            cell[c] = float(1 << c)
            # coarser cells when the class is sparse over a wide area: the table stays O(boxes)
            while ((last_x[c] - origin_x[c]) / cell[c] + 1.0) * ((last_y[c] - origin_y[c]) / cell[c] + 1.0) \
                    > 4.0 * count[c] + 16.0:
                cell[c] *= 2.0
            grid_w[c] = int((last_x[c] - origin_x[c]) / cell[c]) + 1
            grid_h[c] = int((last_y[c] - origin_y[c]) / cell[c]) + 1
        first_cell[c + 1] = first_cell[c] + grid_w[c] * grid_h[c]
    # counting sort of the boxes by cell, in pick order within a cell; coordinates copied in that order so
    # a kept box reads its neighbours from contiguous memory
    slot = np.empty(n, np.int64)
    start = np.zeros(first_cell[classes] + 1, np.int64)
    for a in range(n):
        c = size_class[a]
        gx = min(int((bx1[a] - origin_x[c]) / cell[c]), grid_w[c] - 1)
        gy = min(int((by1[a] - origin_y[c]) / cell[c]), grid_h[c] - 1)
        slot[a] = first_cell[c] + gy * grid_w[c] + gx
        start[slot[a] + 1] += 1
    for i in range(first_cell[classes]):
        start[i + 1] += start[i]
    filled = start[:-1].copy()
    rank = np.empty(n, np.int64)
    sx1, sy1, sx2, sy2, sarea = np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    for a in range(n):
        j = filled[slot[a]]
        filled[slot[a]] += 1
        slot[a] = j
        rank[j], sx1[j], sy1[j], sx2[j], sy2[j], sarea[j] = a, bx1[a], by1[a], bx2[a], by2[a], area[a]
    out = np.zeros(n, np.bool_)  # by slot
    for a in range(n):
        if out[slot[a]]:
            continue
        ax1, ay1, ax2, ay2, a_area = bx1[a], by1[a], bx2[a], by2[a], area[a]
        for c in range(classes):
            if not count[c]:
                continue
            # b intersects a only if b.x1 lies in (a.x1 - 1 - reach, a.x2 + 1), same for y; plus a margin
            # far above float64 rounding
            gx_lo = _grid_index(ax1 - 1.0 - reach[c] - origin_x[c] - _margin(ax1), cell[c], grid_w[c])
            gx_hi = _grid_index(ax2 + 1.0 - origin_x[c] + _margin(ax2), cell[c], grid_w[c])
            gy_lo = _grid_index(ay1 - 1.0 - reach[c] - origin_y[c] - _margin(ay1), cell[c], grid_h[c])
            gy_hi = _grid_index(ay2 + 1.0 - origin_y[c] + _margin(ay2), cell[c], grid_h[c])
            for gy in range(gy_lo, gy_hi + 1):
                row = first_cell[c] + gy * grid_w[c]
                for j in range(start[row + gx_lo], start[row + gx_hi + 1]):
                    if rank[j] > a and not out[j]:
                        if _suppresses(ax1, ay1, ax2, ay2, a_area, sx1[j], sy1[j], sx2[j], sy2[j], sarea[j],
                                       threshold, use_min):
                            out[j] = True
    suppressed = np.empty(n, np.bool_)
    for a in range(n):
        suppressed[a] = out[slot[a]]
    return suppressed


@njit(cache=True, nogil=True, inline="always")
def _margin(value):
    """Half a pixel plus a relative 1e-9: far above the rounding of a float64 cell computation at `value`."""
    return 0.5 + 1e-9 * abs(value)


@njit(cache=True, nogil=True)
def calibrate(boxes, offsets, extent_plus_one):
    """Apply regression offsets (the authors' bbreg).

    boxes: float32 (n, 4); offsets: float32 (n, 4) dx1, dy1, dx2, dy2 in units of the box size;
    extent_plus_one: bool, box size = x2 - x1 + 1 when True (after R-Net / O-Net), x2 - x1 when False
    (after P-Net). Returns new float32 (n, 4); arithmetic in float64 scalars.
    """
    n = boxes.shape[0]
    res = np.empty((n, 4), np.float32)
    extra = 1.0 if extent_plus_one else 0.0
    for k in range(n):
        x1 = np.float64(boxes[k, 0])
        y1 = np.float64(boxes[k, 1])
        x2 = np.float64(boxes[k, 2])
        y2 = np.float64(boxes[k, 3])
        w = x2 - x1 + extra
        h = y2 - y1 + extra
        res[k, 0] = x1 + offsets[k, 0] * w
        res[k, 1] = y1 + offsets[k, 1] * h
        res[k, 2] = x2 + offsets[k, 2] * w
        res[k, 3] = y2 + offsets[k, 3] * h
    return res


@njit(cache=True, nogil=True)
def square(boxes):
    """Make boxes square around their centre (the authors' rerec; sizes without +1).

    boxes: float32 (n, 4). l = max(x2 - x1, y2 - y1); x1 += (w - l) / 2, y1 += (h - l) / 2,
    x2 = x1 + l, y2 = y1 + l. Returns new float32 (n, 4); arithmetic in float64 scalars.
    """
    n = boxes.shape[0]
    res = np.empty((n, 4), np.float32)
    for k in range(n):
        x1 = np.float64(boxes[k, 0])
        y1 = np.float64(boxes[k, 1])
        w = boxes[k, 2] - x1
        h = boxes[k, 3] - y1
        side = max(w, h)
        nx1 = x1 + w * 0.5 - side * 0.5
        ny1 = y1 + h * 0.5 - side * 0.5
        res[k, 0] = nx1
        res[k, 1] = ny1
        res[k, 2] = nx1 + side
        res[k, 3] = ny1 + side
    return res


@njit(cache=True, nogil=True)
def truncate_boxes(boxes):
    """MATLAB ``fix`` of the authors' 1-based coordinates, expressed on our 0-based ones.

    boxes: float32 (n, 4) -> new float32 (n, 4) with v -> trunc(v + 1) - 1. Our 0-based value v is
    MATLAB's v + 1, and fix rounds toward zero, which differs from floor for boxes left of / above the
    image (e.g. v = -1.5 -> fix(-0.5) - 1 = -1, where floor would give -2).
    """
    n = boxes.shape[0]
    res = np.empty((n, 4), np.float32)
    for k in range(n):
        for c in range(4):
            res[k, c] = np.trunc(np.float64(boxes[k, c]) + 1.0) - 1.0
    return res


# --------------------------------------------------------------------------------------------------
# Stage end: O-Net's outputs, as they come from the engine (any strides), to faces in one call
# --------------------------------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def _passed(prob, threshold):
    """int64 indices k with prob[k, 1] > threshold (float32 comparison, as NumPy does)."""
    t = np.float32(threshold)
    count = 0
    for k in range(prob.shape[0]):
        if prob[k, 1] > t:
            count += 1
    index = np.empty(count, np.int64)
    count = 0
    for k in range(prob.shape[0]):
        if prob[k, 1] > t:
            index[count] = k
            count += 1
    return index


@njit(cache=True, nogil=True)
def landmarks_in_boxes(boxes, points):
    """O-Net's landmark outputs -> pixels. boxes float32 (n, 4) 0-based inclusive; points float32 (n, 10), five x
    then five y fractions of the box, any strides. Returns float32 (n, 5, 2) (x, y) = corner + (size + 1) *
    fraction, in float32 as the authors' single-precision code (their 1-based `w * p + x1 - 1`)."""
    n = boxes.shape[0]
    landmarks = np.empty((n, 5, 2), np.float32)
    one = np.float32(1.0)
    for i in range(n):
        width = boxes[i, 2] - boxes[i, 0] + one
        height = boxes[i, 3] - boxes[i, 1] + one
        for p in range(5):
            landmarks[i, p, 0] = boxes[i, 0] + width * points[i, p]
            landmarks[i, p, 1] = boxes[i, 1] + height * points[i, p + 5]
    return landmarks


@njit(cache=True, nogil=True)
def output_faces(boxes, prob, offsets, points, threshold, nms_threshold):
    """O-Net outputs -> faces: keep prob[:, 1] > threshold, landmarks in pixels, calibrate (size + 1), NMS
    (overlap over the smaller box). boxes float32 (n, 4); prob (n, 2), offsets (n, 4), points (n, 10: 5 x then
    5 y fractions of the box) float32, any strides. Returns (boxes (m, 4), scores (m,), landmarks (m, 5, 2)),
    float32, landmarks = x1 + (x2 - x1 + 1) * fraction in float32 as the authors' single-precision code."""
    index = _passed(prob, threshold)
    scores = np.empty(index.shape[0], np.float32)
    for k in range(index.shape[0]):
        scores[k] = prob[index[k], 1]
    landmarks = landmarks_in_boxes(boxes[index], points[index])
    calibrated = calibrate(boxes[index], np.ascontiguousarray(offsets[index]), True)
    keep = nms(calibrated, scores, nms_threshold, True)
    return calibrated[keep], scores[keep], landmarks[keep]


@njit(cache=True, nogil=True)
def iou_matrix(a, b):
    """Pairwise intersection-over-union of pixel-edge boxes: float32 (n, 4), (m, 4) x1, y1, x2, y2 (area = width x
    height, no +1) -> float64 (n, m) in [0, 1]; a zero union gives 0. Used by the stream tracker's association."""
    result = np.zeros((a.shape[0], b.shape[0]), np.float64)
    for i in range(a.shape[0]):
        area_a = max(a[i, 2] - a[i, 0], 0.0) * max(a[i, 3] - a[i, 1], 0.0)
        for j in range(b.shape[0]):
            width = min(a[i, 2], b[j, 2]) - max(a[i, 0], b[j, 0])
            height = min(a[i, 3], b[j, 3]) - max(a[i, 1], b[j, 1])
            if width <= 0 or height <= 0:
                continue
            inter = float(width) * float(height)
            union = area_a + max(b[j, 2] - b[j, 0], 0.0) * max(b[j, 3] - b[j, 1], 0.0) - inter
            if union > 0:
                result[i, j] = inter / union
    return result
