"""The paths of a job, checked before any work and without PyTorch: an input file, the
output and the files written beside it (its run record and its checkpoint).

:mod:`.images` reads and writes the images themselves; the CLI calls these first, so
that a missing file or a wrong suffix is answered at once.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from .errors import InputError

OUTPUT_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"}


def record_path(result: str | Path) -> Path:
    """The run record beside a result: ``OUT`` -> ``OUT.json``."""
    result = Path(result)
    return result.with_name(result.name + ".json")


def checkpoint_path(output: str | Path) -> Path:
    """The checkpoint beside a result: ``OUT`` -> ``OUT.ckpt.pt``."""
    output = Path(output)
    return output.with_name(output.name + ".ckpt.pt")


def os_reason(exc: OSError | ValueError) -> str:
    """Why the system refused a path, without the path: "permission denied", ..."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return reason.lower()


def check_file(path: Path) -> None:
    """Refuse, with the reason, a path that is not a readable, non-empty regular file."""
    try:
        status = path.stat()
    except FileNotFoundError:
        broken = " (a broken link)" if path.is_symlink() else ""
        raise InputError(f"{path}: no such file{broken}") from None
    except (OSError, ValueError) as exc:  # a name too long, a link loop, a NUL byte ...
        raise InputError(f"{path}: cannot be opened ({os_reason(exc)})") from None
    if stat.S_ISDIR(status.st_mode):
        raise InputError(f"{path}: a folder, not an image file")
    if not stat.S_ISREG(status.st_mode):
        raise InputError(f"{path}: not a regular file (a pipe, socket or device)")
    if status.st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")


def check_output_path(
    path: str | Path, inputs: Iterable[str | Path] = (), beside: Iterable[str | Path] = ()
) -> Path:
    """Validate an output path before any work is done; returns it as a Path.

    Refused: an unknown suffix, a missing folder, a folder, a name the file system cannot
    hold (nor that of the record beside it, or of ``beside``: other files written next to
    it) and any of ``inputs``: a result never replaces what it is made from.
    """
    out = Path(path)
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(f"{out}: output must end in one of {', '.join(sorted(OUTPUT_SUFFIXES))}")
    try:
        if not out.parent.is_dir():
            raise InputError(f"{out}: folder {out.parent} does not exist")
        if out.is_dir():
            raise InputError(f"{out}: a folder, not a file name")
        limit = os.pathconf(out.parent, "PC_NAME_MAX")
    except (OSError, ValueError) as exc:
        raise InputError(f"{out}: cannot be written ({os_reason(exc)})") from None
    names = [len(os.fsencode(Path(p).name)) for p in (out, record_path(out), *beside)]
    if max(names) > limit:
        raise InputError(
            f"{out}: name too long ({names[0]} bytes; this folder takes {limit}, "
            f"{max(names) - names[0]} fewer for the files written beside it)"
        )
    for source in inputs:
        if _same_file(out, source):
            raise InputError(f"{out}: is also an input ({source}); write the result elsewhere")
    return out


def _same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` name one existing file."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False
