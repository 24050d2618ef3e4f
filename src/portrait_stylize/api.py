"""The public entry point: ``stylize(content, style, method=..., **overrides)``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import importlib.metadata
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

from . import __version__, checkpoint, color, machine, masks, models
from .checkpoint import RunCheckpoint, check_writable, input_digest
from .engine import AdamState, StageResult, StageState, optimise
from .errors import DeviceError, InputError, SettingsError
from .events import (
    Callback,
    CancelToken,
    Estimated,
    FacesFound,
    MachineMeasuring,
    StageFinished,
    StageStarted,
    StopReason,
    notify,
)
from .face_losses import scale_boxes
from .features import BACKBONES, FeatureExtractor
from .files import atomic_group
from .images import (
    MIN_SIDE,
    ImageSource,
    LoadedImage,
    check_fits,
    check_output_path,
    load_image,
    resize_long_side,
    save_image,
    save_record,
)
from .losses import CONVENTIONS, Objective
from .methods import (
    DEFAULT_METHOD,
    METHODS,
    Built,
    Renderer,
    Settings,
    job_settings,
    render_instant,
    resolve_settings,
    scale_schedule,
)
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
        """Why the run ended early (a :class:`~portrait_stylize.events.StopReason` value)."""
        return self.record["stopped"]


def resolve_device(name: str) -> torch.device:
    """``cpu`` or ``cuda[:N]``; a clear error when CUDA, or GPU N, is asked for and absent."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device 'cuda' requested but no CUDA GPU is available")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise DeviceError(f"device {name!r}: this machine has {torch.cuda.device_count()} GPU(s)")
    return device


NOISE_STD = 0.1
"""Standard deviation of the white-noise start around mid-gray."""
MEAN_NOISE_STD = 0.001 / 255
"""neural-style's start: the mean plus Gaussian noise of std 0.001 in 0-255 units."""


def initial_image(
    settings: Settings, content: torch.Tensor, styles: list[torch.Tensor]
) -> torch.Tensor:
    """The starting image (1, 3, H, W) for content (1, 3, H, W), seeded.

    mean: the backbone's zero input (ImageNet's mean colour) plus faint noise (neural-style);
    noise: mid-gray plus white Gaussian noise; uniform: U(0, 1) per pixel; style-mean: the
    mean colour of the style images; instant: the ``instant`` method's result.
    ``styles``: (1, 3, h, w), any size.
    """
    generator = torch.Generator().manual_seed(settings.seed)
    if settings.init == "instant":
        return render_instant(settings, content, styles)
    if settings.init == "mean":
        mean = torch.tensor(BACKBONES[settings.backbone].zero_input).view(1, 3, 1, 1)
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
    """Versions of the tool and of what computes its results (torchvision's as installed:
    importing it would take a second)."""
    return {
        "portrait_stylize": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": importlib.metadata.version("torchvision"),
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
    resume: StageState | None = None,
) -> StageResult:
    """``run_stage(image, iterations=, adam_state=, resume=)`` for (1, 3, H, W) ``image``;
    when the loss turns non-finite under bf16 autocast, warn and run the remaining steps in
    fp32 from the last good image with a fresh optimiser (its moments hold the non-finite
    gradient); the objective stays fp32 afterwards."""
    result = run_stage(image, iterations=iterations, adam_state=adam_state, resume=resume)
    if result.stopped != StopReason.NON_FINITE or not objective.autocast:
        return result
    good = result.iterations - 1
    warnings.warn(
        f"the loss became non-finite in bf16 after {good} steps at this scale: continuing "
        "from the last good image in fp32",
        stacklevel=2,
    )
    objective.autocast = False
    return run_stage(result.image, iterations=iterations, adam_state=None, first_iteration=good)


def _face_boxes(prepared: dict[str, Any], content: torch.Tensor) -> list[list[float]] | None:
    """The face boxes a method's loss used (padded, squared), in pixels of the full-resolution
    content (3, H, W), for the run record; None when the method uses no faces."""
    if "faces" not in prepared:
        return None
    boxes = scale_boxes(prepared["faces"], (content.shape[-2], content.shape[-1]))
    return [[round(float(v), 1) for v in box] for box in boxes]


def _settings(method: str | Settings, overrides: dict[str, Any]) -> Settings:
    """The run's settings: ``method``'s with ``overrides``, or ``method`` itself, checked."""
    if isinstance(method, str):
        return resolve_settings(method, overrides)
    if overrides:
        raise TypeError(
            f"stylize got a Settings object and overrides ({', '.join(overrides)}); "
            "set them on the object (dataclasses.replace) instead"
        )
    method.validate()
    return method


