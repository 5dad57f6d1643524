"""`fastmtcnn serve`: threads, image headers, the HTTP API, hostile input, load, stop/restart.

Everything runs on 127.0.0.1, every request loop is bounded in count and time.
"""
import json
import logging
import random
import signal
import socket
import threading
import time
import zlib

import cv2
import numpy as np
import pytest

from fastmtcnn import Detector

from conftest import ASTRONAUT, GROUP, REPO_ROOT, encode_image, require_codec

starlette = pytest.importorskip("starlette", reason="the server tests need the server extra: pip install '.[server]'")
uvicorn = pytest.importorskip("uvicorn", reason="the server tests need the server extra: pip install '.[server]'")
httpx = pytest.importorskip("httpx", reason="the server tests need httpx (in the test extra)")

from fastmtcnn.server import ServerConfig, create_app  # noqa: E402
from fastmtcnn.server import detection  # noqa: E402
from fastmtcnn.server.app import uvicorn_options  # noqa: E402
from test_image_header import bombs  # noqa: E402
from bench.load.abuse import half_requests  # noqa: E402
from bench.load.http_load import Server, free_port, proc_status  # noqa: E402  (the load tools' server runner)


@pytest.fixture(scope="module")
def images():
    """Mixed inputs: the two shipped photos and resized, cropped and gray variants (BGR or gray arrays)."""
    astronaut, group = cv2.imread(str(ASTRONAUT)), cv2.imread(str(GROUP))
    half = cv2.resize(group, (320, 240), interpolation=cv2.INTER_AREA)
    return {"astronaut": astronaut, "group": group, "group_half": half,
            "astronaut_crop": np.ascontiguousarray(astronaut[40:240, 120:320]),
            "group_gray": cv2.cvtColor(half, cv2.COLOR_BGR2GRAY),
            "astronaut_small": cv2.resize(astronaut, (160, 160), interpolation=cv2.INTER_AREA),
            "group_crop": np.ascontiguousarray(group[250:480, 300:600])}


@pytest.fixture(scope="module")
def detector():
    return Detector()


# ---------------------------------------------------------------------------------------------- 1. threads
def test_eight_threads_fifty_calls_each_equal_serial_results(detector, images):
    names = sorted(name for name in images if name not in ("astronaut", "group"))  # small ones: a bounded test
    serial = {name: detector.detect(images[name]) for name in names}
    rng = random.Random(0)
    plans = [[rng.choice(names) for _ in range(50)] for _ in range(8)]
    results = [[None] * 50 for _ in range(8)]
    errors = []
    barrier = threading.Barrier(8)

    def work(worker):
        try:
            barrier.wait(timeout=60)
            for call, name in enumerate(plans[worker]):
                results[worker][call] = detector.detect(images[name])
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads) and not errors
    for worker in range(8):
        for call, name in enumerate(plans[worker]):
            got, want = results[worker][call], serial[name]
            assert np.array_equal(got.boxes, want.boxes), (worker, call, name)
            assert np.array_equal(got.scores, want.scores), (worker, call, name)
            assert np.array_equal(got.landmarks, want.landmarks), (worker, call, name)
    assert len(serial["group_half"]) >= 3  # the mix really has faces to get wrong


def _jpeg_header(width, height):
    app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0\x00\x11\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big") + b"\x03" + b"\x01\x11\x00" * 3
    return b"\xff\xd8" + app0 + sof


def _png_header(width, height):
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00"
    return (b"\x89PNG\r\n\x1a\n" + len(ihdr).to_bytes(4, "big") + b"IHDR" + ihdr
            + zlib.crc32(b"IHDR" + ihdr).to_bytes(4, "big"))


# ---------------------------------------------------------------------------------------------- HTTP API
def _wait_ready(client, seconds=90):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError("server did not become ready")


class LiveServer:
    """`create_app(config)` on a real Uvicorn (with the service's own protocol class) in a thread on 127.0.0.1.

    Used like Starlette's TestClient (`get`, `post`, `app`), but over TCP, so connection limits are real too.
    """

    def __init__(self, config):
        self.config = config
        self.app = create_app(config)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        options = dict(uvicorn_options(config), host="127.0.0.1", port=self.port, timeout_keep_alive=2,
                       timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", **options))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        # the client drops an idle connection (1 s) before the server closes it (timeout_keep_alive=2): reusing one
        # the server is closing at that moment fails with "Server disconnected" (seen under load, between tests)
        self.http = httpx.Client(base_url=self.url, timeout=60, limits=httpx.Limits(keepalive_expiry=1.0))

    def __enter__(self):
        self.thread.start()
        end = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < end and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info):
        self.http.close()
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def get(self, path, **kwargs):
        return self.http.get(path, **kwargs)

    def post(self, path, **kwargs):
        return self.http.post(path, **kwargs)


@pytest.fixture(scope="module")
def client():
    config = ServerConfig(workers=2, queue_size=4, max_body_bytes=2_000_000, max_pixels=20_000_000)
    with LiveServer(config) as live:
        _wait_ready(live)
        yield live


def _faces_json(faces):
    return json.loads(json.dumps(faces.to_list()))


def _assert_error(response, status):
    assert response.status_code == status, (response.status_code, response.text[:300])
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"]


