"""What the 8-bit codebook of the offline VGG-19 costs, estimated without the original.

    python bench/quantization.py [--size 256]

The full-precision weights cannot be fetched offline, so the cost is estimated in two
steps. Per layer: the weights' standard deviation and the RMS of the quantization error
a 256-entry 1-D k-means leaves, computed from the cells around each used centroid (error
uniform within a cell, RMS = width / √12). Then the feature network is run on a real
photograph twice, once as decoded and once with every weight moved by a fresh uniform
error of its cell's width: the relative change of the activations and of their Gram
matrices is about what the codebook itself changed against the full-precision network.
Prints markdown tables.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from portrait_stylize.features import build_extractor
from portrait_stylize.images import load_image, resize_long_side
from portrait_stylize.losses import gram_matrix
from portrait_stylize.nets.vgg import VGG_BLOCKS
from portrait_stylize.weights import weight_path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")


def cell_widths(table: torch.Tensor) -> torch.Tensor:
    """Width of each centroid's cell (256,): from the midpoint with its lower neighbour to
    the midpoint with its upper one (the outermost cells mirror their inner half)."""
    order = table.argsort()
    ordered = table[order]
    gaps = ordered[1:] - ordered[:-1]
    lower = torch.cat([gaps[:1], gaps]) / 2
    upper = torch.cat([gaps, gaps[-1:]]) / 2
    widths = torch.empty_like(table)
    widths[order] = lower + upper
    return widths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    packed = torch.load(weight_path("vgg19-caffe"), map_location="cpu", weights_only=True)
    print("| layer | weights | std | quantization RMS (est.) | RMS / std |")
    print("| --- | ---: | ---: | ---: | ---: |")
    widths: dict[str, torch.Tensor] = {}
    for block, convs in enumerate(VGG_BLOCKS["vgg19"], start=1):
        for index in range(1, len(convs) + 1):
            key = f"block{block}_conv{index}"
            table, indices = packed[f"{key}_W_table"], packed[f"{key}_W_q"].long()
            weight = table[indices]
            width = cell_widths(table)[indices]
            widths[f"conv{block}_{index}"] = width
            rms = float(width.pow(2).mean().sqrt()) / 12**0.5
            std = float(weight.std())
            cells = f"{weight.numel()} | {std:.2e} | {rms:.2e} | {rms / std:.4f}"
            print(f"| conv{block}_{index} | {cells} |")

    torch.manual_seed(0)
    image = resize_long_side(load_image(ROOT / "examples" / "astronaut.jpg").rgb, args.size)[None]
    decoded = build_extractor("vgg19-caffe")
    perturbed = build_extractor("vgg19-caffe")
    with torch.no_grad():
        for name, width in widths.items():
            conv = perturbed.trunk.layers[name]
            flipped = width.flip(1) if name == "conv1_1" else width  # conv1_1 takes RGB
            conv.weight.add_((torch.rand_like(conv.weight) - 0.5) * flipped)
        base, moved = decoded(image, LAYERS), perturbed(image, LAYERS)
    print()
    print(f"Astronaut at {args.size} px, one fresh error of the codebook's size:")
    print()
    print("| layer | activation change (rel. L2) | Gram change (rel. L2) |")
    print("| --- | ---: | ---: |")
    for layer in LAYERS:
        act = float((moved[layer] - base[layer]).norm() / base[layer].norm())
        g0, g1 = gram_matrix(base[layer]), gram_matrix(moved[layer])
        gram = float((g1 - g0).norm() / g0.norm())
        print(f"| {layer} | {act:.4f} | {gram:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