def _style_side(settings: Settings, side: int) -> int:
    """The long side of the style images at a scale of long side ``side``."""
    return max(MIN_SIDE, round(side * settings.style_scale))


def _check_sides(settings: Settings, content: LoadedImage, styles: list[LoadedImage]) -> None:
    """Refuse, before any work, an input the networks would see under :data:`MIN_SIDE`
    px on a side: the content at every scale, the styles at every scale of an optimised
    method (the feed-forward one takes each style's central square)."""
    if METHODS[settings.method].render is not None:
        check_fits(content, settings.size)
        return
    first = scale_schedule(settings)[0][0]
    check_fits(content, first)
    for style in styles:
        check_fits(style, _style_side(settings, first))


def stylize(
    content: ImageSource | LoadedImage,
    style: ImageSource | LoadedImage | Sequence[ImageSource | LoadedImage],
    method: str | Settings = DEFAULT_METHOD,
    *,
    callbacks: Sequence[Callback] = (),
    keep_alpha: bool = False,
    max_pixels: int = 64_000_000,
    cancel: CancelToken | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    **overrides: Any,
) -> StylizeResult:
    """Paint ``content`` in the style of ``style`` (one image or several).

    Images are paths, PIL images, (H, W, C) arrays or (C, H, W) tensors in [0, 1].
    ``method`` names a method, whose defaults ``overrides`` change (any field of
    :class:`~portrait_stylize.methods.Settings`: ``size``, ``iterations``, ``seed``,
    ``style_weight``, ...), or is settings already resolved (by
    :func:`~portrait_stylize.methods.resolve_settings` or
    :func:`~portrait_stylize.methods.parse_settings`; no overrides then). Returns the image and
    its run record; ``callbacks`` receive every optimisation step, and those with an
    ``on_event`` method the run's other events (:data:`~portrait_stylize.events.Event`).

    ``cancel`` stops the run from any thread: the result is then the last good image,
    ``stopped`` "cancelled". With ``checkpoint`` (a path; the CLI's is
    :func:`~portrait_stylize.checkpoint.checkpoint_path` of the output) the run saves its
    progress there at every stage boundary, every ``checkpoint_every`` steps and when
    cancelled; ``resume`` continues from it, and refuses (InputError, SettingsError) when
    the inputs or settings differ.
    """
    settings = _settings(method, overrides)
    device = resolve_device(settings.device)
    content_image = _as_loaded(content, max_pixels, "keep" if keep_alpha else "composite")
    style_list = [style] if not isinstance(style, list | tuple) else list(style)
    if not style_list:
        raise InputError("at least one style image is needed")
    style_images = [_as_loaded(s, max_pixels, "composite") for s in style_list]
    _check_sides(settings, content_image, style_images)
    if resume and checkpoint is None:
        raise SettingsError("resume needs the checkpoint to resume from")
    saver = None
    if checkpoint is not None:
        check_writable(Path(checkpoint))
        digest = input_digest([content_image.rgb, *(s.rgb for s in style_images)])
        saver = _Checkpoints(Path(checkpoint), checkpoint_every, settings, digest)
    saved = saver.load(device) if saver is not None and resume else None

    started = time.perf_counter()
    with models.tracking(functools.partial(notify, callbacks)) as weights:
        content_rgb = masks.replace_background(
            content_image.rgb, settings.background, person_model=settings.person_model
        )
        preset = METHODS[settings.method]
        prepared = preset.prepare(settings, content_rgb.to(device)) if preset.prepare else {}
        faces = _face_boxes(prepared, content_rgb)
        if faces is not None:
            notify(callbacks, FacesFound(faces, bool(prepared.get("group"))))
        content_image = dataclasses.replace(content_image, rgb=content_rgb)
        if settings.preserve_colors:
            gray, grays = color.luminance_only(content_rgb, [s.rgb for s in style_images])
            content_image = dataclasses.replace(content_image, rgb=gray)
            style_images = [
                dataclasses.replace(s, rgb=g) for s, g in zip(style_images, grays, strict=True)
            ]
        inputs = (content_image, style_images)
        fields: dict[str, Any] = {}
        artifacts: dict[str, torch.Tensor] = {}
        if preset.render is not None:
            image, outcome = _feed_forward(preset.render, settings, inputs, device)
        else:
            extractor = models.extractor(
                settings.backbone,
                settings.pooling,
                settings.first_padding,
                settings.calibration,
                str(device),
            )
            face_count = len(faces or [])
            channels_last, estimate = _plan(
                settings, extractor, content_rgb, face_count, callbacks, saved
            )
            stages = _Stages(settings, extractor, inputs, prepared, device, channels_last)
            image, outcome, built = stages.run(callbacks, cancel, saver, saved)
            machine.learn(settings, device, face_count, outcome[0])
            artifacts = {name: value.detach().cpu() for name, value in built.artifacts.items()}
            fields = {
                "backbone": extractor.spec.name,
                "calibration": extractor.scales,
                "layout": "channels-last" if channels_last else "nchw",
                "estimated_s": round(estimate, 1),
                "faces": faces,
                "group": prepared.get("group"),
                "resumed": None
                if saved is None
                else {"checkpoint": str(checkpoint), "stage": saved.stage, "step": saved.step},
            }
    record = _record(
        settings,
        inputs,
        outcome,
        started,
        device,
        weights=[_weights_entry(name) for name in weights],
        **fields,
    )
    final = _final_image(settings, image, content_rgb)
    return StylizeResult(final, content_image.alpha, record, artifacts)


