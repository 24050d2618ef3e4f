"""How well a result keeps the portrait and how stylized it is, per region.

Structure kept (Xing et al. 2018, Table 1): SSIM, FSIMc and GMSD (``piq``) between the
content and the result over the foreground (the person) and over the background.

Region method: the metric is computed by ``piq`` on the region's bounding box (grown to
at least :data:`MIN_BOX` px a side), with the pixels of the other region replaced in the
result by the content's, so both images agree there. This uses the metrics exactly as
published (no re-implementation of their per-pixel maps, which ``piq`` does not expose),
keeps each metric's local windows whole at the region's edge, and leaves out what a
method did to the other region. The price: the filled pixels match perfectly, so scores
are pulled towards a perfect match by the other region's share of the box (GMSD, a
standard deviation, is shifted too). Compare methods on the same image and mask, not
absolute values across images or with other papers' numbers.

Stylization: Gram distance to the style image over relu1_1..relu5_1 of
:data:`EVALUATOR_BACKBONE` (HED's VGG-16, each layer's mean activation calibrated to 1/8),
Σ_l Σ(G_l(x) − G_l(s))² / (4 N_l²), of the whole result and of its background (masked Gram
of the result's features, normalised by the background area). The evaluator is a network
the methods do not optimise (their default is the original VGG-19), so the measure is not
the objective. The style image is resized to the result's long side first.
"""

from __future__ import annotations

from collections.abc import Sequence

import piq
import torch
import torch.nn.functional as F

from . import masks, models
from .features import FeatureExtractor
from .images import resize_long_side
from .losses import gram_matrix, gram_squared_error, masked_gram
from .vocabulary import STYLE_LAYERS

EVALUATOR_BACKBONE = "vgg16-hed"
"""Feature network of the style distance (calibrated ``layer-mean``)."""
MIN_BOX = 32
"""Smallest side (px) of a region's box: SSIM's 11 px window and GMSD's 2x pooling fit."""
REGION_METRICS = ("ssim", "fsimc", "gmsd")


def region_box(region: torch.Tensor, min_side: int = MIN_BOX) -> tuple[slice, slice] | None:
    """Bounding box (rows, cols) of boolean ``region`` (H, W), grown around its centre to at
    least ``min_side`` (clipped to the image); None when the region is empty."""
    if not bool(region.any()):
        return None
    spans = []
    for axis in (1, 0):
        found = torch.nonzero(region.any(dim=axis)).flatten()
        start, stop, extent = int(found[0]), int(found[-1]) + 1, region.shape[1 - axis]
        side = min(max(stop - start, min_side), extent)
        first = min(max((start + stop) // 2 - side // 2, 0), extent - side)
        spans.append(slice(first, first + side))
    return spans[0], spans[1]


def region_scores(
    content: torch.Tensor, result: torch.Tensor, region: torch.Tensor
) -> dict[str, float] | None:
    """SSIM, FSIMc and GMSD of ``result`` against ``content`` (1, 3, H, W) in [0, 1] over
    boolean ``region`` (H, W) (see the module docstring); None when the region is empty."""
    box = region_box(region)
    if box is None:
        return None
    rows, cols = box
    reference = content[..., rows, cols]
    inside = region[rows, cols]
    image = torch.where(inside, result[..., rows, cols], reference)
    return {
        "ssim": float(piq.ssim(image, reference, data_range=1.0)),
        "fsimc": float(piq.fsim(image, reference, data_range=1.0, chromatic=True)),
        "gmsd": float(piq.gmsd(image, reference, data_range=1.0)),
    }


@torch.no_grad()
def style_distance(
    image: torch.Tensor,
    style: torch.Tensor,
    extractor: FeatureExtractor,
    region: torch.Tensor | None = None,
    layers: Sequence[str] = STYLE_LAYERS,
) -> float | None:
    """Σ over ``layers`` of the Gram distance of ``image`` (1, 3, H, W) to ``style``
    (1, 3, h, w); with ``region`` (1, 1, H, W) weights, of the region's masked Gram
    (normalised by its area). None when the region is empty."""
    if region is not None and not bool(region.any()):
        return None
    feats = extractor(image, tuple(layers))
    targets = extractor(style, tuple(layers))
    total = 0.0
    for layer in layers:
        if region is None:
            gram = gram_matrix(feats[layer])
        else:
            gram = masked_gram(feats[layer], region, "background")
        total += float(gram_squared_error(gram, gram_matrix(targets[layer])))
    return total


def style_evaluator(device: str = "cpu") -> FeatureExtractor:
    """The feature network of :func:`style_distance`: :data:`EVALUATOR_BACKBONE`, calibrated
    (loaded once per process and device)."""
    return models.extractor(EVALUATOR_BACKBONE, "max", "zeros", "layer-mean", device)


def _batch(image: torch.Tensor) -> torch.Tensor:
    """(C, H, W) or (1, C, H, W) -> (1, C, H, W) float."""
    return (image[None] if image.dim() == 3 else image).float()


@torch.no_grad()
def evaluate(
    content: torch.Tensor,
    result: torch.Tensor,
    style: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    extractor: FeatureExtractor | None = None,
) -> dict[str, float | None]:
    """Region metrics of ``result`` against ``content`` and, with ``style``, its style distances.

    Images (3, H, W) or (1, 3, H, W) in [0, 1]; the content is resized to the result's size.
    ``mask``: person mask (H, W), (1, H, W) or (1, 1, H, W), white = person, thresholded at
    0.5 after resizing; None segments the content. ``extractor``: the feature network of
    the style distances (default: :func:`style_evaluator`). Returns fg_ssim,
    fg_fsimc, fg_gmsd, bg_ssim, bg_fsimc, bg_gmsd (None for an empty region),
    style_distance and bg_style_distance (None without ``style``).
    """
    result = _batch(result).clamp(0, 1)
    size = tuple(result.shape[-2:])
    content = _batch(content)
    if tuple(content.shape[-2:]) != size:
        content = F.interpolate(content, size, mode="bicubic", antialias=True)
    content = content.clamp(0, 1)
    if mask is None:
        person = masks.person_mask(content)
    else:
        person = mask.float().reshape(1, 1, *mask.shape[-2:])
        if tuple(person.shape[-2:]) != size:
            person = F.interpolate(person, size, mode="bilinear", antialias=True)
    foreground = (person >= 0.5)[0, 0]
    scores: dict[str, float | None] = {}
    for prefix, region in (("fg", foreground), ("bg", ~foreground)):
        values = region_scores(content, result, region)
        for name in REGION_METRICS:
            scores[f"{prefix}_{name}"] = None if values is None else values[name]
    scores["style_distance"] = scores["bg_style_distance"] = None
    if style is not None:
        extractor = extractor or style_evaluator()
        style_t = resize_long_side(_batch(style), max(size))
        scores["style_distance"] = style_distance(result, style_t, extractor)
        background = (~foreground)[None, None].float()
        scores["bg_style_distance"] = style_distance(result, style_t, extractor, background)
    return scores
