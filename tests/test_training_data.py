"""Training data without torch: readers on fixtures in the original formats, sample labels and targets
(decoded by the cascade's own kernels), the paper's mix, and the detector never importing torch."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import FIXTURES, REPO_ROOT
from fastmtcnn import kernels
from fastmtcnn.training.readers import BadAnnotation, FaceRecord, read_celeba, read_jsonl, read_wider, split_records
from fastmtcnn.training.samples import (LANDMARK, NEGATIVE, PART, POSITIVE, Quota, SampleSet, label_boxes,
                                        landmark_targets, mining_min_face, offset_targets, stage_samples, synthetic_backgrounds,
                                        to_caffe_orientation)

TRAINING = FIXTURES / "training"


def _face_record(tmp_path, with_points=True):
    """A 200x160 image with one 'face' box (pixel edges) and five points."""
    image = np.random.default_rng(0).integers(0, 256, (160, 200, 3), dtype=np.uint8)
    points = np.array([[[70, 70], [110, 70], [90, 90], [75, 110], [105, 110]]], np.float32)
    return FaceRecord("synthetic", np.array([[50, 40, 130, 130]], np.float32),
                      points if with_points else np.full((1, 5, 2), np.nan, np.float32), np.zeros(1, bool), image)


def test_detector_does_not_import_torch():
    code = "import sys, fastmtcnn; fastmtcnn.Detector(); import fastmtcnn.cli; fastmtcnn.cli.build_parser(); " \
           "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert out.stdout.strip() == "False"


def test_read_wider_fixture():
    records = read_wider(TRAINING / "wider_face_val_bbx_gt.txt", "/data/WIDER_val/images")
    assert [len(r.boxes) for r in records] == [2, 0, 1]
    assert records[0].image == "/data/WIDER_val/images/0--Parade/0_Parade_marchingband_1_5.jpg"
    np.testing.assert_array_equal(records[0].boxes, [[78, 221, 85, 229], [448, 329, 468, 353]])
    assert records[0].ignore.tolist() == [False, True]  # the second face is marked invalid
    assert np.isnan(records[2].landmarks).all()


def test_read_celeba_fixture():
    records = read_celeba(TRAINING / "list_bbox_celeba.txt", TRAINING / "list_landmarks_celeba.txt", "/celeba")
    assert [r.image for r in records] == ["/celeba/000001.jpg", "/celeba/000003.jpg"]  # 000002 has no points
    np.testing.assert_array_equal(records[0].boxes, [[95, 71, 321, 384]])
    np.testing.assert_array_equal(records[1].landmarks[0], [[245, 102], [285, 100], [263, 126], [248, 145],
                                                            [281, 141]])


def test_read_jsonl(tmp_path):
    line = {"image": "a.jpg", "width": 10, "height": 10, "faces": [
        {"box": [1, 2, 8, 9], "landmarks": [[2, 3], [6, 3], [4, 5], [3, 7], [6, 7]], "ignore": False},
        {"box": [0, 0, 3, 3], "landmarks": None, "ignore": True}]}
    path = tmp_path / "set.jsonl"
    path.write_text(json.dumps(line) + "\n\n")
    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((10, 10, 3), np.uint8))
    (record,) = read_jsonl(path)
    assert record.image == str(tmp_path / "a.jpg")
    assert record.ignore.tolist() == [False, True] and np.isnan(record.landmarks[1]).all()
    path.write_text('{"image": "a.jpg"}\n')
    with pytest.raises(ValueError, match="set.jsonl:1"):
        read_jsonl(path)


GOOD_FACE = {"box": [10, 10, 50, 50], "landmarks": [[20, 25], [40, 25], [30, 32], [22, 42], [38, 42]]}


@pytest.mark.parametrize("line, message", [
    ('{"image": "a.jpg", "faces": [', "not an annotation line"),
    ('{"image": "a.jpg"}', "not an annotation line"),
    (json.dumps({"image": "missing.jpg", "faces": [GOOD_FACE]}), "missing.jpg not found"),
    (json.dumps({"image": "a.jpg", "faces": [dict(GOOD_FACE, box=[70, 10, 110, 50])]}),
     r"box \[70, 10, 110, 50\] is outside the 80x60 image"),
    (json.dumps({"image": "a.jpg", "faces": [dict(GOOD_FACE, box=[30, 10, 20, 50])]}), "has no area"),
    (json.dumps({"image": "a.jpg", "faces": [dict(GOOD_FACE, landmarks=[[20, 25], [40, 25], [30, 32], [22, 42],
                                                                          [75, 42]])]}),
     r"landmark \[75.0, 42.0\] is outside the box"),
])
def test_bad_annotation_lines_name_file_and_line(tmp_path, line, message):
    """Each bad line stops the read with FILE:LINE and the reason; --skip-bad (a `skipped` list) counts it."""
    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((60, 80, 3), np.uint8))  # no width/height: read from the header
    good = json.dumps({"image": "a.jpg", "faces": [GOOD_FACE]})
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join([good, line, good]) + "\n")
    with pytest.raises(BadAnnotation, match=f"set.jsonl:2: .*{message}"):
        read_jsonl(path)
    skipped = []
    assert len(read_jsonl(path, skipped=skipped)) == 2
    assert len(skipped) == 1 and skipped[0].startswith(f"{path}:2: ")


def test_train_command_reports_a_bad_line(tmp_path, capsys):
    pytest.importorskip("torch", reason="fastmtcnn train asks for torch before it reads the data: "
                                        "pip install \"torch==2.13.0\" \".[train]\"")
    from fastmtcnn.cli import main

    path = tmp_path / "set.jsonl"
    path.write_text(json.dumps({"image": "gone.jpg", "faces": [GOOD_FACE]}) + "\n")
    assert main(["train", "--data", str(path), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    assert f"{path}:1: image" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_split_records_is_by_image_and_seeded():
    records = [FaceRecord(f"img{k}", np.zeros((0, 4), np.float32), np.zeros((0, 5, 2), np.float32),
                          np.zeros(0, bool)) for k in range(50)]
    train, held = split_records(records, 0.1, seed=4)
    assert len(held) == 5 and len(train) == 45
    assert not {r.image for r in train} & {r.image for r in held}
    assert [r.image for r in split_records(records, 0.1, seed=4)[1]] == [r.image for r in held]
    assert [r.image for r in split_records(records, 0.1, seed=5)[1]] != [r.image for r in held]
    assert len(split_records(records, 0.5, seed=0, cap=3)[1]) == 3


def test_labels_follow_the_paper_thresholds(tmp_path):
    record = _face_record(tmp_path)
    face = record.boxes[0] - np.array([0, 0, 1, 1], np.float32)  # inclusive
    shifted = lambda dx: face + np.array([dx, 0, dx, 0], np.float32)  # noqa: E731
    # IoU of a box shifted by dx against an 80-wide box: (80 - dx) / (80 + dx)
    boxes = np.stack([shifted(0), shifted(10), shifted(25), shifted(50), shifted(80)])
    kinds, match = label_boxes(boxes, record)
    assert kinds.tolist() == [POSITIVE, POSITIVE, PART, NEGATIVE, NEGATIVE]
    record.ignore[:] = True
    assert label_boxes(boxes, record)[0].tolist() == [-1, -1, -1, NEGATIVE, NEGATIVE]


def test_targets_decode_with_the_cascade_kernels():
    rng = np.random.default_rng(1)
    boxes = np.floor(rng.uniform(0, 50, (20, 2))).astype(np.float32)
    boxes = np.column_stack([boxes, boxes + np.floor(rng.uniform(20, 60, (20, 1)))]).astype(np.float32)
    faces = (boxes + rng.uniform(-5, 5, (20, 4))).astype(np.float32)
    for plus_one in (False, True):
        decoded = kernels.calibrate(boxes, offset_targets(boxes, faces, plus_one), plus_one)
        np.testing.assert_allclose(decoded, faces - np.array([0, 0, 1, 1]), atol=1e-3)  # inclusive boxes
    points = rng.uniform(0, 100, (20, 5, 2)).astype(np.float32)
    np.testing.assert_allclose(kernels.landmarks_in_boxes(boxes, landmark_targets(boxes, points)), points, atol=1e-3)


def test_stage_samples_mix_and_targets(tmp_path):
    record = _face_record(tmp_path)
    samples = stage_samples([record] * 4, "onet", Quota(3, 1, 1, 2), seed=0)
    assert samples.counts() == {"negative": 12, "positive": 4, "part": 4, "landmark": 8,
                                "mined_negative": 0, "mined_positive": 0, "mined_part": 0, "mined_landmark": 0}
    assert samples.images.shape == (28, 3, 48, 48) and samples.images.dtype == np.float16
    assert np.abs(samples.images).max() <= 1.0
    boxed = (samples.kinds == POSITIVE) | (samples.kinds == PART)
    assert np.abs(samples.offsets[boxed]).max() > 0 and not samples.offsets[~boxed].any()
    marked = samples.kinds == LANDMARK
    assert ((samples.landmarks[marked] > -0.5) & (samples.landmarks[marked] < 1.5)).all() and samples.landmarks[marked].std() > 0.1
    assert not samples.landmarks[~marked].any()
    assert stage_samples([_face_record(tmp_path, with_points=False)], "onet", Quota(3, 1, 1, 2), 0).counts()[
        "landmark"] == 0


def test_stage_samples_are_seeded_and_mined_boxes_come_first(tmp_path):
    record = _face_record(tmp_path)
    a = stage_samples([record] * 3, "rnet", Quota(3, 1, 1, 0), seed=5)
    b = stage_samples([record] * 3, "rnet", Quota(3, 1, 1, 0), seed=5)
    np.testing.assert_array_equal(a.images, b.images)
    calls = []

    def propose(image, faces):  # one positive and one negative for the (possibly mirrored) face
        calls.append(image.shape)
        face = faces[0] - np.array([0, 0, 1, 1], np.float32)
        return np.array([face, face + 60], np.float32)

    samples = stage_samples([record, record], "rnet", Quota(1, 1, 0, 0), seed=0, propose=propose)
    assert calls == [(160, 200, 3)] * 2
    assert samples.kinds.tolist() == [NEGATIVE, POSITIVE] * 2 and samples.mined.all()


def test_sample_set_save_load_and_orientation(tmp_path):
    samples = stage_samples([_face_record(tmp_path)], "pnet", Quota(3, 1, 1, 0), seed=0)
    samples.save(tmp_path / "s.npz")
    loaded = SampleSet.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(loaded.images, samples.images)
    part = samples.subset(3, seed=1)
    assert len(part) == 3 and samples.subset(None, 1) is samples and len(samples.subset(99, 1)) == len(samples)
    assert any((samples.images == image).all(axis=(1, 2, 3)).any() for image in part.images)
    blob = to_caffe_orientation(samples.images)
    assert blob.dtype == np.float32 and blob.flags.c_contiguous
    np.testing.assert_array_equal(blob[0, 1, 3, 7], samples.images[0, 1, 7, 3])


def test_synthetic_backgrounds_are_face_free_and_seeded():
    first, again = synthetic_backgrounds(2, seed=3), synthetic_backgrounds(2, seed=3)
    assert all(len(r.boxes) == 0 and r.pixels.shape == (256, 256, 3) for r in first)
    np.testing.assert_array_equal(first[1].pixels, again[1].pixels)
    kinds, _ = label_boxes(np.array([[0, 0, 20, 20]], np.float32), first[0])
    assert kinds.tolist() == [NEGATIVE]


def test_mining_min_face_follows_the_smallest_face():
    assert mining_min_face(np.zeros((0, 4), np.float32)) == 20
    assert mining_min_face(np.array([[0, 0, 200, 180], [0, 0, 150, 140]], np.float32)) == 80  # 0.6 x 140 = 84
    assert mining_min_face(np.array([[0, 0, 60, 60]], np.float32)) == 20  # 36
    assert mining_min_face(np.array([[0, 0, 20, 20]], np.float32)) == 20  # smaller than every step


def test_detector_loads_a_weights_folder(tmp_path):
    import shutil

    import cv2

    from fastmtcnn import Detector
    from fastmtcnn.errors import SettingsError

    with pytest.raises(SettingsError, match="det1.prototxt"):
        Detector(weights=str(tmp_path))
    for stem in ("det1", "det2", "det3"):
        for suffix in ("prototxt", "caffemodel"):
            shutil.copy(REPO_ROOT / "weights" / f"{stem}.{suffix}", tmp_path)
    image = cv2.imread(str(FIXTURES / "group_640x480.jpg"))
    shipped, copied = Detector(min_face_size=40).detect(image), Detector(min_face_size=40, weights=tmp_path).detect(image)
    assert len(shipped) > 0
    np.testing.assert_array_equal(shipped.boxes, copied.boxes)
    np.testing.assert_array_equal(shipped.landmarks, copied.landmarks)


def test_parallel_mining_gives_the_serial_samples(tmp_path):
    """Two worker processes, each with its own mining cascade, cut exactly the samples one process cuts."""
    import cv2

    from fastmtcnn import Detector
    from fastmtcnn.training.samples import Mining

    image = cv2.imread(str(FIXTURES / "group_640x480.jpg"))
    faces = Detector(min_face_size=20).detect(image)
    group = FaceRecord(str(FIXTURES / "group_640x480.jpg"), faces.boxes, faces.landmarks, np.zeros(len(faces), bool))
    records = [group, _face_record(tmp_path), group] + synthetic_backgrounds(2, seed=0)
    mining = Mining("rnet", None, min_face_size=20)
    serial = stage_samples(records, "rnet", Quota(3, 1, 1, 0), seed=2, propose=mining)
    steps = []
    parallel = stage_samples(records, "rnet", Quota(3, 1, 1, 0), seed=2, propose=mining, workers=2,
                             progress=steps.append)
    assert len(steps) == len(records) and serial.mined.any()
    for name in ("images", "kinds", "offsets", "landmarks", "mined"):
        np.testing.assert_array_equal(getattr(parallel, name), getattr(serial, name))
    with pytest.raises(ValueError, match="Mining"):
        stage_samples(records, "rnet", Quota(3, 1, 1, 0), seed=2, propose=lambda image, boxes: boxes, workers=2)


def test_jitter_moves_landmarks_with_the_pixels():
    """A bright dot at a landmark of a landmark face lands where the jittered target says (within a pixel);
    positives keep their (unused) landmarks; colours stay in the normalised range; seeded."""
    from fastmtcnn.training.augment import Jitter, jitter_batch

    size, dot = 48, (30, 14)  # pixel centre (x, y) of the dot
    images = np.full((2, 3, size, size), -127.5 / 128, np.float32)  # black and white as samples.py normalises
    images[:, :, dot[1] - 1:dot[1] + 2, dot[0] - 1:dot[0] + 2] = 127.5 / 128
    points = np.tile(np.r_[[(dot[0] + 0.5) / size] * 5, [(dot[1] + 0.5) / size] * 5], (2, 1)).astype(np.float32)
    kinds = np.array([LANDMARK, POSITIVE], np.int8)
    geometric_only = Jitter(degrees=25, scale=0.1, contrast=0, brightness=0, grey=0, blur=0, jpeg=0)
    for seed in range(5):
        moved, targets = jitter_batch(images, kinds, points, np.random.default_rng(seed), geometric_only)
        assert np.abs(targets[0] - points[0]).max() > 0.5 / size  # it did move
        weight = moved[0].sum(axis=0) - moved[0].sum(axis=0).min()
        rows, columns = np.mgrid[:size, :size]
        centroid = [(weight * grid).sum() / weight.sum() + 0.5 for grid in (columns, rows)]  # pixel edges
        np.testing.assert_allclose(centroid, targets[0, [0, 5]] * size, atol=0.3)
        np.testing.assert_array_equal(targets[1], points[1])
        np.testing.assert_array_equal(moved[1], images[1])
    colour, _ = jitter_batch(images, kinds, points, np.random.default_rng(0), Jitter(grey=1, blur=1, jpeg=1))
    again, _ = jitter_batch(images, kinds, points, np.random.default_rng(0), Jitter(grey=1, blur=1, jpeg=1))
    np.testing.assert_array_equal(colour, again)
    assert colour.min() >= -1.0 and colour.max() <= 1.0 and not np.array_equal(colour[1], images[1])
    np.testing.assert_allclose(colour[1][0], colour[1][2], atol=0.05)  # grey: channels (nearly) equal after JPEG


def test_flip_mirrors_landmark_faces_with_their_points():
    """A mirrored landmark face keeps each dot under its target (x -> 1 - x), its left and right points swap
    (the image-left eye is still the one of smaller x), other kinds are untouched, about half are mirrored,
    the same generator seed mirrors the same faces, and mirroring twice gives the crop back."""
    from fastmtcnn.training.augment import flip_landmark_faces, mirror_points

    size, n = 48, 400
    eyes_nose_mouth = [(14, 16), (34, 18), (25, 26), (17, 36), (31, 35)]  # pixel centres (x, y), left first
    images = np.full((n, 3, size, size), -1.0, np.float32)
    for k, (x, y) in enumerate(eyes_nose_mouth):  # a dot per point, each of its own brightness
        images[:, :, y, x] = 0.2 * k
    points = np.tile(np.r_[[(x + 0.5) / size for x, _ in eyes_nose_mouth],
                           [(y + 0.5) / size for _, y in eyes_nose_mouth]], (n, 1)).astype(np.float32)
    kinds = np.where(np.arange(n) % 2, LANDMARK, POSITIVE).astype(np.int8)
    flipped, targets = flip_landmark_faces(images, kinds, points, np.random.default_rng(4))
    mirrored = np.flatnonzero((targets != points).any(axis=1))
    assert set(kinds[mirrored]) == {LANDMARK} and 0.4 < len(mirrored) / (n / 2) < 0.6
    np.testing.assert_array_equal(flipped[kinds != LANDMARK], images[kinds != LANDMARK])
    for k in mirrored[:5]:
        for point in range(5):  # the dot under each target is the mirrored face's own point
            x, y = (int(targets[k, point] * size), int(targets[k, 5 + point] * size))
            assert flipped[k, 0, y, x] == np.float32(0.2 * [1, 0, 2, 4, 3][point])  # as stored (NumPy 1.x compares in f64)
        assert targets[k, 0] < targets[k, 1] and targets[k, 3] < targets[k, 4]
    again, again_targets = flip_landmark_faces(images, kinds, points, np.random.default_rng(4))
    np.testing.assert_array_equal(again, flipped)
    np.testing.assert_allclose(mirror_points(mirror_points(points)), points, atol=1e-6)
    back, back_targets = flip_landmark_faces(flipped, kinds, targets, np.random.default_rng(4))
    np.testing.assert_array_equal(back, images)
    np.testing.assert_allclose(back_targets, points, atol=1e-6)


def test_several_data_sets_and_boxes_only_sets_get_no_landmark_faces(tmp_path):
    """`--data` repeated reads every set; a boxes-only set (like the dlib boxes) gives negatives, positives
    and part faces but no landmark face, so no landmark loss."""
    import argparse
    from fastmtcnn.training.cli import _records

    cv2.imwrite(str(tmp_path / "a.png"), np.random.default_rng(1).integers(0, 256, (120, 120, 3), dtype=np.uint8))
    marked = {"image": "a.png", "faces": [GOOD_FACE]}
    boxes_only = {"image": "a.png", "faces": [dict(GOOD_FACE, landmarks=None)]}
    (tmp_path / "marked.jsonl").write_text(json.dumps(marked) + "\n")
    (tmp_path / "boxes.jsonl").write_text((json.dumps(boxes_only) + "\n") * 2)
    args = argparse.Namespace(data=[tmp_path / "marked.jsonl", tmp_path / "boxes.jsonl"], wider=[], celeba=[],
                              skip_bad=False)
    records = _records(args)
    assert len(records) == 3 and np.isfinite(records[0].landmarks).all() and np.isnan(records[1].landmarks).all()
    per_set = [stage_samples(part, "onet", Quota(3, 1, 1, 2), seed=0).counts() for part in (records[:1], records[1:])]
    assert per_set[0]["landmark"] == 2 and per_set[1]["landmark"] == 0
    assert per_set[1]["positive"] == 2 and per_set[1]["negative"] == 6


@pytest.mark.parametrize("extra, dropout, layers", [
    ([], 0.0, {"onet": ["conv6-3"]}),  # a fine-tune refits O-Net's landmark head without dropout
    (["--init", "scratch"], None, {}),  # from scratch: every layer, the net's own dropout (0.25)
    (["--dropout", "0.25", "--train-layers", "all"], 0.25, {}),
    (["--train-layers", "conv6-1,conv6-2"], 0.0, {stage: ["conv6-1", "conv6-2"] for stage in ("pnet", "rnet", "onet")}),
])
def test_fine_tune_refits_the_landmark_head_without_dropout_by_default(extra, dropout, layers):
    """`--dropout RATIO` / `--train-layers LAYER,...|all` reach the run; unset, a fine-tune trains O-Net's conv6-3
    alone with drop5 off (the validation NME it lowered, docs/training.md), a run from scratch every layer."""
    from fastmtcnn.cli import build_parser
    from fastmtcnn.training.cli import resolve_defaults

    args = resolve_defaults(build_parser().parse_args(["train", "--data", "x.jsonl", "--out", "o", *extra]))
    assert (args.dropout, args.train_layers) == (dropout, layers)


@pytest.mark.parametrize("extra, keep, select", [([], True, "scatter"), (["--init", "scratch"], False, "cascade"),
                                                 (["--no-keep-convention", "--select", "nme"], False, "nme")])
def test_fine_tune_defaults_keep_the_point_convention(extra, keep, select):
    """A fine-tune keeps the shipped point convention and picks its epoch by the scatter NME unless told
    otherwise (a shift toward the training set's convention made 300-W worse, docs/training.md); from
    scratch there is no convention to keep."""
    from fastmtcnn.cli import build_parser
    from fastmtcnn.training.cli import resolve_defaults

    args = resolve_defaults(build_parser().parse_args(["train", "--data", "x.jsonl", "--out", "o", *extra]))
    assert (args.keep_convention, args.select, args.augment) == (keep, select, False)
