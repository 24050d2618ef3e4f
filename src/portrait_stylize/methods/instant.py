"""instant: Magenta's feed-forward arbitrary style network (Ghiasi, Lee, Kudlur, Dumoulin
and Shlens, "Exploring the structure of a real-time, arbitrary neural artistic
stylization network", BMVC 2017): one forward pass, no optimisation.
"""

from __future__ import annotations

import torch

from ..instant import stylize_instant
from .base import Method, blend_weights
from .settings import Settings


def render_instant(
    settings: Settings, content: torch.Tensor, styles: list[torch.Tensor]
) -> torch.Tensor:
    """Magenta's feed-forward network: content (1, 3, H, W) painted in the blended style
    of styles [(1, 3, h, w)] at ``settings.style_strength``; (1, 3, H, W)."""
    blend = blend_weights(settings, len(styles))
    return stylize_instant(content, styles, blend, settings.style_strength)


INSTANT = Method(
    name="instant",
    description=(
        "Magenta's feed-forward arbitrary style network: one forward pass, no "
        "optimisation; --style-strength 0..1"
    ),
    defaults={"iterations": 0},
    render=render_instant,
    paper="Ghiasi et al., Exploring the structure of a real-time, arbitrary neural "
    "artistic stylization network, BMVC 2017 (Magenta)",
    notes=[
        "each style image's central square goes in at 256 x 256 (the style network's "
        "size); the content at --size on its long side",
        "several styles: their 100-d embeddings are blended by --style-blend-weights",
    ],
    groups=("method", "output"),
)
