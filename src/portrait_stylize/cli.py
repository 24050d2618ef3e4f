"""Command line: ``portrait-stylize CONTENT STYLE [STYLE ...] -o OUT`` and subcommands.

Thin: parse, call the API, print. Subcommands (``weights``, ...) live in
:mod:`portrait_stylize.commands`; each module there has ``add_parser`` and ``run``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__
from .callbacks import Checkpoint, EarlyStop, ProgressBar, StopFlag
from .engine import Callback, Step
from .io import ImageError, check_output_path, load_image, save_image, save_record
from .methods import METHODS, Settings, resolve_settings, scale_schedule
from .weights import WeightsError

SUBCOMMANDS = {
    "weights": "portrait_stylize.commands.weights",
    "inspect": "portrait_stylize.commands.inspect",
    "evaluate": "portrait_stylize.commands.evaluate",
}
EXIT_BAD_INPUT = 2
EXIT_WEIGHTS = 3
EXIT_INTERRUPTED = 130

# Help for each Settings field exposed as an option (--field-name).
SETTING_HELP: dict[str, str] = {
    "size": "long side of the result in pixels (the last scale's)",
    "min_size": "multi-scale: long side of the first scale (scales grow by sqrt 2)",
    "initial_iterations": "multi-scale: steps at the first scale",
    "iterations": "optimisation steps (per later scale, multi-scale)",
    "ema_decay": "output the moving average of the iterates with this decay",
    "converge_tol": "end a scale early once the image changes by less than this per 50 steps",
    "paper_exact": "the papers' exact settings: fp32, every iteration (slower)",
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
    "face_weight": "portrait-stylization: weight of the FaceID loss (FaceNet features of faces)",
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
        help="write the current image to OUTPUT every N steps (default: 0, off)",
    )
    parser.add_argument(
        "--early-stop",
        type=float,
        default=0.0,
        metavar="TOL",
        help="stop when the loss improves by under TOL (relative) in 50 steps (default: 0, off)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _error(message: str, code: int) -> int:
    print(f"portrait-stylize: error: {message}", file=sys.stderr)
    return code


def run_stylize(argv: Sequence[str]) -> int:
    """The main job: stylize CONTENT with STYLE(s) and save OUTPUT and OUTPUT.json."""
    from .api import stylize

    args = build_parser().parse_args(argv)
    overrides = {name: getattr(args, name) for name in SETTING_HELP}
    try:
        settings = resolve_settings(args.method, overrides)
        output = check_output_path(args.output)
        alpha_mode = "keep" if args.keep_alpha else "composite"
        content = load_image(args.content, max_pixels=args.max_pixels, alpha=alpha_mode)
        styles = [load_image(path, max_pixels=args.max_pixels) for path in args.style]
    except (ImageError, ValueError) as exc:
        return _error(str(exc), EXIT_BAD_INPUT)

    stop = StopFlag()

    def save_checkpoint(step: Step) -> None:
        save_image(step.image[0], output, content.alpha)
        save_record(
            {
                "checkpoint": {"stage": step.stage, "iteration": step.iteration},
                "settings": dataclasses.asdict(settings),
            },
            output,
        )

    values = dataclasses.asdict(settings)
    del values["method"]
    with stop.installed():
        progress = ProgressBar([n for _, n in scale_schedule(settings)], disable=args.quiet)
        callbacks: list[Callback] = [
            progress,
            Checkpoint(args.checkpoint_every, save_checkpoint),
            stop,
        ]
        if args.early_stop > 0:
            callbacks.append(EarlyStop(args.early_stop))
        try:
            result = stylize(content, styles, args.method, callbacks=callbacks, **values)
        except WeightsError as exc:
            return _error(str(exc), EXIT_WEIGHTS)
        except ValueError as exc:
            return _error(str(exc), EXIT_BAD_INPUT)
        except KeyboardInterrupt:
            return _error("interrupted", EXIT_INTERRUPTED)
        finally:
            progress.close()
    if stop.signal is not None:
        result.record["stopped"] = f"interrupted by signal {stop.signal}"
    save_image(result.image, output, result.alpha)
    for name, artifact in result.artifacts.items():
        save_image(artifact.expand(3, -1, -1), output.with_name(f"{output.stem}.{name}.png"))
    record = save_record(result.record, output)
    print(
        f"saved {output} and {record.name} ({result.record['wall_time_s']:.1f} s)", file=sys.stderr
    )
    if result.stopped and result.stopped != "stopped by request":
        print(f"warning: run ended early: {result.stopped}", file=sys.stderr)
    return EXIT_INTERRUPTED if stop.signal is not None else 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        module = importlib.import_module(SUBCOMMANDS[argv[0]])
        parser = argparse.ArgumentParser(prog=f"portrait-stylize {argv[0]}")
        module.add_arguments(parser)
        args = parser.parse_args(argv[1:])
        try:
            return int(module.run(args))
        except (ImageError, ValueError) as exc:
            return _error(str(exc), EXIT_BAD_INPUT)
        except WeightsError as exc:
            return _error(str(exc), EXIT_WEIGHTS)
    return run_stylize(argv)


if __name__ == "__main__":
    sys.exit(main())
