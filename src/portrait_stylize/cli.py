"""Command line: ``portrait-stylize CONTENT STYLE [STYLE ...] -o OUT`` and subcommands.

Thin: parse, call the API, print. Subcommands (``weights``, ...) live in
:mod:`portrait_stylize.commands`; each module there has ``add_parser`` and ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from . import __version__
from .callbacks import EarlyStop, ProgressBar, StopFlag
from .checkpoint import checkpoint_path
from .engine import Callback, CancelToken, StopReason
from .errors import OUTCOMES, Cancelled, PortraitStylizeError, outcome, printable
from .images import check_output_path, load_image
from .masks import parse_background
from .methods import (
    GROUPS,
    KINDS,
    METHODS,
    SPECS,
    Settings,
    Spec,
    blend_weights,
    method_defaults,
    resolve_settings,
    scale_schedule,
)

SUBCOMMANDS = {
    "weights": "portrait_stylize.commands.weights",
    "inspect": "portrait_stylize.commands.inspect",
    "evaluate": "portrait_stylize.commands.evaluate",
    "serve": "portrait_stylize.commands.serve",
    "batch": "portrait_stylize.commands.batch",
    "methods": "portrait_stylize.commands.methods",
}
DEBUG_HELP = "on an error, print its traceback too (default: off; any position, subcommands too)"
RUN_GROUP = ("run", "checkpoints, resuming and progress")
"""The CLI's own group of options (the settings' groups: :data:`~.methods.GROUPS`)."""
RUN_OPTIONS = {"max_pixels": 1, "early_stop": 0, "checkpoint_every": 0}
"""The least value of each of the CLI's options that is no setting."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose error is one line (the usage is in --help), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see --help)\n")


def one_line(message: str) -> str:
    """``message`` as one line any stream can print: control characters (of a file name,
    say) escaped, and so are the bytes of a name that are no UTF-8 (\\udcNN)."""
    return printable(message.encode("utf-8", "backslashreplace").decode())


def _defaults_text(name: str, defaults: dict[str, Settings]) -> str:
    """'default: 200.0; gatys-plus: 4000.0' for a setting: the base default, then each
    method whose default differs."""
    base = getattr(Settings(), name)
    shown = ",".join(map(str, base)) if isinstance(base, tuple) else base
    differing = [
        f"{method}: {getattr(values, name)}"
        for method, values in defaults.items()
        if getattr(values, name) != base
    ]
    return f"default: {shown}" + (f"; {'; '.join(differing)}" if differing else "")


def _add_setting(group: Any, name: str, help_text: str) -> None:
    """The option ``--name`` of a setting, its type and choices from the settings schema;
    it defaults to None, which leaves the method's default."""
    flag = "--" + name.replace("_", "-")
    kind, spec = KINDS[name], SPECS[name]
    if kind.base is bool:
        group.add_argument(flag, action="store_true", default=None, help=help_text)
        return
    metavar = "{" + ",".join(spec.choices) + "}" if spec.choices else name.upper().split("_")[-1]
    group.add_argument(
        flag,
        type=kind.base,
        nargs="+" if kind.many else None,
        default=None,
        metavar=metavar,
        help=help_text,
    )


def add_setting_options(parser: argparse.ArgumentParser) -> dict[str, Any]:
    """Add ``--method`` and one option per setting to ``parser``, grouped by concern
    (:data:`~portrait_stylize.methods.GROUPS`, then the run's own group); returns the
    argument groups by name."""
    groups = {
        name: parser.add_argument_group(f"{name} options", description)
        for name, description in [*GROUPS.items(), RUN_GROUP]
    }
    method = Settings().method
    groups["method"].add_argument(
        "--method",
        default=method,
        choices=list(METHODS),
        help=f"{SPECS['method'].help} (default: {method})",
    )
    defaults = method_defaults()
    for name, spec in SPECS.items():
        if name != "method":
            help_text = f"{spec.help} ({_defaults_text(name, defaults)})"
            _add_setting(groups[spec.group], name, help_text)
    return groups


