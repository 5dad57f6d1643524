"""The web page at `/` in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`) driven by
Selenium, against a real `fastmtcnn serve` on 127.0.0.1.

- upload the shipped example image through the page: the faces it draws are /v1/detect's (boxes within 1 px);
- the webcam mode, on Chromium's fake camera fed a clip this test writes (the example image moving): tracked
  faces with stable ids come back over the /v1/stream WebSocket for >= 95 % of the frames.

Screenshots go to a temporary folder, and to docs/img/ (the README's pictures) with FASTMTCNN_SCREENSHOTS=docs/img.
The tests skip, saying what to install, where there is no browser, driver or Selenium (they fail instead with
FASTMTCNN_REQUIRE_BROWSER=1, as in CI).
"""
import base64
import importlib.util
import json
import os
import re
import shutil
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ASTRONAUT, GROUP, REPO_ROOT

httpx = pytest.importorskip("httpx", reason="the browser tests need httpx (in the test extra)")
pytest.importorskip("starlette", reason="the browser tests need the server extra: pip install '.[server]'")

from bench.load.http_load import Server, free_port  # noqa: E402  (the load tools' server runner)

CHROMIUM = next(filter(None, map(shutil.which, ["chromium", "chromium-browser"])), None)
CHROMEDRIVER = shutil.which("chromedriver")
INSTALL = "apt-get install chromium chromium-driver && pip install '.[browser]'"
CLIP_SIZE = (640, 480)      # width, height of the fake camera's clip
CLIP_FRAMES = 60            # one pass right and back (4 px a frame), so the looping clip has no jump
CLIP_FPS = 5                # 20 px/s: a head moving, slow enough for a busy machine sending 2 frames/s
FACE_SIDE = 300             # the example image's side in the clip (its face is then ~52 px wide)
ASTRONAUT_FACE_TOP_LEFT = (178.8, 58.8)  # x1, y1 of the face box in examples/astronaut.jpg (512x512)


def _screenshot_dirs(tmp_path: Path):
    extra = os.environ.get("FASTMTCNN_SCREENSHOTS")
    return [tmp_path] + ([REPO_ROOT / extra] if extra else [])


def _save_screenshot(driver, tmp_path: Path, name: str) -> None:
    for folder in _screenshot_dirs(tmp_path):
        folder.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(folder / name)), f"screenshot {name} not written"


