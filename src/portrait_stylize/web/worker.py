"""A worker process: claims jobs from the store by lease and runs them, networks kept warm.

Each worker is a separate process (spawned by the server), so a crash or an
out-of-memory kill takes one job's attempt with it, not the server. Its networks stay
loaded between jobs (:mod:`portrait_stylize.models`). While a job runs, every progress
report renews the lease; when the renewal fails (the job was cancelled, or the lease
expired and another worker took it) the run is stopped and its result dropped. A run
saves a checkpoint in the job's working folder at every scale boundary, and a job
claimed again continues from it. SIGTERM, or the server disappearing, stops the run at
its next step and gives the job back to the queue.

A database locked by another process, or a full disk under it, does not stop a worker: a
progress report it cannot store is skipped, and every other store call is tried again
until it goes through. A job whose files cannot be written (the disk full) fails with
that reason; it can be sent again once space is freed, and continues from its
checkpoint. A worker starting sweeps away what a worker killed while storing results left
(:meth:`.JobStore.sweep`), and on a machine new to it measures its speed once for the
default method (:func:`.estimate.measure_once`), for the page's estimates.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch

from ..api import StylizeResult, save_result, stylize
from ..callbacks import TimeLeft
from ..errors import PortraitStylizeError
from ..events import (
    CancelToken,
    Estimated,
    Event,
    FacesFound,
    StageFinished,
    StageStarted,
    Step,
    StopReason,
    WeightsLoading,
)
from ..images import record_path, save_image
from ..jobdb import StoreUnavailable
from ..methods import DEFAULT_METHOD, resolve_settings, scale_schedule
from .estimate import measure_once
from .store import NO_SPACE, Job, JobStore, busy_message, new_owner

log = logging.getLogger("portrait_stylize.web")

PROGRESS_EVERY_S = 1.0
"""At most one progress report (lease renewal, event) per this many seconds."""
PREVIEW_EVERY_S = 3.0
"""Seconds between preview images."""
BUSY_RETRY_S = 1.0
"""Pause before a store call that found the database locked is tried again."""

T = TypeVar("T")


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker needs: the data folder, its device, the lease terms."""

    data: Path
    device: str = "cpu"
    lease_s: float = 120.0
    max_attempts: int = 3
    poll_s: float = 0.5
    threads: int | None = None
    """torch's CPU threads (None: its default)."""
    parent: int | None = None
    """The server's pid: the worker stops when it is gone."""


