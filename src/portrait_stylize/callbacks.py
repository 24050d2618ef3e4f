"""Step callbacks: progress display, periodic checkpoints, early stop, stop on signal.

Each is a callable taking an engine :class:`~portrait_stylize.engine.Step` and
returning True to stop the run.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import torch
from tqdm import tqdm

from .engine import Step


def format_terms(terms: dict[str, float]) -> str:
    """Compact ``name=value`` list of loss terms."""
    return " ".join(f"{name}={value:.3g}" for name, value in terms.items())


class ProgressBar:
    """A tqdm bar over all stages: iteration, stage and size, loss terms, s/it, time left.

    ``stage_iterations``: the planned steps of each stage; a stage that ends early (its
    image converged) moves the bar to the next stage's start.
    """

    def __init__(self, stage_iterations: list[int], disable: bool = False) -> None:
        self.starts = [sum(stage_iterations[:i]) for i in range(len(stage_iterations))]
        total = sum(stage_iterations)
        self.bar = tqdm(total=total, unit="it", dynamic_ncols=True, disable=disable, leave=True)

    def __call__(self, step: Step) -> bool:
        height, width = step.size
        if step.stages > 1:
            self.bar.set_description(f"scale {step.stage + 1}/{step.stages} {width}x{height}")
        else:
            self.bar.set_description(f"{width}x{height}")
        self.bar.set_postfix_str(f"loss={step.loss:.4g} {format_terms(step.terms)}", refresh=False)
        self.bar.update(self.starts[step.stage] + step.iteration - self.bar.n)
        return False

    def close(self) -> None:
        self.bar.close()


class Checkpoint:
    """Call ``save(step)`` every ``every`` steps (0 disables it)."""

    def __init__(self, every: int, save: Callable[[Step], object]) -> None:
        self.every = every
        self.save = save

    def __call__(self, step: Step) -> bool:
        if self.every and step.iteration % self.every == 0:
            self.save(step)
        return False


class EarlyStop:
    """Stop when the loss improved by less than ``tolerance`` (relative) over ``window`` steps."""

    def __init__(self, tolerance: float, window: int = 50) -> None:
        self.tolerance = tolerance
        self.window = window
        self.history: list[float] = []

    def __call__(self, step: Step) -> bool:
        if step.iteration == 1:
            self.history = []
        self.history.append(step.loss)
        if self.tolerance <= 0 or len(self.history) <= self.window:
            return False
        past = self.history[-self.window - 1]
        return (past - step.loss) < self.tolerance * abs(past)


class StopFlag:
    """Becomes true on SIGINT/SIGTERM while :meth:`installed` is active; stops the run."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __call__(self, step: Step) -> bool:
        return self.signal is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None:  # a second Ctrl-C: give up at once
            raise KeyboardInterrupt
        self.signal = signum

    @contextmanager
    def installed(self) -> Iterator[StopFlag]:
        previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


class Recorder:
    """Keep every step's loss terms (for tests, plots and benchmarks)."""

    def __init__(self) -> None:
        self.steps: list[tuple[int, int, float, dict[str, float]]] = []
        self.last_image: torch.Tensor | None = None

    def __call__(self, step: Step) -> bool:
        self.steps.append((step.stage, step.iteration, step.loss, dict(step.terms)))
        self.last_image = step.image
        return False
