"""The engine choice (`fastmtcnn.engines`) and OpenVINO's exactness against OpenCV DNN.

With f32, OpenVINO must give OpenCV DNN's faces: the same number, scores within 1e-4, boxes and landmarks
within 1e-2 px, on every shipped image and on the shared photos (skipped without ../shared) at min face
20 and 40. The OpenVINO tests skip with the install line when OpenVINO is not installed.
"""
import argparse
import asyncio
import gc
import json
import logging
import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from fastmtcnn import Detector, SettingsError, engines, evaluation
from fastmtcnn.batch import run_batch
from fastmtcnn.cli import main as cli_main
from fastmtcnn.evaluation.cli import add_eval_command
from fastmtcnn.nets import ONET, PNET, RNET
from fastmtcnn.runtime import versions

from conftest import FIXTURES, REPO_ROOT, openvino_installed
from test_parity import SETS, detections

needs_openvino = pytest.mark.skipif(not openvino_installed(),
                                    reason='OpenVINO not installed: pip install "fastmtcnn[openvino]"')
SCORE_TOLERANCE, PIXEL_TOLERANCE = 1e-4, 1e-2
SHIPPED = (FIXTURES / "group_640x480.jpg", REPO_ROOT / "examples" / "astronaut.jpg")


# ------------------------------------------------------------------------------------ choosing the engine
@pytest.fixture
def without_openvino(monkeypatch):
    """Behave as if the openvino package were not installed."""
    monkeypatch.setattr(engines, "_import_openvino", lambda: ImportError("No module named 'openvino'"))


def test_opencv_is_always_available():
    engine = engines.choose_engine("opencv", "f32", 1)
    assert (engine.backend, engine.precision) == ("opencv", "f32")
    assert isinstance(engine.network(RNET), engines.OpenCVNetwork)


@pytest.mark.parametrize("kwargs, message", [
    ({"backend": "cuda"}, "backend must be one of 'auto', 'opencv', 'openvino'"),
    ({"precision": "fp16"}, "precision must be one of 'f32', 'bf16'"),
    ({"backend": "opencv", "precision": "bf16"}, 'needs backend="openvino"'),
])
def test_bad_engine_settings_say_what_to_pass(kwargs, message):
    with pytest.raises(SettingsError, match=message):
        engines.choose_engine(**kwargs)
    with pytest.raises(SettingsError, match=message):
        Detector(**kwargs)


def test_auto_without_openvino_runs_opencv(without_openvino):
    detector = Detector(backend="auto")
    assert (detector.backend, detector.precision) == ("opencv", "f32")
    assert "not installed" in detector.engine.reason
    assert "auto -> opencv f32; auto: OpenVINO not installed" in versions()


@pytest.mark.parametrize("kwargs", [{"backend": "openvino"}, {"backend": "auto", "precision": "bf16"}])
def test_openvino_without_the_extra_names_the_install_line(without_openvino, kwargs):
    with pytest.raises(ImportError, match=r'pip install "fastmtcnn\[openvino\]"'):
        Detector(**kwargs)


@needs_openvino
def test_auto_picks_openvino_f32_when_installed():
    detector = Detector(backend="auto", num_threads=1)
    assert (detector.backend, detector.precision) == ("openvino", "f32")
    assert "auto -> openvino f32" in engines.engine_report()
    assert "OpenVINO " + engines.openvino_version() in versions()


@needs_openvino
def test_bf16_without_native_bf16_falls_back_to_f32(monkeypatch, caplog):
    monkeypatch.setattr(engines, "native_bf16", lambda: False)
    with caplog.at_level(logging.WARNING, logger="fastmtcnn.engines"):
        detector = Detector(backend="openvino", precision="bf16", num_threads=1)
    assert (detector.backend, detector.precision) == ("openvino", "f32")
    assert "no native BF16" in caplog.text


@needs_openvino
def test_bf16_runs_bf16_where_the_cpu_has_it(monkeypatch):
    native = engines.native_bf16()
    monkeypatch.setattr(engines, "native_bf16", lambda: True)
    assert engines.choose_engine("openvino", "bf16", 1).precision == "bf16"
    # What OpenVINO compiles with the bf16 hint: bf16 where the CPU has it, else f32 (why we fall back).
    compiled = engines._pool(ONET, "bf16", 1).take()
    assert compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() == ("bf16" if native else "f32")