def test_readyz_is_503_until_warm_up_ran():
    live = LiveServer(ServerConfig(workers=1))
    service = live.app.state.service
    release = threading.Event()
    original = service._warm_up

    def slow_warm_up():
        release.wait(30)
        original()

    service._warm_up = slow_warm_up
    with live as test_client:
        assert test_client.get("/healthz").status_code == 200
        response = test_client.get("/readyz")
        _assert_error(response, 503)
        assert "Retry-After" in response.headers
        _assert_error(test_client.post("/v1/detect", content=b"x", headers={"content-type": "image/jpeg"}), 503)
        release.set()
        _wait_ready(test_client)
        assert test_client.get("/readyz").json()["status"] == "ready"


def test_detect_raw_multipart_png_webp_equal_the_library(client, detector, images):
    group_bytes = GROUP.read_bytes()
    want = _faces_json(detector.detect(group_bytes))
    response = client.post("/v1/detect", content=group_bytes, headers={"content-type": "image/jpeg"})
    assert response.status_code == 200
    body = response.json()
    assert body["faces"] == want and len(want) >= 4
    assert body["image"] == {"width": 640, "height": 480}
    assert set(body["timing_ms"]) >= {"queue", "decode", "detect", "total"}
    assert set(body["faces"][0]) == {"box", "score", "landmarks"}

    response = client.post("/v1/detect", files={"file": ("group.jpg", group_bytes, "image/jpeg")},
                           data={"note": "x"})
    assert response.status_code == 200 and response.json()["faces"] == want

    for ext, params in ((".png", ()), (".webp", (cv2.IMWRITE_WEBP_QUALITY, 90))):
        data = encode_image(images["group_half"], ext, params)
        response = client.post("/v1/detect", content=data, headers={"content-type": "application/octet-stream"})
        assert response.status_code == 200
        assert response.json()["faces"] == _faces_json(detector.detect(data))


def test_query_parameters_reuse_the_workers_cascades(client, monkeypatch):
    """Other settings per request equal the library's results, and build no detector or cascade of their own
    (issue 16 case 3: a cached detector per setting multiplied memory)."""
    def no_new_cascade(*args, **kwargs):
        raise AssertionError("a request built a new Cascade")

    monkeypatch.setattr(detection, "Cascade", no_new_cascade)
    data = ASTRONAUT.read_bytes()
    for params, kwargs in (({"min_face_size": "40"}, {"min_face_size": 40}),
                           ({"thresholds": "0.5,0.6,0.9"}, {"thresholds": (0.5, 0.6, 0.9)}),
                           ({"min_face_size": "30", "thresholds": "0.7,0.8,0.95"},
                            {"min_face_size": 30, "thresholds": (0.7, 0.8, 0.95)})):
        response = client.post("/v1/detect", params=params, content=data, headers={"content-type": "image/jpeg"})
        assert response.status_code == 200
        assert response.json()["faces"] == _faces_json(Detector(**kwargs).detect(data))
    default = client.post("/v1/detect", content=data, headers={"content-type": "image/jpeg"})
    assert default.json()["faces"] == _faces_json(Detector().detect(data))  # settings were put back


def test_unknown_query_parameters_get_400_naming_the_known_ones(client):
    data = ASTRONAUT.read_bytes()
    for params in ({"foo": "1"}, {"min_face_size": "40", "minfacesize": "40"}, {"threshold": "0.6,0.7,0.7"}):
        response = client.post("/v1/detect", params=params, content=data, headers={"content-type": "image/jpeg"})
        _assert_error(response, 400)
        error = response.json()["error"]
        assert error["code"] == "unknown_parameter" and response.headers["x-error-code"] == "unknown_parameter"
        assert "min_face_size" in error["message"] and "thresholds" in error["message"]
        assert repr(sorted(set(params) - {"min_face_size"})[0]) in error["message"]
    ok = client.post("/v1/detect", params={"min_face_size": "40", "thresholds": "0.6,0.7,0.7"}, content=data,
                     headers={"content-type": "image/jpeg"})
    assert ok.status_code == 200


def test_gif_content_type_is_accepted_like_octet_stream(client, images):
    require_codec(".gif")  # OpenCV has no GIF codec before 4.11
    gif = encode_image(images["group_half"], ".gif")
    as_gif = client.post("/v1/detect", content=gif, headers={"content-type": "image/gif"})
    as_octets = client.post("/v1/detect", content=gif, headers={"content-type": "application/octet-stream"})
    assert as_gif.status_code == as_octets.status_code == 200
    assert as_gif.json()["faces"] == as_octets.json()["faces"] == _faces_json(Detector().detect(gif))


