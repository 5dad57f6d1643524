"""Training with torch (`pip install ".[train]"`): shipped weights round trip through the torch nets and our
Caffe writer, torch forward == exported OpenCV DNN forward, the loss (beta indicator, OHEM), resume, and a
tiny end-to-end training through export and detection."""
import json

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training tests need torch: pip install '.[train]' "
                                            "(CPU wheel: pip install torch==2.13.0)")

from conftest import FIXTURES, REPO_ROOT  # noqa: E402
from fastmtcnn import Detector  # noqa: E402
from fastmtcnn.engines import OpenCVNetwork as Network  # noqa: E402
from fastmtcnn.nets import ONET, PNET, RNET  # noqa: E402
from fastmtcnn.training import cli as train_cli  # noqa: E402
from fastmtcnn.training.export import export_net, load_net  # noqa: E402
from fastmtcnn.training import loop  # noqa: E402
from fastmtcnn.training.loop import TrainConfig, split_validation, train  # noqa: E402
from fastmtcnn.training.loss import hard_sample_mean, multitask_loss  # noqa: E402
from fastmtcnn.training.nets import HeadOutputs, build_net  # noqa: E402
from fastmtcnn.training.samples import LANDMARK, NEGATIVE, PART, POSITIVE, Quota, stage_samples  # noqa: E402

SPECS = {"pnet": PNET, "rnet": RNET, "onet": ONET}


def _opencv_and_torch(stage, weights_dir, net, blob):
    """Outputs of the exported OpenCV DNN net on blob (N, 3, H, W) and of the torch net on its transpose."""
    opencv = Network(SPECS[stage], None if weights_dir is None else str(weights_dir)).forward(blob)
    with torch.no_grad():
        outputs = net.eval()(torch.from_numpy(np.ascontiguousarray(blob.swapaxes(2, 3))))
    return opencv, outputs


def _assert_same(stage, opencv, outputs, atol):
    n = opencv[0].shape[0]
    probs = torch.softmax(outputs.logits, 1).numpy()
    np.testing.assert_allclose(opencv[0].reshape(n, 2), probs, atol=atol)
    np.testing.assert_allclose(opencv[1].reshape(n, 4), outputs.offsets.numpy(), atol=atol)
    if stage == "onet":
        np.testing.assert_allclose(opencv[2], outputs.landmarks.numpy(), atol=atol)


@pytest.mark.parametrize("stage", ["pnet", "rnet", "onet"])
def test_shipped_weights_round_trip(stage, tmp_path):
    net = load_net(stage)
    export_net(net, tmp_path)
    stem = SPECS[stage].stem
    assert (tmp_path / f"{stem}.caffemodel").read_bytes() == (REPO_ROOT / "weights" / f"{stem}.caffemodel").read_bytes()
    size = SPECS[stage].input_size
    blob = np.random.default_rng(0).uniform(-1, 1, (6, 3, size, size)).astype(np.float32)
    shipped = Network(SPECS[stage]).forward(blob)
    exported = Network(SPECS[stage], str(tmp_path)).forward(blob)
    for a, b in zip(shipped, exported):
        np.testing.assert_allclose(a, b, atol=1e-5)
    _assert_same(stage, *_opencv_and_torch(stage, tmp_path, net, blob), atol=1e-5)


def test_pnet_maps_keep_the_image_orientation():
    """On a non-square image the torch net (transposed input) and OpenCV (our orientation) agree cell by cell."""
    net = load_net("pnet")
    blob = np.random.default_rng(1).uniform(-1, 1, (1, 3, 40, 64)).astype(np.float32)
    opencv = Network(PNET).forward(blob)
    with torch.no_grad():
        values = net.eval().blobs(torch.from_numpy(np.ascontiguousarray(blob.swapaxes(2, 3))))
    np.testing.assert_allclose(opencv[0], values["prob1"].numpy().swapaxes(2, 3), atol=1e-5)
    np.testing.assert_allclose(opencv[1], values["conv4-2"].numpy().swapaxes(2, 3), atol=1e-5)


def test_layer_names_are_caffes():
    assert list(build_net("pnet").layers) == ["conv1", "PReLU1", "pool1", "conv2", "PReLU2", "conv3", "PReLU3",
                                             "conv4-1", "conv4-2", "prob1"]
    assert {"conv5", "drop5", "conv6-1", "conv6-2", "conv6-3"} <= set(build_net("onet").layers)


