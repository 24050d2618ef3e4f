"""File writes that never leave a half-written file behind, even when killed.

A file is written to a temporary file beside it, ``.NAME.HOST-PID-RANDOM.part``, and
renamed over it once complete. A process killed mid-write (kill -9, power loss) leaves
its temporary file; the next write in that folder removes those whose process is gone.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from pathlib import Path

PART = ".part"
_GROUP: ContextVar[list[tuple[Path, Path]] | None] = ContextVar(
    "portrait_stylize_atomic_group", default=None
)
"""(temporary file, destination) of each write of the current :func:`atomic_group`."""


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _remove_stale_parts(folder: Path) -> None:
    """Remove the temporary files in ``folder`` of this machine's processes that are gone
    (killed while writing); those of live processes and of other machines stay."""
    host = socket.gethostname()
    with suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if not (entry.name.startswith(".") and entry.name.endswith(PART)):
                continue
            head, _, pid = entry.name[: -len(PART)].rpartition("-")[0].rpartition("-")
            if head.endswith(f".{host}") and pid.isdigit() and not _alive(int(pid)):
                with suppress(OSError):
                    os.unlink(entry.path)


def _create_part(dest: Path) -> Path:
    """A new empty temporary file beside ``dest``, created with the permissions a plain
    ``open`` would give (0666 less the umask). Its name starts with at most 32 characters
    of ``dest``'s, so any name the file system takes for ``dest`` leaves room for it."""
    owner = f"{socket.gethostname()}-{os.getpid()}"
    while True:
        tmp = dest.with_name(f".{dest.name[:32]}.{owner}-{secrets.token_hex(4)}{PART}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp


@contextmanager
def atomic_output(dest: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success rename it over ``dest`` (inside
    :func:`atomic_group`, when the group ends). On an exception the temporary file goes
    and ``dest`` is untouched."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(dest.parent)
    tmp = _create_part(dest)
    group = _GROUP.get()
    handed_over = False
    try:
        yield tmp
        if group is None:
            os.replace(tmp, dest)
        else:
            group.append((tmp, dest))
            handed_over = True
    finally:
        if not handed_over:
            tmp.unlink(missing_ok=True)


@contextmanager
def atomic_group() -> Iterator[None]:
    """Make the :func:`atomic_output` writes in this context one change: each destination
    is replaced only once every file is written. The first file written is the main one:
    its old version is removed first and the new one renamed into place last, so when it
    exists, the files written with it are there and are its own."""
    group: list[tuple[Path, Path]] = []
    token = _GROUP.set(group)
    try:
        yield
        if group:
            group[0][1].unlink(missing_ok=True)
        for tmp, dest in reversed(group):
            os.replace(tmp, dest)
    finally:
        _GROUP.reset(token)
        for tmp, _ in group:
            tmp.unlink(missing_ok=True)
