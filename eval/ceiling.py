"""How much of a face the independent identity network reads through small changes that
paint nothing: the shared photos at a run size, lightly blurred, halved in resolution or
JPEG-compressed, scored like a result (identity cosine, facenet-msceleb, mean and weakest
face), and the cosine between different people of the shared photos.

    python eval/ceiling.py [--sizes 256 512]

Prints a markdown table (docs/identity.md, "How much of a small face the evaluator reads").
"""

from __future__ import annotations

import argparse
import io
import sys

import numpy as np
import torch
import torch.nn.functional as F
from paper1 import DATA, shared_data_ready
from paper2 import CONTENTS
from PIL import Image
from torchvision.transforms.functional import gaussian_blur

from portrait_stylize.face_metrics import content_face_boxes, gallery_embeddings, identity_cosine
from portrait_stylize.images import load_image, resize_long_side


def jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    """image (3, H, W) in [0, 1] encoded as a JPEG of ``quality`` and decoded again."""
    pixels = (image.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality)
    decoded = np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(decoded).permute(2, 0, 1)


def half_resolution(image: torch.Tensor) -> torch.Tensor:
    """image (3, H, W) area-downsampled by 2 and bilinearly upsampled back to (3, H, W)."""
    small = F.interpolate(image[None], scale_factor=0.5, mode="area")
    return F.interpolate(small, size=image.shape[-2:], mode="bilinear")[0]


CHANGES = {
    "blur σ 1 px": lambda x: gaussian_blur(x, [7, 7], [1.0, 1.0]),
    "blur σ 2 px": lambda x: gaussian_blur(x, [9, 9], [2.0, 2.0]),
    "half resolution": half_resolution,
    "JPEG quality 30": lambda x: jpeg(x, 30),
}
"""Label -> a change of an image (3, H, W) that paints nothing."""


@torch.no_grad()
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    args = parser.parse_args()
    if not shared_data_ready():
        return 1
    photos = {name: load_image(DATA / "content" / f"{name}.jpg").rgb for name in CONTENTS}
    print("| photo | size | face width (px) | " + " | ".join(CHANGES) + " |")
    print("| --- " * (len(CHANGES) + 3) + "|")
    for name, photo in photos.items():
        boxes = content_face_boxes(photo)
        for size in args.sizes:
            image = resize_long_side(photo, size)
            width = float((boxes[:, 2] - boxes[:, 0]).mean()) * size / max(photo.shape[-2:])
            cells = []
            for change in CHANGES.values():
                scores = identity_cosine(photo, change(image), boxes)
                weakest = f" ({min(scores.per_face):.2f})" if len(scores.per_face) > 1 else ""
                cells.append(f"{scores.mean:.2f}{weakest}")
            print(f"| {name} | {size} | {width:.0f} | " + " | ".join(cells) + " |")
    people = gallery_embeddings(list(photos.values()))
    between = (people @ people.T)[~torch.eye(len(people), dtype=torch.bool)]
    print(
        f"\nBetween the {len(people)} different people: cosine {between.min():.2f} to "
        f"{between.max():.2f}, mean {between.mean():.2f}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
