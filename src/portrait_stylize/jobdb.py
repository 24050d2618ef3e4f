"""SQLite access shared by the job stores of the web app and of batch runs."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path


def create(path: Path, schema: str) -> None:
    """Create the database at ``path`` (WAL journal) with the tables of ``schema``."""
    with connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(schema)


@contextlib.contextmanager
def connect(path: Path, write: bool = False, timeout: float = 30.0) -> Iterator[sqlite3.Connection]:
    """A connection for reads, or for one write transaction (BEGIN IMMEDIATE) committed on
    success and rolled back on any exception; rows as :class:`sqlite3.Row`."""
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        if write:
            conn.execute("BEGIN IMMEDIATE")
        yield conn
        if write:
            conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
