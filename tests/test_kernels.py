"""Tests of fastmtcnn.kernels against small, obviously-correct NumPy / OpenCV references."""
import math

import cv2
import numpy as np
import pytest

from fastmtcnn import kernels as K

BGR = np.array([2, 1, 0], np.int32)
RGB = np.array([0, 1, 2], np.int32)
GRAY = np.array([0, 0, 0], np.int32)
ZERO = np.float32(-0.99609375)


def normalize(v):
    return ((v.astype(np.float32) - np.float32(127.5)) * np.float32(0.0078125)).astype(np.float32)


def cv_reference(image, channels, dw, dh):
    """(3, dh, dw) float32 network input via cv2 INTER_AREA on the float32 image."""
    planes = image.astype(np.float32)[:, :, channels]
    resized = cv2.resize(planes, (dw, dh), interpolation=cv2.INTER_AREA)
    return normalize(resized.transpose(2, 0, 1))


def random_image(rng, h, w, c=3):
    return rng.integers(0, 256, size=(h, w, c), dtype=np.uint8)


# ------------------------------------------------------------------------------------------------
# resize_normalize_into
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("src_hw,dst_hw", [
    ((131, 97), (55, 40)),     # non-integer shrink
    ((20, 30), (24, 24)),      # mixed: x shrinks, y enlarges (OpenCV's 2-tap fallback)
    ((480, 640), (340, 454)),  # pyramid-like level
    ((10, 10), (48, 48)),      # enlarge
    ((120, 90), (60, 45)),     # integer ratio (OpenCV's fast path)
    ((37, 53), (37, 53)),      # identity
    ((7, 300), (29, 11)),      # mixed the other way round, strong shrink in x
    ((1, 1), (5, 3)),          # single pixel
])
def test_resize_matches_cv2_inter_area(src_hw, dst_hw):
    rng = np.random.default_rng(sum(src_hw) * 7 + sum(dst_hw))
    image = random_image(rng, *src_hw)
    oh, ow = dst_hw
    out = np.full((3, oh, ow), np.nan, np.float32)
    K.resize_normalize_into(image, BGR, out)
    expected = cv_reference(image, BGR, ow, oh)
    # 1e-3 in pixel units = 1e-3 * 0.0078125 after normalisation
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-3 * 0.0078125)


