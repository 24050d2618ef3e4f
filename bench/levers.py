"""Speed levers measured one at a time on the VGG step at one size: each row is a variant
of the feature network's forward + backward (to relu5_1, through every style layer's Gram
matrix), its seconds and its speed relative to the tool's own variant at that precision.

    python bench/levers.py [--size 512] [--steps 5]

Variants: fp32 / bf16 autocast; calibration folded into the weights (the tool's way) or
applied as a multiply per layer; Gram matrices in the features' precision or in float32;
channels_last memory format; torch.compile of the trunk; one thread instead of all.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from portrait_stylize.features import FeatureExtractor, build_extractor
from portrait_stylize.losses import gram_matrix
from portrait_stylize.vocabulary import STYLE_LAYERS

Step = Callable[[torch.Tensor], torch.Tensor]


def style_step(
    extractor: FeatureExtractor | Callable, bf16: bool, *, float_gram: bool, multiply: bool
) -> Step:
    """Loss = Σ sum of Grams over the style layers; ``multiply`` applies the calibration as
    a per-layer multiply on top (what the tool did before folding)."""
    scales = extractor.scales if isinstance(extractor, FeatureExtractor) else {}

    def step(image: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            feats = extractor(image, STYLE_LAYERS)
        total = image.new_zeros(())
        for layer, value in feats.items():
            if multiply:
                value = value * scales[layer]
            total = total + gram_matrix(value.float() if float_gram else value).sum()
        return total

    return step


def seconds(step: Step, image: torch.Tensor, steps: int, warmup: int = 2) -> float:
    """Median seconds of ``step(image).backward()`` over ``steps`` runs after ``warmup``."""
    times = []
    for _ in range(steps + warmup):
        pixels = image.clone().requires_grad_(True)
        start = time.perf_counter()
        step(pixels).backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times[warmup:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    extractor = build_extractor()
    image = torch.rand(1, 3, args.size, args.size)
    rows: list[tuple[str, str, float]] = []

    def measure(name: str, precision: str, step: Step, x: torch.Tensor = image) -> None:
        rows.append((name, precision, seconds(step, x, args.steps)))

    for precision in ("fp32", "bf16"):
        bf16 = precision == "bf16"
        measure(
            "folded calibration, Gram in feature precision (the tool)",
            precision,
            style_step(extractor, bf16, float_gram=False, multiply=False),
        )
        measure(
            "calibration as a multiply per layer",
            precision,
            style_step(extractor, bf16, float_gram=False, multiply=True),
        )
        measure(
            "Gram matrices in float32",
            precision,
            style_step(extractor, bf16, float_gram=True, multiply=False),
        )
        extractor.to(memory_format=torch.channels_last)
        measure(
            "channels_last",
            precision,
            style_step(extractor, bf16, float_gram=False, multiply=False),
            image.contiguous(memory_format=torch.channels_last),
        )
        extractor.to(memory_format=torch.contiguous_format)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        measure(
            "one thread", precision, style_step(extractor, bf16, float_gram=False, multiply=False)
        )
        torch.set_num_threads(threads)
        try:
            compiled = torch.compile(extractor)
            measure(
                "torch.compile (after compiling)",
                precision,
                style_step(compiled, bf16, float_gram=False, multiply=False),
            )
        except Exception as error:  # no C++ toolchain, unsupported op, ...
            print(f"torch.compile failed in {precision}: {type(error).__name__}: {error}")
    print(f"| variant | precision | s / step at {args.size} px | speed vs the tool's |")
    print("| --- | --- | ---: | ---: |")
    for name, precision, value in rows:
        base = next(v for _, p, v in rows if p == precision)
        print(f"| {name} | {precision} | {value:.3f} | {base / value:.2f}x |")
    print(f"\n{torch.get_num_threads()} threads; median of {args.steps} steps after 2 warm-up.")


if __name__ == "__main__":
    main()