def _fuzz_cases():
    """(description, params, content-type, body) of hostile or malformed requests, >= 200 of them."""
    rng = random.Random(7)
    jpeg = GROUP.read_bytes()
    png = encode_image(cv2.imread(str(GROUP))[:120, :160], ".png")
    webp = encode_image(cv2.imread(str(GROUP))[:120, :160], ".webp", (cv2.IMWRITE_WEBP_QUALITY, 80))
    cases = []
    cuts = set(int(x) for x in np.geomspace(1, len(jpeg) * 0.6, 90)) | set(range(1, int(len(jpeg) * 0.6), 1500))
    for cut in sorted(cuts):
        cases.append((f"jpeg[:{cut}]", {}, "image/jpeg", jpeg[:cut]))
    for cut in (1, 8, 16, 30, 33, 50, 100, len(png) // 3):
        cases.append((f"png[:{cut}]", {}, "image/png", png[:cut]))
    for cut in (1, 12, 20, 30, 40, len(webp) // 3):
        cases.append((f"webp[:{cut}]", {}, "image/webp", webp[:cut]))
    for i in range(40):
        cases.append((f"random{i}", {}, rng.choice(["image/jpeg", "application/octet-stream", "image/png"]),
                      rng.randbytes(rng.choice([1, 7, 64, 1000, 20000]))))
    for i in range(10):  # a real JPEG header with garbage after it
        cases.append((f"jpeg_head_garbage{i}", {}, "image/jpeg", jpeg[:600] + rng.randbytes(2000)))
    cases.append(("empty", {}, "image/jpeg", b""))
    cases.append(("empty_octet", {}, "application/octet-stream", b""))
    cases.append(("png_20000x20000", {}, "image/png", _png_header(20000, 20000) + b"\x00" * 64))
    cases.append(("jpeg_30000x20000", {}, "image/jpeg", _jpeg_header(30000, 20000) + b"\x00" * 64))
    cases.append(("body_too_large", {}, "image/jpeg", jpeg + b"\x00" * 2_000_000))
    for ctype in ("text/plain", "application/json", "video/mp4", "", "nonsense", "image",
                  "text/html; charset=utf-8", "application/x-www-form-urlencoded"):
        cases.append((f"ctype:{ctype}", {}, ctype, jpeg))
    bad_params = ({"min_face_size": "1e308"}, {"min_face_size": "-20"}, {"min_face_size": "nan"},
                  {"min_face_size": "inf"}, {"min_face_size": "3"}, {"min_face_size": "abc"},
                  {"min_face_size": ""}, {"min_face_size": "1e999"}, {"thresholds": "0.6,0.7"},
                  {"thresholds": "0.6,0.7,0.7,0.7"}, {"thresholds": "nan,0.7,0.7"}, {"thresholds": "-1,0.7,0.7"},
                  {"thresholds": "0.6,0.7,2"}, {"thresholds": "a,b,c"}, {"thresholds": ""},
                  {"thresholds": "inf,0.7,0.7"}, {"thresholds": "0.6;0.7;0.7"}, {"min_face_size": "9" * 400})
    for params in bad_params:
        cases.append((f"params:{params}", params, "image/jpeg", jpeg))
    boundary = "XyZ123"
    multipart = f"multipart/form-data; boundary={boundary}"
    field_only = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
                  f"--{boundary}--\r\n").encode()
    cases.append(("multipart_no_file", {}, multipart, field_only))
    cases.append(("multipart_no_boundary", {}, "multipart/form-data", field_only))
    cases.append(("multipart_wrong_boundary", {}, "multipart/form-data; boundary=other", field_only))
    cases.append(("multipart_empty", {}, multipart, b""))
    cases.append(("multipart_no_header_end", {}, multipart,
                  f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"".encode() + jpeg[:100]))
    for cut in (50, 500, 5000):
        part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n"
                f"Content-Type: image/jpeg\r\n\r\n").encode() + jpeg[:cut] + f"\r\n--{boundary}--\r\n".encode()
        cases.append((f"multipart_truncated_jpeg{cut}", {}, multipart, part))
    part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\n"
            f"\r\n--{boundary}--\r\n").encode()
    cases.append(("multipart_empty_file", {}, multipart, part))
    return cases


def test_fuzz_hostile_bodies_get_json_4xx_and_the_server_stays_up(client):
    cases = _fuzz_cases()
    assert len(cases) >= 200
    statuses = {}
    for name, params, ctype, body in cases:
        headers = {"content-type": ctype} if ctype else {}
        response = client.post("/v1/detect", params=params, content=body, headers=headers)
        assert 400 <= response.status_code < 500, (name, response.status_code, response.text[:200])
        _assert_error(response, response.status_code)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    print(f"fuzz: {len(cases)} requests, statuses {dict(sorted(statuses.items()))}")
    by_name = {name: (params, ctype, body) for name, params, ctype, body in cases}

    def status(name):
        params, ctype, body = by_name[name]
        return client.post("/v1/detect", params=params, content=body,
                           headers={"content-type": ctype} if ctype else {}).status_code

    assert status("png_20000x20000") == 413 and status("jpeg_30000x20000") == 413
    assert status("body_too_large") == 413
    assert status("ctype:text/plain") == 415 and status("ctype:") == 415
    assert status("multipart_no_file") == 422 and status("empty") == 422
    assert status("jpeg[:1]") == 422
    assert status("params:{'min_face_size': 'nan'}") == 422 and status("params:{'thresholds': 'a,b,c'}") == 400
    assert set(statuses) <= {400, 413, 415, 422}
    assert client.get("/healthz").status_code == 200
    assert client.post("/v1/detect", content=GROUP.read_bytes(), headers={"content-type": "image/jpeg"}).status_code == 200


def test_other_methods_and_paths_get_json_errors(client):
    _assert_error(client.get("/v1/detect"), 405)
    _assert_error(client.get("/nothing-here"), 404)


def test_full_queue_answers_503_with_retry_after(client):
    slots = client.app.state.service.slots
    taken = 0
    try:
        while slots.try_acquire():
            taken += 1
        response = client.post("/v1/detect", content=GROUP.read_bytes(), headers={"content-type": "image/jpeg"})
        _assert_error(response, 503)
        assert response.headers["Retry-After"] == "1"
    finally:
        for _ in range(taken):
            slots.release()
    assert taken == slots.capacity
    assert client.post("/v1/detect", content=GROUP.read_bytes(), headers={"content-type": "image/jpeg"}).status_code == 200