def _plan(
    settings: Settings,
    extractor: FeatureExtractor,
    content: torch.Tensor,
    faces: int,
    callbacks: Sequence[Callback],
    saved: RunCheckpoint | None,
) -> tuple[bool, float]:
    """Whether the feature network reads channels-last images, and the seconds the run's
    stages are expected to take for content (3, H, W) with ``faces`` faces in the loss
    (announced as :class:`~portrait_stylize.events.Estimated`); the machine is measured
    first when it is new (:mod:`~portrait_stylize.machine`)."""
    device = extractor.mean.device
    speed = machine.load(settings.backbone, device, settings.autocast)
    if speed is None:
        notify(callbacks, MachineMeasuring(extractor.spec.name))
        speed = machine.measure(extractor, settings.autocast)
        machine.save(speed)
    height, width = content.shape[-2:]
    first = saved.stage if saved is not None else 0
    seconds = speed.plan(settings, height, width, faces)
    seconds = [0.0 if index < first else value for index, value in enumerate(seconds)]
    notify(callbacks, Estimated(seconds))
    channels_last = (
        speed.channels_last if settings.layout == "auto" else settings.layout == "channels-last"
    )
    return channels_last, sum(seconds)


@dataclass
class _Checkpoints:
    """Where a run saves its progress (:mod:`~portrait_stylize.checkpoint`), also every
    ``every`` steps within a stage; ``inputs``: the sha256 of the input pixels."""

    path: Path
    every: int
    settings: Settings
    inputs: str

    def load(self, device: torch.device) -> RunCheckpoint:
        """The saved run to continue, checked against this run, its tensors on ``device``."""
        return checkpoint.load(self.path, self.settings, self.inputs, device)

    def save(self, stage: int, stages: list[dict[str, Any]], **progress: Any) -> None:
        """Save the run at ``stage`` after ``stages`` (their records); ``progress``: the
        remaining :class:`~portrait_stylize.checkpoint.RunCheckpoint` fields."""
        key = job_settings(self.settings)
        checkpoint.save(RunCheckpoint(key, self.inputs, stage, stages, **progress), self.path)

    def within(
        self, stage: int, stages: list[dict[str, Any]], objective: Objective
    ) -> Callable[[StageState], None]:
        """The engine's checkpoint hook while stage ``stage`` runs ``objective``."""
        return lambda state: self.save(
            stage, list(stages), state=state, autocast=objective.autocast
        )


