"""`fastmtcnn serve`: its parser (registered by `fastmtcnn.cli`) and the command, which needs the server extra."""
from __future__ import annotations

import argparse
import dataclasses
from typing import Callable

from ..commands import Subcommands, add_command, add_detector_options
from .config import ServerConfig, default_memory_budget_mb

#: ServerConfig's field names: the `serve` options that set them share their names.
CONFIG_FIELDS = tuple(field.name for field in dataclasses.fields(ServerConfig))


def add_serve_command(commands: Subcommands) -> argparse.ArgumentParser:
    """Register `fastmtcnn serve`; Starlette and Uvicorn are imported only when it runs."""
    defaults = ServerConfig()
    serve = add_command(commands, "serve", "HTTP detection service (needs: pip install 'fastmtcnn[server]')")
    serve.add_argument("--host", default=defaults.host, help="address to listen on")
    option = _field_option(serve, defaults)
    option("port", "port")
    option("workers", "detection threads (one per CPU)")
    add_detector_options(serve)
    option("max_body_bytes", "larger bodies get 413")
    option("max_pixels", "images with more pixels (read from the header, before decoding) get 413")
    serve.add_argument("--memory-budget-mb", type=int, default=None,
                       help="per worker: decoded image + P-Net's first pyramid level; larger requests get 413 "
                            f"(default: min(512, RAM / 4 / workers) MiB, here {default_memory_budget_mb()})")
    option("queue_size", "requests waiting beyond the workers; more get 503")
    option("timeout", "seconds per request (upload + queue + detection); later ones get 504 and stop")
    option("max_connections", "open connections; requests on more get a JSON 503")
    option("header_timeout", "seconds for a request's headers to arrive; slower connections are closed")
    option("keep_alive_timeout", "seconds an idle keep-alive connection stays open")
    option("max_streams", "open /v1/stream WebSockets, >= 1; more are refused with a JSON 503")
    option("stream_max_fps", "frames per second per stream, > 0 (1 s burst); faster frames are dropped (rate_limit)")
    option("stream_max_frame_bytes", "bytes per stream frame, >= 1; larger frames get an error answer")
    option("stream_max_pixels",
           "pixels per stream frame, >= 1 (read from the header); larger frames get an error answer")
    serve.add_argument("--log-level", default="info", help="uvicorn log level")
    serve.set_defaults(run=serve_command)
    return serve


def _field_option(parser: argparse.ArgumentParser, defaults: ServerConfig) -> Callable[[str, str], None]:
    """`add(field, help text)`: adds `--field-name` to `parser`, typed and defaulting like that ServerConfig field."""
    def add(name: str, text: str) -> None:
        default = getattr(defaults, name)
        parser.add_argument("--" + name.replace("_", "-"), type=type(default), default=default, help=text)
    return add


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """The ServerConfig the command line asks for (checked: SettingsError on a bad value).

    Every ServerConfig field with an option of the same name (`--max-pixels` -> max_pixels) takes its value;
    `--memory-budget-mb` left out means the default for the number of workers."""
    options = {name: getattr(args, name) for name in CONFIG_FIELDS if name in vars(args)}
    if options.get("memory_budget_mb") is None:
        options["memory_budget_mb"] = default_memory_budget_mb(options.get("workers", ServerConfig().workers))
    return ServerConfig(**options).check()


def main_from_args(args: argparse.Namespace) -> None:
    """Run `fastmtcnn serve ...` until interrupted."""
    config = config_from_args(args)
    from .app import serve

    serve(config, log_level=args.log_level)


def serve_command(args: argparse.Namespace) -> int:
    main_from_args(args)
    return 0