def test_slow_detection_times_out_with_504_and_frees_its_slot():
    with LiveServer(ServerConfig(workers=1, queue_size=1, timeout=1.0)) as test_client:
        _wait_ready(test_client)
        service = test_client.app.state.service
        original = service._job

        def slow_job(*args):
            time.sleep(1.5)
            return original(*args)

        service._job = slow_job
        _assert_error(test_client.post("/v1/detect", content=GROUP.read_bytes(),
                                       headers={"content-type": "image/jpeg"}), 504)
        service._job = original
        end = time.monotonic() + 5
        while service.slots.snapshot()[0] and time.monotonic() < end:
            time.sleep(0.02)
        assert service.slots.snapshot() == (0, 0, 0)
        small = encode_image(cv2.resize(cv2.imread(str(ASTRONAUT)), (128, 128), interpolation=cv2.INTER_AREA),
                             ".jpg")
        response = test_client.post("/v1/detect", content=small, headers={"content-type": "image/jpeg"})
        assert response.status_code == 200, response.text


def test_metrics_and_access_log(client, caplog):
    with caplog.at_level(logging.INFO, logger="fastmtcnn.access"):
        client.post("/v1/detect", content=ASTRONAUT.read_bytes(), headers={"content-type": "image/jpeg"})
        client.post("/v1/detect", content=b"junk", headers={"content-type": "image/jpeg"})
        # the server thread writes a request's line after sending its answer: wait for both lines
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sum(r.name == "fastmtcnn.access" for r in caplog.records) < 2:
            time.sleep(0.01)
    lines = [json.loads(record.getMessage()) for record in caplog.records if record.name == "fastmtcnn.access"]
    assert [line["status"] for line in lines[-2:]] == [200, 422]
    assert all({"method", "path", "status", "latency_ms", "bytes"} <= set(line) for line in lines)
    assert lines[-1]["method"] == "POST" and lines[-1]["path"] == "/v1/detect" and lines[-1]["bytes"] > 0
    text = client.get("/metrics").text
    for needle in ('fastmtcnn_requests_total{method="POST",path="/v1/detect",status="200"}',
                   'fastmtcnn_requests_total{method="POST",path="/v1/detect",status="422"}',
                   'fastmtcnn_errors_total{code="undecodable_image"}', "fastmtcnn_request_duration_seconds_bucket",
                   'le="+Inf"', "fastmtcnn_queue_depth 0", "fastmtcnn_in_flight 0", "fastmtcnn_ready 1"):
        assert needle in text, needle


# ---------------------------------------------------------------------------------------------- real uvicorn
def _load(url, bodies, expected, clients, seconds, max_requests=2000):
    """`clients` threads posting random bodies for `seconds`; returns (statuses, latencies, mismatches, errors)."""
    stop_at = time.monotonic() + seconds
    lock = threading.Lock()
    statuses, latencies, mismatches, errors = {}, [], [], []
    budget = [max_requests]

    def client_loop(seed):
        rng = random.Random(seed)
        with httpx.Client(timeout=httpx.Timeout(10.0, connect=2.0)) as http:
            while time.monotonic() < stop_at:
                with lock:
                    if budget[0] <= 0:
                        return
                    budget[0] -= 1
                name = rng.choice(sorted(bodies))
                started = time.perf_counter()
                try:
                    response = http.post(url, content=bodies[name], headers={"content-type": "image/jpeg"})
                except httpx.HTTPError as error:
                    with lock:
                        errors.append(type(error).__name__)
                    time.sleep(0.05)
                    continue
                with lock:
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    if response.status_code == 200:
                        latencies.append(time.perf_counter() - started)
                        if response.json()["faces"] != expected[name]:
                            mismatches.append(name)

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    return threads, (statuses, latencies, mismatches, errors)


