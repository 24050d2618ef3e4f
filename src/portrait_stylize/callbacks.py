"""Step callbacks: progress display, early stop, Ctrl-C, a recorder for tests.

Each is a callable taking an engine :class:`~portrait_stylize.engine.Step` and
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

from .engine import (
    CancelToken,
    Event,
    FacesFound,
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


def describe(event: Event) -> str | None:
    """A one-line description of a run event other than a step (None for a step)."""
    if isinstance(event, WeightsLoading):
        return f"loading {', '.join(event.names)} on {event.device}"
    if isinstance(event, FacesFound):
        return f"{len(event.boxes)} face(s) found"
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


class ProgressBar:
    """Progress over all stages: iteration, stage and size, loss terms, time left.

    On a terminal, a tqdm bar; otherwise (a log file, CI, a batch worker) one plain line
    at the first step and then every ``interval`` seconds, and a line per stage.
    ``stage_iterations``: the planned steps of each stage; a stage that ends early (its
    image converged) moves the progress to the next stage's start.
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
        self.starts = [sum(stage_iterations[:i]) for i in range(len(stage_iterations))]
        self.total = sum(stage_iterations)
        self.disable = disable
        self.interval = interval
        self.clock = clock
        self.began: tuple[float, int] | None = None
        """(time, steps done) at the first step seen, for the time left."""
        self.next_line = 0.0
        self.bar = tqdm(
            total=self.total,
            unit="it",
            dynamic_ncols=True,
            disable=disable or self.lines,
            leave=True,
            file=self.stream,
        )

    def __call__(self, step: Step) -> bool:
        done = self.starts[step.stage] + step.iteration
        height, width = step.size
        where = f"{width}x{height}"
        if step.stages > 1:
            where = f"scale {step.stage + 1}/{step.stages} {where}"
        if not self.lines:
            self.bar.set_description(where)
            self.bar.set_postfix_str(
                f"loss={step.loss:.4g} {format_terms(step.terms)}", refresh=False
            )
            self.bar.update(done - self.bar.n)
            return False
        now = self.clock()
        if self.began is None:
            self.began = (now, done - 1)
        if not self.disable and (now >= self.next_line or done == self.total):
            self.next_line = now + self.interval
            start, base = self.began
            left = (now - start) / max(done - base, 1) * (self.total - done)
            parts = [where, f"step {done}/{self.total}", f"loss={step.loss:.4g}"]
            parts += [format_terms(step.terms), f"eta {left:.0f} s"]
            self._print(" ".join(part for part in parts if part))
        return False

    def on_event(self, event: Event) -> None:
        """Show weights loading and faces found; stage lines only without the bar."""
        text = describe(event)
        if text is not None and (self.lines or isinstance(event, WeightsLoading | FacesFound)):
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

    def __call__(self, step: Step) -> bool:
        self.steps.append((step.stage, step.iteration, step.loss, dict(step.terms)))
        self.last_image = step.image
        return False
