"""Seeded synthetic multi-face composites (fastmtcnn.training.composites, no torch): the moved boxes and
landmarks land on the pasted faces, the same seed gives the same composite, and they feed the sampler."""
import numpy as np

from fastmtcnn.training.composites import CompositeRecord, synthetic_composites
from fastmtcnn.training.readers import FaceRecord
from fastmtcnn.training.samples import Quota, stage_samples

BOX = np.array([50, 50, 150, 150], np.float32)  # pixel edges
POINTS = np.array([[80, 90], [120, 90], [100, 110], [85, 130], [115, 130]], np.float32)
RED, WHITE = (0, 0, 255), (255, 255, 255)


def _donor(index):
    """A 200x200 image of one flat colour with a white 'face' exactly on BOX and a 9x9 red dot on each point."""
    image = np.empty((200, 200, 3), np.uint8)
    image[:] = (40 * index % 200, 90, 60)
    x1, y1, x2, y2 = BOX.astype(int)
    image[y1:y2, x1:x2] = WHITE
    for x, y in POINTS.astype(int):
        image[y - 4:y + 5, x - 4:x + 5] = RED
    return FaceRecord(f"donor_{index}", BOX[None].copy(), POINTS[None].copy(), np.zeros(1, bool), image)


DONORS = [_donor(k) for k in range(6)]


def _white_run(image, row, x1, x2):
    """First and last column of white pixels on `row` between columns x1 and x2 (inclusive)."""
    white = np.flatnonzero(np.all(image[row, x1:x2 + 1] > 200, axis=1))
    return x1 + white[0], x1 + white[-1]


def test_boxes_and_landmarks_land_on_the_pasted_faces():
    composites = synthetic_composites(DONORS, 12, seed=3)
    checked = {"tiles": 0, "pastes": 0}
    for composite in composites:
        image = composite.load()
        for k, (box, points) in enumerate(zip(composite.boxes, composite.landmarks)):
            side = box[2] - box[0]
            if composite.ignore[k] or side < 30:  # cut by a tile's crop, or too small for 9 px dots
                continue
            x1, y1, x2, y2 = box
            row = int(y1 + 0.08 * side)  # above the eyes: white from edge to edge
            first, last = _white_run(image, row, int(x1 - 0.2 * side), min(int(x2 + 0.2 * side), image.shape[1] - 1))
            assert abs(first - x1) <= 1.5 and abs(last + 1 - x2) <= 1.5, (composite.image, box, first, last)
            for x, y in points:
                blue, green, red = image[int(y), int(x)].astype(int)
                assert red > 180 and green < 90 and blue < 90, (composite.image, (x, y), (blue, green, red))
            checked["tiles" if k < len(composite.boxes) - len(composite.pastes) else "pastes"] += 1
    assert checked["tiles"] >= 10 and checked["pastes"] >= 3, checked


def test_pasted_faces_come_at_several_scales_and_hide_no_required_face():
    """Faces are pasted 12 px to 45% of the canvas; a tile face a paste covers in part is `ignore`, so
    the faces a net must find never overlap."""
    composites = synthetic_composites(DONORS, 40, seed=0)
    pasted = np.concatenate([c.boxes[len(c.boxes) - len(c.pastes):] for c in composites])
    sides = pasted[:, 2] - pasted[:, 0]
    assert sides.min() < 24 and sides.max() > 80, sides
    assert any(c.ignore.any() for c in composites) and not any(c.ignore[len(c.boxes) - len(c.pastes):].any()
                                                               for c in composites)
    for composite in composites:
        boxes = composite.boxes[~composite.ignore]
        low, high = np.maximum(boxes[:, None, :2], boxes[None, :, :2]), np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
        overlap = np.all(high > low, axis=2)
        assert overlap.sum() == len(boxes), composite.image  # each box overlaps only itself


def test_the_same_seed_gives_the_same_composite():
    first, again, other = (synthetic_composites(DONORS, 4, seed) for seed in (7, 7, 8))
    for a, b in zip(first, again):
        assert isinstance(a, CompositeRecord)
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.landmarks, b.landmarks)
        np.testing.assert_array_equal(a.load(), b.load())
    assert any(a.boxes.shape != c.boxes.shape or not np.array_equal(a.boxes, c.boxes) for a, c in zip(first, other))
    assert synthetic_composites(DONORS, 0, seed=7) == [] and synthetic_composites(DONORS[:1], 3, seed=7) == []


def test_composites_feed_the_stage_sampler():
    composites = synthetic_composites(DONORS, 6, seed=1)
    samples = stage_samples(composites, "pnet", Quota(6, 2, 2, 0), seed=0)
    assert samples.counts()["positive"] >= 6 and samples.counts()["negative"] >= 30
