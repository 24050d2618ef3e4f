"""Small composable loss terms and the objective that sums them.

A method is a list of terms; each term reads the VGG features it needs (computed
once per evaluation by :class:`Objective`) or the image itself, and returns an
unweighted scalar. The objective weights and sums them and reports each weighted
term by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from .features import FeatureExtractor
from .vocabulary import CONVENTION_NAMES, MASKED_GRAM_NORMS

Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def gram_matrix(features: torch.Tensor, by_channels: bool = False) -> torch.Tensor:
    """Feature correlations normalised by the number of positions.

    (B, C, H, W) -> (B, C, C) float32, G = F Fᵀ / (H·W) (Gatys; Xing et al. eq. 3), or
    F Fᵀ / (C·H·W) with ``by_channels`` (neural-style). The product runs in the features'
    dtype: bfloat16 features (autocast) are multiplied in bfloat16 with float32
    accumulation, about 3x faster on the CPU than in float32. Channels-last features
    are read as (B, H·W, C) rows without a copy.
    """
    b, c, h, w = features.shape
    scale = h * w * (c if by_channels else 1)
    if not features.is_contiguous() and features.is_contiguous(memory_format=torch.channels_last):
        rows = features.permute(0, 2, 3, 1).reshape(b, h * w, c)  # a view: no copy
        return (rows.transpose(1, 2) @ rows).float() / scale
    flat = features.reshape(b, c, h * w)
    return (flat @ flat.transpose(1, 2)).float() / scale


def mean_squared_error(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Σ(x − t)² / (N·D): Gatys' content loss (Xing et al. eq. 2)."""
    return (value - target).pow(2).mean()