def _join(threads, seconds):
    end = time.monotonic() + seconds
    for thread in threads:
        thread.join(timeout=max(0.1, end - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "a client hung"


def test_real_uvicorn_load_overload_stop_and_restart(detector, images):
    bodies = {name: encode_image(image, ".jpg") for name, image in images.items() if name != "group"}
    bodies["group"] = GROUP.read_bytes()
    expected = {name: _faces_json(detector.detect(body)) for name, body in bodies.items()}
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/detect"
    server = Server(port, "--workers", "2", "--queue-size", "6").start()  # capacity 8
    try:
        # below the queue limit: 8 clients, every answer 200 and equal to the serial result
        threads, (statuses, latencies, mismatches, errors) = _load(url, bodies, expected, clients=8, seconds=4)
        _join(threads, 30)
        total = sum(statuses.values())
        latencies.sort()
        print(f"load 8 clients: {total} requests, {total / 4:.1f} req/s, p50 {latencies[len(latencies) // 2] * 1000:.0f}"
              f" ms, p99 {latencies[int(len(latencies) * 0.99)] * 1000:.0f} ms, peak RSS {proc_status(server.pid, 'VmHWM'):.0f} MB")
        assert statuses == {200: total} and total > 10 and not mismatches and not errors

        # above it: 24 clients, only 200s and 503s, every 200 still correct
        threads, (statuses, _, mismatches, errors) = _load(url, bodies, expected, clients=24, seconds=3)
        _join(threads, 30)
        print(f"overload 24 clients: statuses {statuses}")
        assert set(statuses) <= {200, 503} and statuses.get(503, 0) > 0 and statuses.get(200, 0) > 0
        assert not mismatches and not errors

        # stop mid-load: clients get clean connection errors (or answers), no hangs
        threads, (statuses, _, mismatches, errors) = _load(url, bodies, expected, clients=8, seconds=4)
        time.sleep(1.0)
        server.process.kill()
        server.process.wait(timeout=10)
        _join(threads, 30)
        print(f"killed mid-load: statuses {statuses}, client errors {sorted(set(errors))} x {len(errors)}")
        assert errors and set(errors) <= {"ConnectError", "ReadError", "RemoteProtocolError", "WriteError"}
        assert set(statuses) <= {200} and not mismatches

        # restart on the same port: requests succeed again
        server.start()
        with httpx.Client(timeout=10) as http:
            for name in sorted(bodies):
                response = http.post(url, content=bodies[name], headers={"content-type": "image/jpeg"})
                assert response.status_code == 200 and response.json()["faces"] == expected[name]
            assert http.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    finally:
        server.stop()


def test_unexpected_server_errors_are_json_500_and_bad_images_never_are(client):
    service = client.app.state.service
    original = service._job

    def broken_job(*args):
        raise RuntimeError("boom")

    service._job = broken_job
    try:
        _assert_error(client.post("/v1/detect", content=GROUP.read_bytes(), headers={"content-type": "image/jpeg"}),
                      500)
    finally:
        service._job = original
    assert service.slots.snapshot() == (0, 0, 0)
    assert client.get("/healthz").status_code == 200


# ---------------------------------------------------------------------------------------------- issue 16: abuse
def _poll_healthz(url, stop, latencies):
    """GET /healthz every 50 ms on a new connection until `stop` is set; appends each latency (s, inf if failed)."""
    while not stop.is_set():
        started = time.perf_counter()
        try:
            status = httpx.get(url + "/healthz", timeout=5).status_code
        except httpx.HTTPError:
            status = 0
        latencies.append(time.perf_counter() - started if status == 200 else float("inf"))
        stop.wait(0.05)


class HealthzWatch:
    """Context manager: polls /healthz in a thread; `.worst` is the slowest answer (s) seen meanwhile."""

    def __init__(self, url):
        self.url, self.stop, self.latencies = url, threading.Event(), []
        self.thread = threading.Thread(target=_poll_healthz, args=(url, self.stop, self.latencies), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        self.thread.join(timeout=10)

    @property
    def worst(self):
        return max(self.latencies)


def _photo_561():
    return encode_image(cv2.resize(cv2.imread(str(ASTRONAUT)), (561, 561), interpolation=cv2.INTER_AREA),
                        ".jpg")


def _wait_idle(service, seconds):
    end = time.monotonic() + seconds
    while service.slots.snapshot() != (0, 0, 0) and time.monotonic() < end:
        time.sleep(0.05)
    return service.slots.snapshot()


def test_case1_huge_candidate_sets_end_at_the_timeout_and_stop_working():
    """thresholds=0,0,0 & min_face_size=4 on a 561x561 photo: an answer (504, or 200 on a fast machine) within the
    timeout + 5 s, /healthz under 1 s meanwhile, and the detection stops using its worker soon after."""
    with LiveServer(ServerConfig(workers=2, timeout=3.0)) as live:
        _wait_ready(live)
        with HealthzWatch(live.url) as watch:
            started = time.perf_counter()
            response = live.post("/v1/detect", params={"thresholds": "0,0,0", "min_face_size": "4"},
                                 content=_photo_561(), headers={"content-type": "image/jpeg"})
            elapsed = time.perf_counter() - started
            idle = _wait_idle(live.app.state.service, 15)
        assert response.status_code in (200, 504) and elapsed < 3.0 + 5, (response.status_code, elapsed)
        if response.status_code == 504:
            _assert_error(response, 504)
        assert idle == (0, 0, 0), "the timed-out detection kept its worker"
        assert watch.latencies and watch.worst < 1.0, watch.worst
        print(f"case 1: {response.status_code} after {elapsed:.1f} s, /healthz worst {watch.worst * 1000:.0f} ms")


def _closed_by_server(sock, seconds):
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_case2_connections_that_never_finish_headers_are_closed_and_healthz_stays_up():
    with LiveServer(ServerConfig(workers=1, header_timeout=1.0)) as live:
        _wait_ready(live)
        sockets = half_requests(live.port, 80)
        try:
            started = time.perf_counter()
            assert live.get("/healthz").status_code == 200
            assert time.perf_counter() - started < 1.0
            assert all(_closed_by_server(sock, 5) for sock in sockets)
        finally:
            for sock in sockets:
                sock.close()


def test_case6_beyond_the_connection_limit_answers_json_503_with_retry_after():
    with LiveServer(ServerConfig(workers=1, max_connections=8, header_timeout=30)) as live:
        _wait_ready(live)
        sockets = half_requests(live.port, 10)
        try:
            with httpx.Client(base_url=live.url, timeout=10) as fresh:
                response = fresh.get("/healthz")
            _assert_error(response, 503)
            assert response.headers["Retry-After"] == "1" and response.json()["error"]["code"] == "too_many_connections"
        finally:
            for sock in sockets:
                sock.close()
        end = time.monotonic() + 5
        while time.monotonic() < end:
            with httpx.Client(base_url=live.url, timeout=10) as fresh:
                if fresh.get("/healthz").status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError("connections were not freed")


def _black_png(width, height):
    """A valid all-black 8-bit RGB PNG, compressed row by row (small, never held decoded)."""
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00"
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * width)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind, payload):
        return len(payload).to_bytes(4, "big") + kind + payload + zlib.crc32(kind + payload).to_bytes(4, "big")

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_case3_and_4_images_over_the_memory_budget_or_crafted_headers_get_413_before_decoding(client, monkeypatch):
    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded an image that its header already refused")

    monkeypatch.setattr(detection, "decode_image", no_decoding)
    black = _black_png(7000, 7000)  # 49 Mpx: under max_pixels, over the memory budget
    assert len(black) < 300_000
    response = client.post("/v1/detect", content=black, headers={"content-type": "image/png"})
    _assert_error(response, 413)
    assert response.json()["error"]["code"] in ("over_memory_budget", "image_too_large")
    for name, data in bombs():
        if len(data) > client.app.state.service.config.max_body_bytes:
            continue
        response = client.post("/v1/detect", content=data, headers={"content-type": "application/octet-stream"})
        assert response.status_code == 413, (name, response.status_code, response.text[:200])
        _assert_error(response, 413)
    unsized = client.post("/v1/detect", content=b"\xff\xd8\xff\xda\x00\x02" + b"\x00" * 100,
                          headers={"content-type": "image/jpeg"})
    _assert_error(unsized, 413)
    assert unsized.json()["error"]["code"] == "image_size_unknown"


def test_case5_multipart_with_many_parts_is_refused_without_stalling_the_loop(client):
    boundary = "b"
    part = f"--{boundary}\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n\r\n".encode()
    body = part * (1_900_000 // len(part)) + f"--{boundary}--\r\n".encode()
    with HealthzWatch(client.url) as watch:
        response = client.post("/v1/detect", content=body,
                               headers={"content-type": f"multipart/form-data; boundary={boundary}"})
        time.sleep(0.3)
    _assert_error(response, 400)
    assert response.json()["error"]["code"] == "too_many_parts"
    assert watch.worst < 1.0


def test_sigterm_during_a_long_detection_exits_within_seconds():
    port = free_port()
    server = Server(port, "--workers", "2", "--timeout", "120").start()
    try:
        def post():
            try:
                httpx.post(f"http://127.0.0.1:{port}/v1/detect", params={"thresholds": "0,0,0", "min_face_size": "4"},
                           content=_photo_561(), headers={"content-type": "image/jpeg"}, timeout=60)
            except httpx.HTTPError:
                pass

        client_thread = threading.Thread(target=post, daemon=True)
        client_thread.start()
        time.sleep(2.0)
        assert server.process.poll() is None
        started = time.perf_counter()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=30)
        elapsed = time.perf_counter() - started
        print(f"SIGTERM mid-detection: exited in {elapsed:.1f} s")
        assert elapsed < 15
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------- /v1/stream
STREAM_CONFIG = dict(workers=2, queue_size=2, max_streams=2, stream_max_fps=8, stream_max_frame_bytes=200_000,
                     stream_max_pixels=640 * 480)


def _ws_connect(live, query=""):
    """A `websockets` sync client on the live server's /v1/stream (skips without the websockets package)."""
    sync_client = pytest.importorskip("websockets.sync.client", reason="the stream tests need websockets "
                                                                       "(in the server extra)")
    return sync_client.connect(f"ws://127.0.0.1:{live.port}/v1/stream{query}", open_timeout=30, close_timeout=5)


def _metric(live, name):
    """The value of one /metrics series, 0 when absent."""
    for line in live.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _wait_for(condition, seconds=15):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture(scope="module")
def stream_server():
    with LiveServer(ServerConfig(**STREAM_CONFIG)) as live:
        _wait_ready(live)
        yield live


@pytest.fixture(scope="module")
def crossing_jpegs():
    from video_clips import crossing

    return [encode_image(frame, ".jpg", (cv2.IMWRITE_JPEG_QUALITY, 90)) for frame in crossing(24).frames]


def test_stream_answers_each_frame_with_the_trackers_faces_and_ids(stream_server, crossing_jpegs):
    """Frame by frame (each sent after the previous answer, under the rate limit) the stream gives what an
    in-process FaceTracker gives on the same JPEGs: boxes, scores, landmarks, ids and full passes."""
    from fastmtcnn.video import FaceTracker

    tracker = FaceTracker(Detector(min_face_size=30))
    ids_seen = set()
    with _ws_connect(stream_server, "?min_face_size=30") as ws:
        for n, jpeg in enumerate(crossing_jpegs):
            sent = time.monotonic()
            ws.send(jpeg)
            answer = json.loads(ws.recv(timeout=30))
            want = tracker.update(jpeg).to_record()
            assert answer["type"] == "faces" and answer["frame"] == n, answer
            assert answer["full_pass"] == want["full_pass"]
            assert answer["faces"] == json.loads(json.dumps(want["faces"]))
            assert answer["image"] == {"width": 640, "height": 480}
            assert set(answer["timing_ms"]) == {"queue", "decode", "track", "total"}
            ids_seen.update(face["id"] for face in answer["faces"])
            time.sleep(max(0.0, 0.13 - (time.monotonic() - sent)))  # 8 fps limit: stay under it
    assert len(ids_seen) == 2  # two faces crossing, each keeps its id
    assert _wait_for(lambda: _metric(stream_server, "fastmtcnn_streams_open") == 0)


def test_stream_errors_have_the_detect_shape_and_the_stream_goes_on(stream_server, images):
    too_many_pixels = encode_image(cv2.resize(images["group"], (800, 600)), ".jpg")
    cases = [("text", 415, "text_message"), (b"", 422, "empty_image"), (b"not an image", 422, "undecodable_image"),
             (b"\x00" * 200_001, 413, "frame_too_large"), (too_many_pixels, 413, "image_too_large")]
    with _ws_connect(stream_server) as ws:
        for n, (message, status, code) in enumerate(cases):
            ws.send(message)
            answer = json.loads(ws.recv(timeout=30))
            assert answer == {"type": "error", "frame": n, "status": status,
                              "error": {"code": code, "message": answer["error"]["message"]}}, answer
            assert answer["error"]["message"]
            time.sleep(0.13)
        ws.send(GROUP.read_bytes())
        answer = json.loads(ws.recv(timeout=30))
        assert answer["type"] == "faces" and answer["frame"] == len(cases) and len(answer["faces"]) >= 4
    text = stream_server.get("/metrics").text
    assert 'fastmtcnn_stream_frames_total{outcome="error",code="frame_too_large"}' in text


def test_stream_drops_frames_beyond_the_rate_and_while_busy_and_answers_every_one(stream_server, crossing_jpegs):
    """40 frames sent at once: each gets exactly one answer (faces, or dropped with a reason), never a queue:
    at most one frame in work plus one waiting, so most are dropped; /metrics counts them all."""
    def counts():
        text = stream_server.get("/metrics").text
        return {line.split("{", 1)[1].split("}")[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                if line.startswith("fastmtcnn_stream_frames_total{")}

    before = counts()
    frames = (crossing_jpegs * 2)[:40]
    with _ws_connect(stream_server) as ws:
        for jpeg in frames:
            ws.send(jpeg)
        answers = [json.loads(ws.recv(timeout=30)) for _ in frames]
    assert sorted(answer["frame"] for answer in answers) == list(range(len(frames)))
    kinds = {}
    for answer in answers:
        key = answer["type"] if answer["type"] != "dropped" else answer["reason"]
        kinds[key] = kinds.get(key, 0) + 1
    assert set(kinds) <= {"faces", "busy", "rate_limit"} and kinds.get("rate_limit", 0) >= 40 - 9 - 1, kinds
    assert 1 <= kinds.get("faces", 0) <= 9, kinds  # the 8-frame burst (+ refill), minus the busy ones
    after = counts()
    delta = {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)}
    assert delta == {'outcome="answered"': kinds["faces"],
                     **({'outcome="dropped",reason="busy"': kinds["busy"]} if "busy" in kinds else {}),
                     'outcome="dropped",reason="rate_limit"': kinds["rate_limit"]}


def test_stream_cap_bad_query_and_plain_get_are_refused_before_the_handshake(stream_server):
    from websockets.exceptions import InvalidStatus

    def refused(query=""):
        with pytest.raises(InvalidStatus) as caught:
            _ws_connect(stream_server, query).close()
        response = caught.value.response
        body = json.loads(response.body)
        assert set(body) == {"error"} and body["error"]["message"]
        return response.status_code, body["error"]["code"], response.headers

    assert refused("?min_face_size=big")[:2] == (400, "bad_query")
    assert refused("?fps=10")[:2] == (400, "unknown_parameter")
    assert refused("?thresholds=0.6,0.7,2")[:2] == (422, "bad_parameter")
    with _ws_connect(stream_server), _ws_connect(stream_server):
        assert _wait_for(lambda: _metric(stream_server, "fastmtcnn_streams_open") == 2)
        status, code, headers = refused()
        assert (status, code) == (503, "too_many_streams") and headers["Retry-After"] == "1"
    assert _wait_for(lambda: _metric(stream_server, "fastmtcnn_streams_open") == 0)
    with _ws_connect(stream_server) as ws:  # the slots are free again
        ws.send(GROUP.read_bytes())
        assert json.loads(ws.recv(timeout=30))["type"] == "faces"
    _assert_error(stream_server.get("/v1/stream"), 426)
    assert 'fastmtcnn_streams_refused_total{code="too_many_streams"} 1' in stream_server.get("/metrics").text


def test_streams_with_too_many_different_settings_are_refused(stream_server, monkeypatch):
    """Each setting in use keeps a Detector (networks per worker thread): their number is bounded."""
    from websockets.exceptions import InvalidStatus

    monkeypatch.setattr(stream_server.app.state.service.streams.detectors, "limit", 1)
    with _ws_connect(stream_server, "?min_face_size=30") as first:
        first.send(GROUP.read_bytes())
        assert json.loads(first.recv(timeout=30))["type"] == "faces"
        with pytest.raises(InvalidStatus) as caught:
            _ws_connect(stream_server, "?min_face_size=40").close()
        assert caught.value.response.status_code == 503
        assert json.loads(caught.value.response.body)["error"]["code"] == "too_many_settings"
        with _ws_connect(stream_server, "?min_face_size=30"):  # the same setting shares its detector
            pass
    assert _wait_for(lambda: _metric(stream_server, "fastmtcnn_streams_open") == 0)
    with _ws_connect(stream_server, "?min_face_size=40") as other:  # free again once the first closed
        other.send(GROUP.read_bytes())
        assert json.loads(other.recv(timeout=30))["type"] == "faces"


def test_stream_client_leaving_mid_frame_frees_everything(stream_server, crossing_jpegs):
    """A client that sends frames and drops the TCP connection without a close frame: the stream closes, the
    frame in work and the waiting one are counted as dropped (disconnected), slots and gauges go back to 0."""
    service = stream_server.app.state.service
    with _ws_connect(stream_server) as ws:
        for jpeg in crossing_jpegs[:3]:
            ws.send(jpeg)
        ws.socket.shutdown(socket.SHUT_RDWR)  # no closing handshake
    assert _wait_for(lambda: _metric(stream_server, "fastmtcnn_streams_open") == 0)
    assert _wait_for(lambda: service.slots.snapshot() == (0, 0, 0))
    assert _wait_for(lambda: 'reason="disconnected"' in stream_server.get("/metrics").text)


def test_the_readme_stream_client_example_prints_tracked_faces(stream_server, tmp_path):
    import subprocess
    import sys

    from video_clips import crossing, write_clip

    clip = write_clip(crossing(60), tmp_path / "crossing.avi")
    url = f"ws://127.0.0.1:{stream_server.port}/v1/stream?min_face_size=30"
    run = subprocess.run([sys.executable, str(REPO_ROOT / "examples" / "stream_client.py"), str(clip), "--url", url,
                          "--fps", "6", "--frames", "12"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert len(lines) == 12 and all(line.startswith(f"frame {n}: [(") for n, line in enumerate(lines)), lines
    assert {line.split("[(", 1)[1].split(",", 1)[0] for line in lines} <= {"0", "1"}  # ids stay 0 and 1


def test_stream_load_tool_runs_and_checks_its_bounds(stream_server, capsys):
    from bench.load.stream_load import main as stream_load

    assert stream_load(["--url", stream_server.url, "--streams", "2", "--fps", "5", "--duration", "2",
                        "--drain", "20"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames_sent"] == report["frames_answered"] >= 16 and report["metrics_match"]
    assert report["streams_open_after"] == 0 and report["healthz_failures"] == 0


def test_streams_leave_the_queue_to_detect_requests(monkeypatch, crossing_jpegs):
    """More streams than the queue, each with a frame to track: the streams hold at most `queue_size` request
    slots (the other frames are dropped "busy"), so a /v1/detect request waits for the worker instead of a 503."""
    import fastmtcnn.server.stream as stream_module

    class SlowTracker(stream_module.FaceTracker):
        def update(self, *args, **kwargs):
            time.sleep(1.0)
            return super().update(*args, **kwargs)

    monkeypatch.setattr(stream_module, "FaceTracker", SlowTracker)
    config = ServerConfig(workers=1, queue_size=2, max_streams=4, stream_max_frame_bytes=200_000)
    with LiveServer(config) as live:
        _wait_ready(live)
        streams = [_ws_connect(live) for _ in range(4)]
        try:
            for ws in streams:
                ws.send(crossing_jpegs[0])
            service = live.app.state.service
            assert _wait_for(lambda: service.streams.turns.held == 2)
            time.sleep(0.3)  # every stream has had its chance to take a slot
            assert service.slots.snapshot()[0] == 2, "stream turns beyond the queue size hold request slots"
            response = live.post("/v1/detect", content=ASTRONAUT.read_bytes(), headers={"content-type": "image/jpeg"})
            assert response.status_code == 200, response.text
            answers = sorted(json.loads(ws.recv(timeout=30))["type"] for ws in streams)
            assert answers == ["dropped", "dropped", "faces", "faces"], answers
        finally:
            for ws in streams:
                ws.close()


def test_every_serve_option_sets_its_config_field():
    import argparse

    from fastmtcnn.server.command import CONFIG_FIELDS, add_serve_command, config_from_args

    parser = argparse.ArgumentParser(prog="fastmtcnn")
    add_serve_command(parser.add_subparsers(dest="command", required=True))
    given = {"--host": "0.0.0.0", "--port": "9001", "--workers": "3", "--min-face-size": "33",
             "--max-body-bytes": "1000", "--max-pixels": "5000000", "--memory-budget-mb": "77", "--queue-size": "5",
             "--timeout": "7.5", "--threads": "2", "--max-connections": "9", "--header-timeout": "4",
             "--keep-alive-timeout": "3", "--max-streams": "6", "--stream-max-fps": "12",
             "--stream-max-frame-bytes": "4096", "--stream-max-pixels": "640000", "--backend": "opencv",
             "--precision": "bf16", "--weights": "some/dir"}
    args = parser.parse_args(["serve", *[part for option_value in given.items() for part in option_value]])
    options = set(vars(args)) - {"command", "run", "log_level"}
    assert options <= set(CONFIG_FIELDS), f"serve options without a ServerConfig field: {options - set(CONFIG_FIELDS)}"
    config = config_from_args(args)
    for option, text in given.items():
        value = getattr(config, option[2:].replace("-", "_"))
        assert str(value) == text or value == type(value)(text), (option, value)
    from fastmtcnn.server.config import default_memory_budget_mb

    defaults = config_from_args(parser.parse_args(["serve", "--workers", "3"]))
    assert defaults.memory_budget_mb == default_memory_budget_mb(3)
