"""portrait-aware: Xing, Li, Hu, Hu, Ni and Zhang, "Portrait-aware artistic style
transfer", ICIP 2018 (paper 1): α E_c + β E_s + γ E_s' + TV, coarse style on the whole
image and fine style on the background only, from a person mask (docs/results-paper1.md).
"""

from __future__ import annotations

import warnings

import torch

from .. import masks
from ..features import FeatureExtractor
from ..losses import CONVENTIONS, MaskedStyleTerm, Objective
from .base import Built, blend_weights
from .gatys import build_content_style, style_grams
from .settings import Settings


def background_of(settings: Settings, content: torch.Tensor) -> torch.Tensor:
    """Background mask y (1, 1, H, W), 1 on the background, of content (1, 3, H, W).

    From ``settings.mask`` (white = person) when given, else from segmenting the content
    with ``settings.person_model`` (auto: selfie segmentation); thresholded at
    ``mask_threshold`` and feathered by ``mask_feather``. Warns when no pixel is left on
    the person (the run then stylizes the whole image as background).
    """
    if settings.mask:
        size = (content.shape[-2], content.shape[-1])
        person = masks.load_mask_file(settings.mask, size).to(content)
    else:
        with torch.no_grad():
            model = masks.segmenter(settings.person_model, "portrait-aware")
            person = masks.person_mask(content, model)
    background = masks.background_mask(person, settings.mask_threshold, settings.mask_feather)
    if not bool((background < 0.5).any()):
        warnings.warn(
            "no person found in the content image: portrait-aware runs with an empty "
            "foreground (the fine-stroke style loss covers the whole image)",
            stacklevel=2,
        )
    return background


def build_portrait_aware(
    settings: Settings,
    extractor: FeatureExtractor,
    content: torch.Tensor,
    styles: list[torch.Tensor],
) -> Built:
    """Xing et al. 2018: α E_c + β E_s + γ E_s' + TV (the full objective of paper 1).

    E_c and E_s (on ``style_layers``, relu3_1..relu5_1 by default) as in
    :func:`~.gatys.build_content_style`; E_s' on ``background_layers`` of x' = x ∘ y
    against the style Grams. content (1, 3, H, W); styles list of (1, 3, h, w). Artifact
    ``mask``: (1, H, W), white = person (the convention of ``--mask FILE``).
    """
    background = background_of(settings, content)
    built = build_content_style(settings, extractor, content, styles)
    convention = CONVENTIONS[settings.convention]
    probe = Objective(extractor, [], autocast=settings.autocast)
    layers = tuple(settings.background_layers)
    blend = blend_weights(settings, len(styles))
    grams = style_grams(probe, styles, layers, blend, convention.gram_by_channels)
    built.terms.append(
        MaskedStyleTerm(
            grams, background, settings.background_weight, settings.masked_gram_norm, convention
        )
    )
    built.artifacts["mask"] = 1 - background[0]
    return built
