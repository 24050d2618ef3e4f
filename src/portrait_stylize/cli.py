"""Command line: ``portrait-stylize CONTENT STYLE [STYLE ...] -o OUT`` and subcommands.

Thin: parse, call the API, print. Subcommands (``weights``, ...) live in
:mod:`portrait_stylize.commands`; each module there has ``add_parser`` and ``run``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__
from .callbacks import EarlyStop, ProgressBar, StopFlag
from .checkpoint import checkpoint_path
from .engine import Callback, CancelToken, StopReason
from .errors import OUTCOMES, Cancelled, PortraitStylizeError, outcome
from .io import check_output_path, load_image
from .methods import METHODS, Settings, resolve_settings, scale_schedule

SUBCOMMANDS = {
    "weights": "portrait_stylize.commands.weights",
    "inspect": "portrait_stylize.commands.inspect",
    "evaluate": "portrait_stylize.commands.evaluate",
    "serve": "portrait_stylize.commands.serve",
}
DEBUG_HELP = "on an error, print its traceback too (default: off; any position, subcommands too)"

# Help for each Settings field exposed as an option (--field-name).
SETTING_HELP: dict[str, str] = {
    "size": "long side of the result in pixels (the last scale's)",
    "min_size": "multi-scale: long side of the first scale (scales grow by sqrt 2)",
    "initial_iterations": "multi-scale: steps at the first scale",
    "iterations": "optimisation steps (per later scale, multi-scale)",
    "ema_decay": "output the moving average of the iterates with this decay",
    "converge_tol": "end a scale early once the image changes by less than this per 50 steps",
    "paper_exact": "the paper's exact settings: fp32, every iteration, its FaceID loss (slower)",
    "first_padding": "padding of the feature network's first conv: zeros or replicate",
    "optimizer": "lbfgs or adam",
    "lr": "step size; unset: L-BFGS 1.0, Adam 0.02",
    "init": "starting image: mean, noise, content, gray, uniform, style-mean or instant (the "
    "feed-forward result)",
    "seed": "random seed; the same seed repeats a run",
    "device": "cpu, cuda or cuda:N",
    "precision": "bf16: autocast of the feature networks, about 2x faster on GPUs and CPUs "
    "with bf16 units, far slower without; fp32: the papers' precision; auto: bf16 where fast",
    "backbone": "vgg19-caffe (the papers' VGG-19, offline), vgg19-caffe-full (its full "
    "precision, online), vgg16-hed (offline) or vgg19-imagenet (torchvision's, online)",
    "calibration": "activation scaling: none, torchvision (Crowson's tuning) or layer-mean",
    "convention": "loss normalisation and pixel units: neural-style or crowson",
    "pooling": "max or avg pooling in the feature network",
    "content_layers": "VGG layers of the content loss",
    "content_weight": "content weight (alpha)",
    "style_layers": "VGG layers of the style loss",
    "style_layer_weights": "one weight per style layer",
    "style_weight": "style weight (beta)",
    "tv_weight": "total-variation weight",
    "style_scale": "style images are resized to size x this factor",
    "style_blend_weights": "relative weights of several style images",
    "background_weight": "portrait-aware: weight of the fine-stroke style loss on the background",
    "mask": "portrait-aware: person mask image (white = person) instead of segmenting CONTENT",
    "background_layers": "portrait-aware: VGG layers of the background style loss",
    "mask_threshold": "portrait-aware: person probability at or above which a pixel is portrait",
    "mask_feather": "portrait-aware: blur sigma (px) of the background mask's edge",
    "masked_gram_norm": "portrait-aware: divide the background Gram by the background or full area",
    "identity": "portrait-stylization: 0 paints faces freely .. 1 keeps each face the person",
    "face_weight": "portrait-stylization: weight of the FaceID loss (FaceNet features of faces)",
    "face_loss": "portrait-stylization: embedding (hinge at --identity) or activations (paper)",
    "mesh_weight": "portrait-stylization: weight of the FaceMesh landmark loss",
    "face_detector": "portrait-stylization: mtcnn or blazeface (run once on the full content)",
    "face_padding": "portrait-stylization: pad face boxes by this fraction of their longer side",
    "min_face_fraction": "portrait-stylization: leave out faces under this fraction of the image",
    "face_model": "portrait-stylization: facenet-casia (offline) or facenet-vggface2 (online)",
    "background": "replace the content's background first: keep, color:#RRGGBB or texture:FILE",
    "preserve_colors": "keep the content's colours: transfer luminance only (Gatys et al. 2016)",
    "style_strength": "instant and --init instant: 0 (the content's own style) to 1 (the style's)",
}
_LISTS = {"content_layers", "style_layers", "background_layers"}
_FLOAT_LISTS = {"style_layer_weights", "style_blend_weights"}


def _method_defaults(name: str) -> str:
    """'default 200.0; gatys-plus: 4000.0' for a setting, listing the presets that differ."""
    base = getattr(Settings(), name)
    shown = ",".join(map(str, base)) if isinstance(base, tuple) else base
    differing = [f"{m.name}: {m.defaults[name]}" for m in METHODS.values() if name in m.defaults]
    return f"default: {shown}" + (f"; {'; '.join(differing)}" if differing else "")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    parser.add_argument(
        "--method", default="gatys", choices=list(METHODS), help="method preset (default: gatys)"
    )
    for field in dataclasses.fields(Settings):
        if field.name not in SETTING_HELP:
            continue
        flag = "--" + field.name.replace("_", "-")
        help_text = f"{SETTING_HELP[field.name]} ({_method_defaults(field.name)})"
        if field.type == "bool":
            parser.add_argument(flag, action="store_true", default=None, help=help_text)
            continue
        kind: Any = str
        nargs = None
        if field.name in _LISTS:
            nargs = "+"
        elif field.name in _FLOAT_LISTS:
            kind, nargs = float, "+"
        elif field.type in ("int", "int | None"):
            kind = int
        elif field.type in ("float", "float | None"):
            kind = float
        parser.add_argument(
            flag,
            type=kind,
            nargs=nargs,
            default=None,
            metavar=field.name.upper().split("_")[-1],
            help=help_text,
        )
    parser.add_argument(
        "--keep-alpha",
        action="store_true",
        help="re-apply the content's transparency to the result (default: composite on white)",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=64_000_000,
        help="refuse input images larger than this many pixels (default: 64000000)",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=0,
        metavar="N",
        help="also checkpoint every N steps, not only between scales (default: 0, off)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue a killed or interrupted run from OUTPUT.ckpt.pt, with the same inputs "
        "and options (default: off, start afresh)",
    )
    parser.add_argument(
        "--early-stop",
        type=float,
        default=0.0,
        metavar="TOL",
        help="stop when the loss improves by under TOL (relative) in 50 steps (default: 0, off)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
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
            print(f"portrait-stylize: error: {error}", file=sys.stderr)
        else:
            print(
                f"portrait-stylize: internal error: {type(error).__name__}: {error} "
                "(a bug; rerun with --debug for the traceback)",
                file=sys.stderr,
            )
        return outcome(error).exit_code


def run_stylize(args: argparse.Namespace) -> int:
    """The main job: stylize CONTENT with STYLE(s) and save OUTPUT, its artifacts and
    OUTPUT.json; checkpoints go to OUTPUT.ckpt.pt and are removed once the run is done."""
    from .api import save_result, stylize

    overrides = {name: getattr(args, name) for name in SETTING_HELP}
    settings = resolve_settings(args.method, overrides)
    output = check_output_path(args.output)
    alpha_mode = "keep" if args.keep_alpha else "composite"
    content = load_image(args.content, max_pixels=args.max_pixels, alpha=alpha_mode)
    styles = [load_image(path, max_pixels=args.max_pixels) for path in args.style]

    token = CancelToken()
    stop = StopFlag(token)
    values = dataclasses.asdict(settings)
    del values["method"]
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
                args.method,
                callbacks=callbacks,
                cancel=token,
                checkpoint=checkpoint,
                checkpoint_every=args.checkpoint_every,
                resume=args.resume,
                **values,
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
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--debug", action="store_true")
    known, rest = pre.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    if rest and rest[0] in SUBCOMMANDS:
        module = importlib.import_module(SUBCOMMANDS[rest[0]])
        parser = argparse.ArgumentParser(
            prog=f"portrait-stylize {rest[0]}", epilog=f"--debug: {DEBUG_HELP}"
        )
        module.add_arguments(parser)
        args = parser.parse_args(rest[1:])
        return guarded(lambda: int(module.run(args)), known.debug)
    args = build_parser().parse_args(rest)
    return guarded(lambda: run_stylize(args), known.debug)


if __name__ == "__main__":
    sys.exit(main())
