"""Tests for fastmtcnn.evaluation on hand-made fixtures with hand-computed expectations."""

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pytest

from fastmtcnn import CascadeSettings, cli
from fastmtcnn import evaluation as ev
from fastmtcnn.evaluation.cli import add_eval_command
from fastmtcnn.evaluation.scoring import score_image

from conftest import REPO_ROOT, SHARED

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "eval"

# A face whose eye centres are 40 px apart (inter-ocular distance = 40 px).
LM40 = [[100.0, 100.0], [140.0, 100.0], [120.0, 115.0], [105.0, 130.0], [135.0, 130.0]]


# --------------------------------------------------------------------------- helpers

def face(box, landmarks=None, box_type="annotated", ignore=False):
    return {"box": [float(v) for v in box], "box_type": box_type,
            "landmarks": landmarks, "ignore": ignore}


def write_dataset(tmp_path, images, name="gt.jsonl"):
    """images: list of (image, complete, faces)."""
    path = tmp_path / name
    with open(path, "w") as f:
        for img, complete, faces in images:
            f.write(json.dumps({"image": img, "width": 640, "height": 480, "source": "test",
                                "complete": complete, "faces": faces}) + "\n")
    return str(path)


def pred(boxes, scores, landmarks=None):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    lm = (np.asarray(landmarks, np.float32).reshape(-1, 5, 2) if landmarks is not None
          else np.zeros((len(boxes), 5, 2), np.float32))
    return {"boxes": boxes, "scores": np.asarray(scores, np.float32).reshape(-1), "landmarks": lm}


def shifted(lm, dx, dy):
    return [[x + dx, y + dy] for x, y in lm]


def run_eval_command(argv, detector_factory):
    """`fastmtcnn eval ARGV...` with the detector built by `detector_factory`; returns the exit code."""
    parser = argparse.ArgumentParser(prog="fastmtcnn")
    add_eval_command(parser.add_subparsers(dest="command", required=True), detector_factory=detector_factory)
    args = parser.parse_args(["eval", *argv])
    return args.run(args)


# --------------------------------------------------------------------------- IoU / AP / NME

def test_iou_matrix_continuous_coordinates():
    a = [[0, 0, 10, 10], [0, 0, 10, 10]]
    b = [[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]]
    m = ev.iou_matrix(a, b)
    assert m.shape == (2, 3)
    # overlap 5x10 = 50, union 100 + 100 - 50 = 150 (no +1 convention)
    np.testing.assert_allclose(m[0], [50 / 150, 1.0, 0.0])
    assert ev.iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)
    assert ev.iou_matrix(a, np.zeros((0, 4))).shape == (2, 0)


def test_average_precision_by_hand():
    # FP first: (rec, prec) = (0, 0), (.5, .5), (1, 2/3) -> envelope 2/3 on both steps
    assert ev.average_precision([0.95, 0.9, 0.7], [False, True, True], 2) == pytest.approx(2 / 3)
    # TP, FP, TP: (.5, 1), (.5, .5), (1, 2/3) -> 0.5 * 1 + 0.5 * 2/3 = 5/6
    assert ev.average_precision([0.9, 0.8, 0.7], [True, False, True], 2) == pytest.approx(5 / 6)
    # a GT never found caps recall at 0.5 -> AP 0.5
    assert ev.average_precision([0.9], [True], 2) == pytest.approx(0.5)
    assert ev.average_precision([], [], 3) == 0.0
    assert ev.average_precision([0.9], [False], 0) is None


def test_landmark_nme_by_hand():
    # inter-ocular 40 px; every point moved by (3, 4) -> 5 px -> 5 / 40 = 0.125
    assert ev.landmark_nme(shifted(LM40, 3, 4), LM40) == pytest.approx(0.125)
    # moved 4 px along x -> 4 / 40 = 0.1
    assert ev.landmark_nme(shifted(LM40, 4, 0), LM40) == pytest.approx(0.1)
    assert ev.landmark_nme(LM40, LM40) == 0.0


