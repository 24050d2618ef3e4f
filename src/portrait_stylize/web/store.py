"""The job store: one SQLite database (WAL) and content-addressed files under a data folder.

``DATA/jobs.sqlite3`` holds a row per job (status, attempts, lease, progress, settings,
input and output hashes) and the events each job sent (for server-sent events that
resume with Last-Event-ID). ``DATA/files/ab/abcd...`` holds every input and output once,
named by its sha256; ``DATA/work/JOB/`` a running job's checkpoint and preview;
``DATA/tmp/`` uploads being checked (the sweep removes those left for an hour). Files
enter ``files/`` by rename, inside the transaction that records them, so a file is whole
or absent and never orphaned by a concurrent delete.

A worker claims a job by taking its lease (owner, expiry) and renews it with every
progress report; a job whose lease expired (its worker died) is claimable again, and
after ``max_attempts`` claims it fails with the reason. Every write is one ``BEGIN
IMMEDIATE`` transaction, so claims from several processes never take one job twice.

A store call waits up to :data:`WAIT_S` for a database another process keeps locked,
then raises :class:`~portrait_stylize.jobdb.StoreBusy`; with no space left on its disk it
raises :class:`~portrait_stylize.jobdb.StoreFull`. A process killed between moving
files into ``files/`` and committing leaves files no job refers to; :meth:`JobStore.sweep`
removes them.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..jobdb import StoreBusy, StoreUnavailable, connect, create, file_sha256

STATUSES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")
ACTIVE = ("queued", "running")
PROGRESS_FIELDS = ("stage", "stages", "step", "steps", "eta_s", "terms")
WAIT_S = 10.0
"""Seconds a store call waits for a database locked by another process (then StoreBusy)."""
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
"""The errnos of a write refused for want of space (a full disk, a quota)."""
STALE_UPLOAD_S = 3600.0
"""Age (since the last write) after which a file in ``tmp/`` counts as abandoned."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    settings TEXT NOT NULL,
    inputs TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires REAL,
    stage INTEGER,
    stages INTEGER,
    step INTEGER,
    steps INTEGER,
    eta_s REAL,
    terms TEXT,
    error TEXT,
    outputs TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_job ON events (job, seq);
