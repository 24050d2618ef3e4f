"""The optimisation loop: an image against an objective, reporting every step.

The engine knows nothing of files or the CLI. Each step is reported to callbacks as a
:class:`~portrait_stylize.events.Step`; a callback that returns True stops the run
(early stop). A :class:`~portrait_stylize.events.CancelToken` stops it from any thread.
The last image with a finite loss is always kept and returned, and a stage can be saved
(:class:`StageState`) and continued exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from .events import Callback, CancelToken, Step, StopReason
from .losses import Objective
from .vocabulary import OPTIMIZERS

DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02}
LBFGS_HISTORY_BYTES = 2 * 1024**3
"""Memory budget of L-BFGS's curvature history (two image-sized vectors per pair)."""
LBFGS_MAX_HISTORY = 100


@dataclass
class StageState:
    """Where a stage stands after ``iteration`` steps: enough to continue it exactly.

    ``pixels``: the optimiser's variable (the image times ``pixel_scale``) (1, 3, H, W);
    ``optimizer``: its ``state_dict()``; ``ema``: the moving average's (accumulator
    (1, 3, H, W), weight); ``snapshot``: the output image at the last convergence check;
    ``kept``: the objective's reused terms' last values and gradients (``Objective.kept``).
    """

    iteration: int
    pixels: torch.Tensor
    optimizer: dict[str, Any]
    ema: tuple[torch.Tensor, float] | None
    snapshot: torch.Tensor
    loss: float
    terms: dict[str, float]
    kept: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)


@dataclass
class StageResult:
    """Outcome of one optimisation stage."""

    image: torch.Tensor
    loss: float
    terms: dict[str, float]
    iterations: int
    seconds: float
    stopped: StopReason | None = None
    """None when the stage ran to the end; otherwise why it stopped early."""
    adam_state: AdamState | None = None
    """Adam's state at the end, to warm-start the next scale."""
    converged: bool = False
    """The stage ended before its last iteration because the image stopped changing."""


@dataclass
class AdamState:
    """Adam's step count and moments, each (1, 3, H, W)."""

    step: float
    exp_avg: torch.Tensor
    exp_avg_sq: torch.Tensor

    def resized(self, size: tuple[int, int]) -> AdamState:
        """The state carried to a new image size: the first moment bicubic, the second
        bilinear then clipped at zero (it is a mean of squares), as Crowson does."""
        first = F.interpolate(self.exp_avg, size=size, mode="bicubic", align_corners=False)
        second = F.interpolate(self.exp_avg_sq, size=size, mode="bilinear", align_corners=False)
        return AdamState(self.step, first, second.relu())


class EMA:
    """Bias-corrected exponential moving average of the image (Crowson's output).

    After n updates with decay d the average is Σ d^(n-k) (1-d) x_k / (1 - d^n).
    """

    def __init__(self, image: torch.Tensor, decay: float) -> None:
        self.decay = decay
        self.accum = torch.zeros_like(image)
        self.weight = 0.0

    def update(self, image: torch.Tensor) -> None:
        self.accum.mul_(self.decay).add_(image, alpha=1 - self.decay)
        self.weight = self.weight * self.decay + (1 - self.decay)

    @property
    def value(self) -> torch.Tensor:
        return self.accum / self.weight