def test_landmark_nmes_is_the_per_face_nme_of_many_faces():
    gt = np.stack([LM40, shifted(LM40, 10, 5), LM40])
    gt[2, 1] = gt[2, 0]  # eyes coincide: no NME
    pred = np.stack([shifted(LM40, 3, 4), shifted(LM40, 14, 5), LM40])
    nmes = ev.landmark_nmes(pred, gt)
    assert nmes.dtype == np.float64 and nmes.shape == (3,)
    assert nmes[:2].tolist() == pytest.approx([0.125, 0.1]) and np.isnan(nmes[2])
    assert nmes[:2].tolist() == [ev.landmark_nme(p, g) for p, g in zip(pred[:2], gt[:2])]
    pred[0, 4, 1] = np.nan
    assert np.isnan(ev.landmark_nmes(pred, gt)[0]) and ev.landmark_nmes(pred[:0], gt[:0]).shape == (0,)


def test_match_duplicate_is_false_positive_and_highest_iou_wins():
    gt = [[0, 0, 10, 10], [8, 0, 18, 10]]
    # p0 overlaps gt0 with IoU 1 and gt1 with 2/18; p1 (lower score) duplicates gt0
    m = ev.match_detections([[0, 0, 10, 10], [0, 0, 10, 10], [8, 0, 18, 10]], [0.9, 0.8, 0.7],
                            gt, [0.5, 0.5], [False, False])
    assert m.prediction_status.tolist() == [1, 0, 1]
    assert m.face_prediction.tolist() == [0, 2]
    assert m.face_iou.tolist() == [1.0, 1.0] and m.prediction_face.tolist() == [0, -1, 1]


# --------------------------------------------------------------------------- evaluate()

def test_perfect_predictions(tmp_path):
    lm2 = shifted(LM40, 200, 0)
    ds = write_dataset(tmp_path, [
        ("a.jpg", True, [face([90, 80, 150, 150], LM40), face([290, 80, 350, 150], lm2)]),
        ("b.jpg", True, [face([10, 10, 60, 70])]),
    ])
    preds = {
        "a.jpg": pred([[90, 80, 150, 150], [290, 80, 350, 150]], [0.99, 0.98], [LM40, lm2]),
        "b.jpg": pred([[10, 10, 60, 70]], [0.9]),
    }
    r = ev.evaluate(ds, predictions=preds)
    assert r["counts"]["images"] == 2 and r["counts"]["faces"] == 3
    assert r["counts"]["matched"] == 3 and r["counts"]["missed"] == 0
    d, lm = r["detection"], r["landmarks"]
    assert d["recall"] == 1.0 and d["precision"] == 1.0 and d["ap"] == pytest.approx(1.0)
    assert d["fp_per_image"] == 0.0
    assert lm["faces"] == 2 and lm["missed"] == 0
    assert lm["nme_mean"] == 0.0 and lm["nme_median"] == 0.0 and lm["failure_rate"] == 0.0
    assert r["per_image"][0]["tp"] == 2 and r["per_image"][0]["faces"][1]["nme"] == 0.0
    assert r["per_image"][1]["faces"][0]["nme"] is None  # no GT landmarks
    json.dumps(r)  # the report is JSON-serialisable as is
    md = ev.markdown_summary(r)
    assert "| recall | 100.00 % |" in md and "| NME mean (inter-ocular) | 0.00 % |" in md


def test_shifted_landmarks_nme_and_misses(tmp_path):
    # Four GT faces with inter-ocular distance 40 px (eyes at x=100 and 140, + offsets).
    # Predictions: face0 exact (NME 0), face1 landmarks moved (0, 2) -> 2/40 = 0.05,
    # face2 moved (3, 4) -> 5/40 = 0.125 (a failure, > 0.10), face3 not detected.
    # mean = (0 + 0.05 + 0.125) / 3 = 0.058333, median = 0.05,
    # failure rate among matched = 1/3, with the miss counted as failure = 2/4.
    offs = [0, 200, 400, 600]
    gts = [face([90 + o, 80, 150 + o, 150], shifted(LM40, o, 0)) for o in offs]
    ds = write_dataset(tmp_path, [("a.jpg", False, gts)])
    preds = {"a.jpg": pred(
        [[90 + o, 80, 150 + o, 150] for o in offs[:3]], [0.9, 0.8, 0.7],
        [shifted(LM40, 0, 0), shifted(LM40, 200, 2), shifted(LM40, 403, 4)])}
    r = ev.evaluate(ds, predictions=preds)
    lm = r["landmarks"]
    assert lm["faces"] == 4 and lm["matched"] == 3 and lm["missed"] == 1
    assert lm["nme_mean"] == pytest.approx(0.175 / 3)
    assert lm["nme_median"] == pytest.approx(0.05)
    assert lm["failure_rate"] == pytest.approx(1 / 3)
    assert lm["failure_rate_with_missed"] == pytest.approx(0.5)
    assert [f["nme"] for f in r["per_image"][0]["faces"]] == pytest.approx([0, 0.05, 0.125, None])
    # incomplete image: recall only, precision/AP/FP undefined
    assert r["detection"]["recall"] == pytest.approx(0.75)
    assert r["detection"]["precision"] is None and r["detection"]["ap"] is None
    assert r["detection"]["fp_per_image"] is None
    md = ev.markdown_summary(r)
    assert "| NME mean (inter-ocular) | 5.83 % |" in md and "| NME median | 5.00 % |" in md
    assert "| precision (complete images) | n/a |" in md