class Reporter:
    """The run's callback: progress, stage and preview reports for the job's row and events,
    each renewing the lease; a failed renewal cancels the run (``lost``)."""

    def __init__(self, worker: Worker, job: Job, token: CancelToken, stages: list[int]) -> None:
        self.worker = worker
        self.job = job
        self.token = token
        self.preview_path = worker.store.work_dir(job.id) / "preview.png"
        self.left = TimeLeft(stages)
        self.lost = False
        self.next_progress = 0.0
        self.next_preview = time.monotonic() + PREVIEW_EVERY_S
        self.previews = 0
        self.image: torch.Tensor | None = None

    def report(self, fields: dict[str, object], event: tuple[str, dict] | None = None) -> None:
        if self.worker.orphaned():
            self.worker.stop()
        config = self.worker.config
        try:
            kept = self.worker.store.progress(
                self.job.id, self.worker.owner, config.lease_s, fields, event
            )
        except StoreUnavailable as exc:  # the next report renews the lease
            log.warning("job %s: progress report skipped: %s", self.job.id, busy_message(exc))
            return
        if not kept:
            self.lost = True
            self.token.cancel()

    def __call__(self, step: Step) -> bool:
        now = time.monotonic()
        left = self.left.update(now, step.stage, step.iteration)
        eta = None if left is None else round(left, 1)
        self.image = step.image
        if now >= self.next_progress or step.iteration == step.iterations:
            self.next_progress = now + PROGRESS_EVERY_S
            terms = {"loss": step.loss, **step.terms}
            fields = {
                "stage": step.stage + 1,
                "stages": step.stages,
                "step": step.iteration,
                "steps": step.iterations,
                "eta_s": eta,
                "terms": terms,
            }
            self.report(fields, ("progress", fields))
        if now >= self.next_preview:
            self.preview()
        return False

    def preview(self) -> None:
        """Save the latest image as the job's preview (atomically) and announce it."""
        if self.image is None:
            return
        try:
            save_image(self.image[0], self.preview_path)
        except OSError as exc:  # a full disk: a preview is not worth failing the job for
            if exc.errno not in NO_SPACE:
                raise
            log.warning("job %s: no preview: %s", self.job.id, exc.strerror)
            self.next_preview = time.monotonic() + PREVIEW_EVERY_S
            return
        self.previews += 1
        self.next_preview = time.monotonic() + PREVIEW_EVERY_S
        self.report({}, ("preview", {"n": self.previews}))

    def on_event(self, event: Event) -> None:
        if isinstance(event, StageStarted):
            fields = {
                "stage": event.stage + 1,
                "stages": event.stages,
                "step": event.iteration,
                "steps": event.iterations,
            }
            self.report(fields, ("stage", {**fields, "size": list(event.size)}))
        elif isinstance(event, WeightsLoading):
            self.report({}, ("loading", {"names": list(event.names), "device": event.device}))
        elif isinstance(event, FacesFound):
            self.report({}, ("faces", {"boxes": event.boxes, "group": event.group}))
        elif isinstance(event, Estimated):
            self.left.estimate(event)
            self.report({}, ("estimate", {"seconds": round(event.seconds, 1)}))
        elif isinstance(event, StageFinished):  # show where it got to
            self.preview()


