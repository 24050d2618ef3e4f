"""Where one step of a face method's optimisation goes, part by part, at given sizes.

    python bench/profile_step.py [--method portrait-painting] [--sizes 256 512] [--steps 5]

On the astronaut x The Starry Night from ``examples/``, at one scale per size, in the
precision and memory layout the run would use on this machine (``--precision``,
``--layout`` override them). Each part is timed alone as a forward + backward to the
image (median of ``--steps`` after two warm-ups):

- *VGG trunk*: the feature network to its deepest layer, no loss (the floor);
- *Gram and style loss*, *content and TV*: the style term, then the content and TV terms,
  beyond the trunk they share;
- *FaceNet views*: the identity term alone (its face crops and FaceNet on every view);
- *FaceMesh*: the landmark term alone;
- *optimiser and bookkeeping*: a whole engine step (Adam, clamp, moving average, checks,
  callbacks) minus the whole objective;
- *framework overhead*: the share of a step's wall time in which no PyTorch operator runs
  (Python, autograd's bookkeeping, allocation), from ``torch.profiler``.

The last column is each part's share of the engine step. The parts overlap a little
(every term alone also crops or reads what the whole objective shares), so the shares
need not sum to 100 %.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from portrait_stylize import machine, models
from portrait_stylize.engine import optimise
from portrait_stylize.images import load_image, resize_long_side
from portrait_stylize.losses import Objective, Term
from portrait_stylize.methods import METHODS, resolve_settings

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def median_seconds(run: Callable[[int], None], steps: int) -> float:
    """Median seconds of ``run(i)`` over ``steps`` calls after two warm-ups."""
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        run(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:])


def objective_seconds(objective: Objective, image: torch.Tensor, steps: int) -> float:
    """Median seconds of the objective's forward + backward to ``image`` (1, 3, H, W)."""

    def run(i: int) -> None:
        pixels = image.clone().requires_grad_(True)
        objective.at_step(i)
        objective(pixels)[0].backward()

    return median_seconds(run, steps)


def trunk_seconds(
    objective: Objective, image: torch.Tensor, layers: list[str], steps: int
) -> float:
    """Median seconds of the bare feature network to ``layers``, forward + backward."""

    def run(_: int) -> None:
        pixels = image.clone().requires_grad_(True)
        features = objective.features(pixels, layers)
        sum(value.float().sum() for value in features.values()).backward()

    return median_seconds(run, steps)


def idle_share(objective: Objective, image: torch.Tensor) -> float:
    """The share of an engine step's wall time outside every PyTorch operator."""
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        optimise(image, objective, iterations=3, optimizer="adam", clamp=True, ema_decay=0.99)
    wall = time.perf_counter() - start
    busy = sum(event.self_cpu_time_total for event in prof.key_averages()) / 1e6
    return max(0.0, 1 - busy / wall)


def profile_size(method: str, size: int, steps: int, overrides: dict) -> list[tuple[str, float]]:
    """(part, seconds) of one step of ``method`` at ``size`` px."""
    settings = resolve_settings(method, {"size": size, **overrides})
    extractor = models.extractor(
        settings.backbone, settings.pooling, settings.first_padding, settings.calibration, "cpu"
    )
    speed = machine.load(
        settings.backbone, torch.device("cpu"), settings.autocast
    ) or machine.measure(extractor, settings.autocast)
    channels_last = (
        speed.channels_last if settings.layout == "auto" else settings.layout == "channels-last"
    )
    content = load_image(EXAMPLES / "astronaut.jpg").rgb
    style = load_image(EXAMPLES / "starry_night.jpg").rgb
    preset = METHODS[method]
    prepared = preset.prepare(settings, content) if preset.prepare else {}
    image = resize_long_side(content, size)[None]
    built = preset.build(
        settings, extractor, image, [resize_long_side(style, size)[None]], **prepared
    )

    def only(*names: str) -> Objective:
        terms: list[Term] = [t for t in built.terms if t.name in names]
        return Objective(extractor, terms, settings.autocast, channels_last)

    whole = only(*(t.name for t in built.terms))
    layers = sorted({layer for t in built.terms for layer in t.layers})
    trunk = trunk_seconds(whole, image, layers, steps)
    style_only = objective_seconds(only("style"), image, steps)
    whole_s = objective_seconds(whole, image, steps)
    step = optimise(
        image, whole, iterations=steps + 2, optimizer="adam", clamp=True, ema_decay=0.99
    ).seconds / (steps + 2)
    names = {t.name for t in built.terms}
    rows = [
        (
            f"VGG trunk ({settings.backbone}, {'bf16' if settings.autocast else 'fp32'}, "
            f"{'channels-last' if channels_last else 'NCHW'})",
            trunk,
        ),
        ("Gram and style loss", style_only - trunk),
        (
            "content and TV",
            objective_seconds(only("style", "content", "tv"), image, steps) - style_only,
        ),
    ]
    if "face_id" in names:
        rows.append(
            ("FaceNet views (identity term)", objective_seconds(only("face_id"), image, steps))
        )
    if "mesh" in names:
        rows.append(("FaceMesh (landmark term)", objective_seconds(only("mesh"), image, steps)))
    rows.append(("optimiser and bookkeeping", step - whole_s))
    rows.append(("framework overhead (no operator running)", idle_share(whole, image) * step))
    rows.append(("whole engine step", step))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="portrait-painting")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    parser.add_argument("--layout", choices=("auto", "nchw", "channels-last"), default="auto")
    args = parser.parse_args()
    overrides = {"precision": args.precision, "layout": args.layout}
    results = {size: profile_size(args.method, size, args.steps, overrides) for size in args.sizes}
    cpu = machine.processor_name()
    print(f"{args.method}, {cpu}, {torch.get_num_threads()} threads, median of {args.steps}\n")
    header = " | ".join(f"{size} px ms | share" for size in args.sizes)
    print(f"| part | {header} |")
    print("| --- |" + " ---: | ---: |" * len(args.sizes))
    parts = [name for name, _ in results[args.sizes[0]]]
    for index, name in enumerate(parts):
        cells = []
        for size in args.sizes:
            seconds, total = results[size][index][1], results[size][-1][1]
            cells.append(f"{seconds * 1000:.0f} | {seconds / total:.0%}")
        print(f"| {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