def test_false_positive_on_complete_image(tmp_path):
    ds = write_dataset(tmp_path, [
        ("a.jpg", True, [face([0, 0, 50, 50]), face([100, 0, 150, 50])]),
        ("empty.jpg", True, []),
        # incomplete image: its unmatched prediction must NOT count as a false positive
        ("inc.jpg", False, [face([0, 0, 50, 50])]),
    ])
    preds = {
        # TP 0.9, FP 0.8, TP 0.7
        "a.jpg": pred([[0, 0, 50, 50], [300, 300, 350, 350], [100, 0, 150, 50]], [0.9, 0.8, 0.7]),
        "empty.jpg": pred([], []),
        "inc.jpg": pred([[0, 0, 50, 50], [200, 200, 260, 260]], [0.99, 0.98]),
    }
    d = ev.evaluate(ds, predictions=preds)["detection"]
    assert d["recall"] == 1.0
    assert d["precision"] == pytest.approx(2 / 3)  # 2 TP, 1 FP on complete images
    assert d["fp_per_image"] == pytest.approx(0.5)  # 1 FP over 2 complete images
    # PR points (.5, 1), (.5, .5), (1, 2/3): AP = .5 * 1 + .5 * 2/3 = 5/6
    assert d["ap"] == pytest.approx(5 / 6)

    # same, but the false positive has the highest score: AP = .5 * 2/3 + .5 * 2/3 = 2/3
    preds["a.jpg"] = pred([[0, 0, 50, 50], [300, 300, 350, 350], [100, 0, 150, 50]],
                          [0.9, 0.95, 0.7])
    d = ev.evaluate(ds, predictions=preds)["detection"]
    assert d["precision"] == pytest.approx(2 / 3)
    assert d["ap"] == pytest.approx(2 / 3)