def _browser(*arguments: str):
    """Headless Chromium through the system chromedriver (no driver or browser download); skips without one."""
    missing = [name for name, found in [("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER),
                                        ("selenium", importlib.util.find_spec("selenium"))] if not found]
    if missing:
        message = f"no browser: the browser tests need {', '.join(missing)} ({INSTALL})"
        if os.environ.get("FASTMTCNN_REQUIRE_BROWSER"):  # CI installs them: a skip there would hide the tests
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,1000", "--force-device-scale-factor=1", *arguments):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_script_timeout(30)
    return driver


def _wait_for(driver, script: str, timeout: float = 30.0):
    """Poll a JavaScript expression until it is truthy; return its value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = driver.execute_script(f"return {script};")
        if value:
            return value
        time.sleep(0.1)
    status = driver.execute_script("return document.getElementById('status').textContent;")
    raise AssertionError(f"timed out waiting for {script!r}; page status: {status!r}")


@pytest.fixture(scope="module")
def server():
    server = Server(free_port(), "--workers", "2").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def browser():
    driver = _browser()
    try:
        yield driver
    finally:
        driver.quit()


# ---------------------------------------------------------------------------------------------- no browser needed
def test_page_and_its_files_are_served_from_the_package(server):
    with httpx.Client(base_url=server.url, timeout=10) as http:
        page = http.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        for path, media in [("/static/page.js", "text/javascript"), ("/static/page.css", "text/css")]:
            assert f'"{path}"' in page.text, f"the page does not load {path}"
            answer = http.get(path)
            assert answer.status_code == 200 and answer.headers["content-type"].startswith(media)
            assert http.head(path).status_code == 200
        links = re.findall(r'(?:src|href)="([^"]*)"', page.text)
        assert links and all(link.startswith(("/", "data:")) and not link.startswith("//") for link in links), \
            f"the page must load everything from this server (it works offline): {links}"
        missing = http.get("/static/other.js")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        assert http.post("/").status_code == 405


# ---------------------------------------------------------------------------------------------- image upload
def _detect(server, data: bytes, **query) -> dict:
    with httpx.Client(timeout=30) as http:
        answer = http.post(f"{server.url}/v1/detect", content=data, params=query,
                           headers={"content-type": "image/jpeg"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _assert_drawn_like(drawn: dict, expected: dict) -> None:
    assert (drawn["width"], drawn["height"]) == (expected["image"]["width"], expected["image"]["height"])
    assert len(drawn["faces"]) == len(expected["faces"])
    for face, reference in zip(drawn["faces"], expected["faces"]):
        np.testing.assert_allclose(face["box"], reference["box"], atol=1.0)
        np.testing.assert_allclose(face["landmarks"], reference["landmarks"], atol=1.0)
        assert abs(face["score"] - reference["score"]) < 1e-3


def _pixel(driver, x: float, y: float):
    return driver.execute_script(
        "const c = document.getElementById('picture');"
        "return Array.from(c.getContext('2d').getImageData(arguments[0], arguments[1], 1, 1).data);",
        int(round(x)), int(round(y)))


def test_uploaded_image_draws_the_faces_of_v1_detect(server, browser, tmp_path):
    expected = _detect(server, ASTRONAUT.read_bytes(), min_face_size="20", thresholds="0.6,0.7,0.7")
    assert len(expected["faces"]) == 1
    browser.get(server.url + "/")
    _wait_for(browser, "document.getElementById('engine').textContent.includes(',')")
    health = httpx.get(server.url + "/healthz").json()
    engine = health["engine"]
    assert browser.find_element("id", "engine").text == f"{engine['backend']}, {engine['precision']}"
    assert browser.find_element("id", "formats").text == ", ".join(health["formats"])  # this OpenCV's, not a list

    browser.find_element("id", "file").send_keys(str(ASTRONAUT))
    drawn = _wait_for(browser, "window.fastmtcnn.drawn")
    assert drawn["source"] == "image"
    _assert_drawn_like(drawn, expected)
    # the box is on the canvas itself, in the page's colour for the first face (#00e676), over the photo
    x1, y1, x2, y2 = expected["faces"][0]["box"]
    for x, y in [(x1, (y1 + y2) / 2), (x2, (y1 + y2) / 2), ((x1 + x2) / 2, y2)]:  # the label covers the top
        red, green, blue, _ = _pixel(browser, x, y)
        assert green > 200 and red < 60 and 80 < blue < 160, f"no box edge drawn at ({x:.0f}, {y:.0f})"
    shown = json.loads(browser.find_element("id", "json").text)
    assert {**shown, "timing_ms": None} == {**expected, "timing_ms": None} and "total" in shown["timing_ms"]
    label = browser.find_element("id", "picture").get_attribute("aria-label")
    assert "1 face found" in label and "512 by 512" in label
    assert browser.find_element("id", "round-trip").text.endswith(" ms")
    _save_screenshot(browser, tmp_path, "page_image.png")

    # the settings are controls: another minimum face size re-detects and draws /v1/detect's answer for it
    size = browser.find_element("id", "min-face-size")
    for min_face_size, faces in [("150", 1), ("300", 0)]:
        reference = _detect(server, ASTRONAUT.read_bytes(), min_face_size=min_face_size, thresholds="0.6,0.7,0.7")
        assert len(reference["faces"]) == faces
        size.clear()
        size.send_keys(min_face_size)
        browser.execute_script("window.fastmtcnn.drawn = null;")
        browser.find_element("id", "detect").click()
        _assert_drawn_like(_wait_for(browser, "window.fastmtcnn.drawn"), reference)
        if faces:  # not the min face 20 answer again: its box is elsewhere
            assert np.abs(np.subtract(reference["faces"][0]["box"], expected["faces"][0]["box"])).max() > 2
    assert "0 faces found" in browser.find_element("id", "picture").get_attribute("aria-label")


def test_dropped_png_draws_the_faces_of_v1_detect(server, browser):
    png = cv2.imencode(".png", cv2.imread(str(GROUP)))[1].tobytes()
    with httpx.Client(timeout=30) as http:
        expected = http.post(f"{server.url}/v1/detect", content=png, headers={"content-type": "image/png"}).json()
    assert len(expected["faces"]) >= 3
    browser.get(server.url + "/")
    browser.execute_script(
        "const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));"
        "const files = new DataTransfer();"
        "files.items.add(new File([bytes], 'group.png', {type: 'image/png'}));"
        "document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: files}));",
        base64.b64encode(png).decode())
    _assert_drawn_like(_wait_for(browser, "window.fastmtcnn.drawn"), expected)
    assert f"{len(expected['faces'])} faces found" in browser.find_element("id", "status").text


def test_a_file_that_is_no_image_shows_the_servers_error(server, browser, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    browser.get(server.url + "/")
    browser.find_element("id", "file").send_keys(str(text))
    status = _wait_for(browser, "document.getElementById('status').textContent.startsWith('Error') && "
                                "document.getElementById('status').textContent")
    assert status.startswith("Error 415 unsupported_media_type: Content-Type 'text/plain' is not supported"), status
    assert json.loads(browser.find_element("id", "json").text)["error"]["code"] == "unsupported_media_type"
    assert browser.execute_script("return window.fastmtcnn.drawn;") is None


def test_every_control_has_a_label_and_is_reachable_by_keyboard(server, browser):
    browser.get(server.url + "/")
    unlabelled = browser.execute_script(
        "return Array.from(document.querySelectorAll('input, select, textarea'))"
        ".filter((e) => e.labels.length === 0).map((e) => e.id);")
    assert unlabelled == []
    assert browser.find_element("id", "picture").get_attribute("aria-label")
    # Tab walks through the controls in reading order
    focusable = browser.execute_script(
        "return Array.from(document.querySelectorAll('input, button:not([disabled]), summary, [tabindex]'))"
        ".map((e) => e.id || e.tagName.toLowerCase());")
    body = browser.find_element("tag name", "body")
    reached = []
    for _ in range(len(focusable) + 3):
        body.send_keys("\ue004")  # Tab
        active = browser.execute_script(
            "const e = document.activeElement; return e.id || e.tagName.toLowerCase();")
        reached.append(active)
    for control in ["file", "webcam", "fps", "min-face-size", "t-pnet", "t-rnet", "t-onet", "json"]:
        assert control in reached, f"{control} is not reachable with Tab (reached {reached})"


# ---------------------------------------------------------------------------------------------- webcam (fake camera)
def _metric(server, name: str) -> float:
    text = httpx.get(server.url + "/metrics", timeout=10).text
    return float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))


def _clip_positions():
    """Top-left corner of the example image in each clip frame: right then back, on one horizontal line."""
    width, height = CLIP_SIZE
    half = CLIP_FRAMES // 2
    span = 4 * half
    xs = [20 + round(span * step / half) for step in range(half)]
    xs += [20 + round(span * (half - step) / half) for step in range(half)]
    return [(x, (height - FACE_SIDE) // 2) for x in xs]


def write_y4m_clip(path: Path) -> Path:
    """A YUV4MPEG2 (4:2:0) clip for Chromium's fake camera: the example image moving over a grey background."""
    width, height = CLIP_SIZE
    face = cv2.resize(cv2.imread(str(ASTRONAUT)), (FACE_SIDE, FACE_SIDE), interpolation=cv2.INTER_AREA)
    with open(path, "wb") as clip:
        clip.write(f"YUV4MPEG2 W{width} H{height} F{CLIP_FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for x, y in _clip_positions():
            frame = np.full((height, width, 3), 110, np.uint8)
            frame[y:y + FACE_SIDE, x:x + FACE_SIDE] = face
            clip.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


def test_webcam_mode_streams_tracked_faces_with_stable_ids(server, tmp_path):
    clip = write_y4m_clip(tmp_path / "moving_face.y4m")
    driver = _browser("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                      f"--use-file-for-fake-video-capture={clip}")
    try:
        driver.get(server.url + "/")
        driver.find_element("id", "webcam").click()
        _wait_for(driver, "window.fastmtcnn.stream.answers.length >= 60", timeout=90)
        stream = driver.execute_script("return window.fastmtcnn.stream;")
        drawn = driver.execute_script("return window.fastmtcnn.drawn;")
        _save_screenshot(driver, tmp_path, "page_webcam.png")
        assert _metric(server, "fastmtcnn_streams_open") == 1
        opened = _metric(server, "fastmtcnn_streams_total")

        # a new setting reconnects with it (a stream's settings are fixed): no face is 300 px wide
        size = driver.find_element("id", "min-face-size")
        size.clear()
        size.send_keys("300\ue004")  # Tab: the change event
        _wait_for(driver, "window.fastmtcnn.stream.answers.slice(-5).every((a) => a.faces.length === 0)")
        assert _metric(server, "fastmtcnn_streams_total") == opened + 1
        assert _metric(server, "fastmtcnn_streams_open") == 1

        driver.find_element("id", "webcam").click()  # stop: the page closes its stream, the server lets it go
        assert driver.find_element("id", "webcam").get_attribute("aria-pressed") == "false"
        end = time.monotonic() + 10
        while _metric(server, "fastmtcnn_streams_open") and time.monotonic() < end:
            time.sleep(0.1)
        assert _metric(server, "fastmtcnn_streams_open") == 0
    finally:
        driver.quit()

    answers = stream["answers"]
    assert [answer["frame"] for answer in answers] == list(range(len(answers))), "one answer per frame, in order"
    # the moving face: a box whose top is on the line the face moves along and whose left side is on its path
    scale = FACE_SIDE / 512
    xs = [x + ASTRONAUT_FACE_TOP_LEFT[0] * scale for x, _ in _clip_positions()]
    face_top = _clip_positions()[0][1] + ASTRONAUT_FACE_TOP_LEFT[1] * scale

    def the_face(face):
        x1, y1 = face["box"][:2]
        return isinstance(face["id"], int) and abs(y1 - face_top) < 10 and min(xs) - 10 < x1 < max(xs) + 10

    ids = [[face["id"] for face in answer.get("faces", []) if the_face(face)] for answer in answers]
    tracked = sum(1 for found in ids if found)
    doubled = sum(1 for found in ids if len(found) > 1)  # two tracks on the face (an old one kept after a jump)
    others = sum(1 for answer in answers for face in answer.get("faces", []) if not the_face(face))
    print("id@x1 per frame:", " ".join(",".join(f"{face['id']}@{face['box'][0]:.0f}" for face in answer["faces"]) or "-"
                                       for answer in answers))
    print(f"webcam: {len(answers)} frames sent, {tracked} answered with the face tracked "
          f"({tracked / len(answers):.1%}), {doubled} with a second track on it, {others} other boxes; "
          f"types {Counter(a['type'] for a in answers)}")
    assert tracked >= 0.95 * len(answers)
    frames_per_id = Counter(face_id for found in ids for face_id in set(found))
    assert frames_per_id.most_common(1)[0][1] >= 0.9 * tracked, f"the face's id changed: {ids}"
    assert drawn["source"] == "webcam" and (drawn["width"], drawn["height"]) == CLIP_SIZE
