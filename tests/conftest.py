"""Shared test helpers: the optional ../shared data folder and the shipped fixtures."""
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# The benchmark tools (bench/, not part of the package) are imported by their tests. Appended, not prepended:
# `fastmtcnn` must still come from the installed package (whose fastmtcnn/weights this source tree lacks).
if str(REPO_ROOT) not in sys.path:
    sys.path.append(str(REPO_ROOT))
SHARED = REPO_ROOT.parent / "shared"
FIXTURES = REPO_ROOT / "tests" / "fixtures"
#: The shipped photos the tests detect on: one face (512x512), and six faces of several sizes (640x480).
ASTRONAUT = REPO_ROOT / "examples" / "astronaut.jpg"
GROUP = FIXTURES / "group_640x480.jpg"


def encode_image(image, ext: str, params=()) -> bytes:
    """The bytes of `image` (uint8 (H, W) or (H, W, C) BGR) encoded by OpenCV as `ext` ('.png', '.jpg', ...) with
    imwrite `params` (flag, value, ...)."""
    import cv2

    ok, data = cv2.imencode(ext, image, list(params))
    assert ok, f"OpenCV could not encode {ext}"
    return data.tobytes()


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with a message saying what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared not found ({path} is absent): this test needs the project's shared data folder "
                    "beside the repository")
    return path


def openvino_installed() -> bool:
    from fastmtcnn import engines

    return engines.openvino_available()


#: Parametrize a test over both engines; the OpenVINO case skips with the install line when it is absent.
BACKENDS = ["opencv", pytest.param("openvino", marks=pytest.mark.skipif(
    not openvino_installed(), reason='OpenVINO not installed: pip install "fastmtcnn[openvino]" to test that engine'))]


def require_codec(extension: str) -> None:
    """Skip the test, saying why, when the running OpenCV cannot both write and read `extension` (e.g. '.gif':
    OpenCV has no GIF codec before 4.11). The list is probed, never hard-coded."""
    import cv2
    import numpy as np

    from fastmtcnn.image_codecs import missing_codec, quiet_opencv
    from fastmtcnn.image_header import read_image_size

    ok = False
    with quiet_opencv():
        for shape in ((2, 2), (2, 2, 3)):  # PBM/PGM take gray only, PPM and GIF colour only
            try:
                ok, data = cv2.imencode(extension, np.zeros(shape, np.uint8))
            except cv2.error:
                continue
            if ok:
                break
    if not ok:
        pytest.skip(f"this OpenCV ({cv2.__version__}) cannot write {extension} files")
    missing = missing_codec(read_image_size(data.tobytes()).format)
    if missing:
        pytest.skip(missing)
