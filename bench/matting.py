"""Background removal: MODNet's alpha matte against MediaPipe's selfie mask.

    OMP_NUM_THREADS=1 python bench/matting.py [--size 512] [--runs 3] [--colour #2E8B57]

For each public-domain photo in examples/ (astronaut, grace_hopper) at ``--size`` px on
its long side, prints a markdown table: seconds per image of each network (median of
``--runs`` after one warm-up, one thread), the edge width of each mask (pixels with
0.05 < value < 0.95, and that count per pixel of the thresholded mask's outline), and the
IoU of the two masks thresholded at 0.5. Writes docs/images/matting-<photo>.jpg: the
selfie mask and the MODNet alpha (gray), then each on the flat colour (how
``--background color:...`` composites with it: selfie thresholded and feathered by 1 px,
MODNet blended by its alpha).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from portrait_stylize.images import load_image, resize_long_side
from portrait_stylize.masks import person_mask, replace_background

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ("astronaut", "grace_hopper")
NETWORKS = {"selfie": "auto", "modnet": "modnet"}
"""Column name -> :func:`person_mask` model."""


def median_seconds(run: Callable[[], object], runs: int) -> float:
    """Median wall time of ``run()`` over ``runs`` calls after one warm-up."""
    run()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def edge_pixels(mask: torch.Tensor) -> int:
    """Pixels of mask (H, W) strictly between 0.05 and 0.95: the soft edge."""
    return int(((mask > 0.05) & (mask < 0.95)).sum())


def outline_pixels(mask: torch.Tensor) -> int:
    """Pixels of the 0.5-thresholded mask (H, W) with a 4-neighbour on the other side."""
    hard = mask >= 0.5
    edge = torch.zeros_like(hard)
    edge[1:] |= hard[1:] != hard[:-1]
    edge[:-1] |= hard[1:] != hard[:-1]
    edge[:, 1:] |= hard[:, 1:] != hard[:, :-1]
    edge[:, :-1] |= hard[:, 1:] != hard[:, :-1]
    return int(edge.sum())


TILE = 256
"""Longest side of a panel: a 2 x 2 sheet is at most 512 px, as the docs' images are."""


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    """Intersection over union of two masks (H, W) thresholded at 0.5."""
    a, b = a >= 0.5, b >= 0.5
    return float((a & b).sum()) / max(1, int((a | b).sum()))


def panel(rgb: torch.Tensor, caption: str) -> Image.Image:
    """rgb (3, H, W) or (1, H, W) in [0, 1] as a PIL image of at most :data:`TILE` px with
    ``caption`` in its corner."""
    pixels = (rgb.expand(3, -1, -1).permute(1, 2, 0).clamp(0, 1).numpy() * 255).round()
    image = Image.fromarray(pixels.astype(np.uint8))
    image.thumbnail((TILE, TILE), Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(image)
    box = draw.textbbox((4, 4), caption)
    draw.rectangle((box[0] - 3, box[1] - 3, box[2] + 3, box[3] + 3), fill=(0, 0, 0))
    draw.text((4, 4), caption, fill=(255, 255, 255))
    return image


def sheet(panels: list[Image.Image]) -> Image.Image:
    """Four equal panels in a 2 x 2 grid."""
    width, height = panels[0].size
    out = Image.new("RGB", (2 * width, 2 * height))
    for k, image in enumerate(panels):
        out.paste(image, ((k % 2) * width, (k // 2) * height))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--colour", default="#2E8B57", help="the flat background colour")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{torch.get_num_threads()} thread, {args.size} px long side, median of {args.runs}")
    print()
    print(
        "| photo | size | selfie (s) | MODNet (s) | selfie edge px | MODNet edge px "
        "| selfie edge / outline | MODNet edge / outline | IoU at 0.5 |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in PHOTOS:
        image = resize_long_side(load_image(ROOT / "examples" / f"{name}.jpg").rgb, args.size)
        image = image.reshape(3, *image.shape[-2:])
        masks, times = {}, {}
        with torch.no_grad():
            for column, model in NETWORKS.items():
                masks[column] = person_mask(image, model)[0, 0]
                times[column] = median_seconds(
                    lambda im=image, m=model: person_mask(im, m), args.runs
                )
        selfie, modnet = masks["selfie"], masks["modnet"]
        print(
            f"| {name} | {image.shape[2]}x{image.shape[1]} | {times['selfie']:.3f} "
            f"| {times['modnet']:.3f} | {edge_pixels(selfie)} | {edge_pixels(modnet)} "
            f"| {edge_pixels(selfie) / outline_pixels(selfie):.2f} "
            f"| {edge_pixels(modnet) / outline_pixels(modnet):.2f} | {iou(selfie, modnet):.3f} |"
        )
        flat = f"color:{args.colour}"
        panels = [
            panel(selfie[None], "selfie segmentation (probability)"),
            panel(modnet[None], "MODNet alpha"),
            panel(replace_background(image, flat, person_model="selfie"), "selfie, flat colour"),
            panel(replace_background(image, flat, person_model="modnet"), "MODNet, flat colour"),
        ]
        args.out.mkdir(parents=True, exist_ok=True)
        sheet(panels).save(args.out / f"matting-{name}.jpg", quality=90)
    print()
    print(f"sheets: {args.out}/matting-{{{','.join(PHOTOS)}}}.jpg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
