"""What every `fastmtcnn` subcommand shares: one way to register, the detector options, the exit codes.

A feature that has a subcommand exposes `add_<name>_command(commands)`, which calls `add_command` and
`add_detector_options` here; `fastmtcnn.cli` lists those registrars. Nothing here imports an optional extra.
Exit codes, the same for every command (the table with the messages: docs/cli.md):
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, Union

from .engines import BACKENDS, PRECISIONS
from .settings import MIN_FACE_SIZE_RANGE, CascadeSettings

#: Every input was processed (an image with no face, or a video that ends, is a success).
EXIT_OK = 0
#: Some input could not be used (missing, unreadable, truncated or corrupt file, a camera or stream that drops);
#: the others were processed and every result already written is complete.
EXIT_INPUT_FAILED = 1
#: The command line is wrong (unknown option, a value out of range, an output name OpenCV cannot write, a
#: missing optional extra): nothing was processed. argparse's own usage errors exit with 2 too.
EXIT_USAGE = 2
#: Ctrl-C (SIGINT): stopped cleanly, the results written so far are whole records (128 + SIGINT, as shells do).
EXIT_INTERRUPTED = 130

Subcommands = Any  # argparse's private _SubParsersAction: what `ArgumentParser.add_subparsers()` returns


class HelpWithDefaults(argparse.HelpFormatter):
    """Help that ends each option's line with its default, when it has a meaningful one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or action.default in (None, False, argparse.SUPPRESS) or "%(default)" in text:
            return text
        return f"{text} (default: %(default)s)"


def add_command(commands: Subcommands, name: str, summary: str, description: str = "") -> argparse.ArgumentParser:
    """A subcommand parser whose --help shows every option's default."""
    return commands.add_parser(name, help=summary, description=description or summary,
                               formatter_class=HelpWithDefaults)


def report_error(message: Any) -> None:
    """The one-line error every command prints on stderr: `fastmtcnn: error: MESSAGE`."""
    print(f"fastmtcnn: error: {message}", file=sys.stderr)


def number(text: str) -> Union[int, float]:
    """A command-line number as the API would get it: `2` -> 2 (so messages say `got 2`), `2.5` -> 2.5."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def add_detector_options(parser: argparse.ArgumentParser, threads: bool = True, weights: bool = True) -> None:
    """--min-face-size, --backend, --precision, --weights, and --threads unless the command manages threads
    itself (batch workers)."""
    low, high = MIN_FACE_SIZE_RANGE
    parser.add_argument("--min-face-size", type=number, default=20, metavar="PX",
                        help=f"smallest face side to find, in pixels, {low:g} to {high:g} (default: %(default)g)")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="engine of the networks: auto = OpenVINO when installed, else OpenCV DNN")
    parser.add_argument("--precision", choices=PRECISIONS, default="f32",
                        help="bf16: OpenVINO on a CPU with native BF16 only (else it runs f32), an approximation")
    if threads:
        parser.add_argument("--threads", type=int, default=None, metavar="N",
                            help="OpenCV/Numba threads, process-wide, >= 1 (default: the libraries' own choice)")
    if weights:
        parser.add_argument("--weights", default=None, metavar="DIR",
                            help="folder with det1/det2/det3 .prototxt + .caffemodel, e.g. from `fastmtcnn train` "
                                 "(default: the shipped weights)")


def engine_from_args(args: argparse.Namespace) -> Dict[str, str]:
    """The `Detector` keywords that choose the engine: {"backend": ..., "precision": ...}."""
    return {"backend": args.backend, "precision": args.precision}


def detector_from_args(args: argparse.Namespace):
    """The `fastmtcnn.Detector` the detector options ask for (SettingsError / ValueError on a bad value)."""
    from .detector import Detector

    return Detector(settings=settings_from_args(args), num_threads=args.threads, weights=args.weights,
                    **engine_from_args(args))


def settings_from_args(args: argparse.Namespace) -> CascadeSettings:
    """The cascade settings the detector options ask for (a SettingsError if out of range)."""
    return CascadeSettings(min_face_size=args.min_face_size)
