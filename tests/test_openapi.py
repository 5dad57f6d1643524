"""The service's OpenAPI 3.1 document: valid (openapi-spec-validator), complete (every route and method of the
app), served at /openapi.json, and fuzzed with Schemathesis against a real `fastmtcnn serve` process.

The fuzz test needs the `fuzz` extra (pip install '.[fuzz]'), run as its own block in .ci/run; it skips here
without it.
"""
import collections
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the OpenAPI tests need the server extra: pip install '.[server]'")
httpx = pytest.importorskip("httpx", reason="the OpenAPI tests need httpx (in the test extra)")

from fastmtcnn.server import ServerConfig  # noqa: E402
from fastmtcnn.server.app import ROUTES  # noqa: E402
from fastmtcnn.server.openapi import openapi_document  # noqa: E402
from bench.load.http_load import Server, free_port  # noqa: E402

#: Requests Schemathesis must send (the issue asks >= 1,000 across all routes); -n is per operation, and the
#: parameterless routes give only a few distinct cases each, so most come from /v1/detect and /v1/stream.
FUZZ_REQUESTS = 1000
FUZZ_EXAMPLES_PER_OPERATION = 600


def _operations(document):
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item
            if method in ("get", "head", "post", "put", "patch", "delete")}


def test_document_is_valid_openapi_3_1():
    validator = pytest.importorskip("openapi_spec_validator", reason="needs openapi-spec-validator (test extra)")
    document = openapi_document(ServerConfig(), ROUTES)
    assert document["openapi"] == "3.1.0"
    validator.validate(document)  # raises on any violation of the OpenAPI 3.1 schema


def test_document_describes_every_route_method_and_error_shape():
    document = openapi_document(ServerConfig(), ROUTES)
    assert _operations(document) == {(method, path) for path, methods in ROUTES.items() for method in methods
                                     if path != "/v1/stream"} | {("GET", "/v1/stream")}
    for (method, path) in _operations(document):
        if method == "HEAD":  # the GET answer without its body
            continue
        responses = document["paths"][path][method.lower()]["responses"]
        assert responses["default"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                assert response["content"]["application/json"]["schema"]["$ref"].endswith("/Error"), (path, status)
    detect = document["paths"]["/v1/detect"]["post"]
    assert {"image/jpeg", "image/png", "image/webp", "application/octet-stream", "multipart/form-data"} <= \
        set(detect["requestBody"]["content"])
    assert [p["name"] for p in detect["parameters"]] == ["min_face_size", "thresholds"]
    stream = document["paths"]["/v1/stream"]["get"]
    assert stream["x-websocket"]["server"]["schema"] == {"$ref": "#/components/schemas/StreamMessage"}
    assert {"101", "426", "503"} <= set(stream["responses"])
    with pytest.raises(RuntimeError, match="/undocumented"):
        openapi_document(ServerConfig(), {**ROUTES, "/undocumented": ("GET",)})


@pytest.fixture(scope="module")
def server():
    live = Server(free_port(), "--workers", "2", "--queue-size", "8").start()
    try:
        yield live
    finally:
        live.stop()


def test_served_document_is_the_one_built_from_the_config(server):
    served = httpx.get(server.url + "/openapi.json", timeout=30)
    assert served.status_code == 200 and served.headers["content-type"] == "application/json"
    document = served.json()
    assert _operations(document) == _operations(openapi_document(ServerConfig(), ROUTES))
    assert "32 streams" in document["paths"]["/v1/stream"]["get"]["description"]  # the running server's limit


def test_schemathesis_fuzzing_finds_no_server_error_and_no_schema_violation(server, tmp_path):
    """Property-based requests generated from /openapi.json (positive and negative data) against the real
    server: every check but positive_data_acceptance (a schema-valid body of random bytes is no image, so 422
    is right) must pass for >= 1,000 requests, and every operation must have been exercised."""
    pytest.importorskip("schemathesis", reason="Schemathesis is in the fuzz extra: pip install '.[fuzz]'")
    yaml = pytest.importorskip("yaml", reason="needs PyYAML (a Schemathesis dependency)")
    command = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    cassette = tmp_path / "cassette.yaml"
    run = subprocess.run([command, "run", server.url + "/openapi.json", "--checks", "all",
                          "--exclude-checks", "positive_data_acceptance", "-n", str(FUZZ_EXAMPLES_PER_OPERATION),
                          "--seed", "22", "--workers", "1", "--request-timeout", "60", "--no-color",
                          "--report", "vcr", "--report-vcr-path", str(cassette)],
                         capture_output=True, encoding="utf-8", errors="replace", timeout=1800, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]
    interactions = yaml.safe_load(cassette.read_text())["http_interactions"]
    statuses = collections.Counter(int(i["response"]["status"]["code"]) if i.get("response") else None
                                   for i in interactions)
    assert None not in statuses, "requests without an answer (connection errors)"
    failed = [(i["request"]["method"], i["request"]["uri"], check["name"]) for i in interactions
              for check in i.get("checks") or [] if check["status"] != "SUCCESS"]
    assert len(interactions) >= FUZZ_REQUESTS, statuses
    assert not [code for code in statuses if code >= 500], statuses
    assert failed == []
    exercised = {(i["request"]["method"], "/" + i["request"]["uri"].split("?")[0].split("/", 3)[3])
                 for i in interactions}
    # Schemathesis leaves out GET of the schema it loaded from; test_served_document... covers that one
    assert _operations(openapi_document(ServerConfig(), ROUTES)) - {("GET", "/openapi.json")} <= exercised
