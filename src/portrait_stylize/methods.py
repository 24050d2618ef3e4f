"""Named methods: default settings plus the loss terms they build.

Every field of :class:`Settings` can be overridden from the CLI and the API; a
method is its defaults and a ``build`` function that turns content and style into
loss terms (methods.md: §1 gatys and gatys-plus).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from . import masks
from .engine import OPTIMIZERS, bf16_is_fast
from .errors import SettingsError
from .face_losses import FACE_LOSSES, FACE_MODELS, FaceIDTerm, MeshTerm, content_faces, scale_boxes
from .faces import DETECTORS
from .features import BACKBONES, CALIBRATIONS, DEFAULT_BACKBONE, FeatureExtractor
from .instant import stylize_instant
from .losses import (
    ContentTerm,
    Criterion,
    Objective,
    StyleTerm,
    Term,
    TVTerm,
    gram_matrix,
    mean_squared_error,
    normalized_squared_error,
)

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
BACKGROUND_LAYERS = ("relu1_1", "relu2_1", "relu3_1")
MASKED_GRAM_NORMS = ("background", "full")
INITS = ("mean", "noise", "content", "gray", "uniform", "style-mean", "instant")
CROWSON_LAYER_WEIGHTS = tuple(w / 341 for w in (256.0, 64.0, 16.0, 4.0, 1.0))
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class Convention:
    """How a family of presets measures its losses and steps its pixels (docs/backbones.md).

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


CONVENTIONS: dict[str, Convention] = {
    "neural-style": Convention(mean_squared_error, mean_squared_error, True, "half-sum", 255.0),
    "crowson": Convention(normalized_squared_error, normalized_squared_error, False, "mean", 1.0),
}