def test_ignore_face_is_neither_miss_nor_fp(tmp_path):
    ds = write_dataset(tmp_path, [
        ("a.jpg", True, [face([0, 0, 50, 50]), face([100, 0, 120, 20], ignore=True),
                         face([200, 0, 220, 20], ignore=True)]),
    ])
    # one detection on the real face, one on the first ignore face, none on the second
    preds = {"a.jpg": pred([[0, 0, 50, 50], [100, 0, 120, 20]], [0.9, 0.95])}
    r = ev.evaluate(ds, predictions=preds)
    c, d, im = r["counts"], r["detection"], r["per_image"][0]
    assert c["faces"] == 1 and c["ignore_faces"] == 2 and c["missed"] == 0
    assert im["tp"] == 1 and im["fp"] == 0 and im["ignored_pred"] == 1 and im["missed"] == 0
    assert d["recall"] == 1.0 and d["precision"] == 1.0 and d["ap"] == pytest.approx(1.0)

    # control: without the ignore flag the same prediction is a TP and the other face a miss
    ds2 = write_dataset(tmp_path, [
        ("a.jpg", True, [face([0, 0, 50, 50]), face([100, 0, 120, 20]), face([200, 0, 220, 20])]),
    ], name="gt2.jsonl")
    r2 = ev.evaluate(ds2, predictions=preds)
    assert r2["counts"]["missed"] == 1 and r2["detection"]["recall"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("height,box_type,matched", [
    (35, "landmark_extent", True),   # IoU 0.35 >= 0.3
    (25, "landmark_extent", False),  # IoU 0.25 <  0.3
    (35, "annotated", False),        # IoU 0.35 <  0.5
])
def test_landmark_extent_threshold(tmp_path, height, box_type, matched):
    # GT 100x100; prediction [0, 0, 100, h] lies inside it: IoU = 100 h / 10000
    ds = write_dataset(tmp_path, [("a.jpg", False, [face([0, 0, 100, 100], LM40, box_type)])])
    preds = {"a.jpg": pred([[0, 0, 100, height]], [0.9], [LM40])}
    assert ev.iou_matrix([[0, 0, 100, height]], [[0, 0, 100, 100]])[0, 0] == pytest.approx(height / 100)
    r = ev.evaluate(ds, predictions=preds)
    assert r["counts"]["matched"] == int(matched)
    assert r["landmarks"]["missed"] == int(not matched)


def test_evaluate_with_detect_callable_and_root(tmp_path, capsys):
    ds = write_dataset(tmp_path, [("x/a.jpg", True, [face([0, 0, 50, 50])]),
                                  ("b.jpg", True, [])])
    seen = []

    def detect(path):
        seen.append(path)
        if path.endswith("a.jpg"):
            return pred([[1, 1, 50, 50]], [0.9])
        return {"boxes": np.zeros((0, 4), np.float32), "scores": np.zeros(0, np.float32),
                "landmarks": np.zeros((0, 5, 2), np.float32)}

    r = ev.evaluate(ds, detect=detect, progress=True)
    assert seen == [str(tmp_path / "x" / "a.jpg"), str(tmp_path / "b.jpg")]  # default root
    assert r["detection"]["precision"] == 1.0 and r["timing"]["detect_seconds"] >= 0
    assert "detect 2/2" in capsys.readouterr().err  # asked for: progress line drawn
    seen.clear()
    ev.evaluate(ds, root="/elsewhere", detect=detect)
    assert seen[0] == "/elsewhere/x/a.jpg"
    assert capsys.readouterr().err == ""  # progress=False: silent

    with pytest.raises(KeyError):
        ev.evaluate(ds, predictions={"b.jpg": pred([], [])})
    with pytest.raises(ValueError):
        ev.evaluate(ds)


# --------------------------------------------------------------------------- compare()

def test_compare_by_hand():
    ref = {
        "A": pred([[0, 0, 10, 10], [100, 0, 110, 10], [200, 0, 210, 10]], [0.9, 0.8, 0.7],
                  [LM40, LM40, LM40]),
        "B": pred([[0, 0, 10, 10]], [0.99]),
    }
    ours = {
        "A": pred([[0, 0, 10, 10],          # = ref 0, IoU 1, landmarks 5 px off, score +0.05
                   [101, 0, 111, 10],       # ref 1: inter 90 / union 110 = 0.818
                   [204, 0, 214, 10],       # ref 2: 60 / 140 = 0.43 < 0.7 -> unmatched
                   [500, 500, 510, 510]],   # extra
                  [0.95, 0.8, 0.7, 0.6], [shifted(LM40, 3, 4), LM40, LM40, LM40]),
    }
    c = ev.compare(ours, ref, iou=0.7)
    assert c["reference_faces"] == 4 and c["our_faces"] == 4 and c["matched"] == 2
    assert c["matched_fraction"] == pytest.approx(0.5)   # 2 of 4 reference faces
    assert c["extra_fraction"] == pytest.approx(0.5)     # 2 unmatched of ours / 4 reference
    assert c["iou_median"] == pytest.approx((1 + 90 / 110) / 2)
    assert c["iou_min"] == pytest.approx(90 / 110)
    assert c["landmark_px_median"] == pytest.approx(2.5)  # median of {5, 0}
    assert c["landmark_px_max"] == pytest.approx(5.0)
    assert c["score_diff_median"] == pytest.approx(0.025, abs=1e-6)  # median of {.05, 0}
    # A: 1 unmatched ref + 2 unmatched ours = 3; B: 1
    assert [p["image"] for p in c["worst_images"]] == ["A", "B"]
    md = ev.markdown_compare(c)
    assert "50.00 % (2)" in md and "| A | 3 | 4 | 1 | 2 |" in md


def test_compare_greedy_follows_reference_score():
    # ours has one box; ref X (score .9, IoU .818) is visited before ref Y (score .6, IoU 1)
    ref = {"A": pred([[0, 0, 10, 10], [1, 0, 11, 10]], [0.9, 0.6])}
    ours = {"A": pred([[1, 0, 11, 10]], [0.8])}
    c = ev.compare(ours, ref, iou=0.7)
    assert c["matched"] == 1 and c["iou_min"] == pytest.approx(90 / 110)
    assert ev.compare(ref, ref)["matched_fraction"] == 1.0
    assert ev.compare(ref, ref)["extra_fraction"] == 0.0


# --------------------------------------------------------------------------- golden / CLI

def test_load_golden_fixture():
    g20 = ev.load_golden(str(FIXTURES / "tiny.facenet.jsonl"), 20)
    assert sorted(g20) == ["a.jpg", "sub/b.jpg"]
    a = g20["a.jpg"]
    assert a["boxes"].shape == (2, 4) and a["landmarks"].shape == (2, 5, 2)
    np.testing.assert_allclose(a["scores"], [0.99, 0.8])  # re-sorted by score
    np.testing.assert_allclose(a["boxes"][0], [10, 10, 50, 60])
    g40 = ev.load_golden(str(FIXTURES / "tiny.facenet.jsonl"), 40)
    assert g40["sub/b.jpg"]["boxes"].shape == (0, 4)
    with pytest.raises(ev.DatasetError, match="min_face_size=30"):
        ev.load_golden(str(FIXTURES / "tiny.facenet.jsonl"), 30)

    # scored through the same harness: all faces at 20, one of two at 40
    r20 = ev.evaluate(str(FIXTURES / "tiny.jsonl"), predictions=g20)
    assert r20["detection"]["recall"] == 1.0 and r20["detection"]["ap"] == pytest.approx(1.0)
    assert r20["detection"]["precision"] == 1.0  # b's detection is on an incomplete image
    assert r20["landmarks"]["nme_mean"] == 0.0
    r40 = ev.evaluate(str(FIXTURES / "tiny.jsonl"), predictions=g40)
    assert r40["detection"]["recall"] == 0.5 and r40["detection"]["ap"] == pytest.approx(0.5)


class _Result:
    def __init__(self, p):
        self.boxes, self.scores, self.landmarks = p["boxes"], p["scores"], p["landmarks"]


def test_main_with_fake_detector(tmp_path, capsys):
    golden = ev.load_golden(str(FIXTURES / "tiny.facenet.jsonl"), 20)
    made = []

    class FakeDetector:
        def __init__(self, **kwargs):
            made.append(kwargs)

        def detect(self, path):
            rel = Path(path).relative_to(FIXTURES).as_posix()
            return _Result(golden[rel])

    out = tmp_path / "report.json"
    rc = run_eval_command([str(FIXTURES / "tiny.jsonl"), "--min-face-size", "20", "--out", str(out),
                           "--compare", str(FIXTURES / "tiny.facenet.jsonl"), "--threads", "3", "--jobs", "2"],
                          FakeDetector)
    assert rc == 0
    assert len(made) == 1 and made[0]["num_threads"] == 3  # one detector, built once
    assert made[0]["settings"] == CascadeSettings(min_face_size=20)
    stdout = capsys.readouterr().out
    assert "| recall | 100.00 % |" in stdout and "| parity metric | value |" in stdout
    rep = json.loads(out.read_text())
    assert rep["min_face_size"] == 20 and rep["counts"]["images"] == 2
    assert rep["compare"]["matched_fraction"] == 1.0 and rep["compare"]["extra_fraction"] == 0.0
    assert rep["compare"]["landmark_px_max"] == 0.0


# --------------------------------------------------------------------------- real data

def test_golden_helen_subset_sane():
    data = SHARED / "data" / "landmarks_300w_helen_train_subset.jsonl"
    golden = SHARED / "golden" / "landmarks_300w_helen_train_subset.facenet.jsonl"
    if not (data.exists() and golden.exists()):
        pytest.skip(f"../shared not found: {SHARED} (needs data/ and golden/)")
    r = ev.evaluate(str(data), predictions=ev.load_golden(str(golden), 20))
    assert r["counts"]["images"] == 60 and r["counts"]["faces"] == 60
    assert r["detection"]["recall"] > 0.9
    assert r["landmarks"]["nme_mean"] < 0.1
    assert r["detection"]["precision"] is None  # landmark sets are not complete


def test_main_default_detector_arguments(tmp_path, capsys):
    made = []

    class FakeDetector:
        def __init__(self, **kwargs):
            made.append(kwargs)

        def detect(self, path):
            return {"boxes": [], "scores": [], "landmarks": None}

    assert run_eval_command([str(FIXTURES / "tiny.jsonl"), "--min-face-size", "40"], FakeDetector) == 0
    assert made == [{"settings": CascadeSettings(min_face_size=40), "num_threads": None, "backend": "auto",
                     "precision": "f32"}]
    out = capsys.readouterr().out
    assert "| recall | 0.00 % |" in out and "| precision (complete images) | n/a |" in out


# --------------------------------------------------------------------------- eye-centre rule

def test_eyes_inside_and_match_by_eyes_by_hand():
    # LM40 eyes at (100, 100) and (140, 100); a second face 200 px to the right.
    lm2 = shifted(LM40, 200, 0)
    gt_lm = np.array([LM40, lm2, np.full((5, 2), np.nan).tolist()])
    boxes = [[90, 60, 150, 160],    # contains both eyes of face 0
             [95, 60, 139, 160],    # misses the right eye (x=140) of face 0
             [100, 100, 340, 100],  # border-inclusive: contains all four eyes (IoU decides)
             [0, 0, 640, 480]]      # contains every eye, never the NaN face
    inside = ev.eyes_inside(boxes, gt_lm)
    assert inside.tolist() == [[True, False, False], [False, False, False],
                               [True, True, False], [True, True, False]]
    gt_boxes = [[90, 80, 150, 150], [290, 80, 350, 150], [0, 0, 640, 480]]
    m = ev.match_by_eyes(boxes, [0.9, 0.95, 0.8, 0.7], gt_boxes, gt_lm)
    # score order: p1 (no eyes -> FP), p0 -> face 0, p2 -> face 1 (face 0 taken), p3 -> FP
    assert m.prediction_status.tolist() == [1, 0, 1, 0]
    assert m.face_prediction.tolist() == [0, 2, -1]
    assert ev.match_by_eyes(np.zeros((0, 4)), [], gt_boxes, gt_lm).face_prediction.tolist() == [-1, -1, -1]


def test_eye_rule_recall_in_evaluate(tmp_path):
    # Sun-style: GT box tight on the face; the detection is taller and higher (IoU < 0.5)
    # but contains both eyes -> missed by the IoU rule, matched by the eye rule.
    # gt [90, 80, 150, 150] area 4200; det [80, 30, 160, 160] area 10400, IoU 4200/10400 = 0.404.
    lm2 = shifted(LM40, 200, 0)
    ds = write_dataset(tmp_path, [
        ("a.jpg", False, [face([90, 80, 150, 150], LM40),
                          face([290, 80, 350, 150], lm2),   # detection misses its right eye
                          face([10, 300, 60, 360])]),        # no landmarks: not in the eye rule
        ("b.jpg", False, [face([90, 80, 150, 150], LM40, ignore=True)]),
    ])
    preds = {
        "a.jpg": pred([[80, 30, 160, 160], [280, 70, 338, 160], [10, 300, 60, 360]], [0.99, 0.9, 0.8],
                      [shifted(LM40, 0, 2), lm2, LM40]),
        "b.jpg": pred([[80, 30, 160, 160]], [0.9], [LM40]),
    }
    r = ev.evaluate(ds, predictions=preds)
    # default IoU rule unchanged: face 0 missed (0.404); face 1 IoU = 48*70 / (4200 + 58*90 - 3360) = 0.554
    assert r["counts"]["matched"] == 2 and r["detection"]["recall"] == pytest.approx(2 / 3)
    assert r["landmarks"]["matched"] == 1 and r["landmarks"]["nme_mean"] == 0.0
    e = r["eye_rule"]
    assert e["faces"] == 2 and e["matched"] == 1 and e["missed"] == 1
    assert e["recall"] == pytest.approx(0.5)
    assert e["nme_mean"] == pytest.approx(2 / 40) and e["failure_rate"] == 0.0
    f0, f1, f2 = r["per_image"][0]["faces"]
    assert f0["matched"] is False and f0["matched_eyes"] is True and f0["nme_eyes"] == pytest.approx(0.05)
    assert f1["matched"] is True and f1["matched_eyes"] is False
    assert "matched_eyes" not in f2
    assert "eye-centre rule" in ev.markdown_summary(r)
    json.dumps(r)
    assert ev.evaluate(ds, predictions=preds, eye_rule=False)["eye_rule"] is None


# --------------------------------------------------------------------------- `fastmtcnn eval` command line

@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_eval_help_lists_the_options_with_defaults(flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["eval", flag])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("DATA.jsonl", "--root", "--min-face-size", "--out", "--compare", "--compare-iou",
                   "--threads", "--jobs", "--progress"):
        assert option in text
    assert "default: 20" in text and "default: 0.7" in text  # defaults are shown


def never_built(**settings):
    raise AssertionError("the detector must not be built when the input files are bad")


@pytest.mark.parametrize("content,message", [
    (None, "no such file"),
    ('{"image": "a.jpg", "faces": []}\nnot json\n', ":2: invalid JSON"),
    ('["a.jpg"]\n', "expected a JSON object per line"),
    ('{"faces": []}\n', 'needs an "image" path'),
    ('{"image": "a.jpg", "faces": [{"box": [1, 2, 3]}]}\n', "face box must be 4 numbers"),
    ('{"image": "a.jpg", "faces": [{"box": [1, 2, 3, 4], "box_type": "oval"}]}\n', "unknown box_type 'oval'"),
    ('{"image": "a.jpg", "faces": [{"box": [1, 2, 3, 4], "landmarks": [[1, 2]]}]}\n', "5 [x, y] points"),
])
def test_bad_data_file_is_one_line_and_exit_code_1(tmp_path, capsys, content, message):
    data = tmp_path / "data.jsonl"
    if content is not None:
        data.write_text(content)
    with pytest.raises(ev.DatasetError, match=re.escape(message)):
        run_eval_command([str(data)], never_built)
    assert cli.main(["eval", str(data)]) == 1  # an input error (docs/cli.md)
    err = capsys.readouterr().err
    assert err.startswith("fastmtcnn: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_root_or_reference_file_fails_before_detection(tmp_path):
    data = str(FIXTURES / "tiny.jsonl")
    with pytest.raises(ev.DatasetError, match="--root"):
        run_eval_command([data, "--root", str(tmp_path / "missing")], never_built)
    with pytest.raises(ev.DatasetFileNotFound):
        run_eval_command([data, "--compare", str(tmp_path / "missing.jsonl")], never_built)
    with pytest.raises(ev.DatasetError, match="min_face_size=30"):
        run_eval_command([data, "--compare", str(FIXTURES / "tiny.facenet.jsonl"), "--min-face-size", "30"],
                         never_built)
    with pytest.raises(ValueError, match="--out .*folder does not exist"):
        run_eval_command([data, "--out", str(tmp_path / "missing" / "report.json")], never_built)


def test_bad_numbers_are_one_line_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["eval", str(FIXTURES / "tiny.jsonl"), "--jobs", "0"])
    assert exit_info.value.code == 2
    assert "argument --jobs: must be >= 1" in capsys.readouterr().err
    for option, value, message in (("--threads", "0", "num_threads must be a positive int"),
                                   ("--min-face-size", "0", "min_face_size")):
        assert cli.main(["eval", str(FIXTURES / "tiny.jsonl"), option, value]) == 2
        err = capsys.readouterr().err
        assert err.startswith("fastmtcnn: error: ") and message in err and err.count("\n") == 1


# --------------------------------------------------------------------------- one image, then the set

def test_score_image_by_hand():
    # faces: real (with landmarks), ignore (with landmarks), real without landmarks (missed)
    record = {"image": "a.jpg", "complete": True,
              "faces": [face([90, 80, 150, 150], LM40), face([300, 0, 340, 40], LM40, ignore=True),
                        face([500, 0, 560, 60])]}
    prediction = ev.as_prediction(pred([[300, 0, 340, 40], [90, 80, 150, 150], [0, 300, 40, 340]],
                                       [0.99, 0.9, 0.8], [LM40, shifted(LM40, 0, 2), LM40]))
    score = score_image(record, prediction)
    assert (score.faces, score.ignore_faces, score.predictions) == (2, 1, 3)
    assert (score.true_positives, score.false_positives, score.ignored_predictions) == (1, 1, 1)
    assert score.counted_scores.tolist() == pytest.approx([0.9, 0.8]) and score.counted_true.tolist() == [True, False]
    assert (score.landmark_faces, score.landmark_missed) == (1, 0)
    assert score.landmark_nmes.tolist() == pytest.approx([2 / 40])
    assert (score.eye_rule.faces, score.eye_rule.matched) == (1, 1)
    row = score.report_row()
    assert (row["tp"], row["fp"], row["ignored_pred"], row["missed"]) == (1, 1, 1, 1)
    assert [f["matched"] for f in row["faces"]] == [True, False, False]
    assert "matched_eyes" in row["faces"][0] and "matched_eyes" not in row["faces"][1]
    assert score_image(record, prediction, eye_rule=False).eye_rule is None
