"""Named methods: default settings plus the loss terms they build.

Every field of :class:`Settings` can be overridden from the CLI and the API; a
method is its defaults and a ``build`` function that turns content and style into
loss terms (methods.md: §1 gatys and gatys-plus).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .engine import OPTIMIZERS
from .features import BACKBONES, DEFAULT_BACKBONE, FeatureExtractor
from .losses import ContentTerm, Objective, StyleTerm, Term, TVTerm, gram_matrix

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
INITS = ("noise", "content", "gray")
PRECISIONS = ("fp32", "bf16")


@dataclass
class Settings:
    """Every setting of a run; saved in the run record so the run can be repeated."""

    method: str = "gatys"
    size: int = 512
    """Long side of the result in pixels."""
    iterations: int = 1000
    optimizer: str = "lbfgs"
    lr: float | None = None
    """Step size; None takes the optimizer's default (L-BFGS 1.0, Adam 0.02)."""
    init: str = "noise"
    seed: int = 0
    device: str = "cpu"
    precision: str = "fp32"
    """fp32, or bf16 autocast of the feature network."""
    backbone: str = DEFAULT_BACKBONE
    pooling: str = "max"
    content_layers: tuple[str, ...] = ("relu4_2",)
    content_weight: float = 5.0
    style_layers: tuple[str, ...] = STYLE_LAYERS
    style_layer_weights: tuple[float, ...] | None = None
    """One weight per style layer; None weights each layer 1 (E_s = Σ_l E_s^l)."""
    style_weight: float = 2e2
    tv_weight: float = 0.5
    style_scale: float = 1.0
    """Style images are resized to ``size * style_scale`` on their long side."""
    style_blend_weights: tuple[float, ...] | None = None
    """Relative weights of several style images (normalised to sum 1); None: equal."""

    def validate(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        choices: dict[str, Sequence[str]] = {
            "optimizer": OPTIMIZERS,
            "init": INITS,
            "precision": PRECISIONS,
            "backbone": tuple(BACKBONES),
            "pooling": ("max", "avg"),
            "method": tuple(METHODS),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}")
        if self.size < 16 or self.iterations < 0:
            raise ValueError("size must be at least 16 px and iterations non-negative")
        if self.style_layer_weights is not None and len(self.style_layer_weights) != len(
            self.style_layers
        ):
            raise ValueError("style_layer_weights needs one weight per style layer")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device must be 'cpu' or 'cuda[:N]', not {self.device!r}")


@dataclass
class Built:
    """What a method builds for one content/style pair at one size.

    ``artifacts`` are images worth saving beside the result, e.g. the mask used:
    name -> (C, H, W) in [0, 1].
    """

    terms: list[Term]
    artifacts: dict[str, torch.Tensor] = field(default_factory=dict)


Builder = Callable[[Settings, FeatureExtractor, torch.Tensor, list[torch.Tensor]], Built]


@dataclass(frozen=True)
class Method:
    """A named preset: description, default overrides and its loss-term builder."""

    name: str
    description: str
    defaults: dict[str, Any]
    build: Builder
    paper: str = ""
    notes: list[str] = field(default_factory=list)


@torch.no_grad()
def style_grams(
    objective: Objective, styles: list[torch.Tensor], layers: Sequence[str], blend: Sequence[float]
) -> dict[str, torch.Tensor]:
    """Blend of the style images' Gram matrices: layer -> (1, C, C).

    ``styles``: list of (1, 3, H, W); ``blend`` sums to 1.
    """
    grams: dict[str, torch.Tensor] = {}
    for style, share in zip(styles, blend, strict=True):
        for layer, feats in objective.features(style, layers).items():
            grams[layer] = grams.get(layer, 0) + share * gram_matrix(feats)
    return grams


def blend_weights(settings: Settings, n_styles: int) -> list[float]:
    """Normalised style blend weights."""
    raw = settings.style_blend_weights or (1.0,) * n_styles
    if len(raw) != n_styles or min(raw) < 0 or sum(raw) <= 0:
        raise ValueError(f"style blend weights {raw} do not fit {n_styles} style image(s)")
    return [w / sum(raw) for w in raw]


def build_gatys(
    settings: Settings,
    extractor: FeatureExtractor,
    content: torch.Tensor,
    styles: list[torch.Tensor],
) -> Built:
    """Gatys et al.: content on relu4_2, Gram style on relu1_1..relu5_1, TV (methods.md §1).

    content (1, 3, H, W); styles list of (1, 3, h, w), all in [0, 1].
    """
    probe = Objective(extractor, [], autocast=settings.precision == "bf16")
    layer_weights = settings.style_layer_weights or (1.0,) * len(settings.style_layers)
    terms: list[Term] = []
    with torch.no_grad():
        content_feats = probe.features(content, settings.content_layers)
    for layer in settings.content_layers:
        name = "content" if len(settings.content_layers) == 1 else f"content_{layer}"
        terms.append(ContentTerm(layer, content_feats[layer], settings.content_weight, name=name))
    grams = style_grams(probe, styles, settings.style_layers, blend_weights(settings, len(styles)))
    terms.append(
        StyleTerm(
            grams,
            dict(zip(settings.style_layers, layer_weights, strict=True)),
            settings.style_weight,
        )
    )
    if settings.tv_weight > 0:
        terms.append(TVTerm(settings.tv_weight))
    return Built(terms)


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method(
            name="gatys",
            description="Gatys et al. 2016, paper 1 weights (α, β) = (5, 2e2), L-BFGS from noise",
            defaults={},
            build=build_gatys,
            paper="Gatys, Ecker, Bethge, CVPR 2016 (baseline of Xing et al., ICIP 2018)",
        ),
        Method(
            name="gatys-plus",
            description="Gatys with the style weight × 20 (paper 1's 'Gatys+')",
            defaults={"style_weight": 4e3},
            build=build_gatys,
            paper="Xing et al., ICIP 2018, Fig. 1(c)",
        ),
    )
}


def resolve_settings(method: str, overrides: dict[str, Any] | None = None) -> Settings:
    """The settings of ``method`` with ``overrides`` applied (None values are ignored)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    names = {f.name for f in dataclasses.fields(Settings)}
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(given) - names)
    if unknown:
        raise ValueError(
            f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}"
        )
    values: dict[str, Any] = {**METHODS[method].defaults, **given, "method": method}
    for key in ("content_layers", "style_layers", "style_layer_weights", "style_blend_weights"):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    settings = Settings(**values)
    settings.validate()
    return settings
