"""Command line: ``portrait-stylize PHOTO PAINTING [PAINTING ...] -o OUT`` and subcommands.

Thin: parse, call the API, print. Subcommands (``weights``, ...) live in
:mod:`portrait_stylize.commands`; each module there has ``add_arguments`` and ``run``.
Building the parser, ``--help``, ``--version`` and the checks of the arguments, the
settings and the paths import no PyTorch: the run imports it (through :mod:`.api`) once
they have passed, so a mistake is answered at once.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from . import __version__
from .errors import OUTCOMES, Cancelled, PortraitStylizeError, outcome, printable
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
from .paths import check_file, check_output_path, checkpoint_path
from .vocabulary import parse_background

if TYPE_CHECKING:
    from .events import Callback

SUBCOMMANDS = {
    "methods": ("portrait_stylize.commands.methods", "what each method is, its settings, notes"),
    "weights": ("portrait_stylize.commands.weights", "list the networks' weights, fetch them"),
    "inspect": ("portrait_stylize.commands.inspect", "the faces and person mask found in a photo"),
    "evaluate": ("portrait_stylize.commands.evaluate", "score a result against its content"),
    "serve": ("portrait_stylize.commands.serve", "the web page and HTTP API"),
    "batch": ("portrait_stylize.commands.batch", "every photo in every style, resumable"),
}
"""Each subcommand: its module (``add_arguments`` and ``run``) and what it does."""
USAGE = "%(prog)s PHOTO PAINTING [PAINTING ...] -o OUT [options]"
DESCRIPTION = """\
Paint a photograph of people in the style of one or more paintings, keeping faces
recognisable. The everyday options come first, then every other option by concern."""
EVERYDAY = (
    "method",
    "size",
    "iterations",
    "identity",
    "style_strength",
    "preserve_colors",
    "seed",
    "device",
)
"""The settings whose options ``--help`` lists first, before the groups by concern."""
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


def add_setting_options(
    parser: argparse.ArgumentParser, everyday: Any | None = None
) -> dict[str, Any]:
    """Add ``--method`` and one option per setting to ``parser``, grouped by concern
    (:data:`~portrait_stylize.methods.GROUPS`, then the run's own group); returns the
    argument groups by name. With ``everyday`` (an argument group), the settings of
    :data:`EVERYDAY` go there instead, in that order."""
    groups = {
        name: parser.add_argument_group(f"{name} options", description)
        for name, description in [*GROUPS.items(), RUN_GROUP]
    }
    method = Settings().method
    (everyday or groups["method"]).add_argument(
        "--method",
        default=method,
        choices=list(METHODS),
        metavar="NAME",
        help=f"{SPECS['method'].help}: {', '.join(METHODS)} (default: {method}; "
        "`portrait-stylize methods` describes each)",
    )
    defaults = method_defaults()
    first = EVERYDAY if everyday is not None else ()
    for name in [*first, *(name for name in SPECS if name not in first)]:
        if name != "method":
            group = everyday if name in first else groups[SPECS[name].group]
            help_text = f"{SPECS[name].help} ({_defaults_text(name, defaults)})"
            _add_setting(group, name, help_text)
    return groups


def build_parser() -> argparse.ArgumentParser:
    """The main command's parser: a short usage line, the inputs and the everyday options
    (:data:`EVERYDAY`), the subcommands, then every other setting grouped by concern
    (:data:`~portrait_stylize.methods.GROUPS`) and the run's own options."""
    parser = Parser(
        prog="portrait-stylize",
        usage=USAGE,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    inputs = parser.add_argument_group("arguments")
    inputs.add_argument(
        "content",
        metavar="PHOTO",
        help="photograph to stylize (JPEG, PNG, WebP, TIFF, HEIC/HEIF, AVIF, BMP, GIF)",
    )
    inputs.add_argument(
        "style", nargs="+", metavar="PAINTING", help="one or more style images (paintings)"
    )
    inputs.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="result path (.png, .jpg, .webp, .tif for 16-bit)",
    )
    everyday = parser.add_argument_group("everyday options")
    parser.add_argument_group(
        "subcommands (`portrait-stylize SUBCOMMAND --help` for their options)",
        "\n".join(f"{name:<10}{summary}" for name, (_, summary) in SUBCOMMANDS.items()),
    )
    groups = add_setting_options(parser, everyday)
    everyday.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    everyday.add_argument("-h", "--help", action="help", help="show this help and exit")
    everyday.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}", help="show the version"
    )
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
    run.add_argument("--debug", action="store_true", help=DEBUG_HELP)
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
    OUTPUT.json; checkpoints go to OUTPUT.ckpt.pt and are removed once the run is done.

    The settings, the output path and the input files are checked before PyTorch is
    imported (with :mod:`.api`)."""
    settings = resolve_settings(args.method, {name: getattr(args, name) for name in SPECS})
    for name, low in RUN_OPTIONS.items():
        Spec("", RUN_GROUP[0], low=low).check("--" + name.replace("_", "-"), getattr(args, name))
    blend_weights(settings, len(args.style))  # before any image is read
    kind, value = parse_background(settings.background)
    texture = value if kind == "texture" else None
    inputs = [path for path in (args.content, *args.style, settings.mask, texture) if path]
    output = check_output_path(args.output, inputs, [checkpoint_path(args.output)])
    for path in inputs:
        check_file(Path(path))

    from .api import save_result, stylize
    from .callbacks import EarlyStop, ProgressBar, StopFlag
    from .events import CancelToken, StopReason
    from .images import load_image

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
        module = importlib.import_module(SUBCOMMANDS[rest[0]][0])
        parser = Parser(prog=f"portrait-stylize {rest[0]}", epilog=f"--debug: {DEBUG_HELP}")
        module.add_arguments(parser)
        args = parser.parse_args(rest[1:])
        return guarded(lambda: int(module.run(args)), known.debug)
    args = build_parser().parse_args(rest)
    return guarded(lambda: run_stylize(args), known.debug)


if __name__ == "__main__":
    sys.exit(main())
