"""``portrait-stylize serve``: the web page and HTTP API, with worker processes."""

from __future__ import annotations

import argparse
from pathlib import Path

import platformdirs

from ..extras import require_extra

DEFAULT_DATA = platformdirs.user_data_path("portrait-stylize") / "serve"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..web.settings import Limits
    from ..web.store import STATUSES

    limits = Limits()
    parser.description = (
        "Serve the page (at /) and the HTTP API (/api/jobs, docs at /docs). Jobs ("
        + ", ".join(STATUSES)
        + ") live in a SQLite database under --data and survive restarts and crashes; "
        "see docs/web.md."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        metavar="DIR",
        help=f"jobs and files (default: {DEFAULT_DATA})",
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes (default: one per GPU with cuda, else 1)",
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="default: cpu")
    parser.add_argument(
        "--token",
        metavar="T",
        help="every request must carry it (needed unless --host is loopback; default: "
        "$PORTRAIT_STYLIZE_TOKEN)",
    )
    parser.add_argument(
        "--lease",
        type=float,
        default=120.0,
        metavar="S",
        help="seconds without progress after which a worker counts as dead (default: 120)",
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        metavar="N",
        default=3,
        help="claims of a job whose worker died before it fails (default: 3)",
    )
    parser.add_argument(
        "--max-size",
        type=int,
        metavar="N",
        default=limits.max_size,
        help=f"largest result size a job may ask for (default: {limits.max_size})",
    )
    parser.add_argument(
        "--max-iterations",
        type=int,
        metavar="N",
        default=limits.max_iterations,
        help=f"most iterations per scale a job may ask for (default: {limits.max_iterations})",
    )
    parser.add_argument(
        "--max-upload-bytes",
        type=int,
        metavar="N",
        default=limits.max_bytes,
        help=f"largest uploaded image file (default: {limits.max_bytes})",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        metavar="N",
        default=limits.max_pixels,
        help=f"largest uploaded image in pixels (default: {limits.max_pixels})",
    )


def run(args: argparse.Namespace) -> int:
    require_extra("web", "portrait-stylize serve")
    from ..web.server import ServeOptions, serve
    from ..web.settings import Limits

    limits = Limits(
        max_size=args.max_size,
        max_iterations=args.max_iterations,
        max_bytes=args.max_upload_bytes,
        max_pixels=args.max_pixels,
    )
    options = ServeOptions(
        data=args.data,
        host=args.host,
        port=args.port,
        workers=args.workers,
        device=args.device,
        token=args.token,
        lease_s=args.lease,
        max_attempts=args.max_attempts,
        limits=limits,
    )
    return serve(options)
