"""gatys and gatys-plus: content, Gram style and TV terms (Gatys, Ecker and Bethge,
"Image style transfer using convolutional neural networks", CVPR 2016), with the weights
of Xing et al., "Portrait-aware artistic style transfer", ICIP 2018.

:func:`build_content_style` is also the base of crowson, portrait-aware and
portrait-stylization.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..features import FeatureExtractor
from ..losses import CONVENTIONS, ContentTerm, Objective, StyleTerm, Term, TVTerm, gram_matrix
from .base import Built, blend_weights
from .settings import Settings


@torch.no_grad()
def style_grams(
    objective: Objective,
    styles: list[torch.Tensor],
    layers: Sequence[str],
    blend: Sequence[float],
    by_channels: bool = False,
) -> dict[str, torch.Tensor]:
    """Blend of the style images' Gram matrices: layer -> (1, C, C).

    ``styles``: list of (1, 3, H, W); ``blend`` sums to 1; ``by_channels``: see
    :func:`~portrait_stylize.losses.gram_matrix`.
    """
    grams: dict[str, torch.Tensor] = {}
    for style, share in zip(styles, blend, strict=True):
        for layer, feats in objective.features(style, layers).items():
            grams[layer] = grams.get(layer, 0) + share * gram_matrix(feats, by_channels)
    return grams


def build_content_style(
    settings: Settings,
    extractor: FeatureExtractor,
    content: torch.Tensor,
    styles: list[torch.Tensor],
) -> Built:
    """Content terms, one Gram style term over ``settings.style_layers`` and TV, measured
    by ``settings.convention``: Gatys et al. (neural-style) or Crowson at one scale (the
    scales, Adam and the moving average are in the schedule).

    content (1, 3, H, W); styles list of (1, 3, h, w), all in [0, 1].
    """
    convention = CONVENTIONS[settings.convention]
    probe = Objective(extractor, [], autocast=settings.autocast)
    layer_weights = settings.style_layer_weights or (1.0,) * len(settings.style_layers)
    terms: list[Term] = []
    with torch.no_grad():
        content_feats = probe.features(content, settings.content_layers)
    for layer in settings.content_layers:
        name = "content" if len(settings.content_layers) == 1 else f"content_{layer}"
        terms.append(
            ContentTerm(
                layer, content_feats[layer], settings.content_weight, convention.content, name
            )
        )
    blend = blend_weights(settings, len(styles))
    by_channels = convention.gram_by_channels
    grams = style_grams(probe, styles, settings.style_layers, blend, by_channels)
    layer_weight_map = dict(zip(settings.style_layers, layer_weights, strict=True))
    terms.append(
        StyleTerm(
            grams,
            layer_weight_map,
            settings.style_weight,
            convention.style,
            by_channels=by_channels,
        )
    )
    if settings.tv_weight > 0:
        terms.append(
            TVTerm(
                settings.tv_weight,
                reduction=convention.tv_reduction,
                units=convention.pixel_scale,
            )
        )
    return Built(terms)
