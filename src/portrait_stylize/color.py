"""Colour preservation by luminance-only transfer (Gatys et al. 2016, "Controlling
perceptual factors in neural style transfer", §5.1).

The style is transferred between luminance images: content and style become gray (the
Y of YIQ, repeated on three channels), the style's luminance shifted and scaled to the
content's mean and standard deviation; the result's luminance is then recombined with
the content's chroma (I and Q).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]]
)


def rgb_to_yiq(rgb: Tensor) -> Tensor:
    """(..., 3, H, W) RGB -> (..., 3, H, W) YIQ."""
    return torch.einsum("ij,...jhw->...ihw", _RGB_TO_YIQ.to(rgb), rgb)


def yiq_to_rgb(yiq: Tensor) -> Tensor:
    """(..., 3, H, W) YIQ -> (..., 3, H, W) RGB (not clamped)."""
    return torch.einsum("ij,...jhw->...ihw", torch.linalg.inv(_RGB_TO_YIQ).to(yiq), yiq)


def gray(luminance: Tensor) -> Tensor:
    """(..., 1, H, W) luminance -> the gray RGB image (..., 3, H, W) with that luminance."""
    return luminance.expand(*luminance.shape[:-3], 3, *luminance.shape[-2:]).clamp(0, 1)


def luminance_only(content: Tensor, styles: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
    """The inputs of a luminance-only transfer: content (3, H, W) and styles [(3, h, w)]
    in [0, 1] -> their gray images, each style's luminance matched to the content's
    mean and standard deviation."""
    target = rgb_to_yiq(content)[:1]
    mean, std = target.mean(), target.std()
    matched = []
    for style in styles:
        y = rgb_to_yiq(style)[:1]
        matched.append(gray((y - y.mean()) / y.std().clamp_min(1e-6) * std + mean))
    return gray(target), matched


def with_content_chroma(result: Tensor, content: Tensor) -> Tensor:
    """The luminance of result (3, H, W) with the chroma of content (3, H', W') resized
    to it: (3, H, W) RGB in [0, 1]."""
    if content.shape[-2:] != result.shape[-2:]:
        size = (result.shape[-2], result.shape[-1])
        content = F.interpolate(content[None], size, mode="bicubic", antialias=True)[0]
    yiq = torch.cat([rgb_to_yiq(result)[:1], rgb_to_yiq(content.to(result))[1:]])
    return yiq_to_rgb(yiq).clamp(0, 1)
