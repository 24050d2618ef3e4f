"""Feed-forward arbitrary style transfer: the ``instant`` method and ``--init instant``.

One forward pass of Magenta's network (Ghiasi et al. 2017): each style image's central
square goes in at 256 x 256 and gives a 100-d embedding; several styles are blended by
their weights; ``strength`` < 1 moves the embedding toward the content's own embedding
(the style network run on the content); the transformer paints the content at its size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from . import models
from .nets.magenta import style_square


@torch.no_grad()
def style_embedding(
    content: Tensor, styles: Sequence[Tensor], blend: Sequence[float], strength: float
) -> Tensor:
    """Blended style embedding (1, 100) of styles [(1, 3, h, w)] for content (1, 3, H, W).

    ``blend``: one weight per style, summing to 1; ``strength`` in [0, 1]: 1 is the styles'
    embedding, 0 the content's own.
    """
    if not 0 <= strength <= 1:
        raise ValueError(f"style strength must be in [0, 1], got {strength}")
    predictor, _ = models.magenta(str(content.device))
    squares = [style_square(s.to(content.device)) for s in styles]
    if strength < 1:
        squares.append(style_square(content))
    embeddings = predictor(torch.cat(squares))
    weights = torch.tensor([*blend], dtype=embeddings.dtype, device=embeddings.device)
    style = (weights[:, None] * embeddings[: len(blend)]).sum(0, keepdim=True)
    if strength < 1:
        style = strength * style + (1 - strength) * embeddings[-1:]
    return style


@torch.no_grad()
def stylize_instant(
    content: Tensor, styles: Sequence[Tensor], blend: Sequence[float], strength: float = 1.0
) -> Tensor:
    """Content (1, 3, H, W) painted in the blended style of styles [(1, 3, h, w)]: (1, 3, H, W)."""
    _, transformer = models.magenta(str(content.device))
    return transformer(content, style_embedding(content, styles, blend, strength))
