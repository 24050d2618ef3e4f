"""A batch from start to end: plan each job (done already, to do, or unreadable), run
what is to do, then summarise."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..checkpoint import checkpoint_path
from ..errors import InputError
from ..methods import resolve_settings
from .cluster import run_ray
from .jobs import BatchJob, is_done
from .local import WorkerConfig, run_local
from .report import Progress, summary
from .store import BatchStore


@dataclass(frozen=True)
class Options:
    """How to run a batch."""

    outdir: Path
    workers: int = 1
    threads: int | None = None
    """torch threads per worker (None: the machine's, or cluster's, CPUs shared between
    the workers)."""
    retries: int = 1
    force: bool = False
    evaluate: bool = False
    quiet: bool = False
    executor: str = "local"
    """``local`` (worker processes here) or ``ray`` (actors on a Ray cluster)."""
    ray_address: str | None = None
    """The Ray cluster to join (None: start one on this machine)."""


def plan(store: BatchStore, jobs: list[BatchJob], options: Options) -> None:
    """Record each job's state for this run: done when its result's record carries its
    key (and not ``force``), failed when an input cannot be read, else queued (a stale
    checkpoint of a forced job removed); rows of jobs not in ``jobs`` are forgotten."""
    store.keep([job.name for job in jobs])
    for job in jobs:
        try:
            key = job.key()
        except OSError as exc:
            store.plan(job, None, "failed", f"cannot read input: {exc.strerror}: {exc.filename}")
            continue
        if not options.force and is_done(job, options.outdir, key):
            store.plan(job, key, "done")
            continue
        if options.force:
            checkpoint_path(job.output(options.outdir)).unlink(missing_ok=True)
        store.plan(job, key, "queued")


@contextlib.contextmanager
def only_batch_in(outdir: Path) -> Iterator[None]:
    """Hold ``outdir``'s batch lock (``.batch.lock``, released when this process ends,
    however it ends); InputError when another batch command holds it."""
    outdir.mkdir(parents=True, exist_ok=True)
    with open(outdir / ".batch.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise InputError(
                f"{outdir}: another batch command is running there (pid {handle.read().strip()})"
            ) from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        yield


def run_batch(jobs: list[BatchJob], options: Options) -> tuple[bool, str]:
    """Run ``jobs`` into ``options.outdir``; whether all are done, and the summary."""
    outdir = options.outdir.absolute()
    with only_batch_in(outdir):
        return _run(jobs, options, outdir)


def _run(jobs: list[BatchJob], options: Options, outdir: Path) -> tuple[bool, str]:
    """Plan, run and summarise ``jobs`` in ``outdir`` (its batch lock held)."""
    store = BatchStore(outdir)
    plan(store, jobs, options)
    progress = Progress(store, len(jobs), options.quiet)
    try:
        if options.executor == "ray":
            gpu = any(
                resolve_settings(job.method, job.settings).device.startswith("cuda") for job in jobs
            )
            run_ray(
                store,
                outdir,
                options.workers,
                options.threads,
                gpu,
                options.retries,
                options.ray_address,
                progress.tick,
            )
        else:
            threads = options.threads or max(1, (os.cpu_count() or 1) // options.workers)
            config = WorkerConfig(outdir, options.retries, threads, os.getpid())
            run_local(store, config, options.workers, progress.tick)
    finally:
        progress.close()
    rows = store.rows()
    return all(row.status == "done" for row in rows), summary(
        rows, options.outdir, options.evaluate
    )