def build_parser() -> argparse.ArgumentParser:
    """The main command's parser: inputs, one option per setting grouped by concern
    (:data:`~portrait_stylize.methods.GROUPS`), then the run's own options."""
    parser = Parser(
        prog="portrait-stylize",
        description=(
            "Paint a photograph of people in the style of an artwork, keeping faces "
            "recognisable. Subcommands: " + ", ".join(SUBCOMMANDS) + " (see "
            "`portrait-stylize SUBCOMMAND --help`)."
        ),
        epilog="Methods: " + "; ".join(f"{m.name}: {m.description}" for m in METHODS.values()),
    )
    parser.add_argument("content", help="photograph to stylize (JPEG, PNG, WebP, TIFF)")
    parser.add_argument("style", nargs="+", help="one or more style images (paintings)")
    parser.add_argument(
        "-o", "--output", required=True, help="result path (.png, .jpg, .webp, .tif for 16-bit)"
    )
    groups = add_setting_options(parser)
    groups["output"].add_argument(
        "--keep-alpha",
        action="store_true",
        help="re-apply the content's transparency to the result (default: composite on white)",
    )
    groups["advanced"].add_argument(
        "--max-pixels",
        type=int,
        default=64_000_000,
        help="refuse input images larger than this many pixels (default: 64000000)",
    )
    groups["schedule"].add_argument(
        "--early-stop",
        type=float,
        default=0.0,
        metavar="TOL",
        help="stop when the loss improves by under TOL (relative) in 50 steps (default: 0, off)",
    )
    run = groups[RUN_GROUP[0]]
    run.add_argument(
        "--checkpoint-every",
        type=int,
        default=0,
        metavar="N",
        help="also checkpoint every N steps, not only between scales (default: 0, off)",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue a killed or interrupted run from OUTPUT.ckpt.pt, with the same inputs "
        "and options (default: off, start afresh)",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def guarded(run: Callable[[], int], debug: bool = False) -> int:
    """``run()``'s exit code, or that of what it raised (the table in
    :mod:`~portrait_stylize.errors`) after one line on standard error; Ctrl-C counts as
    cancelled. An unexpected exception is a bug and says so; ``debug`` adds the traceback."""
    try:
        return run()
    except (Exception, KeyboardInterrupt) as exc:
        if debug:
            traceback.print_exception(exc)
        error = Cancelled("interrupted") if isinstance(exc, KeyboardInterrupt) else exc
        if isinstance(error, PortraitStylizeError):
            print(f"portrait-stylize: error: {one_line(str(error))}", file=sys.stderr)
        else:
            print(
                f"portrait-stylize: internal error: {type(error).__name__}: "
                f"{one_line(str(error))} (a bug; rerun with --debug for the traceback)",
                file=sys.stderr,
            )
        return outcome(error).exit_code


def run_stylize(args: argparse.Namespace) -> int:
    """The main job: stylize CONTENT with STYLE(s) and save OUTPUT, its artifacts and
    OUTPUT.json; checkpoints go to OUTPUT.ckpt.pt and are removed once the run is done."""
    from .api import save_result, stylize

    settings = resolve_settings(args.method, {name: getattr(args, name) for name in SPECS})
    for name, low in RUN_OPTIONS.items():
        Spec("", RUN_GROUP[0], low=low).check("--" + name.replace("_", "-"), getattr(args, name))
    blend_weights(settings, len(args.style))  # before any image is read
    kind, value = parse_background(settings.background)
    texture = value if kind == "texture" else None
    inputs = [path for path in (args.content, *args.style, settings.mask, texture) if path]
    output = check_output_path(args.output, inputs, [checkpoint_path(args.output)])
    alpha_mode = "keep" if args.keep_alpha else "composite"
    content = load_image(args.content, max_pixels=args.max_pixels, alpha=alpha_mode)
    styles = [load_image(path, max_pixels=args.max_pixels) for path in args.style]

    token = CancelToken()
    stop = StopFlag(token)
    progress = ProgressBar([n for _, n in scale_schedule(settings)], disable=args.quiet)
    callbacks: list[Callback] = [progress]
    if args.early_stop > 0:
        callbacks.append(EarlyStop(args.early_stop))
    checkpoint = checkpoint_path(output)
    with stop.installed():
        try:
            result = stylize(
                content,
                styles,
                settings,
                callbacks=callbacks,
                cancel=token,
                checkpoint=checkpoint,
                checkpoint_every=args.checkpoint_every,
                resume=args.resume,
            )
        finally:
            progress.close()
    if stop.signal is not None:
        result.record["signal"] = stop.signal
    record = save_result(result, output)
    if result.stopped != StopReason.CANCELLED:
        checkpoint.unlink(missing_ok=True)
    print(
        f"saved {output} and {record.name} ({result.record['wall_time_s']:.1f} s)", file=sys.stderr
    )
    if result.stopped == StopReason.CANCELLED:
        print(f"cancelled: continue with --resume (from {checkpoint.name})", file=sys.stderr)
        return OUTCOMES[Cancelled].exit_code
    if result.stopped and result.stopped != StopReason.REQUESTED:
        print(f"warning: run ended early: {result.stopped}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv``; returns the exit code. ``--debug`` may stand anywhere."""
    pre = Parser(add_help=False, allow_abbrev=False)
    pre.add_argument("--debug", action="store_true")
    known, rest = pre.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    if rest and rest[0] in SUBCOMMANDS:
        module = importlib.import_module(SUBCOMMANDS[rest[0]])
        parser = Parser(prog=f"portrait-stylize {rest[0]}", epilog=f"--debug: {DEBUG_HELP}")
        module.add_arguments(parser)
        args = parser.parse_args(rest[1:])
        return guarded(lambda: int(module.run(args)), known.debug)
    args = build_parser().parse_args(rest)
    return guarded(lambda: run_stylize(args), known.debug)


if __name__ == "__main__":
    sys.exit(main())