@dataclass
class _Stages:
    """The optimisation of a run over its scales (:func:`scale_schedule`): content
    (3, H, W) and styles (3, h, w) resized to each scale, the method's terms built there,
    each scale started from the previous one's result."""

    settings: Settings
    extractor: FeatureExtractor
    inputs: tuple[LoadedImage, list[LoadedImage]]
    prepared: dict[str, Any]
    device: torch.device
    channels_last: bool = False

    def run(
        self,
        callbacks: Sequence[Callback],
        cancel: CancelToken | None,
        saver: _Checkpoints | None,
        saved: RunCheckpoint | None,
    ) -> tuple[torch.Tensor, tuple[list[dict[str, Any]], StopReason | None], Built]:
        """Optimise every scale from the start or from ``saved``; returns the image
        (1, 3, H, W), (the stages' records, why the run stopped early) and the last
        scale's :class:`~portrait_stylize.methods.Built`."""
        settings, device = self.settings, self.device
        content, styles = self.inputs
        preset = METHODS[settings.method]
        schedule = scale_schedule(settings)
        pixel_scale = CONVENTIONS[settings.convention].pixel_scale
        start = saved or RunCheckpoint({}, "", 0, [], autocast=settings.autocast)
        image, adam_state, state = start.image, start.adam, start.state
        records = list(start.stages)
        stopped: StopReason | None = None
        for index, (side, iterations) in enumerate(schedule[start.stage :], start=start.stage):
            content_t = resize_long_side(content.rgb, side)[None].to(device)
            style_side = _style_side(settings, side)
            styles_t = [resize_long_side(s.rgb, style_side)[None].to(device) for s in styles]
            built = preset.build(settings, self.extractor, content_t, styles_t, **self.prepared)
            autocast = start.autocast if index == start.stage else settings.autocast
            objective = Objective(
                self.extractor, built.terms, autocast=autocast, channels_last=self.channels_last
            ).to(device)
            size = content_t.shape[-2:]
            if state is not None:  # continue a saved stage (the image only gives the device)
                image = state.pixels / pixel_scale
            elif image is None:
                full_styles = [s.rgb[None].to(device) for s in styles]
                image = initial_image(settings, content_t, full_styles)
            else:  # the previous scale's result, upsampled
                image = F.interpolate(image, size=size, mode="bicubic", align_corners=False).clamp(
                    0, 1
                )
                adam_state = adam_state.resized((size[0], size[1])) if adam_state else None
            step = state.iteration if state is not None else 0
            notify(
                callbacks, StageStarted(index, len(schedule), (size[0], size[1]), iterations, step)
            )
            run_stage = functools.partial(
                optimise,
                objective=objective,
                optimizer=settings.optimizer,
                lr=settings.lr,
                lr_end=settings.lr_end,
                callbacks=callbacks,
                stage=index,
                stages=len(schedule),
                clamp=settings.optimizer == "adam",
                ema_decay=_ema_decay(settings, iterations),
                converge_tol=settings.converge_tol,
                pixel_scale=pixel_scale,
                cancel=cancel,
                checkpoint=saver.within(index, records, objective) if saver else None,
                checkpoint_every=saver.every if saver else 0,
            )
            result = run_with_fallback(run_stage, objective, image, iterations, adam_state, state)
            image, adam_state, stopped = result.image, result.adam_state, result.stopped
            state = None
            records.append(
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
            notify(
                callbacks,
                StageFinished(
                    index,
                    len(schedule),
                    result.iterations,
                    result.loss,
                    result.seconds,
                    result.converged,
                    stopped,
                ),
            )
            if stopped:
                break
            if saver is not None and index + 1 < len(schedule):
                saver.save(
                    index + 1, records, image=image, adam=adam_state, autocast=settings.autocast
                )
        assert image is not None
        return image, (records, stopped), built


def _ema_decay(settings: Settings, iterations: int) -> float | None:
    """The moving average's decay at a scale of ``iterations`` steps: from ``ema_window``
    (a window of that fraction of the steps, at least 2) or ``ema_decay``."""
    if settings.ema_window == 0:
        return settings.ema_decay
    return 1 - 1 / max(2.0, settings.ema_window * iterations)


def _weights_entry(name: str) -> dict[str, str]:
    """{"name", "file", "<algorithm>": digest} of registry weights ``name``, for the record."""
    spec = get_spec(name)
    algorithm, digest = spec.checksum
    return {"name": spec.name, "file": spec.filename, algorithm: digest}


def save_result(result: StylizeResult, output: str | Path) -> Path:
    """Write ``result`` to ``output`` (its alpha re-applied), each artifact beside it as
    ``STEM.NAME.png`` and the record as ``OUTPUT.json``; returns the record's path.

    All or nothing (:func:`~portrait_stylize.files.atomic_group`): when ``output`` exists,
    so do its own record and artifacts, and a failed write (a read-only folder, a full
    disk: InputError naming ``output`` and the reason) leaves the old files as they were.
    An ``output`` that is one of the run's inputs is refused."""
    inputs = result.record["inputs"]
    output = check_output_path(
        output, [inputs["content"]["name"], *(s["name"] for s in inputs["styles"])]
    )
    try:
        with atomic_group():
            save_image(result.image, output, result.alpha)
            for name, artifact in result.artifacts.items():
                path = output.with_name(f"{output.stem}.{name}.png")
                save_image(artifact.expand(3, -1, -1), path)
            return save_record(result.record, output)
    except OSError as exc:
        raise InputError(f"{output}: cannot write the result ({exc.strerror or exc})") from None


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
        # CPU results depend on the thread count (summation order; the int8 network's rounding)
        "threads": torch.get_num_threads(),
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
    inputs: tuple[LoadedImage, list[LoadedImage]],
    device: torch.device,
) -> tuple[torch.Tensor, tuple[list[dict[str, Any]], None]]:
    """A method without optimisation: one ``render`` of the content at ``settings.size``
    with the full-resolution styles; the image (1, 3, H, W) and its single stage."""
    content_image, style_images = inputs
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
    return image, ([stage], None)