def test_loss_indicator_and_ohem():
    kinds = torch.tensor([NEGATIVE, POSITIVE, PART, LANDMARK])
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [9.0, -9.0], [9.0, -9.0]])  # part/landmark: no cls loss
    offsets = torch.tensor([[0.0] * 4, [1.0, 0, 0, 0], [0, 2.0, 0, 0], [5.0] * 4])
    points = torch.tensor([[3.0] * 10, [3.0] * 10, [3.0] * 10, [0.0] * 9 + [1.0]])
    outputs = HeadOutputs(logits, torch.zeros(4, 4), torch.zeros(4, 10))
    total, terms = multitask_loss(outputs, kinds, offsets, points, (1.0, 0.5, 1.0), ohem=None)
    expected_cls = float(torch.nn.functional.cross_entropy(torch.tensor([[2.0, 0.0], [0.0, 2.0]]),
                                                           torch.tensor([0, 1])))
    assert terms["cls"] == pytest.approx(expected_cls)
    assert terms["box"] == pytest.approx(0.5 * (1 + 4) / 2)  # positive + part only
    assert terms["landmark"] == pytest.approx(0.5 * 1)  # the landmark face only
    assert float(total) == pytest.approx(expected_cls + 0.5 * terms["box"] + terms["landmark"])
    losses = torch.arange(10, dtype=torch.float32)
    assert float(hard_sample_mean(losses, 0.7)) == pytest.approx(np.mean(np.arange(3, 10)))
    assert float(hard_sample_mean(losses, None)) == pytest.approx(4.5)
    with pytest.raises(ValueError, match="keep ratio"):
        TrainConfig(ohem=1.5)


def _tiny_samples(stage, count=2, quota=Quota(6, 2, 2, 4)):
    from fastmtcnn.training.readers import FaceRecord

    image = cv2.imread(str(FIXTURES / "group_640x480.jpg"))
    faces = Detector(min_face_size=20).detect(image)
    record = FaceRecord("group", faces.boxes, faces.landmarks, np.zeros(len(faces), bool), image)
    return stage_samples([record] * count, stage, quota, seed=0)


def test_resume_gives_the_uninterrupted_result(tmp_path):
    samples = _tiny_samples("pnet")
    config = dict(batch_size=16, lr=0.01, seed=3, patience=None)
    straight = build_net("pnet", torch.Generator().manual_seed(0))
    train(straight, samples, TrainConfig(epochs=3, **config))
    train_index, _ = split_validation(samples, 0.05, 3)
    steps_per_epoch = loop.steps_per_epoch(samples, train_index, TrainConfig(**config), has_landmarks=False)
    batches = []

    def interrupt(n, terms):  # Ctrl-C in the middle of the third epoch
        batches.append(n)
        if len(batches) == 2 * steps_per_epoch + 1:
            raise KeyboardInterrupt

    interrupted = build_net("pnet", torch.Generator().manual_seed(0))
    with pytest.raises(KeyboardInterrupt):
        train(interrupted, samples, TrainConfig(epochs=3, **config), tmp_path / "p.pt", progress=interrupt)
    resumed = build_net("pnet", torch.Generator().manual_seed(7))  # other weights: all must come from the checkpoint
    history = train(resumed, samples, TrainConfig(epochs=3, **config), checkpoint=tmp_path / "p.pt")
    assert [record["epoch"] for record in history.epochs] == [0, 1, 2]
    for name, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value)


def _pseudo_labelled_set(tmp_path):
    """A JSONL of two photos labelled by the shipped detector, three times over (one line is held out)."""
    lines = [{"image": str(path), "faces": [{"box": f.box, "landmarks": f.landmarks}
                                           for f in Detector(min_face_size=20).detect(str(path))]}
             for path in (FIXTURES / "group_640x480.jpg", REPO_ROOT / "examples" / "astronaut.jpg")]
    data = tmp_path / "tiny.jsonl"
    data.write_text("".join(json.dumps(line) + "\n" for line in lines * 3))
    return data


