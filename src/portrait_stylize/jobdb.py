"""SQLite access shared by the job stores of the web app and of batch runs, and a job's
id from its inputs and settings (the same in both)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import InputError
from .weights.registry import file_digest

FULL_BELOW = 1 << 20
"""Free bytes under which a failed write (or a read whose shared memory cannot grow)
counts as the disk being full."""


class StoreUnavailable(InputError):
    """A job database that cannot be used for now (locked, or its disk full): a front
    end waits, or asks its client to try again."""


class StoreBusy(StoreUnavailable):
    """A job database stayed locked by another process longer than a call's ``timeout``;
    the message names the file."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__(f"{path}: locked by another process for over {timeout:g} s")
        self.path = path
        self.timeout = timeout

    def __reduce__(self) -> tuple[type[StoreBusy], tuple[Path, float]]:
        return type(self), (self.path, self.timeout)


class StoreFull(StoreUnavailable):
    """The disk holding a job database is full: SQLite cannot grow the database, its
    write-ahead log or its shared memory; the message names the file."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path}: no space left on the disk that holds it")
        self.path = path

    def __reduce__(self) -> tuple[type[StoreFull], tuple[Path]]:
        return type(self), (self.path,)


def disk_full(folder: Path) -> bool:
    """Whether the file system holding ``folder`` has under :data:`FULL_BELOW` bytes free."""
    try:
        stat = os.statvfs(folder)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < FULL_BELOW


def create(path: Path, schema: str) -> None:
    """Create the database at ``path`` (WAL journal) with the tables of ``schema``."""
    with connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(schema)


@contextlib.contextmanager
def connect(path: Path, write: bool = False, timeout: float = 30.0) -> Iterator[sqlite3.Connection]:
    """A connection for reads, or for one write transaction (BEGIN IMMEDIATE) committed on
    success and rolled back on any exception; rows as :class:`sqlite3.Row`. StoreBusy when
    another process keeps the database locked for over ``timeout`` seconds, StoreFull
    when SQLite fails for want of space (a full disk or an I/O error on one)."""
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        if write:
            conn.execute("BEGIN IMMEDIATE")
        yield conn
        if write:
            conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # else closing rolls it back
                conn.execute("ROLLBACK")
        code = getattr(exc, "sqlite_errorcode", -1) & 0xFF
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise StoreBusy(path, timeout) from exc
        if code in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR) and disk_full(path.parent):
            raise StoreFull(path) from exc
        raise
    finally:
        conn.close()


def job_id(content: str, styles: list[str], settings: dict[str, Any]) -> str:
    """A job's id from the sha256 of its content and styles (in order) and its resolved
    settings: the same inputs and settings give the same id."""
    key = json.dumps({"content": content, "styles": styles, "settings": settings}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes (the weights registry's chunked digest)."""
    return file_digest(path)
