"""Resampling kernels: the image pyramid and the R-Net/O-Net crops, resized and normalised for the networks.

Numba rather than Cython (the package docstring gives the general reasons): the INTER_AREA tables are applied
by per-pixel loops over uint8 images of 1, 3 or 4 channels, which Numba specialises on the arrays passed (no
typed variants written by hand, no compiler at install time) and runs without the GIL.

Images are uint8 (H, W, C) with C = 1, 3 or 4; `channels` int32 (3,) names the source channel feeding network
channels 0, 1, 2 (the nets want RGB: BGR input -> [2, 1, 0]). Output is float32 `(v - 127.5) * 0.0078125`,
resampled exactly like OpenCV's `cv2.INTER_AREA` on float32 data (see `axis_weights`).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .boxes import PNET_CELL

#: Network input normalisation: net = (pixel - MEAN) * SCALE.
PIXEL_MEAN = 127.5
PIXEL_SCALE = 0.0078125
#: The normalised value of a zero pixel (what padding outside the image becomes).
ZERO_PIXEL = np.float32((0.0 - PIXEL_MEAN) * PIXEL_SCALE)  # -0.99609375


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
    """float32 pixel value (0..255 scale) -> float32 network input. In float32 throughout: v - 127.5 is rounded
    once either way and the scale is a power of two, so this equals the float64 formula rounded to float32."""
    return (v - np.float32(PIXEL_MEAN)) * np.float32(PIXEL_SCALE)


@njit(cache=True, nogil=True)
def _resample_region_into(image, x1, y1, region_w, region_h, channels, line, out, top, left, full_h, full_w):
    """Resample the image region [x1, x1 + region_w) x [y1, y1 + region_h) to full_h x full_w and write its rows
    top .. top + oh, columns left .. left + ow into out, normalised.

    image: uint8 (H, W, C), C-contiguous; the region may leave the image, where pixels read as 0 (the authors' zero
    padding). line: float32 scratch of at least region_w * C values. out: float32 (3, oh, ow), any strides.
    INTER_AREA semantics with the region's own borders as the clamping edges; a part of the output is exactly
    that part of the whole. The vertical pass comes first: it adds the source rows' needed columns (contiguous
    bytes) with one weight each, which vectorises; the horizontal pass (with the channel reordering) then only
    runs over the oh output rows.
    """
    height, width, depth = image.shape
    oh, ow = out.shape[1], out.shape[2]
    area = uses_area_tables(region_h, region_w, full_h, full_w)
    x_index, x_weight = axis_weights(region_w, full_w, area)
    y_index, y_weight = axis_weights(region_h, full_h, area)
    x_index, x_weight = x_index[left:left + ow], x_weight[left:left + ow]
    first = x_index[:, 0].min()  # region columns [first, stop) feed this part (taps ascend; unused ones: index 0)
    stop = x_index.max() + 1
    rows = image.reshape(height, width * depth)  # image must be C-contiguous
    inside_lo = min(max(-x1, first), stop)  # region columns [lo, hi) of that span lie inside the image
    inside_hi = max(min(width - x1, stop), inside_lo)
    source_lo, source_hi = (x1 + inside_lo) * depth, (x1 + inside_hi) * depth
    target_lo, target_hi = (inside_lo - first) * depth, (inside_hi - first) * depth
    # unused taps (weight 0, index 0) would point before `first`: clamp them onto a valid value
    x_offsets = np.maximum(x_index - first, 0).astype(np.uint64) * np.uint64(depth)
    c0, c1, c2 = np.uint64(channels[0]), np.uint64(channels[1]), np.uint64(channels[2])
    for y in range(oh):
        line[:(stop - first) * depth] = 0.0
        for t in range(y_index.shape[1]):
            w = y_weight[top + y, t]
            source_y = y1 + y_index[top + y, t]
            if w != 0.0 and 0 <= source_y < height:
                # Slices first, so the loop index is a plain non-negative range and the loop vectorises.
                source = rows[source_y, source_lo:source_hi]
                target = line[target_lo:target_hi]
                for i in range(target.shape[0]):
                    target[i] += w * np.float32(source[i])
        _horizontal_pass(line, x_offsets, x_weight, c0, c1, c2, out[0, y], out[1, y], out[2, y])


@njit(cache=True, nogil=True)
def _horizontal_pass(line, offsets, weight, c0, c1, c2, out0, out1, out2):
    """One output row of the three network channels from one vertically resampled line, normalised.

    line: float32 (region_w * C,) interleaved; offsets: uint64 (ow, taps) = source column * C; weight: float32
    (ow, taps); c0, c1, c2: uint64 source channel of network channel 0, 1, 2; out0..2: float32 (ow,) rows.
    Indices are unsigned so that Numba emits no negative-index wraparound per load (3x faster here).
    """
    for x in range(out0.shape[0]):
        s0 = np.float32(0.0)
        s1 = np.float32(0.0)
        s2 = np.float32(0.0)
        for t in range(offsets.shape[1]):
            base = offsets[x, t]
            w = weight[x, t]
            s0 += w * line[base + c0]
            s1 += w * line[base + c1]
            s2 += w * line[base + c2]
        out0[x] = _normalize(s0)
        out1[x] = _normalize(s1)
        out2[x] = _normalize(s2)


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
    _resample_region_into(image, 0, 0, width, height, channels, line, out, 0, 0, out.shape[1], out.shape[2])


@njit(cache=True, nogil=True)
def resize_part_normalize_into(image, channels, top, left, full_h, full_w, out):
    """Rows top .. top + oh, columns left .. left + ow of the image resampled to full_h x full_w, exactly as
    `resize_normalize_into` writes them (a part of a pyramid level: the stream tracker's passes over a region).

    image, channels as `resize_normalize_into`; top, left, full_h, full_w: ints, the part inside the full size;
    out: float32 (3, oh, ow), any strides. Reads only the source rows and columns the part needs.
    """
    height, width, depth = image.shape
    line = np.empty(width * depth, np.float32)
    _resample_region_into(image, 0, 0, width, height, channels, line, out, top, left, full_h, full_w)


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
        _resample_region_into(image, x1, y1, crop_w, crop_h, channels, line, out[k], 0, 0, out.shape[2],
                              out.shape[3])


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