@pytest.mark.parametrize("src_hw,dst_hw,depth", [
    ((360, 640), (216, 384), 3),  # the finest level of a 640x360 frame at min face 20
    ((131, 97), (55, 40), 4),     # BGRA, non-integer shrink
    ((20, 30), (24, 24), 1),      # gray, mixed (OpenCV's 2-tap fallback)
    ((10, 10), (48, 48), 3),      # enlarge
])
def test_resize_part_is_exactly_that_part_of_the_whole(src_hw, dst_hw, depth):
    rng = np.random.default_rng(sum(src_hw) + depth)
    image = random_image(rng, *src_hw, depth)
    channels = GRAY if depth == 1 else BGR
    whole = np.empty((3,) + dst_hw, np.float32)
    K.resize_normalize_into(image, channels, whole)
    oh, ow = dst_hw
    for top, left, height, width in [(0, 0, oh, ow), (0, 0, 1, 1), (oh - 1, ow - 1, 1, 1),
                                     (oh // 3, ow // 4, oh // 2, ow // 2), (1, ow - 7, oh - 1, 7)]:
        part = np.full((3, height, width), np.nan, np.float32)
        K.resize_part_normalize_into(image, channels, top, left, oh, ow, part)
        np.testing.assert_array_equal(part, whole[:, top:top + height, left:left + width])


def test_resize_is_not_half_pixel_bilinear_when_enlarging():
    # INTER_AREA enlarging by 2 replicates pixels on an exact grid: 0 0 1 1 2 2 3 3 (not 0 .25 .75 ...)
    image = np.arange(4, dtype=np.uint8).reshape(1, 4, 1) * 40
    out = np.empty((3, 1, 8), np.float32)
    K.resize_normalize_into(image, GRAY, out)
    np.testing.assert_array_equal(out[0, 0], normalize(np.array([0, 0, 40, 40, 80, 80, 120, 120])))


def test_resize_area_mean_by_hand():
    image = np.array([[[10], [20], [30], [40], [50], [60]]], np.uint8)  # 1 x 6, shrink to 1 x 4
    out = np.empty((3, 1, 4), np.float32)
    K.resize_normalize_into(image, GRAY, out)
    # s = 1.5: [0,1.5) -> (10 + 20*.5)/1.5, [1.5,3) -> (20*.5 + 30)/1.5, ...
    pix = np.array([(10 + 10) / 1.5, (10 + 30) / 1.5, (40 + 25) / 1.5, (25 + 60) / 1.5])
    np.testing.assert_allclose(out[0, 0], normalize(pix), atol=1e-6)


def test_resize_into_non_contiguous_view_and_channel_maps():
    rng = np.random.default_rng(3)
    bgra = random_image(rng, 61, 83, 4)
    blob = np.full((1, 3, 50, 70), 7.0, np.float32)
    view = blob[0, :, 5:5 + 31, 9:9 + 42]
    assert not view.flags.c_contiguous
    K.resize_normalize_into(bgra, BGR, view)
    expected = cv_reference(bgra[:, :, :3], BGR, 42, 31)
    np.testing.assert_allclose(blob[0, :, 5:36, 9:51], expected, atol=1e-5)
    untouched = blob.copy()
    untouched[0, :, 5:36, 9:51] = 7.0
    assert np.all(untouched == 7.0)
    # BGRA -> channel 0 of the net is the image's R (index 2)
    assert np.allclose(view[0], cv_reference(bgra[:, :, 2:3].repeat(3, 2), RGB, 42, 31)[0], atol=1e-5)

    gray = random_image(rng, 45, 33, 1)
    out = np.empty((3, 20, 15), np.float32)
    K.resize_normalize_into(gray, GRAY, out)
    ref = normalize(cv2.resize(gray[:, :, 0].astype(np.float32), (15, 20), interpolation=cv2.INTER_AREA))
    for c in range(3):
        np.testing.assert_allclose(out[c], ref, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# crop_resize_normalize
# ------------------------------------------------------------------------------------------------

def crop_reference(image, box, channels, size):
    x1, y1, x2, y2 = (int(v) for v in box)
    h, w = y2 - y1 + 1, x2 - x1 + 1
    if h < 1 or w < 1:
        return np.full((3, size, size), ZERO, np.float32)
    crop = np.zeros((h, w, image.shape[2]), np.uint8)
    ih, iw = image.shape[:2]
    sy0, sy1 = max(y1, 0), min(y2 + 1, ih)
    sx0, sx1 = max(x1, 0), min(x2 + 1, iw)
    if sy0 < sy1 and sx0 < sx1:
        crop[sy0 - y1:sy1 - y1, sx0 - x1:sx1 - x1] = image[sy0:sy1, sx0:sx1]
    return cv_reference(crop, channels, size, size)


def test_crop_resize_normalize_matches_padded_cv2_reference():
    rng = np.random.default_rng(11)
    image = random_image(rng, 120, 160)
    boxes = np.array([
        [10, 20, 49, 59],        # inside, 40x40 -> 24 (shrink)
        [-15, 30, 20, 70],       # left outside
        [140, 5, 175, 44],       # right outside
        [50, -20, 80, 10],       # above
        [60, 100, 95, 140],      # below
        [-30, -30, 200, 180],    # everything around the image
        [-50, -50, -10, -10],    # fully outside: zeros
        [5, 5, 7, 7],            # 3x3 -> 24 (enlarge)
        [0, 0, 29, 19],          # 30 wide x 20 high: mixed
        [0, 0, 159, 119],        # whole image
        [30, 30, 30, 30],        # single pixel
        [40, 40, 39, 60],        # width 0: degenerate
    ], np.float32)
    for size in (24, 48):
        out = np.full((len(boxes) + 2, 3, size, size), 5.0, np.float32)
        K.crop_resize_normalize(image, boxes, BGR, out)
        for k, box in enumerate(boxes):
            np.testing.assert_allclose(out[k], crop_reference(image, box, BGR, size), atol=1e-5,
                                       err_msg=f"box {k} size {size}")
        assert np.all(out[len(boxes):] == 5.0)  # rows past n untouched
    assert np.all(out[len(boxes) - 1] == ZERO)
    nan_box = np.array([[np.nan, 0, 10, 10], [0, 0, 9, 9]], np.float32)
    out = np.full((2, 3, 24, 24), 5.0, np.float32)
    K.crop_resize_normalize(image, nan_box, RGB, out)
    assert np.all(out[0] == ZERO)
    np.testing.assert_allclose(out[1], crop_reference(image, nan_box[1], RGB, 24), atol=1e-5)


def test_crop_big_and_random_boxes_gray_and_bgra():
    rng = np.random.default_rng(5)
    big = random_image(rng, 260, 240)
    boxes = np.array([[20, 30, 219, 229], [-40, 100, 159, 299]], np.float32)  # 200x200 -> 48
    out = np.empty((2, 3, 48, 48), np.float32)
    K.crop_resize_normalize(big, boxes, RGB, out)
    for k in range(2):
        np.testing.assert_allclose(out[k], crop_reference(big, boxes[k], RGB, 48), atol=1e-5)

    for channels, c in ((GRAY, 1), (BGR, 4)):
        image = random_image(rng, 90, 70, c)
        xy = rng.integers(-30, 90, size=(40, 2))
        wh = rng.integers(1, 60, size=(40, 2))
        boxes = np.concatenate([xy, xy + wh - 1], axis=1).astype(np.float32)
        out = np.empty((40, 3, 24, 24), np.float32)
        K.crop_resize_normalize(image, boxes, channels, out)
        for k in range(40):
            np.testing.assert_allclose(out[k], crop_reference(image, boxes[k], channels, 24), atol=1e-5)


# ------------------------------------------------------------------------------------------------
# candidates_from_scores
# ------------------------------------------------------------------------------------------------

def test_candidates_hand_computed():
    prob = np.array([[0.1, 0.9, 0.2, 0.3],
                     [0.0, 0.5, 0.7, 0.1],
                     [0.95, 0.1, 0.1, 0.6]], np.float32)
    reg = np.arange(4 * 3 * 4, dtype=np.float32).reshape(4, 3, 4) / 100
    boxes, scores, offsets = K.candidates_from_scores(prob, reg, 0.5, 0.6)
    # cells (row, col) >= 0.6 in row-major order: (0,1) (1,2) (2,0) (2,3)
    # scale 0.5: MATLAB x1 = fix((2j+1)*2), x2 = fix((2j+12)*2); minus 1 for 0-based
    expected = np.array([
        [5, 1, 27, 23],     # j=1: x1 = 6-1, x2 = 28-1; i=0: y1 = 2-1, y2 = 24-1
        [9, 5, 31, 27],     # j=2, i=1
        [1, 9, 23, 31],     # j=0, i=2
        [13, 9, 35, 31],    # j=3, i=2
    ], np.float32)
    np.testing.assert_array_equal(boxes, expected)
    np.testing.assert_array_equal(scores, np.array([0.9, 0.7, 0.95, 0.6], np.float32))
    cells = [(0, 1), (1, 2), (2, 0), (2, 3)]
    np.testing.assert_array_equal(offsets, np.array([reg[:, i, j] for i, j in cells]))
    assert boxes.dtype == scores.dtype == offsets.dtype == np.float32


def test_candidates_fix_truncates_like_matlab_double():
    prob = np.ones((1, 2), np.float32)
    reg = np.zeros((4, 1, 2), np.float32)
    boxes, _, _ = K.candidates_from_scores(prob, reg, 0.6, 0.5)
    # j=1: (2+1)/0.6 = 5.000000000000001 in double -> fix 5 -> 4; (2+12)/0.6 = 23.33 -> 23 -> 22
    assert boxes[1, 0] == math.trunc(3 / 0.6) - 1 == 4
    assert boxes[1, 2] == math.trunc(14 / 0.6) - 1 == 22
    assert boxes[0, 0] == math.trunc(1 / 0.6) - 1 == 0


def test_candidates_random_vs_numpy_and_empty():
    rng = np.random.default_rng(2)
    prob = rng.random((17, 23)).astype(np.float32)
    reg = rng.normal(size=(4, 17, 23)).astype(np.float32)
    scale = 0.3546
    boxes, scores, offsets = K.candidates_from_scores(prob, reg, scale, 0.7)
    ii, jj = np.nonzero(prob >= np.float32(0.7))  # row-major
    ref = np.stack([np.fix((2 * jj + 1) / scale), np.fix((2 * ii + 1) / scale),
                    np.fix((2 * jj + 12) / scale), np.fix((2 * ii + 12) / scale)], 1) - 1
    np.testing.assert_array_equal(boxes, ref.astype(np.float32))
    np.testing.assert_array_equal(scores, prob[ii, jj])
    np.testing.assert_array_equal(offsets, reg[:, ii, jj].T)
    b, s, o = K.candidates_from_scores(prob, reg, scale, 2.0)
    assert b.shape == (0, 4) and s.shape == (0,) and o.shape == (0, 4)


# ------------------------------------------------------------------------------------------------
# nms
# ------------------------------------------------------------------------------------------------

def nms_reference(boxes, scores, threshold, use_min):
    """Literal transcription of the authors' nms.m (0-based)."""
    b = boxes.astype(np.float64)
    x1, y1, x2, y2 = b.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = list(np.argsort(scores, kind="stable"))
    pick = []
    while order:
        i = order[-1]
        pick.append(i)
        rest = np.array(order[:-1], dtype=np.int64)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        with np.errstate(divide="ignore", invalid="ignore"):
            if use_min:
                o = inter / np.minimum(area[i], area[rest])
            else:
                o = inter / (area[i] + area[rest] - inter)
        order = list(rest[o <= threshold])
    return np.array(pick, dtype=np.int64)


def test_nms_hand_made():
    boxes = np.array([[0, 0, 9, 9],      # area 100
                      [5, 0, 14, 9],     # overlaps box 0 by 5x10=50: IoU 50/150 = 1/3
                      [2, 2, 6, 6]],     # 5x5 inside box 0: IoU 25/100, min-overlap 1
                     np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    assert K.nms(boxes, scores, 0.5, False).tolist() == [0, 1, 2]
    assert K.nms(boxes, scores, 0.3, False).tolist() == [0, 2]    # 1/3 > 0.3 suppresses box 1
    assert K.nms(boxes, scores, 0.25, False).tolist() == [0, 2]   # box 2: IoU 0.25 <= 0.25 is kept
    assert K.nms(boxes, scores, 0.24, False).tolist() == [0]
    assert K.nms(boxes, scores, 0.5, True).tolist() == [0, 1]     # box 2 fully inside: min-overlap 1
    # box 1 vs box 2: inter 2x5 = 10, min area 25 -> 0.4
    assert K.nms(boxes[1:], scores[1:], 0.4, True).tolist() == [0, 1]  # 0.4 <= 0.4 keeps
    assert K.nms(boxes[1:], scores[1:], 0.39, True).tolist() == [0]
    out = K.nms(boxes, scores, 0.5, False)
    assert out.dtype == np.int64


def test_nms_threshold_boundary_keeps_equal():
    boxes = np.array([[0, 0, 9, 9], [2, 2, 6, 6]], np.float32)  # IoU exactly 0.25
    scores = np.array([0.9, 0.8], np.float32)
    assert K.nms(boxes, scores, 0.25, False).tolist() == [0, 1]
    assert K.nms(boxes, scores, 0.2499, False).tolist() == [0]


def test_nms_equal_scores_take_later_index_first():
    boxes = np.array([[0, 0, 9, 9], [1, 1, 10, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.8, 0.8, 0.5], np.float32)
    assert K.nms(boxes, scores, 0.5, False).tolist() == [1, 2]


def test_nms_empty_and_random_vs_reference():
    empty = K.nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5, False)
    assert empty.shape == (0,) and empty.dtype == np.int64
    rng = np.random.default_rng(7)
    for trial in range(6):
        n = 300
        xy = rng.uniform(-20, 200, size=(n, 2))
        wh = rng.uniform(0, 60, size=(n, 2))
        boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
        scores = rng.integers(0, 50, size=n).astype(np.float32) / 50  # many ties
        for use_min in (False, True):
            thr = (0.3, 0.5, 0.7)[trial % 3]
            np.testing.assert_array_equal(K.nms(boxes, scores, thr, use_min),
                                          nms_reference(boxes, scores, thr, use_min))


def test_nms_binned_path_equals_the_reference_on_large_sets():
    """Sets above NMS_GRID_MIN_BOXES go through the grid: same picks for P-Net-like grids, mixed sizes, ties,
    huge coordinates; sets with a degenerate box (NaN, zero width) still match the authors' reference."""
    rng = np.random.default_rng(11)
    n = K.NMS_GRID_MIN_BOXES + 500
    grid = np.arange(0, 100, 2) / 3.0  # 2500 boxes
    xx, yy = np.meshgrid(grid, grid)
    pnet_like = np.trunc(np.c_[xx.ravel(), yy.ravel(), xx.ravel() + 4, yy.ravel() + 4])
    xy = rng.uniform(-100, 1000, (n, 2))
    mixed = np.c_[xy, xy + rng.uniform(0, 300, (n, 1))]
    xy = rng.integers(0, 60, (n, 2)).astype(float)
    clustered = np.c_[xy, xy + rng.integers(0, 30, (n, 2))]
    xy = rng.uniform(-1e7, 1e7, (n, 2))
    huge = np.c_[xy, xy + rng.uniform(0, 1e6, (n, 2))]
    for boxes in (pnet_like, mixed, clustered, huge):
        boxes = boxes.astype(np.float32)
        for scores in (rng.random(len(boxes), dtype=np.float32),
                       rng.integers(0, 20, len(boxes)).astype(np.float32) / 20):
            for threshold, use_min in ((0.0, False), (0.5, False), (0.7, True), (1.0, True)):
                np.testing.assert_array_equal(K.nms(boxes, scores, threshold, use_min),
                                              nms_reference(boxes, scores, threshold, use_min))
    degenerate = mixed.astype(np.float32)
    degenerate[7] = np.nan
    degenerate[9, 2] = degenerate[9, 0] - 1  # zero width: overlap 0 / 0 with a disjoint box
    scores = rng.random(n, dtype=np.float32)
    for use_min in (False, True):
        np.testing.assert_array_equal(K.nms(degenerate, scores, 0.5, use_min),
                                      nms_reference(degenerate, scores, 0.5, use_min))


# ------------------------------------------------------------------------------------------------
# calibrate, square, truncate_boxes
# ------------------------------------------------------------------------------------------------

def test_calibrate_by_hand():
    boxes = np.array([[10, 20, 30, 60]], np.float32)
    offsets = np.array([[0.1, -0.25, 0.5, 0.05]], np.float32)
    # w = 20, h = 40 without +1
    np.testing.assert_allclose(K.calibrate(boxes, offsets, False), [[12, 10, 40, 62]], atol=1e-5)
    # w = 21, h = 41 with +1
    np.testing.assert_allclose(K.calibrate(boxes, offsets, True), [[12.1, 9.75, 40.5, 62.05]], atol=1e-5)
    assert K.calibrate(boxes, offsets, True).dtype == np.float32
    assert K.calibrate(np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32), True).shape == (0, 4)


def test_square_by_hand():
    boxes = np.array([[10, 20, 30, 60],     # w 20, h 40 -> l 40: x1 = 10 + 10 - 20 = 0
                      [0, 0, 9, 3],         # w 9, h 3 -> l 9: y1 = 1.5 - 4.5 = -3
                      [5, 5, 5, 5]], np.float32)
    np.testing.assert_allclose(K.square(boxes), [[0, 20, 40, 60], [0, -3, 9, 6], [5, 5, 5, 5]], atol=1e-6)


def test_truncate_boxes_by_hand():
    boxes = np.array([[-0.5, -1.5, 3.7, -2.2],
                      [0.0, -1.0, 10.999, -0.999]], np.float32)
    # v -> trunc(v+1)-1: -0.5 -> trunc(0.5)-1 = -1; -1.5 -> trunc(-0.5)-1 = -1; 3.7 -> 3;
    # -2.2 -> trunc(-1.2)-1 = -2; 0 -> 0; -1 -> -1; 10.999 -> 10; -0.999 -> trunc(0.001)-1 = -1
    np.testing.assert_array_equal(K.truncate_boxes(boxes), [[-1, -1, 3, -2], [0, -1, 10, -1]])
    # differs from floor for negative MATLAB coordinates
    assert not np.array_equal(K.truncate_boxes(boxes), np.floor(boxes))


# ------------------------------------------------------------------------------------------------
# output_faces: the fused stage end against the single kernels and NumPy
# ------------------------------------------------------------------------------------------------

def random_boxes(rng, n, scores_levels=40):
    xy = rng.uniform(-10, 150, size=(n, 2))
    wh = rng.uniform(4, 60, size=(n, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores = (rng.integers(0, scores_levels, size=n) / scores_levels).astype(np.float32)  # ties included
    return boxes, scores


def test_output_faces_matches_numpy_landmarks_calibration_and_min_nms():
    rng = np.random.default_rng(14)
    boxes, _ = random_boxes(rng, 120)
    prob = rng.random((120, 2)).astype(np.float32)
    offsets = rng.normal(scale=0.1, size=(120, 4)).astype(np.float32)
    points = rng.random((120, 10)).astype(np.float32)
    passed = prob[:, 1] > np.float32(0.7)
    b, s, o, p = boxes[passed], prob[passed, 1], offsets[passed], points[passed]
    width, height = b[:, 2:3] - b[:, 0:1] + 1, b[:, 3:4] - b[:, 1:2] + 1  # float32, as the authors' single
    landmarks = np.stack([b[:, 0:1] + width * p[:, 0:5], b[:, 1:2] + height * p[:, 5:10]], axis=2)
    calibrated = K.calibrate(b, o, True)
    keep = nms_reference(calibrated, s, 0.7, True)
    assert 0 < len(keep) < len(s)
    out_boxes, out_scores, out_landmarks = K.output_faces(boxes, prob, offsets, points, 0.7, 0.7)
    np.testing.assert_array_equal(out_boxes, calibrated[keep])
    np.testing.assert_array_equal(out_scores, s[keep])
    np.testing.assert_array_equal(out_landmarks, landmarks[keep])
    assert out_landmarks.dtype == np.float32 and out_landmarks.shape == (len(keep), 5, 2)


# ------------------------------------------------------------------------------------------------
# pyramid
# ------------------------------------------------------------------------------------------------

def test_pyramid_scales_and_sizes():
    scales = K.pyramid_scales(100, 200, 20, 0.5)
    # m = 0.6, minl = 60 -> 30 -> 15 -> 7.5 (stop): three scales
    np.testing.assert_allclose(scales, [0.6, 0.3, 0.15])
    assert scales.dtype == np.float64
    assert len(K.pyramid_scales(10, 10, 20, 0.709)) == 0
    s = K.pyramid_scales(480, 640, 20, 0.709)
    assert np.all(np.minimum(480, 640) * s >= 12 - 1e-9) and 480 * s[-1] * 0.709 < 12
    assert K.pyramid_level_size(480, 640, 0.6) == (288, 384)
    assert K.pyramid_level_size(101, 99, 0.3) == (31, 30)   # ceil(30.3), ceil(29.7)
    h, w = K.pyramid_level_size(480, 640, 0.6)
    assert isinstance(h, int) and isinstance(w, int)
