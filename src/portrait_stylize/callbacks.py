"""Step callbacks: progress display, early stop, Ctrl-C, a recorder for tests.

Each is a callable taking an engine :class:`~portrait_stylize.events.Step` and
returning True to stop the run; :class:`ProgressBar` also shows the run's other events.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TextIO

import torch
from tqdm import tqdm

from .events import (
    CancelToken,
    Estimated,
    Event,
    FacesFound,
    MachineMeasuring,
    StageFinished,
    StageStarted,
    Step,
    WeightsLoading,
)

LINE_INTERVAL = 5.0
"""Seconds between progress lines when standard error is not a terminal."""


def format_terms(terms: dict[str, float]) -> str:
    """Compact ``name=value`` list of loss terms."""
    return " ".join(f"{name}={value:.3g}" for name, value in terms.items())


def duration(seconds: float) -> str:
    """'40 s', '3.5 min' or '1.2 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def describe(event: Event) -> str | None:
    """A one-line description of a run event other than a step (None for a step)."""
    if isinstance(event, WeightsLoading):
        return f"loading {', '.join(event.names)} on {event.device}"
    if isinstance(event, FacesFound):
        group = ": a group, held with the group content weight" if event.group else ""
        return f"{len(event.boxes)} face(s) found{group}"
    if isinstance(event, MachineMeasuring):
        return f"timing {event.backbone} on this machine once, for the layout and the estimate"
    if isinstance(event, Estimated):
        return f"about {duration(event.seconds)} of painting on this machine"
    if isinstance(event, StageStarted):
        height, width = event.size
        resumed = f" from step {event.iteration}" if event.iteration else ""
        where = f"scale {event.stage + 1}/{event.stages} {width}x{height}"
        return f"{where}: {event.iterations} steps{resumed}"
    if isinstance(event, StageFinished):
        ended = f", {event.stopped}" if event.stopped else ", converged" if event.converged else ""
        return (
            f"scale {event.stage + 1}/{event.stages} done: {event.iterations} steps in "
            f"{event.seconds:.1f} s, loss={event.loss:.4g}{ended}"
        )
    return None


class TimeLeft:
    """A run's time left, from the rate since the first step seen (a resumed run starts
    late), counted in work: a step of each stage weighs that stage's estimated seconds per
    step once the run's :class:`~portrait_stylize.events.Estimated` is given (1 before),
    so the time left counts the larger, slower scales still to come. A stage that ends
    early (its image converged) moves the count to the next stage's start.
    ``stage_iterations``: the planned steps of each stage."""

    def __init__(self, stage_iterations: list[int]) -> None:
        self.iterations = stage_iterations
        self.first: tuple[float, float] | None = None
        self._weigh([1.0] * len(stage_iterations))

    def _weigh(self, per_step: list[float]) -> None:
        self.per_step = per_step
        work = [w * n for w, n in zip(per_step, self.iterations, strict=True)]
        self.starts = [sum(work[:i]) for i in range(len(work))]
        self.total = sum(work)

    def estimate(self, event: Estimated) -> None:
        """Weigh the stages by the estimate (before the first step only)."""
        if len(event.stages) != len(self.iterations) or self.first is not None:
            return
        per_step = [s / max(n, 1) for s, n in zip(event.stages, self.iterations, strict=True)]
        if sum(per_step) > 0:
            self._weigh(per_step)

    def work(self, stage: int, iteration: int) -> float:
        """The work done after ``iteration`` steps of ``stage``."""
        return self.starts[stage] + iteration * self.per_step[stage]

    def update(self, now: float, stage: int, iteration: int) -> float | None:
        """Seconds left at ``now`` after ``iteration`` steps of ``stage``; None at the first
        step seen (no rate yet)."""
        done = self.work(stage, iteration)
        if self.first is None:
            self.first = (now, done)
        start, base = self.first
        if done <= base:
            return None
        return (now - start) / (done - base) * (self.total - done)


