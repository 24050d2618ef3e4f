"""``OUTDIR/batch.sqlite``: each job's state, attempts, error and timings.

A job is ``queued``, ``running`` (claimed by a worker, named by its pid), ``done`` or
``failed``. Workers claim jobs in one ``BEGIN IMMEDIATE`` transaction each, so two
never take the same job; the driver gives back the jobs of workers that died.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..jobdb import connect, create
from .jobs import BatchJob

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    name TEXT PRIMARY KEY,
    key TEXT,
    content TEXT NOT NULL,
    style TEXT NOT NULL,
    method TEXT NOT NULL,
    settings TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    owner INTEGER,
    error TEXT,
    started REAL,
    finished REAL,
    seconds REAL
);
"""


@dataclass
class Row:
    """One job's row."""

    name: str
    key: str | None
    content: str
    style: str
    method: str
    settings: dict[str, Any]
    status: str
    attempts: int
    owner: int | None
    error: str | None
    started: float | None
    finished: float | None
    seconds: float | None

    @classmethod
    def from_db(cls, row: sqlite3.Row) -> Row:
        return cls(**{**dict(row), "settings": json.loads(row["settings"])})

    @property
    def job(self) -> BatchJob:
        return BatchJob(self.name, Path(self.content), Path(self.style), self.method, self.settings)


class BatchStore:
    """The jobs of the batch in ``outdir`` (created if absent); a call waits up to
    ``timeout`` seconds for another process's lock on the database."""

    def __init__(self, outdir: Path, timeout: float = 60) -> None:
        outdir.mkdir(parents=True, exist_ok=True)
        self.path = outdir / "batch.sqlite"
        self.timeout = timeout
        create(self.path, SCHEMA)

    def _connect(
        self, write: bool = False
    ) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A connection for reads, or for one write transaction (StoreBusy, an InputError
        naming the file, when another process holds the lock past ``timeout``)."""
        return connect(self.path, write, self.timeout)

    def plan(self, job: BatchJob, key: str | None, status: str, error: str | None = None) -> None:
        """Set ``job``'s row for this run: ``queued`` (attempts from zero), ``done`` (its
        timings kept when it was done already) or ``failed`` with ``error``."""
        settings = json.dumps(job.settings, sort_keys=True)
        with self._connect(write=True) as conn:
            old = conn.execute("SELECT status FROM jobs WHERE name = ?", (job.name,)).fetchone()
            if status == "done" and old is not None and old["status"] == "done":
                return
            conn.execute(
                "INSERT OR REPLACE INTO jobs (name, key, content, style, method, settings, "
                "status, error, finished) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.name,
                    key,
                    str(job.content),
                    str(job.style),
                    job.method,
                    settings,
                    status,
                    error,
                    time.time() if status != "queued" else None,
                ),
            )

    def keep(self, names: list[str]) -> None:
        """Forget the rows of jobs not in ``names`` (a previous command's; their results
        stay), so that this run neither runs nor counts them."""
        wanted = set(names)
        with self._connect(write=True) as conn:
            for (name,) in conn.execute("SELECT name FROM jobs").fetchall():
                if name not in wanted:
                    conn.execute("DELETE FROM jobs WHERE name = ?", (name,))

    def claim(self, owner: int) -> Row | None:
        """Take the next queued job for worker ``owner``; None when none is left."""
        with self._connect(write=True) as conn:
            row = conn.execute(
                "SELECT name FROM jobs WHERE status = 'queued' ORDER BY rowid LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE jobs SET status = 'running', owner = ?, attempts = attempts + 1, "
                "started = ?, error = NULL WHERE name = ?",
                (owner, time.time(), row["name"]),
            )
            return self._row(conn, row["name"])

    def finish(self, name: str, owner: int, seconds: float) -> None:
        """Mark ``name`` done after ``seconds`` of work."""
        self._end(name, owner, "done", None, seconds)

    def fail(self, name: str, owner: int, error: str, retries: int) -> None:
        """Queue ``name`` again while it has retries left, else mark it failed."""
        self._end(name, owner, "failed", error, None, retries)

    def release(self, name: str, owner: int) -> None:
        """Give ``name`` back to the queue, the attempt not counted (its worker stopped)."""
        with self._connect(write=True) as conn:
            conn.execute(
                "UPDATE jobs SET status = 'queued', owner = NULL, attempts = attempts - 1 "
                "WHERE name = ? AND owner = ? AND status = 'running'",
                (name, owner),
            )

    def _end(
        self,
        name: str,
        owner: int,
        status: str,
        error: str | None,
        seconds: float | None,
        retries: int = 0,
    ) -> None:
        with self._connect(write=True) as conn:
            conn.execute(
                "UPDATE jobs SET status = CASE WHEN ? = 'failed' AND attempts <= ? "
                "THEN 'queued' ELSE ? END, owner = NULL, error = ?, seconds = ?, finished = ? "
                "WHERE name = ? AND owner = ? AND status = 'running'",
                (status, retries, status, error, seconds, time.time(), name, owner),
            )

    def recover(self, alive: set[int], retries: int) -> None:
        """Jobs running under a worker not in ``alive`` (it died): queued again while they
        have retries left, else failed."""
        with self._connect(write=True) as conn:
            for row in conn.execute(
                "SELECT name, owner FROM jobs WHERE status = 'running'"
            ).fetchall():
                if row["owner"] not in alive:
                    conn.execute(
                        "UPDATE jobs SET status = CASE WHEN attempts <= ? THEN 'queued' "
                        "ELSE 'failed' END, owner = NULL, error = ? WHERE name = ?",
                        (retries, "its worker process died (killed or out of memory)", row[0]),
                    )

    def counts(self) -> dict[str, int]:
        """How many jobs are in each state."""
        with self._connect() as conn:
            rows = conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        return {status: count for status, count in rows}

    def rows(self) -> list[Row]:
        """Every job's row, in the order they were planned."""
        with self._connect() as conn:
            return [Row.from_db(r) for r in conn.execute("SELECT * FROM jobs ORDER BY rowid")]

    def _row(self, conn: sqlite3.Connection, name: str) -> Row:
        return Row.from_db(conn.execute("SELECT * FROM jobs WHERE name = ?", (name,)).fetchone())
