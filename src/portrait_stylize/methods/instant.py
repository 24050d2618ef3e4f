"""instant: Magenta's feed-forward arbitrary style network (Ghiasi, Lee, Kudlur, Dumoulin
and Shlens, "Exploring the structure of a real-time, arbitrary neural artistic
stylization network", BMVC 2017): one forward pass, no optimisation.
"""

from __future__ import annotations

import torch

from ..instant import stylize_instant
from .base import blend_weights
from .settings import Settings


def render_instant(
    settings: Settings, content: torch.Tensor, styles: list[torch.Tensor]
) -> torch.Tensor:
    """Magenta's feed-forward network: content (1, 3, H, W) painted in the blended style
    of styles [(1, 3, h, w)] at ``settings.style_strength``; (1, 3, H, W)."""
    blend = blend_weights(settings, len(styles))
    return stylize_instant(content, styles, blend, settings.style_strength)
