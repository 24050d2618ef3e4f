"""The public entry point: ``stylize(content, style, method=..., **overrides)``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import platform
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import PIL
import torch
import torch.nn.functional as F

from . import __version__, color, masks
from .engine import NON_FINITE, AdamState, Callback, StageResult, optimise
from .face_losses import scale_boxes
from .features import build_extractor
from .io import ImageSource, LoadedImage, load_image, resize_long_side
from .losses import Objective
from .methods import (
    CONVENTIONS,
    METHODS,
    Renderer,
    Settings,
    render_instant,
    resolve_settings,
    scale_schedule,
)
from .nets.magenta import WEIGHTS as MAGENTA_WEIGHTS
from .weights import get_spec


@dataclass
class StylizeResult:
    """A result: ``image`` (3, H, W) in [0, 1] on the CPU, its alpha (1, H, W) if kept,
    and the run record (JSON-serialisable)."""

    image: torch.Tensor
    alpha: torch.Tensor | None
    record: dict[str, Any]
    artifacts: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)
    """Extra images of the method (e.g. ``mask``), each (C, H, W) in [0, 1]."""

    @property
    def stopped(self) -> str | None:
        return self.record["stopped"]


def resolve_device(name: str) -> torch.device:
    """``cpu`` or ``cuda[:N]``; a clear error when CUDA is asked for and absent."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA GPU is available")
    return device


NOISE_STD = 0.1
"""Standard deviation of the white-noise start around mid-gray."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""ImageNet's mean colour in [0, 1] RGB: neural-style's start image (its zero input)."""
MEAN_NOISE_STD = 0.001 / 255
"""neural-style's start: the mean plus Gaussian noise of std 0.001 in 0-255 units."""


def initial_image(
    settings: Settings, content: torch.Tensor, styles: list[torch.Tensor]
) -> torch.Tensor:
    """The starting image (1, 3, H, W) for content (1, 3, H, W), seeded.

    mean: ImageNet's mean colour plus faint noise (neural-style); noise: mid-gray plus white
    Gaussian noise; uniform: U(0, 1) per pixel; style-mean: the mean colour of the style
    images; instant: the ``instant`` method's result. ``styles``: (1, 3, h, w), any size.
    """
    generator = torch.Generator().manual_seed(settings.seed)
    if settings.init == "instant":
        return render_instant(settings, content, styles)
    if settings.init == "mean":
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        start = mean + MEAN_NOISE_STD * torch.randn(content.shape, generator=generator)
        return start.to(content.device)
    if settings.init == "content":
        return content.clone()
    if settings.init == "gray":
        return torch.full_like(content, 0.5)
    if settings.init == "style-mean":
        mean = torch.stack([s.mean(dim=(0, 2, 3)) for s in styles]).mean(0)
        return mean.view(1, 3, 1, 1).expand_as(content).clone()
    if settings.init == "uniform":
        return torch.rand(content.shape, generator=generator).to(content.device)
    noise = 0.5 + NOISE_STD * torch.randn(content.shape, generator=generator)
    return noise.clamp(0, 1).to(content.device)


def _describe_input(image: LoadedImage) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": image.name, "size": list(image.size), **image.info}
    path = Path(image.name)
    if path.is_file():
        entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return entry


def versions() -> dict[str, str]:
    """Versions of the tool and of what computes its results."""
    import torchvision

    return {
        "portrait_stylize": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "platform": platform.platform(),
    }


def _as_loaded(source: ImageSource | LoadedImage, max_pixels: int, alpha: str) -> LoadedImage:
    if isinstance(source, LoadedImage):
        return source
    return load_image(source, max_pixels=max_pixels, alpha=alpha)


