"""Fault injection for ``tests/test_web_faults.py``: a worker of ``portrait-stylize serve``
kills itself (SIGKILL) at an armed moment of storing a job's results.

Python imports this module at start-up in every process whose ``PYTHONPATH`` holds this
folder (the server and its spawned workers); it does nothing unless
``$PORTRAIT_STYLIZE_KILL_FILE`` is set. A test arms a moment by writing its name to that
file; the first worker to reach it deletes the file and dies there, so the worker started
in its place runs on unharmed. The moments:

- ``temp-result``: the result's TIFF written to its temporary name, not yet renamed;
- ``half-stored``: the outputs moved into ``files/`` but the transaction that marks the
  job done not committed;
- ``done-not-cleaned``: the job committed done, its working folder not yet removed.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
from pathlib import Path
from typing import Any

KILL_FILE = os.environ.get("PORTRAIT_STYLIZE_KILL_FILE")


def _armed(moment: str) -> bool:
    """Whether this is a worker and ``moment`` is armed; disarms it."""
    if KILL_FILE is None or not multiprocessing.current_process().name.startswith(
        "portrait-stylize-worker"
    ):
        return False
    path = Path(KILL_FILE)
    try:
        if path.read_text().strip() != moment:
            return False
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _die_if(moment: str) -> None:
    if _armed(moment):
        os.kill(os.getpid(), signal.SIGKILL)


def _replace(src: Any, dst: Any, **kwargs: Any) -> None:
    source, target = Path(src), Path(dst)
    if source.name.startswith(".result.tif.") and source.suffix == ".part":
        _die_if("temp-result")
    _os_replace(src, dst, **kwargs)
    if source.name == "result.png.json" and target.parent.parent.name == "files":
        _die_if("half-stored")


def _rmtree(path: Any, *args: Any, **kwargs: Any) -> None:
    if Path(path).parent.name == "work":
        _die_if("done-not-cleaned")
    _shutil_rmtree(path, *args, **kwargs)


if KILL_FILE is not None:
    _os_replace, _shutil_rmtree = os.replace, shutil.rmtree
    os.replace, shutil.rmtree = _replace, _rmtree  # type: ignore[assignment]
