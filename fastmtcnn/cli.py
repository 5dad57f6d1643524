"""Command line: `fastmtcnn {detect,batch,video,serve,eval,train} ...` (`fastmtcnn COMMAND -h` for each).

This module registers the subcommands (each feature registers its own parser, see `fastmtcnn.commands`), holds
`detect`, and turns errors into the exit codes every command shares (`fastmtcnn.commands.EXIT_*`, docs/cli.md):
0 every input processed; 1 some input could not be used (one `fastmtcnn: error: ...` line on stderr each);
2 usage or settings error; 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import cv2

from .batch import add_batch_command, crop_names
from .commands import (EXIT_INPUT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Subcommands, add_command,
                       add_detector_options, detector_from_args, report_error)
from .detector import Faces
from .drawing import draw_faces
from .errors import DatasetError, ImageError
from .evaluation.cli import add_eval_command
from .image_codecs import decodable_formats
from .image_input import load_image
from .native_log import NativeLog
from .runtime import versions
from .server.command import add_serve_command
from .training.cli import add_train_command
from .video import VideoSourceError
from .video_cli import add_video_command

#: Errors about one input (a file, folder, camera or stream that cannot be used): exit code 1.
INPUT_ERRORS = (ImageError, VideoSourceError, DatasetError, OSError)


def draw_targets(out: Optional[Path], images: Sequence[str]) -> Dict[str, Path]:
    """Where `detect --draw OUT` writes each image: OUT itself for one image; for several, OUT is a folder and
    each image keeps its path relative to the inputs' common folder (a/x.jpg -> OUT/a/x_faces.jpg; x.jpg beside
    x.png -> x.jpg_faces.jpg), so no two inputs share a name. A ValueError (usage) for a name OpenCV cannot write."""
    if out is None:
        return {}
    if len(set(images)) == 1:
        if not cv2.haveImageWriter(str(out)):
            raise ValueError(f"--draw {out}: this OpenCV cannot write {out.suffix or 'a name without an extension'}"
                             ": use a .jpg or .png name")
        return {images[0]: out}
    if out.exists() and not out.is_dir():
        raise ValueError(f"--draw {out}: with several images --draw takes a folder, and {out} is a file")
    folders = [os.path.dirname(os.path.abspath(path)) for path in images]
    common = os.path.commonpath(folders)
    relative = {path: Path(os.path.relpath(os.path.abspath(path), common)).as_posix() for path in images}
    names = crop_names(sorted(set(relative.values())))
    return {path: out / f"{names[relative[path]]}_faces.jpg" for path in images}


def _print_faces(image_path: str, faces: Faces, as_json: bool, warning: Optional[str]) -> None:
    if warning:
        print(f"fastmtcnn: warning: {image_path}: {warning}", file=sys.stderr)
    if as_json:
        print(json.dumps({"image": image_path, "faces": faces.to_list(), **({"warning": warning} if warning else {})}))
        return
    print(f"{image_path}: {len(faces)} face{'s' if len(faces) != 1 else ''}")
    for face in faces:
        box = ", ".join(f"{v:.1f}" for v in face.box)
        points = " ".join(f"({x:.1f}, {y:.1f})" for x, y in face.landmarks)
        print(f"  score {face.score:.4f}  box [{box}]  landmarks {points}")


def _fail(image_path: str, message: str, as_json: bool) -> None:
    """One failed input: its line on stderr, and with --json its record on stdout."""
    report_error(message)
    if as_json:
        print(json.dumps({"image": image_path, "error": message}))


def detect_command(args: argparse.Namespace) -> int:
    targets = draw_targets(args.draw, args.images)  # a bad --draw name fails before any work
    detector = detector_from_args(args)
    failures: List[str] = []
    for image_path in args.images:
        try:
            with NativeLog() as log:  # the decoder's own complaints (libjpeg) become our warning line
                image = load_image(image_path, max_pixels=detector.max_image_pixels)
            faces = detector.detect(image)
        except ImageError as error:
            failures.append(image_path)
            _fail(image_path, str(error), args.json)
            continue
        _print_faces(image_path, faces, args.json, log.damage_warning())
        target = targets.get(image_path)
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(target), draw_faces(image.pixels, faces)):
                failures.append(image_path)
                _fail(image_path, f"cannot write {target}: check the folder is writable", args.json)
    return EXIT_INPUT_FAILED if failures else EXIT_OK


class _PrintVersions(argparse.Action):
    """`--version`: like argparse's, without re-wrapping the line."""

    def __init__(self, option_strings, dest, help=None):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(versions())
        print(f"image formats this OpenCV decodes: {', '.join(decodable_formats())}")
        parser.exit()


def add_detect_command(commands: Subcommands) -> argparse.ArgumentParser:
    """Register `fastmtcnn detect`."""
    detect = add_command(commands, "detect", "detect faces and landmarks in images",
                         "Print the faces (box, score, five landmarks) found in each image.")
    detect.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, WebP, BMP, TIFF, ...)")
    add_detector_options(detect)
    detect.add_argument("--json", action="store_true",
                        help='print one JSON line per image ({"image", "faces"}, or {"image", "error"})')
    detect.add_argument("--draw", type=Path, metavar="OUT",
                        help="write the image with faces drawn (.jpg, .png...); with several images a folder, "
                             "where each keeps its path relative to the images' common folder")
    detect.set_defaults(run=detect_command)
    return detect


#: The subcommands, in the order `fastmtcnn -h` lists them.
COMMANDS = (add_detect_command, add_batch_command, add_video_command, add_serve_command, add_eval_command,
            add_train_command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastmtcnn", description="Fast, faithful MTCNN face detection on CPU.")
    parser.add_argument("--version", action=_PrintVersions, help="print the versions of fastmtcnn, OpenCV, "
                        "NumPy and Numba, the CPU's speed-relevant flags, the engine and the image formats this "
                        "OpenCV decodes, and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(commands)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one command; returns its exit code (`fastmtcnn.commands.EXIT_*`)."""
    args = build_parser().parse_args(argv)  # usage errors: argparse prints them and exits with 2
    try:
        return args.run(args)
    except KeyboardInterrupt:
        report_error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly, like other Unix tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except INPUT_ERRORS as error:
        plain_os_error = isinstance(error, OSError) and error.strerror and error.filename
        report_error(f"{error.filename}: {error.strerror}" if plain_os_error else error)
        return EXIT_INPUT_FAILED
    except (ValueError, TypeError, ImportError) as error:  # ImportError: an optional extra is missing
        report_error(error)
        return EXIT_USAGE
