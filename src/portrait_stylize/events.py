"""What a run reports: each optimisation step (:class:`Step`, to every callback), its
other events (:data:`Event`, to callbacks with an ``on_event`` method), why it stopped
and the token that cancels it. This module imports no other of the package, so the
engine, the loading of networks (:mod:`~portrait_stylize.models`) and the front ends all
read these types from below.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import torch


class StopReason(StrEnum):
    """Why a stage (and so the run) ended before its last step; the record stores the value."""

    REQUESTED = "stopped by request"
    """A callback returned True (e.g. early stop)."""
    CANCELLED = "cancelled"
    """The run's :class:`CancelToken` was set (Ctrl-C, SIGTERM, a job cancelled)."""
    NON_FINITE = "non-finite loss or image"


class CancelToken:
    """Cancels a run from any thread: ``cancel()``; the engine checks it after every step."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass
class Step:
    """What one optimisation step reports."""

    iteration: int
    iterations: int
    stage: int
    stages: int
    size: tuple[int, int]
    loss: float
    """Loss measured at the start of the step (L-BFGS and Adam evaluate before updating)."""
    terms: dict[str, float]
    elapsed: float
    image: torch.Tensor = field(repr=False)
    """The image after the step (1, 3, H, W), detached; do not modify."""


@dataclass
class StageStarted:
    """A stage (scale) begins: ``iterations`` steps at ``size`` (H, W), from ``iteration``
    (above 0 when a resumed stage continues)."""

    stage: int
    stages: int
    size: tuple[int, int]
    iterations: int
    iteration: int = 0


@dataclass
class StageFinished:
    """A stage ended after ``iterations`` steps; ``stopped``: why it ended early, if it did."""

    stage: int
    stages: int
    iterations: int
    loss: float
    seconds: float
    converged: bool
    stopped: StopReason | None


@dataclass
class FacesFound:
    """Faces a method found in the content: boxes (x0, y0, x1, y1) in content pixels;
    ``group``: the method paints them as a group (its group settings apply)."""

    boxes: list[list[float]]
    group: bool = False


@dataclass
class WeightsLoading:
    """Networks being loaded from disk (registry names) onto ``device``; only on a cache miss."""

    names: tuple[str, ...]
    device: str


@dataclass
class MachineMeasuring:
    """The first run with this backbone and precision on this machine times the feature
    network before it starts (:mod:`~portrait_stylize.machine`; seconds to a minute)."""

    backbone: str


@dataclass
class Estimated:
    """The seconds the run's stages are expected to take on this machine, before it starts
    (an upper bound where a stage may end early)."""

    stages: list[float]

    @property
    def seconds(self) -> float:
        return sum(self.stages)


Event = (
    Step | StageStarted | StageFinished | FacesFound | WeightsLoading | MachineMeasuring | Estimated
)
Callback = Callable[[Step], bool | None]


def notify(callbacks: Sequence[Callback], event: Event) -> None:
    """Give ``event`` to every callback that has an ``on_event`` method."""
    for callback in callbacks:
        handler = getattr(callback, "on_event", None)
        if handler is not None:
            handler(event)