class Worker:
    """Claims and runs jobs until stopped."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.store = JobStore(config.data)
        self.owner = new_owner()
        self.stopping = threading.Event()
        self.token: CancelToken | None = None

    def stop(self) -> None:
        """Stop after the current step; the job goes back to the queue."""
        self.stopping.set()
        if self.token is not None:
            self.token.cancel()

    def orphaned(self) -> bool:
        """Whether the server that started this worker is gone."""
        return self.config.parent is not None and os.getppid() != self.config.parent

    def stored(self, call: Callable[[], T]) -> T | None:
        """``call``'s result (a store call), tried again while another process keeps the
        database locked or its disk is full (logged once); None when the worker is
        stopped first."""
        warned = False
        while True:
            try:
                return call()
            except StoreUnavailable as exc:
                if not warned:
                    log.warning("worker %s: %s", self.owner, busy_message(exc))
                    warned = True
                if self.stopping.wait(BUSY_RETRY_S):
                    return None

    def run(self) -> None:
        """Sweep the store, then claim and run jobs until :meth:`stop` or the server is gone."""
        swept = self.stored(self.store.sweep)
        if swept is not None and any(swept):
            log.info(
                "worker %s removed %d stray files, %d abandoned uploads and %d stale folders",
                self.owner,
                *swept,
            )
        self.measure()
        log.info("worker %s ready on %s", self.owner, self.config.device)
        config = self.config
        while not self.stopping.is_set() and not self.orphaned():
            job = self.stored(
                lambda: self.store.claim(self.owner, config.lease_s, config.max_attempts)
            )
            if job is None:
                self.stopping.wait(self.config.poll_s)
                continue
            self.run_job(job)
        log.info("worker %s stopped", self.owner)

    def measure(self) -> None:
        """Measure this machine's speed for the default method once, before any job, so
        that the page's estimates appear before the first painting (a failure, e.g. its
        network's weights missing, is logged: the first run measures then)."""
        if self.stopping.is_set():
            return
        try:
            measure_once(DEFAULT_METHOD, self.config.device)
        except Exception as exc:
            log.warning("worker %s: the machine's speed not measured: %s", self.owner, exc)

    def run_job(self, job: Job) -> None:
        """Run one claimed job to its end: done, failed, or given back/dropped when stopped."""
        log.info("job %s: attempt %d on %s", job.id, job.attempts, self.owner)
        work = self.store.work_dir(job.id)
        work.mkdir(parents=True, exist_ok=True)
        checkpoint = work / "checkpoint.pt"
        token = self.token = CancelToken()
        if self.stopping.is_set():
            token.cancel()
        outputs: dict[str, Path] = {}
        try:
            overrides = {**job.settings, "device": self.config.device}
            settings = resolve_settings(overrides.pop("method"), overrides)
            reporter = Reporter(self, job, token, [n for _, n in scale_schedule(settings)])
            result = stylize(
                self.store.file_path(job.inputs["content"]),
                [self.store.file_path(sha) for sha in job.inputs["styles"]],
                settings,
                callbacks=[reporter],
                cancel=token,
                checkpoint=checkpoint,
                resume=checkpoint.is_file(),
            )
            if result.stopped != StopReason.CANCELLED:
                outputs = self._save(result, work)
        except Exception as exc:
            error: str | None = self._failure(job, exc)
        else:
            error = None
        finally:
            self.token = None
        if error is not None:
            self.stored(lambda: self.store.fail(job.id, self.owner, error))
            return
        if result.stopped == StopReason.CANCELLED:
            self._stopped(job, reporter.lost)
            return
        if self.stored(lambda: self.store.finish(job.id, self.owner, outputs)):
            log.info("job %s done", job.id)
            shutil.rmtree(work, ignore_errors=True)

    def _failure(self, job: Job, exc: Exception) -> str:
        """The error a failed run of ``job`` is stored with (the data folder's path left
        out): the library's message, a full disk, or an internal error (logged)."""
        if isinstance(exc, PortraitStylizeError):
            log.info("job %s failed: %s", job.id, exc)
            message = str(exc)
        elif isinstance(exc, OSError) and exc.errno in NO_SPACE:
            log.warning("job %s failed: %s", job.id, exc)
            message = f"cannot write the job's files ({exc.strerror})"
        else:
            log.exception("job %s: internal error", job.id)
            message = f"internal error: {type(exc).__name__}: {exc}"
        if "No space left" in message or "Disk quota" in message:
            message += "; the server's disk is full: send the job again once space is freed"
        return message.replace(str(self.store.work_dir(job.id)), "the job's folder").replace(
            str(self.store.root), "the data folder"
        )

    def _stopped(self, job: Job, lost: bool) -> None:
        """After a run stopped early: a lost job is dropped (its folder too, once the job
        is deleted); a worker stopping gives its job back to the queue."""
        if not lost:
            self.stored(lambda: self.store.release(job.id, self.owner))
            log.info("job %s given back to the queue", job.id)
        elif self.stored(lambda: self.store.get(job.id) is None):
            shutil.rmtree(self.store.work_dir(job.id), ignore_errors=True)

    @staticmethod
    def _save(result: StylizeResult, work: Path) -> dict[str, Path]:
        """Write the result as PNG and 16-bit TIFF, its artifacts and its record in
        ``work``; returns them by output name."""
        png = work / "result.png"
        save_result(result, png)
        save_image(result.image, work / "result.tif", result.alpha)
        outputs = {"png": png, "tif": work / "result.tif", "record": record_path(png)}
        return outputs | {name: work / f"result.{name}.png" for name in result.artifacts}


def main(config: WorkerConfig) -> None:
    """A worker process's entry point: Ctrl-C is the server's to handle, SIGTERM stops."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    worker = Worker(config)
    signal.signal(signal.SIGTERM, lambda signum, frame: worker.stop())
    if config.threads:
        torch.set_num_threads(config.threads)
    worker.run()
