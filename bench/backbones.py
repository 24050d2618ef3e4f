"""Cost of one style step on each offline backbone: the feature network's forward and
backward to relu5_1 through every style layer's Gram matrix.

    python bench/backbones.py [--sizes 256 512] [--steps 3]

Prints a markdown table: seconds per step for HED's VGG-16 and the original VGG-19 at
each size, in fp32 and, where bf16 is fast on this machine, in bf16, with the ratio of
VGG-19 to VGG-16.
"""

from __future__ import annotations

import argparse

import torch
from levers import seconds, style_step

from portrait_stylize.engine import bf16_is_fast
from portrait_stylize.features import build_extractor

BACKBONES = ("vgg16-hed", "vgg19-caffe")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    extractors = {name: build_extractor(name) for name in BACKBONES}
    precisions = ("fp32", "bf16") if bf16_is_fast("cpu") else ("fp32",)
    print(f"{torch.get_num_threads()} threads, median of {args.steps} steps")
    print()
    print("| size | precision | VGG-16 HED (s) | VGG-19 original (s) | VGG-19 / VGG-16 |")
    print("| ---: | --- | ---: | ---: | ---: |")
    for size in args.sizes:
        image = torch.rand(1, 3, size, size)
        for precision in precisions:
            times = [
                seconds(
                    style_step(
                        extractors[name], precision == "bf16", float_gram=False, multiply=False
                    ),
                    image,
                    args.steps,
                    warmup=1,
                )
                for name in BACKBONES
            ]
            print(
                f"| {size} | {precision} | {times[0]:.3f} | {times[1]:.3f} | "
                f"{times[1] / times[0]:.2f}x |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