def test_tiny_training_end_to_end(tmp_path, capsys):
    """Scratch training of all three stages through the CLI on two pseudo-labelled photos: losses fall,
    the exported weights load into Detector, and torch == OpenCV DNN on the trained nets."""
    image = cv2.imread(str(FIXTURES / "group_640x480.jpg"))
    data = _pseudo_labelled_set(tmp_path)
    out = tmp_path / "weights"
    from fastmtcnn.cli import main

    assert main(["train", "--data", str(data), "--out", str(out), "--init", "scratch", "--epochs", "6,5,4",
                 "--per-image", "40", "--batch-size", "64", "--lr", "0.02", "--backgrounds", "4",
                 "--mining-min-face", "20", "--no-progress"]) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    for stage in ("pnet", "rnet", "onet"):
        history = summary["stages"][stage]["history"]
        assert sum(summary["stages"][stage]["samples"].values()) >= 200
        assert history[-1]["train_loss"] < history[0]["train_loss"], (stage, history)
    assert "onet" in capsys.readouterr().out
    detector = Detector(weights=str(out), min_face_size=40)
    detector.detect(image)  # the trained cascade runs (its quality is not the point here)
    for stage in ("pnet", "rnet", "onet"):
        size = SPECS[stage].input_size
        blob = np.random.default_rng(2).uniform(-1, 1, (5, 3, size, size)).astype(np.float32)
        _assert_same(stage, *_opencv_and_torch(stage, out, load_net(stage, out), blob), atol=1e-4)


def test_train_command_errors(tmp_path):
    from fastmtcnn.cli import main

    assert main(["train", "--out", str(tmp_path)]) == 2  # no data: a clear ValueError
    with pytest.raises(SystemExit):
        main(["train", "--data", "x.jsonl", "--out", str(tmp_path), "--ohem", "2"])
    with pytest.raises(ValueError, match="stages"):
        train_cli.train_command(train_cli_args(tmp_path, stages=["qnet"]))