def gram_squared_error(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Σ(G − A)² / (4 N²) for (B, N, N) Grams, averaged over the batch (Xing et al. eq. 3)."""
    n = value.shape[-1]
    return (value - target).pow(2).sum(dim=(-2, -1)).mean() / (4 * n * n)


def normalized_squared_error(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Σ(x − t)² / (Σ|x − t| + 1e-8): Crowson's NSE, whose gradient has L1 norm ≈ 1."""
    diff = value - target
    return diff.pow(2).sum() / (diff.abs().sum() + 1e-8)


@dataclass(frozen=True)
class Convention:
    """How a family of methods measures its losses and steps its pixels (docs/backbones.md).

    neural-style (Gatys, Xing et al.): mean squared errors of raw features and of Grams
    F Fᵀ / (C·H·W), TV = ½ Σ of squared neighbour differences of the 0-255 image, pixels
    optimised in 0-255 units. crowson: normalised squared errors, Grams F Fᵀ / (H·W), TV =
    mean of squared differences of the [0, 1] image, pixels in [0, 1].
    """

    content: Criterion
    style: Criterion
    gram_by_channels: bool
    tv_reduction: str
    pixel_scale: float


CONVENTIONS: dict[str, Convention] = dict(
    zip(
        CONVENTION_NAMES,  # neural-style, crowson
        (
            Convention(mean_squared_error, mean_squared_error, True, "half-sum", 255.0),
            Convention(normalized_squared_error, normalized_squared_error, False, "mean", 1.0),
        ),
        strict=True,
    )
)


class Term(nn.Module):
    """One weighted loss term.

    ``layers`` are the VGG layers it reads from the (optionally ``view``-transformed)
    image; a term with no layers reads the image itself, and with ``every`` above 1 the
    objective evaluates it only every that many steps, reusing its last gradient between.
    """

    every: int = 1

    def __init__(
        self, name: str, weight: float, layers: Sequence[str] = (), view: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.name = name
        self.weight = float(weight)
        self.layers = tuple(layers)
        self.view = view

    def forward(self, features: dict[str, torch.Tensor], image: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class ContentTerm(Term):
    """Distance of the image's activations at one layer to the content's."""

    def __init__(
        self,
        layer: str,
        target: torch.Tensor,
        weight: float,
        criterion: Criterion = mean_squared_error,
        name: str = "content",
    ) -> None:
        super().__init__(name, weight, (layer,))
        self.register_buffer("target", target.detach().float())
        self.criterion = criterion

    def forward(self, features: dict[str, torch.Tensor], image: torch.Tensor) -> torch.Tensor:
        return self.criterion(features[self.layers[0]].float(), self.target)


class StyleTerm(Term):
    """Weighted sum over layers of a distance between Gram matrices and style targets.

    ``targets``: layer -> (1, C, C) target Gram; ``layer_weights``: layer -> weight;
    ``by_channels``: the Grams are also divided by C (see :func:`gram_matrix`).
    """

    def __init__(
        self,
        targets: dict[str, torch.Tensor],
        layer_weights: dict[str, float],
        weight: float,
        criterion: Criterion = gram_squared_error,
        name: str = "style",
        view: nn.Module | None = None,
        by_channels: bool = False,
    ) -> None:
        super().__init__(name, weight, tuple(targets), view)
        self.targets = nn.ParameterDict(
            {k: nn.Parameter(v.detach(), requires_grad=False) for k, v in targets.items()}
        )
        self.layer_weights = dict(layer_weights)
        self.criterion = criterion
        self.by_channels = by_channels

    def gram(self, features: torch.Tensor) -> torch.Tensor:
        """The Gram matrices the targets are compared with: (B, C, h, w) -> (B, C, C)."""
        return gram_matrix(features, self.by_channels)

    def forward(self, features: dict[str, torch.Tensor], image: torch.Tensor) -> torch.Tensor:
        total = features[self.layers[0]].new_zeros(())
        for layer in self.layers:
            gram = self.gram(features[layer])
            total = total + self.layer_weights[layer] * self.criterion(gram, self.targets[layer])
        return total


def masked_gram(
    features: torch.Tensor, mask: torch.Tensor, normalise: str, by_channels: bool = False
) -> torch.Tensor:
    """Gram matrix of the features inside a region: (B, C, h, w), (B|1, 1, H, W) -> (B, C, C).

    ``mask`` (weights in [0, 1], 1 = inside) is area-resized to (h, w); each position's
    outer product f fᵀ is weighted by it. ``normalise``: "background" divides by the
    region's area Σm, so the Gram is a per-position average like the style image's Gram
    and the style target is reachable whatever share of the frame the region covers;
    "full" divides by h·w, the whole image's area (the literal reading of Xing et al.
    eq. 6), which makes the target for the region's statistics G_s / (region share).
    ``by_channels`` also divides by C (see :func:`gram_matrix`).
    """
    if normalise not in MASKED_GRAM_NORMS:
        raise ValueError(f"masked_gram_norm must be one of {', '.join(MASKED_GRAM_NORMS)}")
    h, w = features.shape[-2:]
    weights = F.adaptive_avg_pool2d(mask, (h, w)) if mask.shape[-2:] != (h, w) else mask
    gram = gram_matrix(features * weights.sqrt().to(features.dtype), by_channels)
    if normalise == "full":
        return gram
    area = weights.sum(dim=(-3, -2, -1)).clamp_min(1e-6)
    return gram * (h * w / area).view(-1, 1, 1)


class MaskView(nn.Module):
    """The image seen by the background style loss: x' = x ∘ y for y (1, 1, H, W)."""

    mask: torch.Tensor

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.detach())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return image * self.mask


class MaskedStyleTerm(StyleTerm):
    """E_s' of Xing et al. 2018 (eq. 6): Gram loss of x' = x ∘ y, its Grams restricted to
    the mask.

    Inside the person x' is black; the Gram leaves those positions out (:func:`masked_gram`),
    so only the background's statistics are matched to the style targets (1, C, C).
    """

    def __init__(
        self,
        targets: dict[str, torch.Tensor],
        background: torch.Tensor,
        weight: float,
        normalise: str,
        convention: Convention,
        name: str = "background_style",
    ) -> None:
        super().__init__(
            targets,
            dict.fromkeys(targets, 1.0),
            weight,
            convention.style,
            name=name,
            view=MaskView(background),
            by_channels=convention.gram_by_channels,
        )
        self.normalise = normalise

    def gram(self, features: torch.Tensor) -> torch.Tensor:
        mask = cast(MaskView, self.view).mask
        return masked_gram(features, mask, self.normalise, self.by_channels)


TV_REDUCTIONS = ("mean", "half-sum")


class TVTerm(Term):
    """Total variation of the image in ``units`` per [0, 1] (see :func:`total_variation`)."""

    def __init__(
        self, weight: float, name: str = "tv", reduction: str = "mean", units: float = 1.0
    ) -> None:
        super().__init__(name, weight)
        if reduction not in TV_REDUCTIONS:
            raise ValueError(f"TV reduction must be one of {', '.join(TV_REDUCTIONS)}")
        self.reduction = reduction
        self.units = units

    def forward(self, features: dict[str, torch.Tensor], image: torch.Tensor) -> torch.Tensor:
        return total_variation(image * self.units, self.reduction)


def total_variation(image: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """(B, C, H, W) -> Δx² + Δy² (zero difference at the far edges), averaged over the
    elements ("mean", Crowson) or summed and halved ("half-sum", neural-style's TV)."""
    dx = torch.nn.functional.pad(image[..., :, 1:] - image[..., :, :-1], (0, 1, 0, 0))
    dy = torch.nn.functional.pad(image[..., 1:, :] - image[..., :-1, :], (0, 0, 0, 1))
    squares = dx.pow(2) + dy.pow(2)
    return squares.mean() if reduction == "mean" else 0.5 * squares.sum()


class Objective(nn.Module):
    """Σ weight · term, evaluating the feature network once per distinct view.

    ``forward(image)``: image (1, 3, H, W) -> (total loss, {term name: weighted value}).
    ``autocast`` runs the feature network in bfloat16 (features stay bfloat16; terms
    compute their losses in float32); ``channels_last`` feeds it channels-last images
    (:mod:`~portrait_stylize.machine` measures which layout is faster).
    """

    def __init__(
        self,
        extractor: FeatureExtractor,
        terms: Sequence[Term],
        autocast: bool = False,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.extractor = extractor
        self.terms = nn.ModuleList(terms)
        self.autocast = autocast
        self.channels_last = channels_last
        self.step = 0
        self.kept: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        """Per reused term (:meth:`_reused`): its value and gradient at its last evaluation."""

    def features(self, image: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """Calibrated features of (B, 3, H, W) ``image`` at ``layers`` (bfloat16 under
        autocast, else float32)."""
        if not layers:
            return {}
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        with torch.autocast(image.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            return self.extractor(image, tuple(layers))

    def at_step(self, step: int) -> None:
        """Tell every part that draws at random per step (``at_step(step)``) which step
        this is, so its draws depend on the step alone (a resumed run repeats them)."""
        self.step = step
        for module in self.modules():
            if module is not self and hasattr(module, "at_step"):
                module.at_step(step)

    def _reused(self, term: Term, image: torch.Tensor) -> torch.Tensor:
        """An image-only term evaluated every ``term.every`` steps: at those steps its value
        and gradient are computed and kept; in between, a stand-in with the kept value
        whose gradient is the kept gradient (a first-order reuse, no network run)."""
        kept = self.kept.get(term.name)
        if kept is None or self.step % term.every == 0:
            leaf = image.detach().requires_grad_(True)
            with torch.enable_grad():
                value = term({}, leaf)
            (grad,) = torch.autograd.grad(value, leaf)
            kept = self.kept[term.name] = (value.detach(), grad)
        value, grad = kept
        linear = (image * grad).sum()
        return linear - linear.detach() + value

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        by_view: dict[int, tuple[nn.Module | None, set[str]]] = {}
        for term in self.terms:
            by_view.setdefault(id(term.view), (term.view, set()))[1].update(term.layers)
        features: dict[int, dict[str, torch.Tensor]] = {
            key: self.features(view(image) if view is not None else image, sorted(layers))
            for key, (view, layers) in by_view.items()
        }
        total = image.new_zeros(())
        values: dict[str, float] = {}
        for term in self.terms:
            if term.every > 1 and not term.layers:
                value = term.weight * self._reused(term, image)
            else:
                value = term.weight * term(features[id(term.view)], image)
            total = total + value
            values[term.name] = float(value.detach())
        return total, values
