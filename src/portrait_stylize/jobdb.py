"""SQLite access shared by the job stores of the web app and of batch runs."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError


class StoreBusy(InputError):
    """A job database stayed locked by another process longer than a call's ``timeout``;
    the message names the file."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__(f"{path}: locked by another process for over {timeout:g} s")
        self.path = path
        self.timeout = timeout

    def __reduce__(self) -> tuple[type[StoreBusy], tuple[Path, float]]:
        return type(self), (self.path, self.timeout)


def create(path: Path, schema: str) -> None:
    """Create the database at ``path`` (WAL journal) with the tables of ``schema``."""
    with connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(schema)


@contextlib.contextmanager
def connect(path: Path, write: bool = False, timeout: float = 30.0) -> Iterator[sqlite3.Connection]:
    """A connection for reads, or for one write transaction (BEGIN IMMEDIATE) committed on
    success and rolled back on any exception; rows as :class:`sqlite3.Row`. StoreBusy when
    another process keeps the database locked for over ``timeout`` seconds."""
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
            conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.OperationalError) and exc.sqlite_errorcode & 0xFF in (
            sqlite3.SQLITE_BUSY,
            sqlite3.SQLITE_LOCKED,
        ):
            raise StoreBusy(path, timeout) from exc
        raise
    finally:
        conn.close()
