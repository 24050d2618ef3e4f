"""What a method is, and the registry of methods.

A method is one module in this package that declares a :class:`Method` (its defaults,
the settings groups it reads, its prepare step and its builder); ``methods/__init__.py``
lists them in :data:`METHODS`, so importing the package fills the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ..errors import SettingsError
from ..losses import Term

if TYPE_CHECKING:
    from .settings import Settings

OPTIMISED = ("method", "schedule", "losses", "output", "advanced")
"""The settings groups every optimisation method reads (see ``settings.GROUPS``)."""


@dataclass
class Built:
    """What a method builds for one content/style pair at one size.

    ``artifacts`` are images worth saving beside the result, e.g. the mask used:
    name -> (C, H, W) in [0, 1].
    """

    terms: list[Term]
    artifacts: dict[str, torch.Tensor] = field(default_factory=dict)


Builder = Callable[..., Built]
"""build(settings, extractor, content (1, 3, H, W), styles [(1, 3, h, w)], **prepared)."""
Preparer = Callable[["Settings", torch.Tensor], dict[str, Any]]
"""prepare(settings, full-resolution content (3, H, W)) -> keyword arguments of build."""
Renderer = Callable[["Settings", torch.Tensor, list[torch.Tensor]], torch.Tensor]
"""render(settings, content (1, 3, H, W), styles [(1, 3, h, w)]) -> result (1, 3, H, W)."""


@dataclass(frozen=True)
class Method:
    """A named preset: description, default overrides and its loss-term builder.

    ``groups``: the settings groups it reads (a method with settings of its own adds
    their group to :data:`OPTIMISED`); the web form shows those. ``prepare``, when set,
    runs once per run on the full-resolution content; what it returns is passed to
    ``build`` at every scale as keyword arguments. ``render``, when set, makes the
    method feed-forward: it replaces the optimisation (and ``build``).
    """

    name: str
    description: str
    defaults: dict[str, Any]
    build: Builder | None = None
    paper: str = ""
    notes: list[str] = field(default_factory=list)
    prepare: Preparer | None = None
    render: Renderer | None = None
    paper_settings: dict[str, Any] = field(default_factory=dict)
    """What ``paper_exact`` sets besides ``settings.PAPER_EXACT``, where the defaults
    differ from the paper's."""
    groups: tuple[str, ...] = OPTIMISED


METHODS: dict[str, Method] = {}
"""Every method by name, in the order the CLI and the web form list them (filled by
``methods/__init__.py``; the settings read it when they are checked)."""


def blend_weights(settings: Settings, n_styles: int) -> list[float]:
    """Normalised style blend weights."""
    raw = settings.style_blend_weights or (1.0,) * n_styles
    if len(raw) != n_styles or min(raw) < 0 or sum(raw) <= 0:
        raise SettingsError(
            f"style blend weights {raw} do not fit {n_styles} style image(s)",
            "style_blend_weights",
        )
    return [w / sum(raw) for w in raw]


def scale_schedule(settings: Settings) -> list[tuple[int, int]]:
    """(long side, iterations) per scale: ``size / √2^k`` rounded, down to ``min_size``.

    Defaults of crowson: [(128, 1000), (181, 500), (256, 500), (362, 500), (512, 500)].
    """
    if settings.min_size is None or settings.min_size >= settings.size:
        sizes = [settings.size]
    else:
        sizes, k = [], 0
        while (side := round(settings.size / 2 ** (k / 2))) >= settings.min_size:
            sizes.insert(0, side)
            k += 1
    first = (
        settings.iterations if settings.initial_iterations is None else settings.initial_iterations
    )
    return [(side, first if i == 0 else settings.iterations) for i, side in enumerate(sizes)]
