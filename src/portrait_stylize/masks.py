"""Person and background masks: MediaPipe selfie segmentation, MODNet matting,
thresholding, mask files.

Masks are float tensors (B,1,H,W) in [0, 1]. :func:`person_mask` is differentiable
with respect to the image, so it can drive a loss; :func:`background_mask` is a hard
(optionally feathered) mask for compositing and weighting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from . import models
from .images import load_image
from .vocabulary import PERSON_MODELS, parse_background

__all__ = [
    "SEGMENTERS",
    "background_mask",
    "load_mask_file",
    "parse_background",
    "person_mask",
    "replace_background",
    "segmenter",
]

SEGMENTERS = ("selfie-segmentation", "selfie-segmentation-landscape", "auto", "modnet")
AUTO_PERSON_MODEL = {"background": "modnet", "portrait-aware": "selfie"}
"""What ``person_model`` auto means for each use (measured: docs/results-paper2.md,
background removal): MODNet's matte for a new background, whose edge is seen; selfie
segmentation for portrait-aware's thresholded mask (paper 1's results, 40x faster)."""


def segmenter(person_model: str, use: str) -> str:
    """The :func:`person_mask` model of setting ``person_model`` (one of
    :data:`~portrait_stylize.vocabulary.PERSON_MODELS`) for ``use``, "background" or
    "portrait-aware"."""
    if person_model not in PERSON_MODELS:
        raise ValueError(
            f"unknown person model {person_model!r}; known: {', '.join(PERSON_MODELS)}"
        )
    chosen = AUTO_PERSON_MODEL[use] if person_model == "auto" else person_model
    return "modnet" if chosen == "modnet" else "auto"


def person_mask(
    image: Tensor, model: str = "auto", device: str | torch.device | None = None
) -> Tensor:
    """Soft person probability of image (3,H,W) or (B,3,H,W) RGB in [0,1].

    Returns (B,1,H,W) (B = 1 for a single image) at the image size, differentiable with
    respect to ``image``. ``model``: "selfie-segmentation" (square 256x256 network),
    "selfie-segmentation-landscape" (256 wide x 144 high), or "auto", the default: the
    landscape network for images wider than tall, the square one otherwise, so the image
    is stretched least (on the shared photos this gives the cleaner mask: the square
    network is cleaner on portraits, the landscape one on a wide group photo, where the
    square one marks railings and a window as person); or "modnet", MODNet's alpha
    matte (read at a 512 px reference side, soft along hair). ``device`` defaults to
    the image's device; the result is on that device.
    """
    if model not in SEGMENTERS:
        raise ValueError(f"unknown segmentation model {model!r}; known: {', '.join(SEGMENTERS)}")
    batch = image[None] if image.dim() == 3 else image
    if batch.dim() != 4 or batch.shape[1] != 3:
        raise ValueError(f"expected (3,H,W) or (B,3,H,W), got {tuple(image.shape)}")
    if model == "auto":
        wide = batch.shape[-1] > batch.shape[-2]
        model = "selfie-segmentation-landscape" if wide else "selfie-segmentation"
    device = torch.device(device) if device is not None else batch.device
    if model == "modnet":
        network = models.modnet(str(device))
    else:
        network = models.mediapipe(model, str(device))
    return network(batch.to(device, torch.float32))


def background_mask(person: Tensor, threshold: float = 0.5, feather: float = 0.0) -> Tensor:
    """Hard background mask of a person probability (B,1,H,W): 1 where ``person`` is
    below ``threshold``, 0 on the person, then blurred by a Gaussian of sigma
    ``feather`` pixels (0: no blur; borders reflected; the kernel at most as wide as
    reflection allows, 2·min(H, W) − 1). Same shape as ``person``."""
    if feather < 0:
        raise ValueError(f"feather must be >= 0, not {feather}")
    mask = (person < threshold).to(person.dtype if person.is_floating_point() else torch.float32)
    if feather == 0:
        return mask
    from torchvision.transforms.functional import gaussian_blur  # slow to import: here only

    kernel = min(2 * math.ceil(3 * feather) + 1, 2 * min(mask.shape[-2:]) - 1)
    return gaussian_blur(mask, [kernel, kernel], [feather, feather])


def tint(rgb: Tensor, mask: Tensor, colour: Sequence[float], alpha: float = 0.45) -> Tensor:
    """How the tool shows a person mask: ``rgb`` (3, H, W) blended towards ``colour`` (RGB
    in [0, 1]) by ``alpha`` where ``mask`` ((1,) H, W; 1 = person) is 1."""
    weight = alpha * mask.reshape(1, *mask.shape[-2:]).to(rgb.dtype)
    return rgb * (1 - weight) + torch.tensor(colour, dtype=rgb.dtype).view(3, 1, 1) * weight


def load_mask_file(path: str | Path, size: tuple[int, int]) -> Tensor:
    """A user's person mask, white = person, as (1,1,H,W) in [0,1] with (H, W) = ``size``.

    Any format :func:`~portrait_stylize.images.load_image` reads; colour is averaged to gray
    and transparent pixels count as background. Resized bilinearly (antialiased).
    """
    gray = load_image(path, matte=(0.0, 0.0, 0.0)).rgb.mean(0)[None, None]
    shrink = size[0] < gray.shape[-2] or size[1] < gray.shape[-1]
    if tuple(gray.shape[-2:]) != tuple(size):
        gray = F.interpolate(gray, size, mode="bilinear", align_corners=False, antialias=shrink)
    return gray.clamp(0, 1)


def _backdrop(kind: str, value: str, size: tuple[int, int]) -> Tensor:
    """The replacement background (3, H, W): a flat colour, or a texture image resized
    to cover ``size`` (aspect kept) and cropped around its centre."""
    height, width = size
    if kind == "color":
        rgb = [int(value[i : i + 2], 16) / 255.0 for i in (1, 3, 5)]
        return torch.tensor(rgb).view(3, 1, 1).expand(3, height, width)
    texture = load_image(value).rgb
    scale = max(height / texture.shape[1], width / texture.shape[2])
    covered = (
        max(height, round(texture.shape[1] * scale)),
        max(width, round(texture.shape[2] * scale)),
    )
    texture = F.interpolate(texture[None], covered, mode="bilinear", antialias=True)[0]
    top, left = (covered[0] - height) // 2, (covered[1] - width) // 2
    return texture[:, top : top + height, left : left + width].clamp(0, 1)


def replace_background(
    image: Tensor,
    spec: str,
    threshold: float = 0.5,
    feather: float = 1.0,
    person_model: str = "auto",
) -> Tensor:
    """Image (3, H, W) in [0, 1] with its background replaced as ``spec`` says (see
    :func:`parse_background`; "keep" returns ``image`` itself).

    ``person_model`` "modnet" (paper 2's; what "auto" means here): the image and the
    backdrop are blended by MODNet's soft alpha matte. "selfie": selfie segmentation
    (:func:`person_mask`) thresholded at ``threshold`` and feathered by ``feather`` px
    (:func:`background_mask`). Either way, pixels well inside the person keep their
    exact values.
    """
    model = segmenter(person_model, "background")
    kind, value = parse_background(spec)
    if kind == "keep":
        return image
    with torch.no_grad():
        person = person_mask(image, model)
        if model == "modnet":
            background = 1 - person[0]
        else:
            background = background_mask(person, threshold, feather)[0]
    backdrop = _backdrop(kind, value, (image.shape[-2], image.shape[-1])).to(image)
    return image * (1 - background) + backdrop * background
