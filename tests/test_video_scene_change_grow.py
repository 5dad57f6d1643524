"""Muted cells: after a region pass that finds no new face, the changed cells that set it off (grown by a cell)
set off no region pass until the next full pass or a cut (`scene_change.grow`, `SceneChange.region_result`,
`PassSchedule.region_result`, `FaceTracker(mute=...)`)."""
import numpy as np
import pytest

from fastmtcnn import Detector
from fastmtcnn.pass_schedule import PassSchedule
from fastmtcnn.scene_change import NEW_CONTENT, PassBudget, SceneChange, grow, thumbnail
from fastmtcnn.video import DEFAULT_CHANGE_GAP, DEFAULT_REDETECT_EVERY, FaceTracker

BGR = np.array([2, 1, 0], np.int32)
NONE = np.zeros((0, 4), np.float32)


def frame_with(*blocks, size=(240, 320)):
    """uint8 BGR grey-90 frame with 220-grey squares at (x, y, side) pixel blocks."""
    image = np.full(size + (3,), 90, np.uint8)
    for x, y, side in blocks:
        image[y:y + side, x:x + side] = 220
    return image


def cells(*blocks):
    return thumbnail(frame_with(*blocks), BGR)


def test_grow_adds_every_cell_within_reach_and_stops_at_the_edges():
    grid = np.zeros((6, 7), bool)
    grid[2, 3] = True
    grown = grow(grid)
    assert grown.sum() == 9 and grown[1:4, 2:5].all()
    assert grow(grid, 2)[0:5, 1:6].all() and grow(grid, 2).sum() == 25
    assert np.array_equal(grow(grid, 0), grid)
    corner = np.zeros((4, 4), bool)
    corner[0, 0] = True
    assert np.array_equal(np.argwhere(grow(corner)), [[0, 0], [0, 1], [1, 0], [1, 1]])
    assert not grow(np.zeros((3, 3), bool)).any()


def test_grow_rejects_what_is_not_a_bool_grid_or_a_reach():
    with pytest.raises(TypeError):
        grow(np.zeros((3, 3), np.uint8))
    with pytest.raises(TypeError):
        grow(np.zeros(3, bool))
    for reach in (-1, 1.5, True):
        with pytest.raises(ValueError):
            grow(np.zeros((3, 3), bool), reach)


def region_pass_then_again(mute, found_new=False, full=False, between=None):
    """The change check after a region pass over a block that appeared: the block goes dark and bright again
    since the pass's key frame (`between`: a thumbnail checked in between, e.g. a cut); what it says then."""
    check = SceneChange(20, min_face_size=20, mute=mute)
    check.check(cells(), NONE)
    assert check.check(cells((96, 96, 40)), NONE) == NEW_CONTENT
    check.region_result(found_new)
    check.key_frame(NONE, full=full)  # the key frame is the bright one
    if between is not None:
        check.check(between, NONE)
    return check, check.check(cells(), NONE)  # the block went dark: changed since the key frame again


def test_a_region_pass_that_finds_no_face_mutes_its_cells():
    assert region_pass_then_again(mute=None)[1] == NEW_CONTENT  # without muting: the same false alarm again
    check, seen = region_pass_then_again(mute=1)
    assert seen is None
    rows, cols = np.nonzero(check.muted)  # the block's cells 12-16 (96-136 px), grown by one cell
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (11, 17, 11, 17)


def test_muting_keeps_new_faces_full_passes_and_cuts():
    assert region_pass_then_again(mute=1, found_new=True)[1] == NEW_CONTENT  # the pass found a face: not muted
    check, seen = region_pass_then_again(mute=1, full=True)  # a full pass unmutes every cell
    assert seen == NEW_CONTENT and check.muted is None
    check, seen = region_pass_then_again(mute=1, between=thumbnail(np.full((240, 320, 3), 250, np.uint8), BGR))
    assert check.muted is None  # the cut unmuted


def test_new_content_beside_muted_cells_sets_off_a_pass_over_all_that_changed():
    check, _ = region_pass_then_again(mute=1)
    assert check.check(cells((200, 40, 40)), NONE) == NEW_CONTENT  # something else, elsewhere
    assert check.region == (104.0, 40.0, 240.0, 128.0)  # the pass looks at the muted block's change too
    assert check.changed[13:16, 13:16].all() and check.changed[5:10, 25:30].all()
    check.region_result(False)
    assert check.muted[4:11, 24:31].all() and check.muted[11:18, 11:18].all()  # both muted now
    assert check.muted.sum() == 2 * 49


def test_the_schedule_passes_the_region_result_and_unmutes_on_full_passes():
    scene = SceneChange(20, min_face_size=20)
    schedule = PassSchedule(DEFAULT_REDETECT_EVERY, 1, 1, PassBudget(8, 10), scene)
    frames = [frame_with(), frame_with((96, 96, 40)), frame_with()]
    reason, region = schedule.plan(0, frames[0], BGR, NONE)
    schedule.done(0, reason, True, NONE)
    reason, region = schedule.plan(1, frames[1], BGR, NONE)
    assert reason == NEW_CONTENT and region is not None
    schedule.region_result(False)
    schedule.done(1, reason, False, NONE)
    assert scene.muted is not None
    assert schedule.plan(2, frames[2], BGR, NONE) == (None, None)
    schedule.done(2, None, False, NONE)
    schedule.request()
    reason, _ = schedule.plan(3, frames[2], BGR, NONE)
    schedule.done(3, reason, True, NONE)
    assert scene.muted is None


def blinking_block(count):
    """Frames where a 40 px square (no face) is bright for 3 frames, then dark for 3: it changes again since
    every region pass the change gap allows."""
    return [frame_with((96, 96, 40)) if (t // 3) % 2 else frame_with() for t in range(count)]


def region_pass_frames(detector, frames, **options):
    tracker = FaceTracker(detector, **options)
    return [t.frame_index for t in (tracker.update(frame) for frame in frames)
            if t.pass_reason == NEW_CONTENT and not t.full_pass]


def test_a_blinking_block_gets_one_region_pass_per_full_pass():
    assert DEFAULT_CHANGE_GAP == 3  # the block blinks with the change gap
    detector = Detector(min_face_size=20, num_threads=1)
    frames = blinking_block(30)
    assert region_pass_frames(detector, frames, mute=None, redetect_every=20) == [3, 6, 9, 12, 15, 18, 23, 26, 29]
    assert region_pass_frames(detector, frames, redetect_every=20) == [3, 23]  # muted until the full pass on 20


def test_bad_mute_says_what_to_pass():
    detector = Detector(min_face_size=20, num_threads=1)
    for mute in (-1, 1.0, True, "1"):
        with pytest.raises(ValueError, match="mute"):
            FaceTracker(detector, mute=mute)


def test_the_evaluation_compares_two_trackers_on_one_reference():
    """bench.video_eval.compare (`--versus`): each tracker's passes and false alarms, one per-frame reference."""
    from bench.video_eval import compare
    detector = Detector(min_face_size=20, num_threads=1)
    old, new = compare(blinking_block(30), detector, [{"mute": None, "redetect_every": 20}, {"redetect_every": 20}])
    assert (old["region_passes"], new["region_passes"]) == (9, 2)
    assert (old["change_false_alarms"], new["change_false_alarms"]) == (9, 2)  # no face: every one a false alarm
    assert old["full_passes"] == new["full_passes"] == 2  # frames 0 and 20
    assert old["reference_fps"] == new["reference_fps"] and old["recall_all"] == new["recall_all"] == 1.0