# ------------------------------------------------------------------------------------ OpenVINO networks
@needs_openvino
def test_openvino_compiles_once_per_live_network_and_reuses_models():
    """Each live network has a compiled model to itself; a collected network's model serves the next one."""
    threads = 3  # a pool no other test uses
    pool = engines._pool(PNET, "f32", threads)
    first = engines.OpenVINONetwork(PNET, "f32", threads)
    second = engines.OpenVINONetwork(PNET, "f32", threads)  # alive at the same time: a model of its own
    assert pool.compiled == 2
    del first, second
    gc.collect()
    alive = [engines.OpenVINONetwork(PNET, "f32", threads) for _ in range(2)]
    assert len(alive) == 2 and pool.compiled == 2  # both reused the models given back
    assert engines._pool(PNET, "f32", threads) is pool


# ------------------------------------------------------------------------------------ compiled-model cache
@pytest.mark.parametrize("env, expected", [("off", None), ("OFF", None), ("0", None), ("", None),
                                           ("/some/folder", "/some/folder")])
def test_cache_folder_follows_the_environment(monkeypatch, env, expected):
    monkeypatch.setenv(engines.CACHE_ENV, env)
    assert engines.cache_dir() == expected


def test_cache_folder_defaults_to_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(engines.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(engines.sys, "platform", "linux")
    assert engines.cache_dir() == str(tmp_path / "fastmtcnn" / "openvino")


@needs_openvino
def test_openvino_cache_is_written_only_where_asked(monkeypatch, tmp_path):
    """Detector(cache_dir=folder) fills that folder (a later process loads from it); cache_dir=False and
    FASTMTCNN_CACHE_DIR=off write nothing, and OpenCV DNN never has a cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user"))
    monkeypatch.setenv(engines.CACHE_ENV, "off")
    assert Detector(backend="openvino", num_threads=5).engine.cache is None
    monkeypatch.delenv(engines.CACHE_ENV)
    assert Detector(backend="openvino", num_threads=5, cache_dir=False).engine.cache is None
    assert Detector(backend="opencv").engine.cache is None
    assert not (tmp_path / "user").exists()
    folder = tmp_path / "models"
    detector = Detector(backend="openvino", num_threads=5, cache_dir=str(folder))  # 5 threads: fresh pools
    assert detector.engine.cache == str(folder)
    assert len(list(folder.glob("*.blob"))) == 3  # the three nets
    assert len(detector.detect(cv2.imread(str(SHIPPED[0])))) > 0


@needs_openvino
def test_an_unwritable_cache_folder_turns_the_cache_off(tmp_path, caplog):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="fastmtcnn.engines"):
        detector = Detector(backend="openvino", num_threads=6, cache_dir=str(blocker / "cache"))
    assert "OpenVINO model cache off" in caplog.text
    assert len(detector.detect(cv2.imread(str(SHIPPED[0])))) > 0


@needs_openvino
@pytest.mark.parametrize("threads", [1, 2])
def test_openvino_honours_threads_in_one_unpinned_stream(threads):
    compiled = engines._pool(ONET, "f32", threads).take()
    assert compiled.get_property("INFERENCE_NUM_THREADS") == threads
    assert compiled.get_property("NUM_STREAMS") == 1
    assert compiled.get_property("ENABLE_CPU_PINNING") is False
    assert compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() == "f32"


@needs_openvino
@pytest.mark.parametrize("spec, shape", [(PNET, (1, 3, 37, 50)), (PNET, (2, 3, 12, 12)), (RNET, (7, 3, 24, 24)),
                                         (RNET, (1, 3, 24, 24)), (ONET, (5, 3, 48, 48))])
def test_openvino_forward_equals_opencv(spec, shape):
    """Same outputs (names, shapes, values to float rounding) on dynamic batch and P-Net spatial sizes."""
    blob = np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)
    expected = engines.OpenCVNetwork(spec).forward(blob)
    network = engines.OpenVINONetwork(spec, "f32", 1)
    network.forward(np.zeros((3,) + shape[1:], np.float32))  # a different batch first: the request must follow
    outputs = network.forward(blob)
    assert len(outputs) == len(spec.outputs)
    for ours, theirs in zip(outputs, expected):
        assert ours.shape == theirs.shape and ours.dtype == np.float32
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


# ------------------------------------------------------------------------------------ same faces as OpenCV DNN
def assert_same_faces(ours, reference, label):
    """Same number of faces; each of ours pairs one to one with the reference face nearest to its box.
    `ours`, `reference`: anything with boxes (N, 4), scores (N,), landmarks (N, 5, 2) as items or attributes."""
    ours, reference = evaluation.as_prediction(ours), evaluation.as_prediction(reference)
    assert len(ours["scores"]) == len(reference["scores"]), \
        f"{label}: {len(ours['scores'])} faces vs {len(reference['scores'])}"
    if not len(ours["scores"]):
        return
    distance = np.abs(ours["boxes"][:, None, :] - reference["boxes"][None, :, :]).max(axis=2)
    pairs = distance.argmin(axis=1)
    assert len(set(pairs.tolist())) == len(pairs), f"{label}: faces do not pair one to one"
    for key, tolerance in (("scores", SCORE_TOLERANCE), ("boxes", PIXEL_TOLERANCE), ("landmarks", PIXEL_TOLERANCE)):
        np.testing.assert_allclose(ours[key], reference[key][pairs], atol=tolerance, err_msg=f"{label} {key}")


@needs_openvino
@pytest.mark.parametrize("min_face_size", [20, 40])
def test_openvino_f32_gives_opencv_faces_on_shipped_images(min_face_size):
    opencv = Detector(min_face_size=min_face_size, backend="opencv")
    openvino = Detector(min_face_size=min_face_size, backend="openvino", precision="f32")
    assert (opencv.backend, openvino.backend, openvino.precision) == ("opencv", "openvino", "f32")
    found = 0
    for path in SHIPPED:
        image = cv2.imread(str(path))
        for variant, color in ((image, "bgr"), (cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), "bgr"),
                               (np.ascontiguousarray(image[37:451, 13:600]), "bgr")):
            reference = opencv.detect(variant, color)
            assert_same_faces(openvino.detect(variant, color), reference, f"{path.name} min face {min_face_size}")
            found += len(reference)
    assert found >= 6  # the comparison covered real faces


@needs_openvino
@pytest.mark.parametrize("min_face_size", [20, 40])
@pytest.mark.parametrize("name", SETS)
def test_openvino_f32_gives_opencv_faces_on_shared_images(name, min_face_size):
    """Every image of the shared sets (the bench photos, dlib faces, the 300-W subset); the detections are
    test_parity's, computed once per session for both engines."""
    ours, _, _ = detections(name, min_face_size, "openvino")
    reference, _, _ = detections(name, min_face_size, "opencv")
    assert ours.keys() == reference.keys() and len(ours) >= 9
    for image in sorted(reference):
        assert_same_faces(ours[image], reference[image], f"{image} min face {min_face_size}")
    assert sum(len(faces["scores"]) for faces in reference.values()) >= len(reference) // 2


@needs_openvino
def test_openvino_threads_each_get_their_own_request():
    """Two threads on one detector give the single-thread results (each thread has its own infer request)."""
    images = [cv2.imread(str(path)) for path in SHIPPED] * 3
    detector = Detector(backend="openvino", num_threads=1)
    expected = [detector.detect(image) for image in images]
    for faces, reference in zip(detector.detect_batch(images, workers=2), expected):
        np.testing.assert_array_equal(faces.boxes, reference.boxes)
        np.testing.assert_array_equal(faces.scores, reference.scores)


@needs_openvino
def test_openvino_first_detections_on_many_threads_leave_the_process_locale(tmp_path):
    """OpenVINO switches the C locale while it reads/compiles a model: eight threads compiling their networks at
    once must not leave the process in the "C" locale (Python's default text encoding would become ASCII)."""
    script = textwrap.dedent(f"""
        import locale, threading
        import cv2
        from fastmtcnn import Detector
        before = locale.setlocale(locale.LC_CTYPE)
        image = cv2.resize(cv2.imread({str(SHIPPED[0])!r}), (160, 160))
        detector = Detector(backend="openvino", num_threads=1)
        threads = [threading.Thread(target=lambda: [detector.detect(image) for _ in range(3)]) for _ in range(8)]
        [thread.start() for thread in threads]
        [thread.join() for thread in threads]
        print(before, locale.setlocale(locale.LC_CTYPE))
    """)
    environment = dict(os.environ, LC_ALL="C.UTF-8", FASTMTCNN_CACHE_DIR=str(tmp_path))
    for _ in range(3):  # the race needs threads to overlap: three processes
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment,
                             timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        before, after = run.stdout.split()
        assert after == before == "C.UTF-8", run.stdout


# ------------------------------------------------------------------------------------ the choice on the command line
def test_cli_detect_takes_the_engine(capsys):
    image = str(FIXTURES / "group_640x480.jpg")
    assert cli_main(["detect", image, "--backend", "opencv", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = Detector(backend="opencv").detect(image)
    assert [face["score"] for face in printed["faces"]] == [face["score"] for face in expected.to_list()]


def test_cli_names_the_missing_extra(without_openvino, capsys):
    image = str(FIXTURES / "group_640x480.jpg")
    assert cli_main(["detect", image, "--backend", "openvino"]) == 2
    assert 'pip install "fastmtcnn[openvino]"' in capsys.readouterr().err


@pytest.mark.parametrize("command", ["detect", "batch", "serve", "eval", "video"])
def test_every_detector_command_offers_the_engine_options(command, capsys):
    with pytest.raises(SystemExit):
        cli_main([command, "--help"])
    text = capsys.readouterr().out
    assert "--backend {auto,opencv,openvino}" in text and "--precision {f32,bf16}" in text


def test_batch_checks_the_engine_before_any_worker_starts(tmp_path, without_openvino):
    with pytest.raises(ImportError, match="fastmtcnn\\[openvino\\]"):
        run_batch(FIXTURES, tmp_path / "out.jsonl", workers=2, backend="openvino")
    assert not (tmp_path / "out.jsonl").exists()


def test_eval_passes_the_engine_to_the_detector(tmp_path):
    made = []

    def factory(**kwargs):
        """A real detector (it checks the keywords) whose detect finds nothing (tiny.jsonl's images are fake)."""
        made.append(kwargs)
        detector = Detector(**kwargs)
        detector.detect = lambda image: {"boxes": [], "scores": [], "landmarks": None}
        return detector

    parser = argparse.ArgumentParser(prog="fastmtcnn")
    add_eval_command(parser.add_subparsers(dest="command", required=True), detector_factory=factory)
    out = tmp_path / "report.json"
    args = parser.parse_args(["eval", str(FIXTURES / "eval" / "tiny.jsonl"), "--backend", "opencv", "--out", str(out)])
    assert args.run(args) == 0
    assert made[0]["backend"] == "opencv" and made[0]["precision"] == "f32"
    assert json.loads(out.read_text())["engine"] == {"backend": "opencv", "precision": "f32"}


def test_ray_face_detector_takes_the_engine():
    from fastmtcnn.ray_data import FaceDetector  # Ray itself is imported only by Ray

    udf = FaceDetector(backend="opencv", min_face_size=40)
    assert (udf.detector.backend, udf.detector.precision) == ("opencv", "f32")


def test_server_names_its_engine_in_healthz_and_metrics():
    pytest.importorskip("starlette", reason="the server tests need the server extra: pip install '.[server]'")
    from fastmtcnn.image_codecs import decodable_formats
    from fastmtcnn.server import ServerConfig, create_app

    service = create_app(ServerConfig(workers=1, backend="opencv")).state.service
    health = json.loads(asyncio.run(service.healthz(None)).body)
    assert health == {"status": "ok", "engine": {"backend": "opencv", "precision": "f32"},
                      "formats": list(decodable_formats())}
    assert {"JPEG", "PNG"} <= set(health["formats"])
    assert 'fastmtcnn_engine_info{backend="opencv",precision="f32"} 1' in service.metrics.render().splitlines()


def test_serve_command_passes_the_engine_to_the_service(without_openvino):
    from fastmtcnn.server.command import add_serve_command, config_from_args

    parser = argparse.ArgumentParser(prog="fastmtcnn")
    add_serve_command(parser.add_subparsers(dest="command", required=True))
    config = config_from_args(parser.parse_args(["serve", "--backend", "openvino", "--precision", "bf16"]))
    assert (config.backend, config.precision) == ("openvino", "bf16")
    pytest.importorskip("starlette", reason="the server tests need the server extra: pip install '.[server]'")
    from fastmtcnn.server import create_app

    with pytest.raises(ImportError, match="fastmtcnn\\[openvino\\]"):  # refused before serving anything
        create_app(config)
