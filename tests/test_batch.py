"""`fastmtcnn batch`: folder walk, JSONL records, crops, worker processes, resume after a kill or Ctrl-C."""
import faulthandler
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from fastmtcnn import Detector
from fastmtcnn.alignment import align
from fastmtcnn import batch
from fastmtcnn.batch import WorkerConfig, crop_names, read_done, run_batch, run_records
from fastmtcnn.image_input import find_images
from fastmtcnn.settings import CascadeSettings
from fastmtcnn.cli import main as cli_main

from conftest import ASTRONAUT, GROUP


EXPECTED_PATHS = [
    "A/Astro.JPG", "A/dup.jpg", "A/dup.png", "broken.jpg", "empty.png", "group.png", "nested/deeper/group_320.BMP",
    "nested/small.webp", "x.jpeg",
]


def write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix.lower(), image)
    assert ok
    path.write_bytes(data.tobytes())


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Shipped images, resized copies, upper-case extensions, a nested folder, a corrupt and an empty file."""
    root = tmp_path_factory.mktemp("photos")
    astronaut, group = cv2.imread(str(ASTRONAUT)), cv2.imread(str(GROUP))
    write(root / "A" / "Astro.JPG", astronaut)
    write(root / "A" / "dup.jpg", cv2.resize(astronaut, (300, 300), interpolation=cv2.INTER_AREA))
    write(root / "A" / "dup.png", cv2.resize(group, (400, 300), interpolation=cv2.INTER_AREA))
    write(root / "group.png", group)
    write(root / "nested" / "deeper" / "group_320.BMP", cv2.resize(group, (320, 240), interpolation=cv2.INTER_AREA))
    write(root / "nested" / "small.webp", cv2.resize(astronaut, (200, 200), interpolation=cv2.INTER_AREA))
    write(root / "x.jpeg", np.full((64, 80, 3), 128, np.uint8))  # no face
    (root / "broken.jpg").write_bytes(ASTRONAUT.read_bytes()[:200] + b"\x00" * 50)
    (root / "empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("not an image")
    (root / "nested" / "README").write_text("no extension")
    return root


@pytest.fixture(scope="module")
def reference(folder, tmp_path_factory):
    """One uninterrupted single-process run: (output file bytes, records)."""
    out = tmp_path_factory.mktemp("reference") / "results.jsonl"
    assert cli_main(["batch", str(folder), "--out", str(out), "--quiet"]) == 1  # broken.jpg, empty.png: errors
    data = out.read_bytes()
    return data, [json.loads(line) for line in data.splitlines()]


def test_find_images_is_recursive_case_insensitive_and_sorted(folder):
    assert find_images(folder) == EXPECTED_PATHS
    assert find_images(folder, exclude=[folder / "nested"]) == [p for p in EXPECTED_PATHS if not p.startswith("nested")]


def test_records_match_the_detector(folder, reference):
    _, records = reference
    assert [r["path"] for r in records] == EXPECTED_PATHS
    detector = Detector()
    by_path = {r["path"]: r for r in records}
    for path in EXPECTED_PATHS:
        record = by_path[path]
        if path in ("broken.jpg", "empty.png"):
            assert set(record) == {"path", "error"} and path in record["error"]
            assert str(folder) not in record["error"]  # records do not depend on where the folder is
            continue
        image = cv2.imread(str(folder / path))
        assert (record["width"], record["height"]) == (image.shape[1], image.shape[0])
        assert record["faces"] == detector.detect(image).to_list()
    assert len(by_path["group.png"]["faces"]) == 6 and by_path["x.jpeg"]["faces"] == []
    assert len(by_path["A/Astro.JPG"]["faces"]) == 1


def test_two_worker_processes_give_the_same_file(folder, reference, tmp_path):
    out = tmp_path / "results.jsonl"
    assert cli_main(["batch", str(folder), "--out", str(out), "--workers", "2", "--quiet"]) == 1
    data = out.read_bytes()
    assert sorted(data.splitlines()) == sorted(reference[0].splitlines())  # same records...
    assert data == reference[0]  # ...and the same order: sorted paths whatever the worker count


def test_a_worker_that_dies_is_replaced_and_only_its_image_gets_an_error(folder, reference):
    from batch_crash_helper import POISON, crash_on_poison

    faulthandler.dump_traceback_later(600, exit=True)  # a hang fails the run instead of stalling it
    try:
        paths = find_images(folder)
        names = crop_names(paths)
        tasks = [(path, names[path]) for path in paths]
        records = list(run_records(tasks, 2, WorkerConfig(CascadeSettings(), str(folder), num_threads=1),
                                   process=crash_on_poison))
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert [r["path"] for r in records] == EXPECTED_PATHS
    for record, expected in zip(records, reference[1]):
        if record["path"] == POISON:
            assert set(record) == {"path", "error"} and "worker process died" in record["error"]
        else:
            assert record == expected


def test_workers_that_cannot_start_stop_the_job_with_a_clear_error(folder, monkeypatch):
    monkeypatch.setattr(batch, "_MAX_FRUITLESS_POOLS", 2)
    tasks = [(path, path) for path in find_images(folder)]
    bad_config = WorkerConfig(CascadeSettings(), str(folder), num_threads=0)  # set_num_threads(0) raises in each worker
    with pytest.raises(RuntimeError, match="died before finishing any image"):
        list(run_records(tasks, 2, bad_config))


def test_resume_after_a_torn_write_gives_the_same_file(folder, reference, tmp_path):
    """A crash mid-write leaves part of a line: the re-run cuts it, redoes that image and the rest."""
    full = reference[0]
    lines = full.splitlines(keepends=True)
    out = tmp_path / "results.jsonl"
    out.write_bytes(b"".join(lines[:4]) + lines[4][: len(lines[4]) // 2])
    summary = run_batch(folder, out, progress=False)
    assert summary["skipped"] == 4 and summary["processed"] == len(EXPECTED_PATHS) - 4
    assert out.read_bytes() == full
    again = run_batch(folder, out, progress=False)  # nothing left to do
    assert again["processed"] == 0 and out.read_bytes() == full


def _wait_for_lines(path: Path, count: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        assert process.poll() is None, "the batch finished before it could be interrupted"
        time.sleep(0.01)
    raise AssertionError(f"no {count} records in {timeout} s")


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    """30 images, enough that a run can be stopped halfway, and its uninterrupted output. They grow from 320x240 to
    1016x762 pixels in run order, so that the run's end is slower than its start, which the stop needs to catch
    on a loaded machine."""
    root = tmp_path_factory.mktemp("many")
    group = cv2.imread(str(GROUP))
    for k in range(30):
        side = 320 + 24 * k
        write(root / f"batch{k // 10}" / f"img_{k:02d}.jpg", cv2.resize(group, (side, side * 3 // 4)))
    out = tmp_path_factory.mktemp("many_ref") / "results.jsonl"
    run_batch(root, out, progress=False)
    return root, out.read_bytes()


@pytest.mark.parametrize("how, workers", [("SIGKILL", 1), ("SIGINT", 2)])
def test_killed_run_resumes_to_the_same_file(many, tmp_path, how, workers):
    """Run the CLI in a subprocess, stop it (kill -9, or Ctrl-C) once 2 records are out, re-run: same file."""
    root, full = many
    out = tmp_path / "results.jsonl"
    command = [sys.executable, "-m", "fastmtcnn", "batch", str(root), "--out", str(out), "--workers", str(workers)]
    # Ctrl-C as in a terminal: a shell that starts pytest in the background hands it (and so the batch) SIGINT
    # ignored, and the batch then rightly runs to the end.
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_for_lines(out, 2, process)
        process.send_signal(getattr(signal, how))
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    partial = out.read_bytes()
    assert 2 <= partial.count(b"\n") < 30
    if how == "SIGINT":
        assert process.returncode == 130 and b"re-run the same command to resume" in stderr
        assert partial.endswith(b"\n")
    assert full.startswith(partial[: partial.rfind(b"\n") + 1])  # what was written is final
    assert cli_main(["batch", str(root), "--out", str(out), "--quiet"]) == 0
    assert out.read_bytes() == full


def test_crops_are_aligned_faces(folder, reference, tmp_path):
    crops = folder / "crops_inside"  # inside the input folder: must not be picked up as images
    try:
        out = tmp_path / "results.jsonl"
        summary = run_batch(folder, out, crops=crops, progress=False)
        assert summary["images"] == len(EXPECTED_PATHS)
        records = {r["path"]: r for r in map(json.loads, out.read_text().splitlines())}
        assert records["A/Astro.JPG"]["crops"] == ["A/Astro_0.png"]
        assert records["A/dup.jpg"]["crops"] == ["A/dup.jpg_0.png"]  # same stem as A/dup.png
        dup_faces = len(records["A/dup.png"]["faces"])
        assert dup_faces >= 2 and records["A/dup.png"]["crops"] == [f"A/dup.png_{k}.png" for k in range(dup_faces)]
        assert records["nested/deeper/group_320.BMP"]["crops"][0] == "nested/deeper/group_320_0.png"
        assert records["x.jpeg"]["crops"] == []
        image = cv2.imread(str(folder / "A" / "Astro.JPG"))
        landmarks = np.array(records["A/Astro.JPG"]["faces"][0]["landmarks"])
        crop = cv2.imread(str(crops / "A" / "Astro_0.png"))
        assert crop.shape == (112, 112, 3)
        # the record's landmarks are rounded to 1e-3 px: the crop is the same to resampling noise
        assert np.abs(crop.astype(int) - align(image, landmarks)).mean() < 1
        assert sum(1 for _ in crops.rglob("*.png")) == sum(len(r.get("crops", [])) for r in records.values())
        assert find_images(folder, exclude=[crops]) == EXPECTED_PATHS
        # and records other than the crop lists are as without crops
        for record in reference[1]:
            got = dict(records[record["path"]])
            got.pop("crops", None)
            assert got == record
    finally:
        import shutil

        shutil.rmtree(crops, ignore_errors=True)


def test_crop_names():
    assert crop_names(["a/x.jpg", "a/x.png", "b/x.jpg", "y.bmp"]) == {
        "a/x.jpg": "a/x.jpg", "a/x.png": "a/x.png", "b/x.jpg": "b/x", "y.bmp": "y"}


def test_progress_line_without_tqdm(folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    assert cli_main(["batch", str(folder), "--out", str(tmp_path / "r.jsonl")]) == 1
    err = capsys.readouterr().err
    assert "images/s" in err and "faces" in err and f"{len(EXPECTED_PATHS)} images" in err


def test_bad_arguments_and_foreign_output(folder, tmp_path, capsys):
    assert cli_main(["batch", str(tmp_path / "missing"), "--out", str(tmp_path / "r.jsonl")]) == 1
    assert f"{tmp_path / 'missing'} does not exist" in capsys.readouterr().err
    (tmp_path / "file.jpg").write_bytes(b"x")
    assert cli_main(["batch", str(tmp_path / "file.jpg"), "--out", str(tmp_path / "r.jsonl")]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli_main(["batch", str(tmp_path / "empty"), "--out", str(tmp_path / "e.jsonl")]) == 0
    assert "warning: no image files under" in capsys.readouterr().err
    assert cli_main(["batch", str(folder), "--out", str(tmp_path / "r.jsonl"), "--workers", "0"]) == 2
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text('{"path": "x.jpeg", "faces": []}\nnot json\n')
    with pytest.raises(ValueError, match="line 2"):
        read_done(foreign)
    assert cli_main(["batch", str(folder), "--out", str(foreign), "--quiet"]) == 2
    with pytest.raises(SystemExit):
        cli_main(["batch", str(folder)])  # --out is required


def test_workers_auto_is_one_process_per_usable_core():
    import argparse

    from fastmtcnn.batch import _workers
    from fastmtcnn.runtime import usable_cores

    assert _workers("auto") == usable_cores() >= 1
    assert _workers("3") == 3
    with pytest.raises(argparse.ArgumentTypeError, match="'auto'"):
        _workers("many")