def run_with_fallback(
    run_stage: Callable[..., StageResult],
    objective: Objective,
    image: torch.Tensor,
    iterations: int,
    adam_state: AdamState | None,
) -> StageResult:
    """``run_stage(image, iterations=, adam_state=)`` for (1, 3, H, W) ``image``; when the
    loss turns non-finite under bf16 autocast, warn and run the remaining steps in fp32
    from the last good image with a fresh optimiser (its moments hold the non-finite
    gradient); the objective stays fp32 afterwards."""
    result = run_stage(image, iterations=iterations, adam_state=adam_state)
    if result.stopped != NON_FINITE or not objective.autocast:
        return result
    good = result.iterations - 1
    warnings.warn(
        f"the loss became non-finite in bf16 after {good} steps at this scale: continuing "
        "from the last good image in fp32",
        stacklevel=2,
    )
    objective.autocast = False
    rest = run_stage(result.image, iterations=iterations - good, adam_state=None)
    rest.iterations += good
    return rest


def _face_boxes(prepared: dict[str, Any], content: torch.Tensor) -> list[list[float]] | None:
    """The face boxes a method's loss used (padded, squared), in pixels of the full-resolution
    content (3, H, W), for the run record; None when the method uses no faces."""
    if "faces" not in prepared:
        return None
    boxes = scale_boxes(prepared["faces"], (content.shape[-2], content.shape[-1]))
    return [[round(float(v), 1) for v in box] for box in boxes]


def stylize(
    content: ImageSource | LoadedImage,
    style: ImageSource | LoadedImage | Sequence[ImageSource | LoadedImage],
    method: str = "gatys",
    *,
    callbacks: Sequence[Callback] = (),
    keep_alpha: bool = False,
    max_pixels: int = 64_000_000,
    **overrides: Any,
) -> StylizeResult:
    """Paint ``content`` in the style of ``style`` (one image or several).

    Images are paths, PIL images, (H, W, C) arrays or (C, H, W) tensors in [0, 1].
    ``overrides`` set any field of :class:`~portrait_stylize.methods.Settings`
    (``size``, ``iterations``, ``seed``, ``style_weight``, ...). Returns the image and
    its run record; ``callbacks`` receive every optimisation step.
    """
    settings = resolve_settings(method, overrides)
    device = resolve_device(settings.device)
    content_image = _as_loaded(content, max_pixels, "keep" if keep_alpha else "composite")
    style_list = [style] if not isinstance(style, list | tuple) else list(style)
    if not style_list:
        raise ValueError("at least one style image is needed")
    style_images = [_as_loaded(s, max_pixels, "composite") for s in style_list]

    started = time.perf_counter()
    content_rgb = masks.replace_background(content_image.rgb, settings.background)
    preset = METHODS[settings.method]
    prepared = preset.prepare(settings, content_rgb.to(device)) if preset.prepare else {}
    content_image = dataclasses.replace(content_image, rgb=content_rgb)
    if settings.preserve_colors:
        gray, grays = color.luminance_only(content_rgb, [s.rgb for s in style_images])
        content_image = dataclasses.replace(content_image, rgb=gray)
        style_images = [
            dataclasses.replace(s, rgb=g) for s, g in zip(style_images, grays, strict=True)
        ]
    if preset.render is not None:
        return _feed_forward(
            preset.render, settings, content_image, style_images, content_rgb, device, started
        )
    extractor = build_extractor(
        settings.backbone,
        pooling=settings.pooling,
        first_padding=settings.first_padding,
        device=device,
        calibration=settings.calibration,
    )
    schedule = scale_schedule(settings)
    image: torch.Tensor | None = None
    adam_state: AdamState | None = None
    stages: list[dict[str, Any]] = []
    for index, (side, iterations) in enumerate(schedule):
        content_t = resize_long_side(content_image.rgb, side)[None].to(device)
        style_side = max(16, round(side * settings.style_scale))
        styles_t = [resize_long_side(s.rgb, style_side)[None].to(device) for s in style_images]
        built = preset.build(settings, extractor, content_t, styles_t, **prepared)
        objective = Objective(extractor, built.terms, autocast=settings.autocast)
        if image is None:
            full_styles = [s.rgb[None].to(device) for s in style_images]
            image = initial_image(settings, content_t, full_styles)
        else:  # the previous scale's result, upsampled
            size = content_t.shape[-2:]
            image = F.interpolate(image, size=size, mode="bicubic", align_corners=False).clamp(0, 1)
            adam_state = adam_state.resized((size[0], size[1])) if adam_state else None
        run_stage = functools.partial(
            optimise,
            objective=objective.to(device),
            optimizer=settings.optimizer,
            lr=settings.lr,
            callbacks=callbacks,
            stage=index,
            stages=len(schedule),
            clamp=settings.optimizer == "adam",
            ema_decay=settings.ema_decay,
            converge_tol=settings.converge_tol,
            pixel_scale=CONVENTIONS[settings.convention].pixel_scale,
        )
        result = run_with_fallback(run_stage, objective, image, iterations, adam_state)
        image, adam_state = result.image, result.adam_state
        stages.append(
            {
                "size": list(image.shape[-2:]),
                "iterations": result.iterations,
                "converged": result.converged,
                "precision": "bf16" if objective.autocast else "fp32",
                "final_loss": result.loss,
                "final_terms": result.terms,
                "seconds": round(result.seconds, 3),
            }
        )
        if result.stopped:
            break
    assert image is not None
    weights = [extractor.spec.weights, *(MAGENTA_WEIGHTS if settings.init == "instant" else ())]
    record = _record(
        settings,
        (content_image, style_images),
        (stages, result.stopped),
        started,
        device,
        weights=[_weights_entry(name) for name in weights],
        backbone=extractor.spec.name,
        calibration=extractor.scales,
        faces=_face_boxes(prepared, content_rgb),
    )
    artifacts = {name: value.detach().cpu() for name, value in built.artifacts.items()}
    final = _final_image(settings, image, content_rgb)
    return StylizeResult(final, content_image.alpha, record, artifacts)


