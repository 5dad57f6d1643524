"""Numeric kernels of the detector: resampling, candidate boxes, NMS and box arithmetic.

Every kernel of the pipeline exists exactly once, here. They are Numba ``@njit(cache=True)`` functions on
plain NumPy arrays and scalars (no OpenCV, no Python objects), serial (never ``parallel=True``: the
detector decides about threads elsewhere), and ``nogil=True``: a long kernel never blocks the other threads
(e.g. a server's event loop).

Why Numba and not Cython:

* no build step: ``pip install .`` needs no C compiler and the wheel stays pure Python;
* the kernels are specialised by Numba on the exact float32 / uint8 / int32 arrays we pass them, so the
  loops compile to tight machine code without writing typed variants by hand;
* ``cache=True`` stores the compiled code next to this file, so a fresh process starts warm.

Conventions (shared with the rest of the package):

* images are uint8 ``(H, W, C)`` with C = 1, 3 or 4; a ``channels`` int32 array of length 3 names the
  source channel feeding network channels 0, 1, 2 (the nets want RGB: BGR input -> [2, 1, 0]);
* network input is ``(v - 127.5) * 0.0078125`` in float32;
* boxes are float32 ``(N, 4)`` = x1, y1, x2, y2 in 0-based *inclusive* pixel indices, i.e. the authors'
  MATLAB 1-based values minus 1;
* resampling reproduces OpenCV's ``cv2.INTER_AREA`` on float32 data (see ``axis_weights``).

Arrays come in and go out as float32; float64 is only used for scalars (so that MATLAB's double
arithmetic is mirrored where it decides an integer, e.g. ``fix``) and for O(n) scratch in ``nms``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

#: Network input normalisation: net = (pixel - MEAN) * SCALE.
PIXEL_MEAN = 127.5
PIXEL_SCALE = 0.0078125
#: The normalised value of a zero pixel (what padding outside the image becomes).
ZERO_PIXEL = np.float32((0.0 - PIXEL_MEAN) * PIXEL_SCALE)  # -0.99609375

#: P-Net geometry: it sees 12x12 windows with a stride of 2 pixels.
PNET_STRIDE = 2
PNET_CELL = 12


# --------------------------------------------------------------------------------------------------
# Resampling (OpenCV INTER_AREA semantics)
# --------------------------------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def uses_area_tables(src_h, src_w, dst_h, dst_w):
    """True when OpenCV's INTER_AREA takes its area-averaging path: no axis is enlarged.

    Ints in, bool out. Otherwise OpenCV uses 2-tap "pixel area" interpolation on *both* axes.
    """
    return src_h >= dst_h and src_w >= dst_w


@njit(cache=True, nogil=True)
def axis_weights(src_len, dst_len, area):
    """1-D INTER_AREA resampling table for one axis, exactly as OpenCV builds it.

    src_len, dst_len: ints >= 1; area: bool from ``uses_area_tables`` (decided on both axes).
    Returns (index int32 (dst_len, taps), weight float32 (dst_len, taps)); output sample d is
    ``sum_t weight[d, t] * src[index[d, t]]``. Unused taps have weight 0 and a valid index.

    * area path (no axis enlarged): output pixel d averages the source interval [d*s, (d+1)*s),
      s = src/dst, each source pixel weighted by its overlap (OpenCV's ``computeResizeAreaTab``,
      including its 1e-3 tolerance for slivers).
    * otherwise (OpenCV's INTER_AREA fallback when any axis is enlarged): 2 taps,
      sx = floor(d*s), the weight of sx+1 is the part of output pixel d lying past source pixel sx,
      clamped to the last source pixel. For an enlarged axis this is the exact area average; for a
      shrunk axis in such a mixed resize it is OpenCV's (lossy) 2-tap rule, reproduced as is.
    """
    inv_scale = dst_len / src_len
    scale = 1.0 / inv_scale
    if area:
        taps = int(scale) + 2
    else:
        taps = 2
    index = np.zeros((dst_len, taps), np.int32)
    weight = np.zeros((dst_len, taps), np.float32)
    if area:
        for d in range(dst_len):
            fsx1 = d * scale
            fsx2 = fsx1 + scale
            cell = min(scale, src_len - fsx1)
            sx1 = int(math.ceil(fsx1))
            sx2 = min(int(math.floor(fsx2)), src_len - 1)
            sx1 = min(sx1, sx2)
            t = 0
            if sx1 - fsx1 > 1e-3:
                index[d, t] = sx1 - 1
                weight[d, t] = np.float32((sx1 - fsx1) / cell)
                t += 1
            for sx in range(sx1, sx2):
                index[d, t] = sx
                weight[d, t] = np.float32(1.0 / cell)
                t += 1
            if fsx2 - sx2 > 1e-3:
                index[d, t] = sx2
                weight[d, t] = np.float32(min(min(fsx2 - sx2, 1.0), cell) / cell)
                t += 1
    else:
        for d in range(dst_len):
            sx = int(math.floor(d * scale))
            fx = np.float32((d + 1) - (sx + 1) * inv_scale)
            if fx <= 0:
                fx = np.float32(0.0)
            else:
                fx = fx - np.float32(math.floor(fx))
            if sx >= src_len - 1:
                sx = src_len - 1
                fx = np.float32(0.0)
                index[d, 1] = sx
            else:
                index[d, 1] = sx + 1
            index[d, 0] = sx
            weight[d, 0] = np.float32(1.0) - fx
            weight[d, 1] = fx
    return index, weight


@njit(cache=True, nogil=True)
def _normalize(v):
    """float32 pixel value (0..255 scale) -> float32 network input."""
    return np.float32((v - PIXEL_MEAN) * PIXEL_SCALE)


@njit(cache=True, nogil=True)
def _resample_region_into(image, x1, y1, region_w, region_h, channels, line, out):
    """Resample the image region [x1, x1 + region_w) x [y1, y1 + region_h) into out, normalised.

    image: uint8 (H, W, C), C-contiguous; the region may leave the image, where pixels read as 0 (the authors' zero
    padding). line: float32 scratch of at least region_w * C values. out: float32 (3, oh, ow), any strides.
    INTER_AREA semantics with the region's own borders as the clamping edges. The vertical pass comes first:
    it adds whole source rows (contiguous bytes) with one weight each, which vectorises; the horizontal pass
    (with the channel reordering) then only runs over the oh output rows.
    """
    height, width, depth = image.shape
    oh, ow = out.shape[1], out.shape[2]
    area = uses_area_tables(region_h, region_w, oh, ow)
    x_index, x_weight = axis_weights(region_w, ow, area)
    y_index, y_weight = axis_weights(region_h, oh, area)
    rows = image.reshape(height, width * depth)  # image must be C-contiguous
    inside_lo = min(max(-x1, 0), region_w) * depth  # region columns [lo, hi) lie inside the image
    inside_hi = max(min(width - x1, region_w) * depth, inside_lo)
    offset = x1 * depth
    c0, c1, c2 = channels[0], channels[1], channels[2]
    for y in range(oh):
        line[:region_w * depth] = 0.0
        for t in range(y_index.shape[1]):
            w = y_weight[y, t]
            source_y = y1 + y_index[y, t]
            if w != 0.0 and 0 <= source_y < height:
                # Slices first, so the loop index is a plain non-negative range and the loop vectorises.
                source = rows[source_y, offset + inside_lo:offset + inside_hi]
                target = line[inside_lo:inside_hi]
                for i in range(target.shape[0]):
                    target[i] += w * np.float32(source[i])
        for x in range(ow):
            s0 = np.float32(0.0)
            s1 = np.float32(0.0)
            s2 = np.float32(0.0)
            for t in range(x_index.shape[1]):
                base = x_index[x, t] * depth
                w = x_weight[x, t]
                s0 += w * line[base + c0]
                s1 += w * line[base + c1]
                s2 += w * line[base + c2]
            out[0, y, x] = _normalize(s0)
            out[1, y, x] = _normalize(s1)
            out[2, y, x] = _normalize(s2)


@njit(cache=True, nogil=True)
def resize_normalize_into(image, channels, out):
    """Resample a whole image into a network input plane, INTER_AREA semantics (pyramid levels).

    image: uint8 (H, W, C), C in {1, 3, 4}; channels: int32 (3,) source channel for network channels
    0, 1, 2; out: float32 (3, oh, ow), any strides (e.g. a view ``blob[0, :, y0:y0+oh, x0:x0+ow]``).
    Writes ``(resized - 127.5) * 0.0078125`` into out; returns nothing. Matches
    ``cv2.resize(image.astype(np.float32), (ow, oh), interpolation=cv2.INTER_AREA)`` to float rounding.
    """
    height, width, depth = image.shape
    line = np.empty(width * depth, np.float32)
    _resample_region_into(image, 0, 0, width, height, channels, line, out)


@njit(cache=True, nogil=True)
def crop_resize_normalize(image, boxes, channels, out):
    """Crop boxes (zero padded outside the image), resample to S x S, normalise: the R-Net/O-Net input.

    image: uint8 (H, W, C); boxes: float32 (n, 4) integer-valued (already ``truncate_boxes``-ed) 0-based
    inclusive x1, y1, x2, y2; channels: int32 (3,); out: float32 (m >= n, 3, S, S) C-contiguous, only
    out[:n] is written. Crop k is the (y2-y1+1) x (x2-x1+1) region, pixels outside the image read as 0
    (the authors' ``pad`` + zeros crop), resampled with INTER_AREA semantics (clamping at the crop's own
    borders). A box with width or height < 1 (or non-finite coordinates) yields an all-zero crop,
    i.e. out[k] filled with the normalised 0 = -0.99609375. Returns nothing.
    """
    n = boxes.shape[0]
    depth = image.shape[2]
    max_w = 1
    for k in range(n):
        if math.isfinite(boxes[k, 0]) and math.isfinite(boxes[k, 2]):
            max_w = max(max_w, int(boxes[k, 2]) - int(boxes[k, 0]) + 1)
    line = np.empty(max_w * depth, np.float32)
    for k in range(n):
        valid = True
        for j in range(4):
            if not math.isfinite(boxes[k, j]):
                valid = False
        if valid:
            x1 = int(boxes[k, 0])
            y1 = int(boxes[k, 1])
            crop_w = int(boxes[k, 2]) - x1 + 1
            crop_h = int(boxes[k, 3]) - y1 + 1
            valid = crop_w >= 1 and crop_h >= 1
        if not valid:
            out[k, :, :, :] = ZERO_PIXEL
            continue
        _resample_region_into(image, x1, y1, crop_w, crop_h, channels, line, out[k])


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
# Pyramid (plain Python: a handful of float operations, nothing to compile)
# --------------------------------------------------------------------------------------------------

def pyramid_scales(height, width, min_face_size, factor):
    """Scales of the image pyramid, as in the authors' detect_face.m.

    height, width: image size in pixels; min_face_size: smallest face in pixels; factor: scale step
    (e.g. 0.709). Returns float64 (L,) with m * factor**k for k = 0, 1, ... while
    min(height, width) * m * factor**k >= 12, m = 12 / min_face_size. Plain Python (not njit).
    """
    m = float(PNET_CELL) / float(min_face_size)
    min_len = float(min(height, width)) * m
    scales = []
    count = 0
    while min_len >= PNET_CELL:
        scales.append(m * float(factor) ** count)
        min_len *= float(factor)
        count += 1
    return np.array(scales, dtype=np.float64)


def pyramid_level_size(height, width, scale):
    """(ceil(height * scale), ceil(width * scale)) as Python ints, as the authors' MATLAB. Plain Python."""
    return int(math.ceil(height * scale)), int(math.ceil(width * scale))