@dataclass
class Settings:
    """Every setting of a run; saved in the run record so the run can be repeated."""

    method: str = "gatys"
    size: int = 512
    """Long side of the result in pixels (the last scale's, for multi-scale methods)."""
    min_size: int | None = None
    """Multi-scale: the first scale's long side (scales grow by √2 up to ``size``);
    None optimises at ``size`` only."""
    initial_iterations: int | None = None
    """Iterations at the first scale (None: ``iterations``)."""
    iterations: int = 1000
    """Iterations (at each later scale, for multi-scale methods)."""
    ema_decay: float | None = None
    """Output the bias-corrected moving average of the iterates with this decay."""
    converge_tol: float = 0.0
    """End a scale early once the image changed by less than this mean absolute amount
    over 50 steps (0: run every iteration)."""
    paper_exact: bool = False
    """The paper's exact settings: fp32, no early end of a scale (see :data:`PAPER_EXACT`)
    and the method's own (portrait-stylization: the paper's FaceID loss)."""
    first_padding: str = "zeros"
    """Padding of the feature network's first conv: zeros, or replicate (Crowson)."""
    optimizer: str = "lbfgs"
    lr: float | None = None
    """Step size; None takes the optimizer's default (L-BFGS 1.0, Adam 0.02)."""
    init: str = "mean"
    """Start image: mean (ImageNet mean colour, neural-style's start), noise (mid-grey plus
    Gaussian noise), content, gray, uniform, style-mean, instant (the feed-forward result)."""
    seed: int = 0
    device: str = "cpu"
    precision: str = "auto"
    """bf16: autocast of the feature networks (VGG, FaceNet) and their Gram matrices, about
    1.9x faster on CPUs with bf16 units (AVX-512 BF16, AMX) and on GPUs, but 20-30x slower
    on CPUs without them; fp32: the papers' precision; auto: bf16 where it is fast."""
    backbone: str = DEFAULT_BACKBONE
    calibration: str = "none"
    """Scaling of the backbone's activations: none (raw, the papers' network as is),
    torchvision (the size torchvision's VGG-19 gives, Crowson's tuning) or layer-mean
    (every layer's mean activation set to 1/8)."""
    convention: str = "neural-style"
    """Loss normalisation and pixel units: neural-style (Gatys family) or crowson."""
    pooling: str = "max"
    content_layers: tuple[str, ...] = ("relu4_2",)
    content_weight: float = 5.0
    style_layers: tuple[str, ...] = STYLE_LAYERS
    style_layer_weights: tuple[float, ...] | None = None
    """One weight per style layer; None weights each layer 1 (E_s = Σ_l E_s^l)."""
    style_weight: float = 2e2
    tv_weight: float = 1e-3
    style_scale: float = 1.0
    """Style images are resized to ``size * style_scale`` on their long side."""
    style_blend_weights: tuple[float, ...] | None = None
    """Relative weights of several style images (normalised to sum 1); None: equal."""
    background_weight: float = 2e4
    """Weight γ of the background style loss E_s' (portrait-aware only)."""
    background_layers: tuple[str, ...] = BACKGROUND_LAYERS
    """VGG layers of E_s', read from x' = x ∘ y (portrait-aware only)."""
    mask: str | None = None
    """Person mask file (white = person) used instead of segmenting the content (portrait-aware)."""
    mask_threshold: float = 0.5
    """Person probability at or above which a pixel belongs to the portrait."""
    mask_feather: float = 0.0
    """Sigma in pixels of a Gaussian blur of the background mask's edge (0: hard edge)."""
    masked_gram_norm: str = "background"
    """Divide the background Gram by the background's area ("background") or the whole
    image's ("full"); see :func:`masked_gram`."""
    face_weight: float = 0.0
    """Weight of the FaceID loss (portrait-stylization); activations: split equally over
    its 5 layers."""
    face_loss: str = "embedding"
    """FaceID form: embedding (hinge on each face's FaceNet embedding cosine at
    ``identity``) or activations (the paper's NSE of five early FaceNet layers)."""
    identity: float = 0.9
    """How much of the person each face keeps (embedding FaceID): 0 paints freely, 1 keeps
    the face as close to the photograph's identity as the loss can; the hinge's target
    cosine."""
    mesh_weight: float = 0.0
    """Weight of the FaceMesh landmark loss (portrait-stylization)."""
    face_detector: str = "mtcnn"
    """Face detector run once on the full-resolution content: mtcnn or blazeface."""
    face_padding: float = 0.2
    """Each face box is padded by this fraction of its longer side on every side, then squared."""
    min_face_fraction: float = 0.01
    """Faces whose detected box covers less than this fraction of the image are left out."""
    face_model: str = "facenet-casia"
    """FaceNet weights of the FaceID loss: facenet-casia (offline) or facenet-vggface2 (online,
    the paper's)."""
    background: str = "keep"
    """Replace the content's background before stylizing: keep, color:#RRGGBB or texture:FILE."""
    preserve_colors: bool = False
    """Transfer luminance only and keep the content's colours (Gatys et al. 2016)."""
    style_strength: float = 1.0
    """instant (and --init instant): 1 paints with the style's embedding, 0 with the
    content's own; in between, the embeddings are interpolated."""

    @property
    def autocast(self) -> bool:
        """Whether the feature networks run under bfloat16 autocast."""
        if self.precision == "auto":
            return bf16_is_fast(self.device)
        return self.precision == "bf16"

    def validate(self) -> None:
        """Raise SettingsError naming the first setting out of range."""
        choices: dict[str, Sequence[str]] = {
            "optimizer": OPTIMIZERS,
            "init": INITS,
            "precision": PRECISIONS,
            "backbone": tuple(BACKBONES),
            "calibration": CALIBRATIONS,
            "convention": tuple(CONVENTIONS),
            "pooling": ("max", "avg"),
            "first_padding": ("zeros", "replicate"),
            "method": tuple(METHODS),
            "masked_gram_norm": MASKED_GRAM_NORMS,
            "face_detector": DETECTORS,
            "face_model": FACE_MODELS,
            "face_loss": FACE_LOSSES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise SettingsError(f"{name} must be one of {', '.join(allowed)}")
        if self.size < 16 or self.iterations < 0:
            raise SettingsError("size must be at least 16 px and iterations non-negative")
        if self.style_layer_weights is not None and len(self.style_layer_weights) != len(
            self.style_layers
        ):
            raise SettingsError("style_layer_weights needs one weight per style layer")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise SettingsError(f"device must be 'cpu' or 'cuda[:N]', not {self.device!r}")
        if min(self.face_weight, self.mesh_weight, self.face_padding) < 0:
            raise SettingsError("face_weight, mesh_weight and face_padding must be non-negative")
        if self.converge_tol < 0:
            raise SettingsError("converge_tol must be non-negative")
        exact = paper_exact_settings(self.method)
        if self.paper_exact and any(getattr(self, k) != v for k, v in exact.items()):
            raise SettingsError(f"paper_exact needs {exact}")
        if not 0 <= self.min_face_fraction < 1:
            raise SettingsError("min_face_fraction must be in [0, 1)")
        if not 0 <= self.style_strength <= 1:
            raise SettingsError("style_strength must be in [0, 1]")
        if not 0 <= self.identity <= 1:
            raise SettingsError("identity must be in [0, 1]")
        masks.parse_background(self.background)


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
Preparer = Callable[[Settings, torch.Tensor], dict[str, Any]]
"""prepare(settings, full-resolution content (3, H, W)) -> keyword arguments of build."""
Renderer = Callable[[Settings, torch.Tensor, list[torch.Tensor]], torch.Tensor]
"""render(settings, content (1, 3, H, W), styles [(1, 3, h, w)]) -> result (1, 3, H, W)."""


@dataclass(frozen=True)
class Method:
    """A named preset: description, default overrides and its loss-term builder.

    ``prepare``, when set, runs once per run on the full-resolution content; what it
    returns is passed to ``build`` at every scale as keyword arguments. ``render``, when
    set, makes the method feed-forward: it replaces the optimisation (and ``build``).
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
    """What ``paper_exact`` sets besides :data:`PAPER_EXACT`, where the defaults differ
    from the paper's."""


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


def blend_weights(settings: Settings, n_styles: int) -> list[float]:
    """Normalised style blend weights."""
    raw = settings.style_blend_weights or (1.0,) * n_styles
    if len(raw) != n_styles or min(raw) < 0 or sum(raw) <= 0:
        raise SettingsError(f"style blend weights {raw} do not fit {n_styles} style image(s)")
    return [w / sum(raw) for w in raw]


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


def uses_face_id(settings: Settings) -> bool:
    """Whether the FaceID term is built: a positive weight, and for the embedding hinge a
    positive identity (at 0 it could never pull)."""
    return settings.face_weight > 0 and (settings.face_loss != "embedding" or settings.identity > 0)


def prepare_portrait_stylization(settings: Settings, content: torch.Tensor) -> dict[str, Any]:
    """Faces of the full-resolution content (3, H, W), detected once per run:
    {"faces": normalised boxes (M, 4)}; nothing when no face term is built."""
    if not uses_face_id(settings) and settings.mesh_weight == 0:
        return {}
    return {
        "faces": content_faces(
            content,
            settings.face_detector,
            settings.face_padding,
            settings.min_face_fraction,
        )
    }


def build_portrait_stylization(
    settings: Settings,
    extractor: FeatureExtractor,
    content: torch.Tensor,
    styles: list[torch.Tensor],
    faces: torch.Tensor | None = None,
) -> Built:
    """Portrait Stylization at one scale (methods.md §4): crowson plus the FaceID and mesh
    terms on the content's faces.

    content (1, 3, H, W); styles list of (1, 3, h, w). ``faces``: normalised boxes
    (M, 4) from :func:`prepare_portrait_stylization`; None detects them in ``content``.
    A term whose weight (or identity) is 0 is left out, so without both this is exactly
    crowson.
    """
    built = build_content_style(settings, extractor, content, styles)
    if not uses_face_id(settings) and settings.mesh_weight == 0:
        return built
    if faces is None:
        faces = prepare_portrait_stylization(settings, content[0])["faces"]
    if len(faces) == 0:
        return built
    boxes = scale_boxes(faces, (content.shape[-2], content.shape[-1]))
    if uses_face_id(settings):
        built.terms.append(
            FaceIDTerm(
                boxes,
                content,
                settings.face_weight,
                settings.face_model,
                autocast=settings.autocast,
                loss=settings.face_loss,
                identity=settings.identity,
            )
        )
    if settings.mesh_weight > 0:
        built.terms.append(MeshTerm(boxes, content, settings.mesh_weight))
    return built


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
    ``by_channels`` also divides by C (see :func:`~portrait_stylize.losses.gram_matrix`).
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
    """E_s' of Xing et al.: Gram loss of x' = x ∘ y, its Grams restricted to the mask.

    Inside the person x' is black; the Gram leaves those positions out (``masked_gram``),
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

    def forward(self, features: dict[str, torch.Tensor], image: torch.Tensor) -> torch.Tensor:
        mask = cast(MaskView, self.view).mask
        total = image.new_zeros(())
        for layer in self.layers:
            gram = masked_gram(features[layer], mask, self.normalise, self.by_channels)
            total = total + self.layer_weights[layer] * self.criterion(gram, self.targets[layer])
        return total


def background_of(settings: Settings, content: torch.Tensor) -> torch.Tensor:
    """Background mask y (1, 1, H, W), 1 on the background, of content (1, 3, H, W).

    From ``settings.mask`` (white = person) when given, else from segmenting the content;
    thresholded at ``mask_threshold`` and feathered by ``mask_feather``. Warns when no
    pixel is left on the person (the run then stylizes the whole image as background).
    """
    if settings.mask:
        size = (content.shape[-2], content.shape[-1])
        person = masks.load_mask_file(settings.mask, size).to(content)
    else:
        with torch.no_grad():
            person = masks.person_mask(content)
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
    """Xing et al. 2018 (methods.md §2): α E_c + β E_s + γ E_s' + TV.

    E_c and E_s (on ``style_layers``, relu3_1..relu5_1 by default) as in
    :func:`build_content_style`; E_s' on ``background_layers`` of x' = x ∘ y against the
    style Grams. content (1, 3, H, W); styles list of (1, 3, h, w). Artifact ``mask``:
    (1, H, W), white = person (the convention of ``--mask FILE``).
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


def render_instant(
    settings: Settings, content: torch.Tensor, styles: list[torch.Tensor]
) -> torch.Tensor:
    """Magenta's feed-forward network: content (1, 3, H, W) painted in the blended style
    of styles [(1, 3, h, w)] at ``settings.style_strength``; (1, 3, H, W)."""
    blend = blend_weights(settings, len(styles))
    return stylize_instant(content, styles, blend, settings.style_strength)


PAPER_EXACT: dict[str, Any] = {"precision": "fp32", "converge_tol": 0.0}
"""What ``paper_exact`` sets over every method's speed defaults (the papers' iteration
counts are the defaults already)."""


def paper_exact_settings(method: str) -> dict[str, Any]:
    """Everything ``paper_exact`` sets for ``method``."""
    return {**PAPER_EXACT, **METHODS[method].paper_settings}


CROWSON_DEFAULTS: dict[str, Any] = {
    "optimizer": "adam",
    "lr": 0.02,
    "init": "content",
    "min_size": 128,
    "initial_iterations": 1000,
    "iterations": 500,
    "ema_decay": 0.99,
    "converge_tol": 5e-3,
    "first_padding": "replicate",
    "convention": "crowson",
    # Kept on the backbone its weights were balanced on here (docs/backbones.md): on the
    # original VGG-19 in torchvision units the face loss at 0.015 no longer keeps faces.
    "backbone": "vgg16-hed",
    "calibration": "layer-mean",
    "content_weight": 0.015,
    "style_weight": 1.0,
    "style_layer_weights": CROWSON_LAYER_WEIGHTS,
    "tv_weight": 2.0,
}
METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method(
            name="gatys",
            description="Gatys et al. 2016, paper 1 weights (α, β) = (5, 2e2), L-BFGS from noise",
            defaults={},
            build=build_content_style,
            paper="Gatys, Ecker, Bethge, CVPR 2016 (baseline of Xing et al., ICIP 2018)",
        ),
        Method(
            name="gatys-plus",
            description="Gatys with the style weight × 20 (paper 1's 'Gatys+')",
            defaults={"style_weight": 4e3},
            build=build_content_style,
            paper="Xing et al., ICIP 2018, Fig. 1(c)",
        ),
        Method(
            name="crowson",
            description=(
                "Crowson's multi-scale style transfer: Adam (lr 0.02) on scales 128→512 "
                "(√2 apart), normalised squared errors, output the moving average"
            ),
            defaults=CROWSON_DEFAULTS,
            build=build_content_style,
            paper="Crowson, style-transfer-pytorch (base of Portrait Stylization)",
        ),
        Method(
            name="portrait-aware",
            description=(
                "Xing et al. 2018: coarse style (relu3_1-relu5_1) on the whole image, fine "
                "style (relu1_1-relu3_1, weight γ = 2e4) on the background only"
            ),
            defaults={"style_layers": ("relu3_1", "relu4_1", "relu5_1")},
            build=build_portrait_aware,
            paper="Xing et al., Portrait-aware artistic style transfer, ICIP 2018",
            notes=[
                "person mask: MediaPipe selfie segmentation thresholded at mask_threshold "
                "(the paper: FCN-8s person class), or --mask FILE (white = person)",
                "masked Gram normalised by the background area by default "
                "(--masked-gram-norm full: by the whole image's, the literal eq. 6)",
            ],
        ),
        Method(
            name="portrait-stylization",
            description=(
                "Portrait Stylization: crowson plus a FaceID loss on the faces' FaceNet "
                "embeddings (--identity 0..1) and an optional FaceMesh landmark loss"
            ),
            defaults={
                **CROWSON_DEFAULTS,
                "face_loss": "embedding",
                "face_weight": 0.05,
                "identity": 0.9,
            },
            paper_settings={"face_loss": "activations", "face_weight": 0.015},
            build=build_portrait_stylization,
            prepare=prepare_portrait_stylization,
            paper="Portrait Stylization: Artistic Style Transfer with Auxiliary Networks "
            "for Human Face Stylization (reference defaults)",
            notes=[
                "faces: detected once on the full-resolution content (--face-detector), "
                "padded by --face-padding of their longer side, squared; faces under "
                "--min-face-fraction of the image are left out; no usable face: a warning, "
                "and the run is plain crowson",
                "FaceNet facenet-casia (offline; the paper's: facenet-vggface2, --face-model), "
                "first conv replicate-padded",
                "face_weight 0.015 keeps faces close to the photograph; about 0.001-0.002 "
                "paints them on a large single portrait but loses small faces",
            ],
        ),
        Method(
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
        ),
    )
}


def resolve_settings(method: str, overrides: dict[str, Any] | None = None) -> Settings:
    """The settings of ``method`` with ``overrides`` applied (None values are ignored)."""
    if method not in METHODS:
        raise SettingsError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    names = {f.name for f in dataclasses.fields(Settings)}
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(given) - names)
    if unknown:
        raise SettingsError(
            f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}"
        )
    exact = paper_exact_settings(method) if given.get("paper_exact") else {}
    values: dict[str, Any] = {**METHODS[method].defaults, **exact, **given, "method": method}
    tuples = ("content_layers", "style_layers", "background_layers")
    for key in (*tuples, "style_layer_weights", "style_blend_weights"):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    settings = Settings(**values)
    settings.validate()
    return settings
