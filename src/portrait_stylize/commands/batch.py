"""``portrait-stylize batch PHOTOS STYLES -o OUTDIR``: every photo in every style."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli import add_setting_options
from ..errors import SettingsError
from ..extras import require_extra
from ..methods import SPECS

FAILED_EXIT = 4
"""Exit status when some jobs failed (each named in the summary)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = "%(prog)s photos [styles] -o OUTDIR [options]"  # not every option
    parser.description = (
        "Stylize every photo with every style (or each row of a CSV manifest), one job per "
        "pair, into OUTDIR as PHOTO--STYLE--METHOD.png with its record. Resumable: run it "
        "again and it does only what is not done. Exit status: 0 all done, 4 some failed, "
        "2 bad arguments."
    )
    parser.add_argument(
        "photos",
        help="folder, glob pattern, or CSV manifest "
        "(content,style[,method][,settings JSON]; then no STYLES)",
    )
    parser.add_argument("styles", nargs="?", help="folder or glob pattern of paintings")
    parser.add_argument("-o", "--outdir", required=True, help="folder for results and batch.sqlite")
    groups = add_setting_options(parser)
    run = groups["run"]
    run.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="where jobs run: worker processes on this machine (local, the default) or "
        "actors on a Ray cluster (ray; pip install 'portrait-stylize[ray]')",
    )
    run.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="the Ray cluster to join (host:port, or 'auto'); default: start one here",
    )
    run.add_argument(
        "--workers", type=int, default=1, help="worker processes or Ray actors (default: 1)"
    )
    run.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (and Ray CPUs) per worker (default: the cores shared between workers)",
    )
    run.add_argument(
        "--retries",
        type=int,
        default=1,
        metavar="K",
        help="retries of a job whose run crashed (default: 1); a bad input fails at once",
    )
    run.add_argument("--force", action="store_true", help="redo every job, done or not")
    run.add_argument(
        "--evaluate",
        action="store_true",
        help="add the evaluate metrics of each result to batch.csv",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="no progress display")


def run(args: argparse.Namespace) -> int:
    from ..batch.jobs import collect
    from ..batch.run import Options, run_batch

    if args.ray_address and args.executor != "ray":
        raise SettingsError("--ray-address needs --executor ray", "ray_address")
    if args.executor == "ray":
        require_extra("ray", "portrait-stylize batch --executor ray")
    if args.workers < 1 or args.retries < 0 or (args.threads is not None and args.threads < 1):
        raise SettingsError("--workers and --threads must be at least 1, --retries at least 0")
    overrides = {name: getattr(args, name) for name in SPECS if name != "method"}
    overrides = {name: value for name, value in overrides.items() if value is not None}
    jobs = collect(args.photos, args.styles, args.method, overrides)
    options = Options(
        Path(args.outdir),
        args.workers,
        args.threads,
        args.retries,
        args.force,
        args.evaluate,
        args.quiet,
        args.executor,
        args.ray_address,
    )
    all_done, text = run_batch(jobs, options)
    print(text, file=sys.stderr)
    return 0 if all_done else FAILED_EXIT
