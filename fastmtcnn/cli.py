"""Command line: `fastmtcnn {detect,batch,serve,eval} ...` (`fastmtcnn COMMAND -h` for each).

This module registers the subcommands (each feature registers its own parser, see `fastmtcnn.commands`) and
holds `detect`. Exit codes: 0 all images processed; 1 some image could not be read (one line on stderr for
each); 2 usage or settings errors.
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

from .batch import add_batch_command
from .commands import Subcommands, add_command, add_detector_options, engine_from_args, settings_from_args
from .detector import Detector, Faces
from .errors import ImageError
from .evaluation.cli import add_eval_command
from .image_input import load_image
from .runtime import versions
from .server.command import add_serve_command
from .video_cli import add_video_command
from .training.cli import add_train_command

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
    detector = Detector(settings=settings_from_args(args), num_threads=args.threads, weights=args.weights,
                        **engine_from_args(args))
    failures = 0
    for image_path in args.images:
        try:
            image = load_image(image_path, max_pixels=detector.max_image_pixels)
            faces = detector.detect(image)
        except ImageError as error:
            print(f"fastmtcnn: error: {error}", file=sys.stderr)
            failures += 1
            continue
        _print_faces(image_path, faces, args.json)
        if args.draw is not None:
            target = _draw_path(args.draw, image_path, len(args.images) > 1)
            if not cv2.imwrite(str(target), draw_faces(image.pixels, faces)):
                print(f"fastmtcnn: error: cannot write {target} (use a .jpg or .png name in a writable folder)",
                      file=sys.stderr)
                failures += 1
    return 1 if failures else 0


class _PrintVersions(argparse.Action):
    """`--version`: like argparse's, without re-wrapping the line."""

    def __init__(self, option_strings, dest, help=None):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(versions())
        parser.exit()


def add_detect_command(commands: Subcommands) -> argparse.ArgumentParser:
    """Register `fastmtcnn detect`."""
    detect = add_command(commands, "detect", "detect faces and landmarks in images",
                         "Print the faces (box, score, five landmarks) found in each image.")
    detect.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, WebP, BMP, TIFF, ...)")
    add_detector_options(detect)
    detect.add_argument("--json", action="store_true", help="print one JSON line per image")
    detect.add_argument("--draw", type=Path, help="write the image with faces drawn (a folder if several images)")
    detect.add_argument("--weights", default=None, metavar="DIR", help="folder with det1/det2/det3 .prototxt + "
                        ".caffemodel, e.g. from `fastmtcnn train` (default: the shipped weights)")
    detect.set_defaults(run=detect_command)
    return detect


#: The subcommands, in the order `fastmtcnn -h` lists them.
COMMANDS = (add_detect_command, add_batch_command, add_video_command, add_serve_command, add_eval_command,
            add_train_command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastmtcnn", description="Fast, faithful MTCNN face detection on CPU.")
    parser.add_argument("--version", action=_PrintVersions, help="print the versions of fastmtcnn, OpenCV, "
                        "NumPy and Numba and the CPU's speed-relevant flags, and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(commands)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError, ImportError) as error:  # ImportError: an optional extra is missing
        print(f"fastmtcnn: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly, like other Unix tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