def train_cli_args(tmp_path, **overrides):
    import argparse

    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers()
    train_cli.add_train_command(commands)
    args = parser.parse_args(["train", "--data", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o")])
    vars(args).update(overrides)
    (tmp_path / "none.jsonl").write_text('{"image": "a.jpg", "faces": []}\n')
    return args


def test_loss_curve_plot(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need matplotlib: pip install '.[train]'")
    from fastmtcnn.training.plots import plot_runs

    history = [{"epoch": e, "train_loss": 1.0 / (e + 1), "val_loss": 1.2 / (e + 1)} for e in range(3)]
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "train_summary.json").write_text(json.dumps({"stages": {"onet": {"history": history}}}))
    out = plot_runs([tmp_path / "run"], tmp_path / "curves.png")
    assert cv2.imread(str(out)).shape[2] == 3
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "train_summary.json").write_text('{"stages": {}}')
    with pytest.raises(ValueError, match="no trained stage"):
        plot_runs([tmp_path / "empty"], tmp_path / "x.png")


def _kinds_set(counts, size=12):
    """A SampleSet with `counts` samples of each kind (NEGATIVE, POSITIVE, PART, LANDMARK), blank crops."""
    from fastmtcnn.training.samples import SampleSet

    kinds = np.concatenate([np.full(n, kind, np.int8) for kind, n in enumerate(counts)])
    n = len(kinds)
    return SampleSet(np.zeros((n, 3, size, size), np.float16), kinds, np.zeros((n, 4), np.float32),
                     np.zeros((n, 10), np.float32), np.zeros(n, bool))


def test_every_batch_follows_the_paper_mix():
    samples = _kinds_set((600, 50, 120, 90))
    config = TrainConfig(batch_size=14, seed=1)
    useful = loop.trained_kinds((1.0, 0.5, 1.0), has_landmarks=True)
    batches = loop.epoch_batches(samples.kinds, np.arange(len(samples)), config, useful, epoch=0)
    assert len(batches) == -(-len(samples) // 14)
    for batch in batches:
        assert np.bincount(samples.kinds[batch], minlength=4).tolist() == [6, 2, 2, 4]
    seen = np.unique(np.concatenate(batches))
    assert np.isin(np.flatnonzero(samples.kinds == POSITIVE), seen).all()  # the small kinds are cycled
    # landmark-only alphas (the fine-tune default): only landmark faces are drawn; P-Net has no landmarks
    assert loop.trained_kinds((0.0, 0.0, 1.0), has_landmarks=True) == [LANDMARK]
    assert loop.trained_kinds((1.0, 0.5, 0.5), has_landmarks=False) == [NEGATIVE, POSITIVE, PART]
    plain = loop.epoch_batches(samples.kinds, np.arange(len(samples)), TrainConfig(batch_size=14, mix=None),
                               useful, epoch=0)
    assert sorted(np.concatenate(plain).tolist()) == list(range(len(samples)))


def test_warmup_then_step_schedule():
    config = TrainConfig(epochs=4, warmup_steps=10, schedule="step")
    factors = [loop.lr_factor(step, 100, config) for step in (0, 4, 9, 49, 50, 75)]
    assert factors == pytest.approx([0.1, 0.5, 1.0, 1.0, 0.1, 0.01])


def test_validation_metrics_on_known_outputs():
    from fastmtcnn.training.validation import detection_holds, landmark_nme, scatter_nme, selection_score

    target = np.array([[0.3, 0.7, 0.5, 0.35, 0.65, 0.4, 0.4, 0.55, 0.75, 0.75]], np.float32)
    moved = target.copy()
    moved[0, :5] += 0.04  # every point 0.04 to the right; inter-ocular distance 0.4
    assert landmark_nme(moved, target) == pytest.approx([0.1])
    pair = np.concatenate([target, target + 0.01])  # a scatter of 0.01 about the targets' mean
    assert scatter_nme(pair + 0.03, pair) == pytest.approx(scatter_nme(pair, pair))  # blind to a common shift
    assert scatter_nme(pair, pair).max() == 0 and landmark_nme(pair + 0.03, pair).min() > 0.1
    same_eyes = target.copy()
    same_eyes[0, 1], same_eyes[0, 6] = same_eyes[0, 0], same_eyes[0, 5]
    assert np.isnan(landmark_nme(moved, same_eyes)).all()  # the evaluation's NME: no score without eyes apart
    metrics = {"nme": 0.05, "nme_scatter": 0.04, "recall": 0.9, "fp_rate": 0.1}
    assert selection_score(metrics, (0, 0, 1), "scatter") == 0.04
    with pytest.raises(ValueError, match="select must be one of"):
        TrainConfig(select="mean")
    assert selection_score({"nme": 0.05, "recall": 0.9, "fp_rate": 0.1}, (0, 0, 1)) == 0.05
    assert selection_score({"nme": 0.05, "recall": 0.9, "fp_rate": 0.1}, (1, 0.5, 0)) == pytest.approx(-0.8)
    cascade = dict(metrics, cascade_nme=0.07, cascade_recall=0.95, cascade_fp_per_image=0.03)
    assert selection_score(cascade, (0, 0, 1), "cascade") == 0.07
    assert selection_score(metrics, (0, 0, 1), "cascade") == 0.05  # not measured: the crops' NME
    assert not detection_holds(dict(cascade, cascade_recall=0.94), cascade)  # the cascade's recall decides
    assert detection_holds(dict(cascade, recall=0.5), cascade)  # not the crops'
    assert not detection_holds(dict(cascade, cascade_fp_per_image=0.04), cascade)
    assert detection_holds(dict(cascade, cascade_recall=0.94), cascade, slack=0.02)  # --detection-slack 2
    assert not detection_holds(dict(cascade, cascade_recall=0.92), cascade, slack=0.02)
    before = {"recall": 0.9, "fp_rate": 0.02}
    assert detection_holds({"recall": 0.896, "fp_rate": 0.024}, before)
    assert not detection_holds({"recall": 0.89, "fp_rate": 0.02}, before)
    assert not detection_holds({"recall": 0.95, "fp_rate": 0.03}, before)


def test_cascade_validation_scores_the_whole_cascade(tmp_path):
    """The held-out images through the whole cascade with the O-Net being trained: the shipped O-Net on
    faces the shipped cascade labelled scores NME ~0 and full recall; the same O-Net with its points pushed
    right by 0.05 of the box scores worse by about that much, and the net comes back in its own mode."""
    from fastmtcnn.training.cascade_validation import CascadeValidation
    from fastmtcnn.training.readers import read_jsonl

    records = read_jsonl(_pseudo_labelled_set(tmp_path))
    work = tmp_path / "work"
    for stage in ("pnet", "rnet"):
        export_net(load_net(stage), work)
    validation = CascadeValidation(records, work, min_face_size=20)  # the labels are min face 20 detections
    assert len(validation) == len(records)
    net = load_net("onet").train()
    shipped = validation(net)
    assert shipped["cascade_recall"] == 1.0 and shipped["cascade_fp_per_image"] == 0
    assert shipped["cascade_nme"] < 1e-3 and net.training
    with torch.no_grad():
        net.state_dict()["layers.conv6-3.bias"][:5] += 0.05  # every x 5% of the box to the right
    moved = validation(net)
    assert moved["cascade_nme"] > shipped["cascade_nme"] + 0.05, moved  # the box is > 2 inter-ocular distances
    assert moved["cascade_recall"] == 1.0


def test_train_layers_freezes_every_other_layer():
    """`train_layers` ("--train-layers conv6-1"): O-Net's face/non-face head moves, every other parameter
    (trunk, box and landmark heads) stays bit for bit; a layer the net lacks is named in the error."""
    samples = _tiny_samples("onet", count=3)
    net = load_net("onet")
    shipped = {name: value.clone() for name, value in net.state_dict().items()}
    train(net, samples, TrainConfig(epochs=1, batch_size=32, lr=0.01, alphas=(1, 0.5, 1), train_layers=["conv6-1"],
                                    val_fraction=0.3, patience=None))
    moved = {name for name, value in net.state_dict().items() if not torch.equal(value, shipped[name])}
    assert moved == {"layers.conv6-1.weight", "layers.conv6-1.bias"}
    with pytest.raises(ValueError, match="no layer conv9"):
        train(load_net("onet"), samples, TrainConfig(epochs=1, batch_size=32, train_layers=["conv9"]))


def test_dropout_ratio_is_set_for_training():
    """`dropout` ("--dropout 0", the fine-tune default): O-Net in train mode then gives its eval outputs (no
    drop5 noise), at the default 0.25 it does not; the ratio stays set after training; a ratio of 1 is refused."""
    from fastmtcnn.training.nets import set_dropout
    from fastmtcnn.training.samples import to_caffe_orientation

    samples = _tiny_samples("onet", count=3)
    images = torch.from_numpy(to_caffe_orientation(samples.images[:8]))
    net = load_net("onet")
    with torch.no_grad():
        reference = net.eval()(images).landmarks
        assert not torch.allclose(net.train()(images).landmarks, reference)
        set_dropout(net, 0.0)
        assert torch.equal(net.train()(images).landmarks, reference)
    trained = load_net("onet")
    train(trained, samples, TrainConfig(epochs=1, batch_size=32, lr=1e-4, alphas=(0, 0, 1), train_layers=["conv6-3"],
                                        dropout=0.0, val_fraction=0.3, patience=None))
    assert [m.p for m in trained.modules() if isinstance(m, torch.nn.Dropout)] == [0.0]
    with pytest.raises(ValueError, match="dropout"):
        TrainConfig(dropout=1.0)


def test_fine_tune_keeps_the_initial_stage_when_validation_worsens():
    """An absurd learning rate ruins every epoch: the shipped O-Net is kept, bit for bit, and the history says so."""
    samples = _tiny_samples("onet", count=3)
    net = load_net("onet")
    shipped = {name: value.clone() for name, value in net.state_dict().items()}
    history = train(net, samples, TrainConfig(epochs=3, batch_size=32, lr=50.0, alphas=(0, 0, 1), patience=1,
                                              keep_initial=True, val_fraction=0.3))
    assert history.kept_initial and history.stopped_early and len(history.epochs) == 1
    assert history.epochs[0]["val_nme"] > history.before["nme"]
    for name, value in net.state_dict().items():
        torch.testing.assert_close(value, shipped[name])


def test_rnet_from_scratch_does_not_collapse():
    """One short epoch of R-Net from scratch on a small fixture (mixed batches, warm-up): some validation
    positives score above the cascade's R-Net threshold 0.7 (the all-negative solution has recall 0)."""
    samples = _tiny_samples("rnet", count=16, quota=Quota(30, 10, 10, 0))  # 800 crops, 25 steps of 32
    net = build_net("rnet", torch.Generator().manual_seed(0))
    scratch = train_cli.SCRATCH
    config = TrainConfig(epochs=1, batch_size=32, lr=scratch["lr"], optimizer=scratch["optimizer"], warmup_steps=5,
                         alphas=(1.0, 0.5, 0.5), val_fraction=0.2, seed=0)
    history = train(net, samples, config)
    negatives = 1 - np.mean(samples.kinds[loop.split_validation(samples, 0.2, 0)[1]] == POSITIVE)
    assert history.epochs[0]["val_recall"] > 0, history.epochs
    assert history.epochs[0]["val_accuracy"] > negatives, history.epochs  # better than all-negative


def test_interrupted_run_resumes_and_never_publishes_a_partial_set(tmp_path, monkeypatch):
    """Killed during R-Net training, the folder holds no weights Detector would load; the same command
    again resumes (P-Net's epochs and samples are reused) and publishes the complete set."""
    from fastmtcnn.cli import main
    from fastmtcnn.errors import SettingsError
    from fastmtcnn.training import stages

    data = _pseudo_labelled_set(tmp_path)
    out = tmp_path / "weights"
    command = ["train", "--data", str(data), "--out", str(out), "--init", "scratch", "--stages", "pnet,rnet",
               "--epochs", "2,2,1", "--per-image", "10", "--batch-size", "32", "--backgrounds", "2",
               "--mining-min-face", "20", "--no-progress"]
    real_train, calls = stages.train, []

    def killed_in_rnet(net, *args, **kwargs):
        calls.append(net.stage)
        if net.stage == "rnet":
            raise KeyboardInterrupt
        return real_train(net, *args, **kwargs)

    monkeypatch.setattr(stages, "train", killed_in_rnet)
    from fastmtcnn.commands import EXIT_INTERRUPTED

    assert main(command) == EXIT_INTERRUPTED and calls == ["pnet", "rnet"]
    with pytest.raises(SettingsError):
        Detector(weights=str(out))
    pnet_checkpoint = (out / "checkpoints" / "pnet.pt").stat().st_mtime_ns
    monkeypatch.setattr(stages, "train", real_train)
    assert main(command) == 0
    assert (out / "checkpoints" / "pnet.pt").stat().st_mtime_ns == pnet_checkpoint  # no P-Net epoch again
    summary = json.loads((out / "train_summary.json").read_text())
    assert set(summary["stages"]) == {"pnet", "rnet"}
    Detector(weights=str(out), min_face_size=40).detect(cv2.imread(str(FIXTURES / "group_640x480.jpg")))
    assert not list(out.glob(".export-*")) and not list(out.glob(".publish-*"))


def test_ohem_study_curves(tmp_path):
    """The Fig. 3 study: both arms, every seed, one validation loss per epoch, and its picture."""
    pytest.importorskip("matplotlib", reason="plots need matplotlib: pip install '.[train]'")
    from fastmtcnn.training import ohem_study

    (tmp_path / "samples").mkdir()
    _tiny_samples("pnet", count=3).save(tmp_path / "samples" / "pnet.npz")
    _tiny_samples("pnet", count=1).save(tmp_path / "samples" / "pnet_val.npz")
    ohem_study.main([str(tmp_path), "--stage", "pnet", "--seeds", "0,1", "--epochs", "2", "--lr", "0.01",
                     "--json", str(tmp_path / "s.json"), "--out", str(tmp_path / "s.png")])
    study = json.loads((tmp_path / "s.json").read_text())
    assert set(study["curves"]) == {"OHEM 0.7", "no OHEM"} and study["seeds"] == [0, 1]
    assert all(len(runs) == 2 and all(len(curve) == 2 for curve in runs) for runs in study["curves"].values())
    assert study["curves"]["OHEM 0.7"] != study["curves"]["no OHEM"]
    assert cv2.imread(str(tmp_path / "s.png")).shape[2] == 3


def test_ohem_comparison_says_what_the_curves_show():
    from fastmtcnn.training.ohem_study import compare_arms, describe_comparison

    study = {"curves": {"OHEM 0.7": [[0.5, 0.30, 0.20], [0.6, 0.32, 0.21]],
                        "no OHEM": [[0.55, 0.40, 0.205], [0.58, 0.42, 0.22]]}}
    comparison = compare_arms(study)
    assert comparison["ohem_lower"] == [1, 2, 3] and comparison["beyond_spread"] == [2]
    assert comparison["epochs"][1]["plain_min"] == 0.40 and comparison["epochs"][0]["ohem_max"] == 0.6
    assert "epochs [2] of 3" in describe_comparison(comparison) and "helps" in describe_comparison(comparison)
    swapped = {"curves": {"OHEM 0.7": study["curves"]["no OHEM"], "no OHEM": study["curves"]["OHEM 0.7"]}}
    assert "does not help" in describe_comparison(compare_arms(swapped))
    overlapping = {"curves": {"OHEM 0.7": [[0.5], [0.6]], "no OHEM": [[0.55], [0.58]]}}
    assert "overlap" in describe_comparison(compare_arms(overlapping))
