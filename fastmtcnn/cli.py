"""Command line: `fastmtcnn detect IMAGE... [--min-face-size N] [--json] [--draw OUT]` and `fastmtcnn eval ...`.

Exit codes: 0 all images processed; 1 some image could not be read (one line on stderr for each); 2 usage.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from .detector import Detector, Faces
from .image_input import ImageError, load_image

_LANDMARK_COLORS = ((255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 0, 255), (0, 255, 255))  # BGR


def draw_faces(image: np.ndarray, faces: Faces) -> np.ndarray:
    """A BGR copy of `image` with each face's box, score and five landmarks drawn on it."""
    canvas = image.copy()
    thickness = max(1, round(max(image.shape[:2]) / 400))
    for face in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        cv2.rectangle(canvas, (x1, y1), (x2 - 1, y2 - 1), (0, 255, 0), thickness)
        cv2.putText(canvas, f"{face.score:.2f}", (x1, max(0, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4 * thickness, (0, 255, 0), thickness)
        for (x, y), color in zip(face.landmarks, _LANDMARK_COLORS):
            cv2.circle(canvas, (int(round(x)), int(round(y))), thickness + 1, color, -1)
    return canvas


def _draw_path(out: Path, image_path: str, several: bool) -> Path:
    if not several:
        return out
    out.mkdir(parents=True, exist_ok=True)
    return out / f"{Path(image_path).stem}_faces.jpg"


def _print_faces(image_path: str, faces: Faces, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"image": image_path, "faces": faces.to_list()}))
        return
    print(f"{image_path}: {len(faces)} face{'s' if len(faces) != 1 else ''}")
    for face in faces:
        box = ", ".join(f"{v:.1f}" for v in face.box)
        points = " ".join(f"({x:.1f}, {y:.1f})" for x, y in face.landmarks)
        print(f"  score {face.score:.4f}  box [{box}]  landmarks {points}")


def detect_command(args: argparse.Namespace) -> int:
    detector = Detector(min_face_size=args.min_face_size, num_threads=args.threads, weights=args.weights)
    failures = 0
    for image_path in args.images:
        try:
            image, _ = load_image(image_path)
        except ImageError as error:
            print(f"fastmtcnn: error: {error}", file=sys.stderr)
            failures += 1
            continue
        faces = detector.detect(image)
        _print_faces(image_path, faces, args.json)
        if args.draw is not None:
            target = _draw_path(args.draw, image_path, len(args.images) > 1)
            if not cv2.imwrite(str(target), draw_faces(image, faces)):
                print(f"fastmtcnn: error: cannot write {target} (use a .jpg or .png name in a writable folder)",
                      file=sys.stderr)
                failures += 1
    return 1 if failures else 0


def eval_command(args: argparse.Namespace) -> int:
    from . import evaluate

    return evaluate.main(args.rest) or 0


def versions() -> str:
    """fastmtcnn and the libraries that decide its results and speed (OpenCV's version changes it by 1.3x)."""
    import numba

    from . import __version__

    return (f"fastmtcnn {__version__} (opencv-python {cv2.__version__}, {cv2.getNumThreads()} OpenCV threads; "
            f"numpy {np.__version__}; numba {numba.__version__}; Python {sys.version.split()[0]})")


class _PrintVersions(argparse.Action):
    """`--version`: like argparse's, without re-wrapping the line."""

    def __init__(self, option_strings, dest, help=None):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(versions())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastmtcnn", description="Fast, faithful MTCNN face detection on CPU.")
    parser.add_argument("--version", action=_PrintVersions, help="print the versions of fastmtcnn, OpenCV, "
                        "NumPy and Numba and exit")
    commands = parser.add_subparsers(dest="command", required=True)
    detect = commands.add_parser("detect", help="detect faces and landmarks in images")
    detect.add_argument("images", nargs="+", help="image files (JPEG, PNG, WebP, BMP, TIFF)")
    detect.add_argument("--min-face-size", type=float, default=20, help="smallest face side in pixels (default 20)")
    detect.add_argument("--json", action="store_true", help="print one JSON line per image")
    detect.add_argument("--draw", type=Path, help="write the image with faces drawn (a folder if several images)")
    detect.add_argument("--threads", type=int, default=None, help="OpenCV threads (default: OpenCV's choice)")
    detect.add_argument("--weights", default=None, metavar="DIR", help="folder with det1/det2/det3 .prototxt + "
                        ".caffemodel, e.g. from `fastmtcnn train` (default: the shipped weights)")
    detect.set_defaults(run=detect_command)
    evaluation = commands.add_parser("eval", help="accuracy on an annotated JSONL set (fastmtcnn eval -h)",
                                     add_help=False)
    evaluation.add_argument("rest", nargs=argparse.REMAINDER)
    evaluation.set_defaults(run=eval_command)
    serve = commands.add_parser("serve", help="HTTP detection service (needs: pip install 'fastmtcnn[server]')")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    serve.add_argument("--workers", type=int, default=None, help="detection threads (default: CPU count)")
    serve.add_argument("--min-face-size", type=float, default=20, help="default smallest face side (default 20)")
    serve.add_argument("--max-body-bytes", type=int, default=10 * 1024 * 1024, help="larger bodies get 413")
    serve.add_argument("--max-pixels", type=int, default=None, help="larger images get 413 (default 50 M)")
    serve.add_argument("--queue-size", type=int, default=16, help="requests waiting beyond the workers; more get 503")
    serve.add_argument("--timeout", type=float, default=30.0, help="seconds per request; slower ones get 504")
    serve.add_argument("--threads", type=int, default=None, help="OpenCV/Numba threads (default: their choice)")
    serve.add_argument("--log-level", default="info", help="uvicorn log level (default info)")

    def serve_command(args: argparse.Namespace) -> int:
        from . import server

        server.main_from_args(args)
        return 0

    serve.set_defaults(run=serve_command)
    from .batch import add_batch_command
    from .training.cli import add_train_command

    add_batch_command(commands)
    add_train_command(commands)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError) as error:
        print(f"fastmtcnn: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly, like other Unix tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
