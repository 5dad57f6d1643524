"""Passes over a part of the frame: P-Net on a part of each pyramid level (`Cascade.propose_in_areas`), for new
content (`video.region_areas`) and for a lost face, over what changed since the last pass
(`PassSchedule.lost_face_region`); and the search for a lost face keeping R-Net's best boxes only
(`Cascade.refine(most=...)`, `video.SEARCH_KEEP`)."""
import cv2
import numpy as np
import pytest

from conftest import GROUP
from fastmtcnn import Detector, kernels
from fastmtcnn.nets import channel_map
from fastmtcnn.pass_schedule import LOST_FACE
from fastmtcnn.pipeline import PART_SIZES, _level_span
from fastmtcnn.scene_change import NEW_CONTENT
from fastmtcnn.video import REGION_ABOVE, FaceTracker, grown_areas, region_areas, region_tiles, tiles_near_change

BGR = channel_map("bgr", 3)


@pytest.fixture(scope="module")
def detector():
    return Detector(min_face_size=20, num_threads=1, backend="opencv")


@pytest.fixture(scope="module")
def group():
    return cv2.imread(str(GROUP))


def level_maps(cascade, image, scale, rows=None, cols=None):
    """P-Net's (prob (h, w), offsets (4, h, w)) on a pyramid level, or on its rows x cols part only."""
    level_h, level_w = kernels.pyramid_level_size(image.shape[0], image.shape[1], scale)
    rows, cols = rows or (0, level_h), cols or (0, level_w)
    blob = np.empty((1, 3, rows[1] - rows[0], cols[1] - cols[0]), np.float32)
    kernels.resize_part_normalize_into(image, BGR, rows[0], cols[0], level_h, level_w, blob[0])
    prob, offsets = cascade.pnet.forward(blob)
    return prob[0, 1].copy(), offsets[0].copy()


@pytest.mark.parametrize("scale", [0.6, 0.6 * 0.709 ** 2, 0.6 * 0.709 ** 3])  # level sizes even and odd
def test_p_net_on_a_part_of_a_level_is_that_part_of_the_levels_maps(detector, group, scale):
    cascade = detector._cascade()
    level_h, level_w = kernels.pyramid_level_size(group.shape[0], group.shape[1], scale)
    whole_prob, whole_offsets = level_maps(cascade, group, scale)
    for low, high in [(0.2, 0.5), (0.55, 1.0), (0.0, 0.05), (0.9, 1.0)]:  # inside, to the edge, a sliver
        rows = _level_span(low * group.shape[0], high * group.shape[0], level_h / group.shape[0], level_h)
        cols = _level_span(low * group.shape[1], high * group.shape[1], level_w / group.shape[1], level_w)
        prob, offsets = level_maps(cascade, group, scale, rows, cols)
        top, left = rows[0] // 2, cols[0] // 2
        np.testing.assert_allclose(prob, whole_prob[top:top + prob.shape[0], left:left + prob.shape[1]], atol=1e-4)
        np.testing.assert_allclose(offsets, whole_offsets[:, top:top + prob.shape[0], left:left + prob.shape[1]],
                                   atol=1e-4)  # float sums in another order
        if rows[1] == level_h:  # a part that ends with the level gives the level's last map row
            assert top + prob.shape[0] == whole_prob.shape[0]


def test_level_spans_start_on_the_p_net_grid_and_pool_like_the_level():
    assert _level_span(10, 50, 0.5, 100) == (4, 26)  # 5 -> 4 (even), 25 -> 26 (even length)
    assert _level_span(10, 20, 0.5, 100) == (4, 16)  # at least one 12-pixel window
    assert _level_span(180, 200, 0.5, 99) == (86, 99)  # to the end of an odd level: its own last pooling
    assert _level_span(195, 200, 0.5, 99) == (86, 99)  # a sliver at the end: one window, start even
    assert _level_span(50, 50, 0.5, 100) is None and _level_span(np.nan, 5, 0.5, 100) is None
    assert _level_span(0, 20, 1.0, 11) is None  # a level smaller than a window
    for low, high, size in [(0, 7, 40), (3, 31, 41), (17, 41, 41), (0, 41, 41), (1, 2, 12)]:
        start, stop = _level_span(low, high, 1.0, size)
        assert start % 2 == 0 and stop - start >= 12 and start <= low and stop >= min(high, size)
        assert (stop - start) % 2 == 0 or stop == size


def test_level_spans_in_a_few_lengths_where_shapes_cost_a_compilation():
    lengths, exact = set(), set()
    for low in range(0, 300, 7):
        for width in (5, 30, 61, 100, 170):
            start, stop = _level_span(low, low + width, 1.0, 301, PART_SIZES)
            assert start % 2 == 0 and start <= low and stop >= min(low + width, 301)
            length = stop - start  # a size, or one more where the part ends with the odd-sized level
            assert length in PART_SIZES or stop == 301 and length - 1 in PART_SIZES or (start, stop) == (0, 301)
            lengths.add(length)
            exact.add(np.subtract(*_level_span(low, low + width, 1.0, 301)[::-1]))
    assert len(lengths) <= 14 and len(exact) >= 30


def test_areas_over_the_whole_image_propose_what_the_full_pyramid_does(detector, group):
    cascade = detector._cascade()
    scales = cascade.pyramid_scales(*group.shape[:2])
    whole = np.tile([0.0, 0.0, group.shape[1], group.shape[0]], (len(scales), 1))
    np.testing.assert_array_equal(cascade.propose_in_areas(group, BGR, whole), cascade.propose(group, BGR))
    none = np.full((len(scales), 4), np.nan)
    assert cascade.propose_in_areas(group, BGR, none).shape == (0, 4)