class ProgressBar:
    """Progress over all stages: iteration, stage and size, loss terms, time left
    (:class:`TimeLeft`).

    On a terminal, a tqdm bar; otherwise (a log file, CI, a batch worker) one plain line
    at the first step and then every ``interval`` seconds, and a line per stage.
    """

    def __init__(
        self,
        stage_iterations: list[int],
        disable: bool = False,
        stream: TextIO | None = None,
        interval: float = LINE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.lines = not self.stream.isatty()
        self.left = TimeLeft(stage_iterations)
        self.steps_before = [sum(stage_iterations[:i]) for i in range(len(stage_iterations))]
        self.steps = sum(stage_iterations)
        self.disable = disable
        self.interval = interval
        self.clock = clock
        self.next_line = 0.0
        self.bar = tqdm(
            total=self.left.total,
            bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed} {postfix}",
            dynamic_ncols=True,
            disable=disable or self.lines,
            leave=True,
            file=self.stream,
        )

    def __call__(self, step: Step) -> bool:
        now = self.clock()
        left = self.left.update(now, step.stage, step.iteration) or 0.0
        done = self.left.work(step.stage, step.iteration)
        height, width = step.size
        where = f"{width}x{height}"
        if step.stages > 1:
            where = f"scale {step.stage + 1}/{step.stages} {where}"
        if not self.lines:
            self.bar.set_description(where)
            self.bar.set_postfix_str(
                f"loss={step.loss:.4g} {format_terms(step.terms)} left {duration(left)}",
                refresh=False,
            )
            self.bar.update(done - self.bar.n)
            return False
        steps = self.steps_before[step.stage] + step.iteration
        if not self.disable and (now >= self.next_line or steps >= self.steps):
            self.next_line = now + self.interval
            parts = [where, f"step {steps}/{self.steps}", f"loss={step.loss:.4g}"]
            parts += [format_terms(step.terms), f"eta {left:.0f} s"]
            self._print(" ".join(part for part in parts if part))
        return False

    def on_event(self, event: Event) -> None:
        """Show the events (stage lines only without the bar); an estimate weighs the
        stages' steps."""
        if isinstance(event, Estimated):
            self.left.estimate(event)
            self.bar.total = self.left.total
        text = describe(event)
        if text is not None and (self.lines or not isinstance(event, StageStarted | StageFinished)):
            self._print(text)

    def _print(self, text: str) -> None:
        if self.disable:
            return
        if self.lines:
            print(text, file=self.stream, flush=True)
        else:
            self.bar.write(text, file=self.stream)

    def close(self) -> None:
        self.bar.close()


class EarlyStop:
    """Stop when the loss improved by less than ``tolerance`` (relative) over ``window`` steps."""

    def __init__(self, tolerance: float, window: int = 50) -> None:
        self.tolerance = tolerance
        self.window = window
        self.history: list[float] = []

    def left(self, done: float, now: float) -> float:
        """Seconds left at ``now`` with ``done`` work done: the rate since the first step
        seen times the work still to do."""
        start, base = self.began or (now, done)
        return (now - start) / max(done - base, 1e-9) * (self.total - done)

    def __call__(self, step: Step) -> bool:
        if step.iteration == 1:
            self.history = []
        self.history.append(step.loss)
        if self.tolerance <= 0 or len(self.history) <= self.window:
            return False
        past = self.history[-self.window - 1]
        return (past - step.loss) < self.tolerance * abs(past)


class StopFlag:
    """Cancels ``token`` on SIGINT/SIGTERM while :meth:`installed` is active; a second
    signal gives up at once (KeyboardInterrupt)."""

    def __init__(self, token: CancelToken) -> None:
        self.token = token
        self.signal: int | None = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signum
        self.token.cancel()

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

    def left(self, done: float, now: float) -> float:
        """Seconds left at ``now`` with ``done`` work done: the rate since the first step
        seen times the work still to do."""
        start, base = self.began or (now, done)
        return (now - start) / max(done - base, 1e-9) * (self.total - done)

    def __call__(self, step: Step) -> bool:
        self.steps.append((step.stage, step.iteration, step.loss, dict(step.terms)))
        self.last_image = step.image
        return False
