"""The Ray executor: actors on a Ray cluster run the jobs; the driver keeps the store.

Each actor holds its networks warm between jobs (one per GPU, or ``threads`` CPUs
each). Only the driver, in this process, reads and writes ``batch.sqlite``: it claims a
job for an idle actor (the actor's pid as owner), hands it the job's row and settles the
row with what comes back. Inputs and the output folder must be at the same path on
every node (shared storage). An actor that dies is restarted by Ray; its job goes back
to the queue while it has retries left and continues from its last checkpoint.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..errors import DeviceError
from ..events import CancelToken
from ..extras import require_extra
from .attempt import Attempt, attempt, settle, worker_name
from .store import BatchStore, Row

POLL_S = 0.5
DIED = "its Ray worker died (killed, out of memory, or its node was lost)"


class Worker:
    """A Ray actor's state: its thread budget, and networks kept warm by the process."""

    def __init__(self, threads: int) -> None:
        import ray

        torch.set_num_threads(threads)
        self.name = f"{worker_name()}, Ray node {ray.get_runtime_context().get_node_id()}"

    def pid(self) -> int:
        return os.getpid()

    def run(self, row: Row, outdir: str) -> Attempt:
        return attempt(row, Path(outdir), CancelToken(), self.name)


def _ray() -> Any:
    """The ``ray`` module, or ExtraMissing when the extra is not installed."""
    require_extra("ray", "--executor ray")
    import ray

    return ray


def run_ray(
    store: BatchStore,
    outdir: Path,
    workers: int,
    threads: int | None,
    gpu: bool,
    retries: int,
    address: str | None,
    tick: Callable[[], None],
) -> None:
    """Run the store's queued jobs on ``workers`` Ray actors of ``threads`` CPUs each
    (default: the cluster's CPUs shared between them) or one GPU each (``gpu``), on the
    cluster at ``address`` (None: a new one on this machine), calling ``tick`` as they
    go. Ctrl-C kills the actors, whose jobs go back to the queue, and is raised again."""
    ray = _ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
    try:
        resources = ray.cluster_resources()
        if gpu and resources.get("GPU", 0) < 1:
            raise DeviceError("--device cuda with --executor ray: the cluster has no GPU")
        cpus = threads or max(1, int(resources.get("CPU", 1)) // workers)
        actor = ray.remote(Worker).options(
            num_cpus=1 if gpu else cpus, num_gpus=1 if gpu else 0, max_restarts=-1
        )
        pool = [actor.remote(cpus) for _ in range(workers)]
        _drive(ray, store, outdir, pool, retries, tick)
    finally:
        if started:
            ray.shutdown()
    tick()


def _pid(ray: Any, worker: Any) -> int | None:
    """The pid of ``worker``'s process, once it is up (Ray restarts a dead actor); None
    when it cannot be restarted."""
    while True:
        try:
            return ray.get(worker.pid.remote())
        except ray.exceptions.ActorUnavailableError:
            time.sleep(POLL_S)
        except ray.exceptions.RayActorError:
            return None


def _drive(
    ray: Any,
    store: BatchStore,
    outdir: Path,
    pool: list[Any],
    retries: int,
    tick: Callable[[], None],
) -> None:
    """Keep every actor of ``pool`` busy until the queue is empty and all have returned."""
    idle = list(pool)
    pending: dict[Any, tuple[Any, Row, int]] = {}
    try:
        while True:
            while idle:
                worker = idle.pop()
                owner = _pid(ray, worker)
                if owner is None:  # dead for good: the others go on
                    continue
                row = store.claim(owner)
                if row is None:
                    break
                pending[worker.run.remote(row, str(outdir))] = (worker, row, owner)
            if not pending:
                return
            finished, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
            for ref in finished:
                worker, row, owner = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
                    outcome = Attempt(error=DIED, retry=True)
                settle(store, row, owner, outcome, retries)
                idle.append(worker)
            tick()
    finally:
        for worker in pool:
            ray.kill(worker, no_restart=True)
        for _, row, owner in pending.values():
            store.release(row.name, owner)
