"""fastmtcnn.scene_change: thumbnails, the cut / camera motion / new content decision, the pass budget."""
import numpy as np
import pytest

from fastmtcnn import kernels
from fastmtcnn.scene_change import CELL, CUT, NEW_CONTENT, PassBudget, SceneChange, face_mask, thumbnail

BGR = np.array([2, 1, 0], np.int32)


def scene(seed=0, size=(480, 640)):
    """A textured uint8 BGR frame: random 16 px blocks (no face)."""
    blocks = np.random.default_rng(seed).integers(0, 256, (size[0] // 16, size[1] // 16, 3), dtype=np.uint8)
    return np.ascontiguousarray(np.repeat(np.repeat(blocks, 16, axis=0), 16, axis=1))


def still_background(size=(480, 640)):
    return np.full(size + (3,), 90, np.uint8)


def test_thumbnail_is_the_mean_of_each_cell():
    image = np.random.default_rng(1).integers(0, 256, (83, 130, 3), dtype=np.uint8)  # sizes not multiples of 8
    cells = thumbnail(image, BGR)
    rows, cols = 83 // CELL, 130 // CELL
    expected = image[:rows * CELL, :cols * CELL].astype(np.float64).reshape(rows, CELL, cols, CELL, 3).mean((1, 3, 4))
    assert cells.shape == (rows, cols) and cells.dtype == np.float32
    assert np.abs(cells - expected).max() <= 1e-3  # exact sums (no OpenCV resampling: the same on every version)
    grey = thumbnail(np.ascontiguousarray(image[:, :, :1]), np.zeros(3, np.int32))
    assert grey.shape == (rows, cols)
    np.testing.assert_allclose(grey, image[:rows * CELL, :cols * CELL, 0].astype(np.float64)
                               .reshape(rows, CELL, cols, CELL).mean((1, 3)), atol=1e-3)
    assert np.array_equal(thumbnail(image[:, ::-1], BGR), thumbnail(np.ascontiguousarray(image[:, ::-1]), BGR))
    assert thumbnail(image[:5, :5], BGR).shape == (0, 0)


def test_face_mask_hides_grown_boxes():
    mask = face_mask((60, 80), np.array([[160, 160, 240, 240]], np.float32), margin=0.5)
    assert not mask[20:30, 20:30].any()  # the box itself (cells 20-29)
    assert not mask[15, 15] and not mask[34, 34]  # grown by half its side (40 px = 5 cells) on each side
    assert mask[0, 0] and mask[59, 79] and mask[36, 36]
    assert face_mask((60, 80), np.zeros((0, 4), np.float32)).all()


def test_still_frames_and_a_pan_are_no_change_a_cut_is():
    """A pan (up to MAX_SHIFT cells since the key frame: 7 px per frame here, 21 px after 3 frames) is undone by
    the camera shift, what it brings in at the edge is not compared; a cut is a cut."""
    detector = SceneChange(20, min_face_size=20)
    first = scene(0, (480, 1280))
    frames = [np.ascontiguousarray(first[:, 7 * t:7 * t + 640]) for t in range(4)]  # panning 7 px per frame
    assert detector.check(thumbnail(frames[0], BGR), np.zeros((0, 4), np.float32)) is None  # nothing to compare
    assert detector.check(thumbnail(frames[0], BGR), np.zeros((0, 4), np.float32)) is None  # still
    for frame in frames[1:]:
        assert detector.check(thumbnail(frame, BGR), np.zeros((0, 4), np.float32)) is None  # camera motion
    assert detector.check(thumbnail(scene(5), BGR), np.zeros((0, 4), np.float32)) == CUT


def test_a_face_sized_blob_on_a_still_background_is_new_content_unless_tracked_or_small():
    background = still_background()
    entering = background.copy()
    entering[200:260, 600:640] = 220  # something 40 x 60 px comes in on the right
    tiny = background.copy()
    tiny[200:210, 300:310] = 220  # 10 px: under min face 20
    none = np.zeros((0, 4), np.float32)
    for changed, tracked, expected in ((entering, none, NEW_CONTENT), (tiny, none, None),
                                       (entering, np.array([[590, 190, 640, 270]], np.float32), None)):
        detector = SceneChange(20, min_face_size=20)
        detector.check(thumbnail(background, BGR), tracked)
        assert detector.check(thumbnail(changed, BGR), tracked) == expected


def test_pass_budget_gives_a_burst_then_one_pass_per_refill():
    budget = PassBudget(burst=3, refill_frames=4)
    taken = []
    for frame in range(20):
        budget.tick()
        taken.append(budget.spend())
    assert taken[:3] == [True] * 3 and sum(taken) == 3 + 4  # burst, then one per 4 frames (17 frames -> 4)
    budget.reset()
    assert budget.spend()


@pytest.mark.parametrize("threshold", [10, 40])
def test_threshold_decides_what_counts_as_change(threshold):
    background = still_background()
    faint = background.copy()
    faint[200:260, 300:360] = 90 + 25  # 25 grey levels
    detector = SceneChange(threshold, min_face_size=20)
    detector.check(thumbnail(background, BGR), np.zeros((0, 4), np.float32))
    result = detector.check(thumbnail(faint, BGR), np.zeros((0, 4), np.float32))
    assert result == (NEW_CONTENT if threshold < 25 else None)


def test_best_shift_finds_the_pan_and_ignores_a_flat_background():
    cells = np.random.default_rng(2).uniform(0, 255, (40, 60)).astype(np.float32)
    moved = np.roll(np.roll(cells, 2, axis=0), -1, axis=1)  # content moved 2 cells down, 1 left
    everywhere = np.ones(cells.shape, bool)
    assert kernels.best_shift(cells, moved, everywhere, 3) == (2, -1)
    flat = np.full((40, 60), 90, np.float32)
    blob = flat.copy()
    blob[10:15, 55:60] = 200  # something comes in at the edge: no shift explains a flat scene better
    assert kernels.best_shift(flat, blob, everywhere, 3) == (0, 0)


def test_motion_under_a_cell_is_not_change_new_content_is():
    image = scene(3, (160, 320))
    half_cell = np.ascontiguousarray(np.roll(image, CELL // 2, axis=1))
    before, after = thumbnail(image, BGR), thumbnail(half_cell, BGR)
    changed = kernels.changed_cells(before, after, 0, 0, np.float32(20), 1)
    assert not changed[:, 1:].any()  # the rolled-in first column aside, every cell mixes two neighbours
    patch = half_cell.copy()
    patch[40:80, 120:160] = 255
    assert kernels.changed_cells(before, thumbnail(patch, BGR), 0, 0, np.float32(20), 1)[5:10, 15:20].any()


def test_new_content_names_its_region():
    detector = SceneChange(20, min_face_size=20)
    background = still_background()
    entering = background.copy()
    entering[200:264, 560:600] = 220
    detector.check(thumbnail(background, BGR), np.zeros((0, 4), np.float32))
    assert detector.check(thumbnail(entering, BGR), np.zeros((0, 4), np.float32)) == NEW_CONTENT
    assert detector.region == (560.0, 200.0, 600.0, 264.0)


def test_between_passes_only_the_cut_test_runs():
    """since_key=False (the tracker within change_gap of a pass): new content is not looked for, a cut still is."""
    background, none = still_background(), np.zeros((0, 4), np.float32)
    entering = background.copy()
    entering[200:260, 600:640] = 220
    detector = SceneChange(20, min_face_size=20)
    detector.check(thumbnail(background, BGR), none)
    assert detector.check(thumbnail(entering, BGR), none, since_key=False) is None
    assert detector.check(thumbnail(entering, BGR), none) == NEW_CONTENT  # the key frame is still the first one
    assert detector.check(thumbnail(scene(5), BGR), none, since_key=False) == CUT


def test_unchanged_says_which_boxes_kept_their_cells():
    """`FaceTracker(hold=...)`: a box whose cells moved by at most `levels` since the previous frame is unchanged;
    before two frames, none is."""
    check = SceneChange(20.0, 20)
    frame = scene(3)
    boxes = np.array([[80, 80, 160, 160], [400, 200, 480, 280]], np.float32)
    check.check(thumbnail(frame, BGR), boxes)
    assert not check.unchanged(boxes, 2.0).any()  # one frame only
    moved = frame.copy()
    moved[210:270, 410:470] = np.clip(moved[210:270, 410:470].astype(int) + 12, 0, 255).astype(np.uint8)
    check.check(thumbnail(moved, BGR), boxes)
    assert check.unchanged(boxes, 2.0).tolist() == [True, False]
    assert check.unchanged(boxes, 20.0).tolist() == [True, True]