def _weights_entry(name: str) -> dict[str, str]:
    """{"name": ..., "<algorithm>": digest} of registry weights ``name``, for the record."""
    spec = get_spec(name)
    algorithm, digest = spec.checksum
    return {"name": spec.name, algorithm: digest}


def _record(
    settings: Settings,
    inputs: tuple[LoadedImage, list[LoadedImage]],
    outcome: tuple[list[dict[str, Any]], str | None],
    started: float,
    device: torch.device,
    **method_fields: Any,
) -> dict[str, Any]:
    """The run record: what every run records, with the method's own fields in the middle.

    ``outcome``: the stages' records and why the run stopped early (None: it did not).
    """
    content_image, style_images = inputs
    stages, stopped = outcome
    return {
        "tool": "portrait-stylize",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "method": settings.method,
        "settings": dataclasses.asdict(settings),
        "inputs": {
            "content": _describe_input(content_image),
            "styles": [_describe_input(s) for s in style_images],
        },
        **method_fields,
        "stages": stages,
        "stopped": stopped,
        "wall_time_s": round(time.perf_counter() - started, 3),
        "device": str(device)
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "versions": versions(),
    }


def _final_image(
    settings: Settings, image: torch.Tensor, content_rgb: torch.Tensor
) -> torch.Tensor:
    """The result (3, H, W) on the CPU from (1, 3, H, W), the content's colours back if asked."""
    final = image[0].cpu()
    if settings.preserve_colors:
        final = color.with_content_chroma(final, content_rgb)
    return final


def _feed_forward(
    render: Renderer,
    settings: Settings,
    content_image: LoadedImage,
    style_images: list[LoadedImage],
    content_rgb: torch.Tensor,
    device: torch.device,
    started: float,
) -> StylizeResult:
    """A method without optimisation: one ``render`` of the content at ``settings.size``
    with the full-resolution styles, recorded as a single stage."""
    content_t = resize_long_side(content_image.rgb, settings.size)[None].to(device)
    styles_t = [s.rgb[None].to(device) for s in style_images]
    began = time.perf_counter()
    image = render(settings, content_t, styles_t)
    stage = {
        "size": list(image.shape[-2:]),
        "iterations": 0,
        "precision": "fp32",
        "seconds": round(time.perf_counter() - began, 3),
    }
    preset = METHODS[settings.method]
    weights = [_weights_entry(name) for name in preset.weights]
    record = _record(
        settings, (content_image, style_images), ([stage], None), started, device, weights=weights
    )
    return StylizeResult(_final_image(settings, image, content_rgb), content_image.alpha, record)
