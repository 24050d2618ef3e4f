"""What a method is, without PyTorch: :class:`Method`, what it builds, its schedule.

:mod:`.registry` declares every method (its defaults, the settings groups it reads, and
the functions of its prepare step, builder or renderer, named, so that they and PyTorch
are imported on first use); the code of each family is a module of this package.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import SettingsError

if TYPE_CHECKING:
    import torch

    from ..losses import Term
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
Preparer = Callable[["Settings", "torch.Tensor"], dict[str, Any]]
"""prepare(settings, full-resolution content (3, H, W)) -> keyword arguments of build."""
Renderer = Callable[["Settings", "torch.Tensor", "list[torch.Tensor]"], "torch.Tensor"]
"""render(settings, content (1, 3, H, W), styles [(1, 3, h, w)]) -> result (1, 3, H, W)."""


@dataclass(frozen=True)
class Method:
    """A named preset: description, default overrides and its loss-term builder.

    ``builder``, ``preparer`` and ``renderer`` name functions of this package's modules
    ("gatys.build_content_style": :func:`.gatys.build_content_style`), imported on first
    use as :attr:`build`, :attr:`prepare` and :attr:`render`.
    ``groups``: the settings groups it reads (a method with settings of its own adds
    their group to :data:`OPTIMISED`); the web form shows those. ``prepare``, when set,
    runs once per run on the full-resolution content; what it returns is passed to
    ``build`` at every scale as keyword arguments. ``render``, when set, makes the
    method feed-forward: it replaces the optimisation (and ``build``).
    """

    name: str
    description: str
    defaults: dict[str, Any]
    builder: str | None = None
    paper: str = ""
    notes: list[str] = field(default_factory=list)
    preparer: str | None = None
    renderer: str | None = None
    paper_settings: dict[str, Any] = field(default_factory=dict)
    """What ``paper_exact`` sets besides ``settings.PAPER_EXACT``, where the defaults
    differ from the paper's."""
    groups: tuple[str, ...] = OPTIMISED

    @property
    def build(self) -> Builder | None:
        """Its loss-term builder (:data:`Builder`); None for a feed-forward method."""
        return _function(self.builder)

    @property
    def prepare(self) -> Preparer | None:
        """Its prepare step (:data:`Preparer`), if any."""
        return _function(self.preparer)

    @property
    def render(self) -> Renderer | None:
        """Its feed-forward renderer (:data:`Renderer`), if any."""
        return _function(self.renderer)


def _function(name: str | None) -> Any:
    """Function ``module.function`` of this package, its module imported; None for None."""
    if name is None:
        return None
    module, _, function = name.rpartition(".")
    return getattr(importlib.import_module(f"{__package__}.{module}"), function)


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

    Steps per scale: ``iterations`` at each, the first ``initial_iterations`` when set;
    with ``step_exponent`` e above 0, a scale of long side s takes ``iterations`` x
    (first side / s)^e (rounded): fewer steps where a step costs more.
    Defaults of crowson: [(128, 1000), (181, 500), (256, 500), (362, 500), (512, 500)].
    """
    if settings.min_size is None or settings.min_size >= settings.size:
        sizes = [settings.size]
    else:
        sizes, k = [], 0
        while (side := round(settings.size / 2 ** (k / 2))) >= settings.min_size:
            sizes.insert(0, side)
            k += 1
    steps = [
        round(settings.iterations * (sizes[0] / side) ** settings.step_exponent) for side in sizes
    ]
    if settings.initial_iterations is not None:
        steps[0] = settings.initial_iterations
    return list(zip(sizes, steps, strict=True))
