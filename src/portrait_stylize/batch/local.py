"""The local executor: worker processes (spawned) that claim jobs from the batch store.

Each worker has its own torch thread budget and keeps its networks loaded between jobs
(:mod:`portrait_stylize.models` caches them per process). The driver starts the
workers, gives back the job of a worker that died (or fails it once its retries are
spent) and starts another.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..events import CancelToken, Step
from .attempt import attempt, settle, worker_name
from .store import BatchStore

POLL_S = 0.5


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker needs: the batch folder, retries, its thread budget, the driver's pid."""

    outdir: Path
    retries: int
    threads: int
    parent: int


class Watch:
    """A run's callback: stops the run when the driver (pid ``parent``) is gone."""

    def __init__(self, token: CancelToken, parent: int) -> None:
        self.token = token
        self.parent = parent

    def __call__(self, step: Step) -> bool:
        if os.getppid() != self.parent:
            self.token.cancel()
        return False


def worker_main(config: WorkerConfig) -> None:
    """A worker process: claim and run jobs until none is left or SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    token = CancelToken()
    signal.signal(signal.SIGTERM, lambda signum, frame: token.cancel())
    torch.set_num_threads(config.threads)
    store = BatchStore(config.outdir)
    owner = os.getpid()
    name = worker_name()
    while not token.cancelled and os.getppid() == config.parent:
        row = store.claim(owner)
        if row is None:
            return
        outcome = attempt(row, config.outdir, token, name, [Watch(token, config.parent)])
        settle(store, row, owner, outcome, config.retries)


def run_local(
    store: BatchStore, config: WorkerConfig, workers: int, tick: Callable[[], None]
) -> None:
    """Run the store's queued jobs in ``workers`` processes, calling ``tick`` every poll;
    a worker that dies is replaced while jobs remain. Ctrl-C stops the workers, whose
    jobs go back to the queue, and is raised again."""
    context = multiprocessing.get_context("spawn")
    processes: list[multiprocessing.process.BaseProcess] = []
    try:
        while True:
            processes = [p for p in processes if p.is_alive()]
            store.recover({p.pid for p in processes if p.pid is not None}, config.retries)
            counts = store.counts()
            if not counts.get("queued") and not counts.get("running"):
                break
            while len(processes) < min(workers, counts.get("queued", 0) + len(processes)):
                process = context.Process(target=worker_main, args=(config,), daemon=True)
                process.start()
                processes.append(process)
            tick()
            time.sleep(POLL_S)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.join()
    tick()