def test_a_part_proposes_the_faces_in_it_and_none_elsewhere(detector, group):
    cascade = detector._cascade()
    faces = detector.detect(group)
    box = faces.boxes[0]
    scales = cascade.pyramid_scales(*group.shape[:2])
    around = grown_areas((box[0] - 10, box[1] - 10, box[2] + 10, box[3] + 10), scales)
    refined = cascade.refine(group, BGR, cascade.propose_in_areas(group, BGR, around))
    found = cascade.output(group, BGR, refined)
    assert len(found.boxes) >= 1 and np.abs(found.boxes - (box - [0, 0, 1, 1])).max(axis=1).min() <= 2
    centres = (found.boxes[:, :2] + found.boxes[:, 2:]) / 2
    assert ((centres >= box[:2] - 20) & (centres <= box[2:] + 20)).all()  # only faces of that part


def test_region_areas_bound_the_tiles_kept_at_each_scale():
    changed = np.zeros((45, 80), bool)
    changed[30:36, 40:44] = True  # 32 x 48 pixels of change at x 320-352, y 240-288
    region = (320.0, 240.0, 352.0, 288.0)
    scales = 0.6 * 0.709 ** np.arange(9)
    areas = region_areas(region, scales, changed)
    assert areas.shape == (9, 4)
    for scale, area in zip(scales, areas):
        tiles, _ = region_tiles(region, np.array([scale]))
        kept = tiles[tiles_near_change(tiles, changed, REGION_ABOVE * 32)]
        assert np.allclose(area, [kept[:, 0].min(), kept[:, 1].min(), kept[:, 2].max() + 1, kept[:, 3].max() + 1])
        assert area[0] <= 320 and area[2] >= 352 and area[3] >= 288 and area[1] <= 240 - 32  # and the part above
    assert np.isnan(region_areas(region, scales, np.zeros_like(changed))).all()  # no change near: no P-Net


def grey_out(image, box, margin=0.3):
    """A copy of `image` with `box` (pixel edges) and `margin` x its side around it painted mid-grey."""
    out = image.copy()
    x1, y1, x2, y2 = box
    pad_x, pad_y = margin * (x2 - x1), margin * (y2 - y1)
    out[int(max(y1 - pad_y, 0)):int(y2 + pad_y), int(max(x1 - pad_x, 0)):int(x2 + pad_x)] = 128
    return out


def spy_on_proposals(detector, monkeypatch):
    """The names of the cascade's P-Net stage methods called from now on (tiles: the search's
    propose_in_regions is left out)."""
    cascade, calls = detector._cascade(), []
    for name in ("propose", "propose_in_areas"):
        method = getattr(cascade, name)
        monkeypatch.setattr(cascade, name, lambda *a, _method=method, _name=name, **k: calls.append(_name) or
                            _method(*a, **k))
    return calls


def test_a_lost_face_where_little_changed_gets_a_pass_over_that_part_only(detector, group, monkeypatch):
    tracker = FaceTracker(detector)
    first = [tracker.update(group) for _ in range(4)]
    assert first[0].full_pass and not any(t.pass_reason for t in first[1:])
    hidden = first[-1].boxes[0]
    calls = spy_on_proposals(detector, monkeypatch)
    lost = tracker.update(grey_out(group, hidden))
    assert lost.pass_reason == LOST_FACE and not lost.full_pass
    assert calls == ["propose_in_areas"]  # P-Net over a part of the levels only
    others = [i for i, box in zip(first[-1].ids, first[-1].boxes) if not np.array_equal(box, hidden)]
    assert set(others) <= set(lost.ids[~lost.predicted].tolist())  # the others still found, same ids
    assert lost.predicted.sum() == 1  # and the hidden one coasts


def test_a_lost_face_without_the_change_check_gets_a_full_pass(detector, group):
    tracker = FaceTracker(detector, scene_change=None)
    boxes = [tracker.update(group) for _ in range(3)][-1].boxes
    lost = tracker.update(grey_out(group, boxes[0]))
    assert lost.pass_reason == LOST_FACE and lost.full_pass


def test_new_content_gets_a_pass_over_its_part_only(detector, group, monkeypatch):
    tracker = FaceTracker(detector)
    faces = tracker.update(group)
    face = faces.boxes[0].astype(int)
    patch = group[face[1]:face[3], face[0]:face[2]].copy()
    calm = grey_out(group, (0, 300, 200, 480), margin=0)  # an empty corner, then a face pasted into it
    [tracker.update(calm) for _ in range(3)]
    arrived = calm.copy()
    arrived[380:380 + patch.shape[0], 60:60 + patch.shape[1]] = patch
    calls = spy_on_proposals(detector, monkeypatch)
    new = tracker.update(arrived)
    assert new.pass_reason == NEW_CONTENT and not new.full_pass
    assert calls == ["propose_in_areas"]  # one input per pyramid level over the new content, no tiles
    centres = (new.boxes[:, :2] + new.boxes[:, 2:]) / 2
    assert ((centres[:, 0] > 60) & (centres[:, 0] < 60 + patch.shape[1]) & (centres[:, 1] > 380)).any()


def test_refine_keeps_the_best_boxes_when_asked(detector, group):
    cascade = detector._cascade()
    proposals = cascade.propose(group, BGR)
    every = cascade.refine(group, BGR, proposals)
    best = cascade.refine(group, BGR, proposals, most=3)
    assert len(every) > 3 and len(best) == 3
    assert all((every == row).all(axis=1).any() for row in best)  # the same boxes, fewer
    assert len(cascade.refine(group, BGR, proposals, most=10 ** 6)) == len(every)