def optimise(
    image: torch.Tensor,
    objective: Objective,
    *,
    iterations: int,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    lr_end: float = 1.0,
    callbacks: Sequence[Callback] = (),
    stage: int = 0,
    stages: int = 1,
    clamp: bool = False,
    ema_decay: float | None = None,
    adam_state: AdamState | None = None,
    converge_tol: float = 0.0,
    converge_window: int = 50,
    pixel_scale: float = 1.0,
    cancel: CancelToken | None = None,
    first_iteration: int = 0,
    resume: StageState | None = None,
    checkpoint: Callable[[StageState], object] | None = None,
    checkpoint_every: int = 0,
) -> StageResult:
    """Minimise ``objective`` over the pixels of ``image`` (1, 3, H, W).

    L-BFGS takes one iteration per step (one loss and gradient evaluation, history
    kept across steps). Adam steps with ``lr``, decayed linearly over the stage's
    ``iterations`` to ``lr_end`` x ``lr`` at its last step (1: constant). ``clamp`` keeps
    pixels in [0, 1] after every step (Crowson); otherwise the result is clamped at the end. With
    ``ema_decay`` the result (and each reported image) is the bias-corrected moving
    average of the iterates. ``adam_state`` warm-starts Adam (see :meth:`AdamState.resized`);
    Adam uses Crowson's betas (0.9, 0.99). With ``converge_tol`` > 0 the stage ends
    early once the output image (the moving average, if any) has changed by less than
    that mean absolute amount over the last ``converge_window`` steps. The optimiser's
    variable is the image times ``pixel_scale`` (255: pixels in 0-255 units, as
    neural-style steps them; its step sizes and tolerances are in those units).

    ``cancel`` is checked after every step. ``first_iteration``: steps the stage has
    already taken (the fp32 continuation of a bf16 stage counts on). ``resume`` continues
    a stage from its saved state (``image`` then only gives the device);
    ``checkpoint(state)`` is called every ``checkpoint_every`` steps and when the stage is
    cancelled.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, not {optimizer!r}")
    lr = DEFAULT_LR[optimizer] if lr is None else lr
    start_pixels = image.detach() * pixel_scale if resume is None else resume.pixels
    pixels = start_pixels.to(image.device).clone().requires_grad_(True)
    opt: torch.optim.Optimizer
    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS([pixels], lr=lr, max_iter=1, history_size=lbfgs_history(pixels))
    else:
        opt = torch.optim.Adam([pixels], lr=lr, betas=(0.9, 0.99))
        if adam_state is not None:
            opt.state[pixels] = {
                "step": torch.tensor(adam_state.step),
                "exp_avg": adam_state.exp_avg.clone(),
                "exp_avg_sq": adam_state.exp_avg_sq.clone(),
            }
    ema = EMA(image.detach(), ema_decay) if ema_decay else None
    last_good = image.detach().clone()
    last_loss, last_terms = float("inf"), {}
    snapshot, first = last_good, first_iteration
    if resume is not None:
        opt.load_state_dict(resume.optimizer)
        if ema is not None and resume.ema is not None:
            ema.accum, ema.weight = resume.ema[0].to(image.device), resume.ema[1]
        last_good = ema.value if ema is not None else pixels.detach() / pixel_scale
        last_loss, last_terms = resume.loss, dict(resume.terms)
        snapshot, first = resume.snapshot.to(image.device), resume.iteration
        objective.kept = {
            name: (value.to(image.device), grad.to(image.device))
            for name, (value, grad) in resume.kept.items()
        }
    start = time.perf_counter()
    evaluated: dict[str, object] = {}

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        objective.at_step(done)
        loss, terms = objective(pixels / pixel_scale)
        loss.backward()
        evaluated["loss"], evaluated["terms"] = float(loss.detach()), terms
        return loss

    def state() -> StageState:
        averaged = (ema.accum, ema.weight) if ema is not None else None
        return StageState(
            done,
            pixels.detach(),
            opt.state_dict(),
            averaged,
            snapshot,
            last_loss,
            last_terms,
            dict(objective.kept),
        )

    stopped = None
    converged = False
    done = first
    for done in range(first + 1, iterations + 1):
        if optimizer == "lbfgs":
            opt.step(closure)  # type: ignore[arg-type]
        else:
            closure()
            progress = (done - 1) / max(iterations - 1, 1)
            opt.param_groups[0]["lr"] = lr * (1 - (1 - lr_end) * progress)
            opt.step()
        loss = float(evaluated["loss"])  # type: ignore[arg-type]
        if clamp:
            with torch.no_grad():
                pixels.clamp_(0, pixel_scale)
        if not (torch.isfinite(pixels).all() and torch.isfinite(torch.tensor(loss))):
            stopped = StopReason.NON_FINITE
            break
        current = pixels.detach() / pixel_scale
        if ema is not None:
            ema.update(current)
        last_good = ema.value if ema is not None else current
        last_loss, last_terms = loss, dict(evaluated["terms"])  # type: ignore[call-overload]
        report = Step(
            iteration=done,
            iterations=iterations,
            stage=stage,
            stages=stages,
            size=(pixels.shape[-2], pixels.shape[-1]),
            loss=loss,
            terms=last_terms,
            elapsed=time.perf_counter() - start,
            image=last_good,
        )
        if any([bool(callback(report)) for callback in callbacks]):
            stopped = StopReason.REQUESTED
            break
        if converge_tol > 0 and done % converge_window == 0 and done < iterations:
            converged = float((last_good - snapshot).abs().mean()) < converge_tol
            snapshot = last_good
            if converged:
                break
        cancelled = cancel is not None and cancel.cancelled
        if checkpoint is not None and (
            cancelled or (checkpoint_every and done % checkpoint_every == 0)
        ):
            checkpoint(state())
        if cancelled:
            stopped = StopReason.CANCELLED
            break
    return StageResult(
        image=last_good.clamp(0, 1),
        loss=last_loss,
        terms=last_terms,
        iterations=done,
        seconds=time.perf_counter() - start,
        stopped=stopped,
        adam_state=_adam_state(opt, pixels),
        converged=converged,
    )


def bf16_is_fast(device: str) -> bool:
    """Whether bfloat16 autocast speeds up convolutions on ``device``: on CUDA GPUs and on
    CPUs with bf16 units (AVX-512 BF16 or AMX); elsewhere it is emulated, 20-30x slower."""
    if device.startswith("cuda"):
        return True
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def lbfgs_history(image: torch.Tensor) -> int:
    """L-BFGS history length for ``image``: 100 pairs, fewer where they would exceed
    :data:`LBFGS_HISTORY_BYTES` (21 at 2048 x 2048 px, at least 5)."""
    pair_bytes = 2 * image.numel() * image.element_size()
    return max(5, min(LBFGS_MAX_HISTORY, LBFGS_HISTORY_BYTES // pair_bytes))


def _adam_state(opt: torch.optim.Optimizer, pixels: torch.Tensor) -> AdamState | None:
    state = opt.state.get(pixels, {})
    if "exp_avg" not in state:
        return None
    return AdamState(
        float(state["step"]),
        state["exp_avg"].detach().clone(),
        state["exp_avg_sq"].detach().clone(),
    )
