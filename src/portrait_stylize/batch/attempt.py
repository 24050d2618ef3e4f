"""One attempt at a batch job, shared by the executors: run it, then settle its row.

A run checkpoints beside its output (``NAME.png.ckpt.pt``) at every scale boundary and
when stopped, and a job taken again continues from there.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..api import save_result, stylize
from ..checkpoint import checkpoint_path
from ..errors import PortraitStylizeError
from ..events import CancelToken, Step, StopReason
from ..methods import resolve_settings
from .store import BatchStore, Row


@dataclass(frozen=True)
class Attempt:
    """How an attempt ended: ``seconds`` of work when done; else ``error`` (None when
    it was stopped before the end) and whether another attempt may help (``retry``)."""

    seconds: float | None = None
    error: str | None = None
    retry: bool = False


def attempt(
    row: Row,
    outdir: Path,
    cancel: CancelToken,
    worker: str,
    callbacks: list[Callable[[Step], bool]] | None = None,
) -> Attempt:
    """Run ``row``'s job to its result and record in ``outdir`` (resuming its
    checkpoint if there is one), the record naming the ``worker`` that made it; a bad
    input or setting is not retried, a crash is."""
    job = row.job
    output = job.output(outdir)
    checkpoint = checkpoint_path(output)
    began = time.perf_counter()
    try:
        result = stylize(
            job.content,
            [job.style],
            resolve_settings(job.method, job.settings),
            callbacks=callbacks or [],
            cancel=cancel,
            checkpoint=checkpoint,
            resume=checkpoint.is_file(),
        )
        if result.stopped == StopReason.CANCELLED:
            return Attempt()
        result.record["batch"] = {
            "key": row.key,
            "job": job.name,
            "attempt": row.attempts,
            "worker": worker,
        }
        save_result(result, output)
    except PortraitStylizeError as exc:  # the job's own fault: retrying cannot help
        return Attempt(error=str(exc))
    except Exception as exc:
        return Attempt(error=f"internal error: {type(exc).__name__}: {exc}", retry=True)
    checkpoint.unlink(missing_ok=True)
    return Attempt(seconds=time.perf_counter() - began)


def worker_name() -> str:
    """This process's host and pid, as records name the worker that made them."""
    return f"{socket.gethostname()} pid {os.getpid()}"


def settle(store: BatchStore, row: Row, owner: int, outcome: Attempt, retries: int) -> None:
    """Record ``outcome`` of ``owner``'s attempt at ``row``: done, back to the queue
    (stopped, or failed with retries left), or failed."""
    if outcome.seconds is not None:
        store.finish(row.name, owner, outcome.seconds)
    elif outcome.error is None:
        store.release(row.name, owner)
    else:
        store.fail(row.name, owner, outcome.error, retries if outcome.retry else 0)
