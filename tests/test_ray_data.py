"""fastmtcnn.ray_data: the map_batches callable, alone and on a local Ray instance (skipped without Ray)."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from fastmtcnn import Detector
from fastmtcnn.ray_data import FaceDetector, unflatten

from conftest import ASTRONAUT, GROUP, REPO_ROOT, encode_image


@pytest.fixture(scope="module")
def images():
    """name -> encoded bytes: the shipped images, resized copies and a corrupt file."""
    astronaut, group = cv2.imread(str(ASTRONAUT)), cv2.imread(str(GROUP))
    return {
        "astronaut.jpg": ASTRONAUT.read_bytes(),
        "group.jpg": GROUP.read_bytes(),
        "group_small.png": encode_image(cv2.resize(group, (400, 300), interpolation=cv2.INTER_AREA), ".png"),
        "astronaut_small.png": encode_image(cv2.resize(astronaut, (200, 200), interpolation=cv2.INTER_AREA), ".png"),
        "corrupt.jpg": ASTRONAUT.read_bytes()[:300],
    }


@pytest.fixture(scope="module")
def expected(images):
    detector = Detector()
    out = {}
    for name, data in images.items():
        try:
            out[name] = detector.detect(data)
        except ValueError:
            out[name] = None
    return out


def assert_row_is(row, faces):
    if faces is None:
        assert row["error"] and row["num_faces"] == 0
        return
    boxes, scores, landmarks = unflatten(row)
    assert row["error"] == "" and row["num_faces"] == len(faces)
    np.testing.assert_array_equal(boxes, faces.boxes)  # float32 all the way: identical
    np.testing.assert_array_equal(scores, faces.scores)
    np.testing.assert_array_equal(landmarks, faces.landmarks)


def test_callable_without_ray(images, expected):
    """The class is plain Python: a dict batch in, an Arrow table out (pyarrow comes with ray[data])."""
    pytest.importorskip("pyarrow", reason="pyarrow (installed with fastmtcnn[ray]) makes the output table")
    udf = FaceDetector()
    names = list(images)
    batch = {"path": np.array(names), "bytes": np.array([images[n] for n in names], dtype=object)}
    table = udf(batch)
    assert table.column_names == ["path", "width", "height", "num_faces", "boxes", "scores", "landmarks", "error"]
    for row in table.to_pylist():
        assert_row_is(row, expected[row["path"]])
    # RGB arrays (as ray.data.read_images gives them) find the same faces as the BGR file
    rgb = cv2.cvtColor(cv2.imread(str(ASTRONAUT)), cv2.COLOR_BGR2RGB)
    row = udf({"image": np.array([rgb, rgb[:100, :100]], dtype=object)}).to_pylist()[0]
    assert_row_is(row, expected["astronaut.jpg"])
    with pytest.raises(ValueError, match="no image column"):
        udf({"pixels": np.zeros(1)})


RAY_MISSING = ("Ray is not installed: pip install 'fastmtcnn[ray]' to run the Ray Data tests "
               "(tests/test_ray_data.py)")


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason=RAY_MISSING)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


def test_map_batches_matches_the_detector(ray_local, images, expected, tmp_path):
    from fastmtcnn.ray_data import detect_faces, read_folder

    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for k, (name, data) in enumerate(images.items()):
        (folder / ("sub" if k % 2 else "") / name).write_bytes(data)
    ray = ray_local
    ds = detect_faces(read_folder(folder), actors=2, batch_size=2)  # 2 actors on 2 CPUs: reads take 0 CPU
    rows = ds.take_all()
    assert len(rows) == len(images)
    for row in rows:
        assert_row_is(row, expected[row["path"].rsplit("/", 1)[-1]])
    # arrays in an "image" column, through Ray's object store
    arrays = [{"name": n, "image": cv2.cvtColor(cv2.imdecode(np.frombuffer(images[n], np.uint8), 1),
                                               cv2.COLOR_BGR2RGB)} for n in ("astronaut.jpg", "group_small.png")]
    rows = detect_faces(ray.data.from_items(arrays), actors=2, batch_size=1, keep_columns=("name",)).take_all()
    for row in rows:
        assert_row_is(row, expected[row["name"]])


def test_example_writes_parquet_like_the_cli(ray_local, images, tmp_path):
    """examples/ray_folder_to_parquet.py on a folder gives the faces `fastmtcnn batch` writes."""
    import pyarrow.parquet as pq

    from fastmtcnn.batch import run_batch

    folder = tmp_path / "photos"
    folder.mkdir()
    for name, data in images.items():
        (folder / name).write_bytes(data)
    out = tmp_path / "parquet"
    address = ray_local.get_runtime_context().gcs_address
    subprocess.run([sys.executable, str(REPO_ROOT / "examples" / "ray_folder_to_parquet.py"), str(folder), str(out),
                    "--address", address, "--batch-size", "2"], check=True, timeout=120, capture_output=True)
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in pq.read_table(out).to_pylist()}
    run_batch(folder, tmp_path / "cli.jsonl", progress=False)
    records = {r["path"]: r for r in map(json.loads, (tmp_path / "cli.jsonl").read_text().splitlines())}
    assert set(rows) == set(records)
    for name, record in records.items():
        row = rows[name]
        assert bool(row["error"]) == ("error" in record)
        if "error" in record:
            continue
        boxes, scores, landmarks = unflatten(row)
        assert len(boxes) == len(record["faces"])
        np.testing.assert_allclose(boxes, [f["box"] for f in record["faces"]], atol=1e-3)
        np.testing.assert_allclose(landmarks, [f["landmarks"] for f in record["faces"]], atol=1e-3)
        np.testing.assert_allclose(scores, [f["score"] for f in record["faces"]], atol=1e-6)