"""


def busy_message(exc: StoreUnavailable) -> str:
    """What the web app says (in replies and logs) of a locked job database, or of a full
    disk under it: no path."""
    if isinstance(exc, StoreBusy):
        return (
            f"the job database is locked by another process (waited {exc.timeout:g} s); try again"
        )
    return "the server's disk is full (no space left for the job database); try again later"


def new_owner() -> str:
    """A lease owner name for this process: ``host:pid:nonce``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _owner_is_dead(owner: str | None) -> bool:
    """Whether ``owner`` (:func:`new_owner`) is a process of this host that no longer runs;
    False when unsure (another host, a process of another user)."""
    if not owner or owner.count(":") != 2:
        return False
    host, pid, _ = owner.split(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _hashes(inputs: str, outputs: str | None) -> set[str]:
    """The file hashes in a row's ``inputs`` and ``outputs`` JSON columns."""
    decoded = json.loads(inputs)
    return {decoded["content"], *decoded["styles"], *json.loads(outputs or "{}").values()}


@dataclass
class Job:
    """One row of the jobs table, JSON columns decoded."""

    id: str
    status: str
    created: float
    updated: float
    settings: dict[str, Any]
    inputs: dict[str, Any]
    """{"content": sha256, "styles": [sha256, ...]}."""
    attempts: int
    lease_owner: str | None
    lease_expires: float | None
    stage: int | None
    stages: int | None
    step: int | None
    steps: int | None
    eta_s: float | None
    terms: dict[str, float] | None
    error: str | None
    outputs: dict[str, str] | None
    """{"png", "tif", "record", artifact names...: sha256} once done."""

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        values = dict(row)
        for name in ("settings", "inputs", "terms", "outputs"):
            if values[name] is not None:
                values[name] = json.loads(values[name])
        return cls(**values)


class JobStore:
    """Jobs, their events and their files under ``root`` (created if absent)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.files = self.root / "files"
        self.tmp = self.root / "tmp"
        self.work = self.root / "work"
        for folder in (self.files, self.tmp, self.work):
            folder.mkdir(parents=True, exist_ok=True)
        self.database = self.root / "jobs.sqlite3"
        create(self.database, SCHEMA)

    def _connect(
        self, write: bool = False
    ) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A connection for one read, or for one write transaction; StoreBusy when
        another process keeps the database locked for :data:`WAIT_S`."""
        return connect(self.database, write, WAIT_S)

    # files

    def file_path(self, sha: str) -> Path:
        """Where the file with sha256 ``sha`` lies (or would)."""
        return self.files / sha[:2] / sha

    def temp_path(self, suffix: str = "") -> Path:
        """A fresh name in ``tmp/`` (nothing is created)."""
        return self.tmp / f"{uuid.uuid4().hex}{suffix}"

    def work_dir(self, job: str) -> Path:
        """A job's working folder (checkpoint, preview, results before they are stored)."""
        return self.work / job

    def _put(self, path: Path, sha: str) -> None:
        """Move ``path`` to its content address (dropping it when that exists already)."""
        target = self.file_path(sha)
        if target.exists():
            path.unlink()
            return
        target.parent.mkdir(exist_ok=True)
        os.replace(path, target)

    def _referenced(self, conn: sqlite3.Connection) -> set[str]:
        """Every file hash a job row refers to."""
        used: set[str] = set()
        for row in conn.execute("SELECT inputs, outputs FROM jobs"):
            used |= _hashes(row["inputs"], row["outputs"])
        return used

    def sweep(self) -> tuple[int, int, int]:
        """Remove what a process killed at the wrong moment left: files in ``files/`` no
        job refers to (moved there by a transaction that never committed), uploads in
        ``tmp/`` untouched for :data:`STALE_UPLOAD_S` (a server killed mid-upload; younger
        ones may be another server's upload in progress) and the working folders of jobs
        that are done or gone. Returns how many of each it removed."""
        with self._connect(write=True) as conn:  # no _put and no claim runs meanwhile
            used = self._referenced(conn)
            stray = [path for path in self.files.glob("*/*") if path.name not in used]
            for path in stray:
                path.unlink()
            cutoff = time.time() - STALE_UPLOAD_S
            stale = []
            for path in self.tmp.iterdir():
                with contextlib.suppress(FileNotFoundError):  # an upload refused meanwhile
                    if path.is_file() and path.stat().st_mtime < cutoff:
                        path.unlink()
                        stale.append(path)
            unfinished = {
                row["id"] for row in conn.execute("SELECT id FROM jobs WHERE status != 'done'")
            }
            folders = [path for path in self.work.iterdir() if path.name not in unfinished]
            for folder in folders:
                shutil.rmtree(folder, ignore_errors=True)
        return len(stray), len(stale), len(folders)

    # jobs

    def submit(
        self, job: str, settings: dict[str, Any], inputs: list[tuple[Path, str]]
    ) -> tuple[Job, bool]:
        """Queue job ``job`` with ``settings`` and ``inputs`` ((file, sha256): the content,
        then the styles), moving the files into the store. An identical job that exists
        is returned as it is (its files dropped), or queued again when it had failed or
        was cancelled. Returns the job and whether it was (re)queued."""
        now = time.time()
        record = {"content": inputs[0][1], "styles": [sha for _, sha in inputs[1:]]}
        with self._connect(write=True) as conn:
            for path, sha in inputs:
                self._put(path, sha)
            row = conn.execute("SELECT status FROM jobs WHERE id = ?", (job,)).fetchone()
            if row is not None and row["status"] not in ("failed", "cancelled"):
                return self._get(conn, job), False
            if row is None:
                conn.execute(
                    "INSERT INTO jobs (id, status, created, updated, settings, inputs) "
                    "VALUES (?, 'queued', ?, ?, ?, ?)",
                    (job, now, now, json.dumps(settings), json.dumps(record)),
                )
            else:
                conn.execute(
                    "UPDATE jobs SET status = 'queued', created = ?, updated = ?, attempts = 0, "
                    "error = NULL, lease_owner = NULL, lease_expires = NULL WHERE id = ?",
                    (now, now, job),
                )
            self._event(conn, job, "queued", {})
            return self._get(conn, job), True

    def _get(self, conn: sqlite3.Connection, job: str) -> Job:
        return Job.from_row(conn.execute("SELECT * FROM jobs WHERE id = ?", (job,)).fetchone())

    def get(self, job: str) -> Job | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job,)).fetchone()
        return Job.from_row(row) if row is not None else None

    def list(self, limit: int = 100) -> list[Job]:
        """The newest ``limit`` jobs, newest first."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT * FROM jobs ORDER BY created DESC, id LIMIT ?", (limit,)
            ).fetchall()
        return [Job.from_row(row) for row in rows]

    def position(self, job: Job) -> int | None:
        """A queued job's place in the queue (1: next), None for other states."""
        if job.status != "queued":
            return None
        with self._connect() as conn:
            ahead = conn.execute(
                "SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND created < ?",
                (job.created,),
            ).fetchone()[0]
        return int(ahead) + 1

    def claim(self, owner: str, lease_s: float, max_attempts: int) -> Job | None:
        """Take the next job for ``owner``: a running job whose lease expired (or whose
        worker on this host is gone) first, else the oldest queued one. A job whose
        lease ran out after ``max_attempts`` claims fails instead. None: nothing to do."""
        with self._connect(write=True) as conn:
            now = time.time()
            for row in conn.execute(
                "SELECT id, lease_owner FROM jobs WHERE status = 'running' AND lease_expires >= ?",
                (now,),
            ).fetchall():
                if _owner_is_dead(row["lease_owner"]):
                    conn.execute("UPDATE jobs SET lease_expires = 0 WHERE id = ?", (row["id"],))
            while True:
                row = conn.execute(
                    "SELECT id, status, attempts FROM jobs WHERE status = 'queued' "
                    "OR (status = 'running' AND lease_expires < ?) "
                    "ORDER BY status = 'running' DESC, created, id LIMIT 1",
                    (now,),
                ).fetchone()
                if row is None:
                    return None
                if row["status"] == "running" and row["attempts"] >= max_attempts:
                    error = (
                        f"gave up after {row['attempts']} attempts: the worker running it "
                        "stopped (killed or out of memory) each time"
                    )
                    self._finish(conn, row["id"], "failed", error=error)
                    continue
                conn.execute(
                    "UPDATE jobs SET status = 'running', lease_owner = ?, lease_expires = ?, "
                    "attempts = attempts + 1, updated = ? WHERE id = ?",
                    (owner, now + lease_s, now, row["id"]),
                )
                job = self._get(conn, row["id"])
                self._event(conn, job.id, "started", {"attempt": job.attempts})
                return job

    def progress(
        self,
        job: str,
        owner: str,
        lease_s: float,
        fields: dict[str, Any],
        event: tuple[str, dict[str, Any]] | None = None,
    ) -> bool:
        """Renew ``owner``'s lease on ``job``, store ``fields`` (of :data:`PROGRESS_FIELDS`)
        and add ``event`` (kind, data). False: the lease is lost (the job was cancelled,
        or it expired and another worker took it) and the run should stop."""
        values = {k: json.dumps(v) if k == "terms" else v for k, v in fields.items()}
        unknown = set(values) - set(PROGRESS_FIELDS)
        if unknown:
            raise ValueError(f"not progress fields: {sorted(unknown)}")
        assignments = "".join(f", {name} = ?" for name in values)
        now = time.time()
        with self._connect(write=True) as conn:
            cursor = conn.execute(
                f"UPDATE jobs SET lease_expires = ?, updated = ?{assignments} "
                "WHERE id = ? AND status = 'running' AND lease_owner = ?",
                (now + lease_s, now, *values.values(), job, owner),
            )
            if cursor.rowcount == 0:
                return False
            if event is not None:
                self._event(conn, job, *event)
        return True

    def finish(self, job: str, owner: str, outputs: dict[str, Path]) -> bool:
        """Mark ``job`` done with ``outputs`` (name -> file, moved into the store) while
        ``owner`` holds its lease; False (nothing moved) when it does not."""
        with self._connect(write=True) as conn:
            if not self._owns(conn, job, owner):
                return False
            hashes = {}
            for name, path in outputs.items():
                hashes[name] = file_sha256(path)
                self._put(path, hashes[name])
            self._finish(conn, job, "done", outputs=hashes)
        return True

    def fail(self, job: str, owner: str, error: str) -> bool:
        """Mark ``job`` failed with ``error`` while ``owner`` holds its lease."""
        with self._connect(write=True) as conn:
            if not self._owns(conn, job, owner):
                return False
            self._finish(conn, job, "failed", error=error)
        return True

    def release(self, job: str, owner: str) -> bool:
        """Give ``job`` back to the queue (a worker stopping cleanly): the attempt does
        not count, and the next worker continues from the checkpoint."""
        now = time.time()
        with self._connect(write=True) as conn:
            cursor = conn.execute(
                "UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_expires = NULL, "
                "attempts = MAX(attempts - 1, 0), updated = ? "
                "WHERE id = ? AND status = 'running' AND lease_owner = ?",
                (now, job, owner),
            )
            if cursor.rowcount == 0:
                return False
            self._event(conn, job, "queued", {"released": True})
        return True

    def cancel(self, job: str) -> Job | None:
        """Cancel a queued or running job (its worker stops at its next progress report);
        a finished job stays as it is. None: no such job."""
        with self._connect(write=True) as conn:
            row = conn.execute("SELECT status FROM jobs WHERE id = ?", (job,)).fetchone()
            if row is None:
                return None
            if row["status"] in ACTIVE:
                self._finish(conn, job, "cancelled", error="cancelled by request")
            return self._get(conn, job)

    def delete(self, job: str) -> bool:
        """Remove a finished ``job``, its events, its working folder and the files no other
        job uses. False: no such finished job."""
        with self._connect(write=True) as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job,)).fetchone()
            if row is None or row["status"] not in FINISHED:
                return False
            mine = _hashes(row["inputs"], row["outputs"])
            conn.execute("DELETE FROM jobs WHERE id = ?", (job,))
            conn.execute("DELETE FROM events WHERE job = ?", (job,))
            for sha in mine - self._referenced(conn):
                self.file_path(sha).unlink(missing_ok=True)
        shutil.rmtree(self.work_dir(job), ignore_errors=True)
        return True

    def _owns(self, conn: sqlite3.Connection, job: str, owner: str) -> bool:
        row = conn.execute(
            "SELECT 1 FROM jobs WHERE id = ? AND status = 'running' AND lease_owner = ?",
            (job, owner),
        ).fetchone()
        return row is not None

    def _finish(
        self,
        conn: sqlite3.Connection,
        job: str,
        status: str,
        error: str | None = None,
        outputs: dict[str, str] | None = None,
    ) -> None:
        """Set a final ``status`` (lease cleared) and send it as the job's last event."""
        conn.execute(
            "UPDATE jobs SET status = ?, error = ?, outputs = ?, lease_owner = NULL, "
            "lease_expires = NULL, eta_s = NULL, updated = ? WHERE id = ?",
            (status, error, json.dumps(outputs) if outputs else None, time.time(), job),
        )
        self._event(conn, job, status, {"error": error} if error else {})

    # events

    def _event(self, conn: sqlite3.Connection, job: str, kind: str, data: dict[str, Any]) -> None:
        conn.execute(
            "INSERT INTO events (job, kind, data) VALUES (?, ?, ?)", (job, kind, json.dumps(data))
        )

    def events(self, job: str, after: int = 0) -> list[tuple[int, str, dict[str, Any]]]:
        """``job``'s events after sequence number ``after``: (seq, kind, data), in order."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT seq, kind, data FROM events WHERE job = ? AND seq > ? ORDER BY seq",
                (job, after),
            ).fetchall()
        return [(row["seq"], row["kind"], json.loads(row["data"])) for row in rows]
