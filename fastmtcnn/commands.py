"""What every `fastmtcnn` subcommand shares: one way to register, and the detector options.

A feature that has a subcommand exposes `add_<name>_command(commands)`, which calls `add_command` and
`add_detector_options` here; `fastmtcnn.cli` lists those registrars. Nothing here imports an optional extra.
"""
from __future__ import annotations

import argparse
from typing import Any, Dict

from .engines import BACKENDS, PRECISIONS
from .settings import CascadeSettings

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


def add_detector_options(parser: argparse.ArgumentParser, threads: bool = True) -> None:
    """--min-face-size, --backend, --precision, and --threads unless the command manages threads itself
    (batch workers)."""
    parser.add_argument("--min-face-size", type=float, default=20.0, metavar="PX",
                        help="smallest face side to find, in pixels (default: %(default)g)")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="engine of the networks: auto = OpenVINO when installed, else OpenCV DNN")
    parser.add_argument("--precision", choices=PRECISIONS, default="f32",
                        help="bf16: OpenVINO on a CPU with native BF16 only (else it runs f32), an approximation")
    if threads:
        parser.add_argument("--threads", type=int, default=None,
                            help="OpenCV/Numba threads, process-wide (default: the libraries' own choice)")


def engine_from_args(args: argparse.Namespace) -> Dict[str, str]:
    """The `Detector` keywords that choose the engine: {"backend": ..., "precision": ...}."""
    return {"backend": args.backend, "precision": args.precision}


def settings_from_args(args: argparse.Namespace) -> CascadeSettings:
    """The cascade settings the detector options ask for (a SettingsError if out of range)."""
    return CascadeSettings(min_face_size=args.min_face_size)
