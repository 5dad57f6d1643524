"""bench/speed_table.py: the README's speed table from the bench tools' numbers (formatting only: no timing here)."""
from bench.speed_table import NOT_RUN, table


def numbers(columns):
    single = {"portraits-20": {"ms": 20.0, "faces": 10}, "vga-20": {"ms": 50.0, "faces": 7},
              "portraits-40": {"ms": 10.0, "faces": 10}}
    facenet = {case: {"ms": value["ms"] * 4, "faces": value["faces"]} for case, value in single.items()}
    with_ratio = {case: {**value, "x_facenet": 4.0} for case, value in single.items()}
    rate = {"1": {"rate": 30.0, "cpu": 1.0, "faces": 300}, "2": {"rate": 57.0, "cpu": 1.95, "faces": 300}}
    return {"machine": {"cpu_model": "Test CPU", "cpu_count": 2, "cpu_flags": "avx2 fma", "python": "3.11"},
            "load": [0.5, 0.7], "seconds": 12.0, "rounds": 3, "columns": columns,
            "single": {label: with_ratio for label in columns if label != "facenet-pytorch"}
            | {"facenet-pytorch": facenet},
            "mixed": {"openvino": {"one size": {"cpu_ms_per_image": 30.0}, "mixed": {"cpu_ms_per_image": 31.5}},
                      "opencv": {"one size": {"cpu_ms_per_image": 40.0}, "mixed": {"cpu_ms_per_image": 39.0}}},
            "throughput": {"openvino threads": rate, "openvino processes": rate, "opencv threads": rate,
                           "opencv processes": rate, "facenet-pytorch threads": rate,
                           "facenet-pytorch intra-op": {"1": {"rate": 10.0, "cpu": 1.0}, "2": {"rate": 12.0, "cpu": 1.5}}},
            "cold": {"openvino": 0.86, "opencv": 0.61}}


def rows_of(text):
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    return {cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines)}


def test_every_row_has_a_cell_per_engine_with_ratios_taken_from_the_numbers():
    columns = ["OpenVINO f32", "OpenVINO bf16", "OpenCV DNN", "facenet-pytorch"]
    rows = rows_of(table(numbers(columns)))
    assert rows["1 thread per image in flight"] == columns
    assert rows["one portrait, min face 20 (CPU ms)"] == ["20.0 (4.00x facenet)"] * 3 + ["80.0"]
    mixed = rows["mixed sizes: CPU ms per image, one size -> 50 sizes"]
    assert mixed == ["30.0 -> 31.5 (1.050x)", NOT_RUN, "40.0 -> 39.0 (0.975x)", NOT_RUN]  # bf16, facenet not run
    threads = rows["images/s, 1 -> 2 in flight, threads (server, `detect_batch`)"]
    assert threads == ["30.0 -> 57.0/s (1.90x, 1.95 CPU)", NOT_RUN, "30.0 -> 57.0/s (1.90x, 1.95 CPU)", "30.0 -> 57.0/s (1.90x, 1.95 CPU)"]
    processes = next(cells for title, cells in rows.items() if title.startswith("images/s, 1 -> 2 in flight, proc"))
    assert processes[3] == "10.0 -> 12.0/s (1.20x, 1.50 CPU)"  # facenet-pytorch: torch on 1 -> 2 threads
    cold = next(cells for title, cells in rows.items() if title.startswith("cold start"))
    assert cold == ["0.86", NOT_RUN, "0.61", NOT_RUN]


def test_a_cpu_without_native_bf16_has_no_bf16_column():
    columns = ["OpenVINO f32", "OpenCV DNN", "facenet-pytorch"]
    rows = rows_of(table(numbers(columns)))
    assert rows["1 thread per image in flight"] == columns
    assert all(len(cells) == 3 for cells in rows.values())
