"""A batch folder whose driver is killed (SIGKILL to ``portrait-stylize batch`` alone: its
workers are left to notice) as a share of the jobs is done, then run again, until it
finishes: every job done exactly once (a result, once written, never written again), every
result decodes, the folder holds exactly the results and their records, no traceback.
The ``soak`` version (100 jobs, the driver killed twice) gives the figures of
docs/reliability.md (``out/tests/batch-chaos-*.json``); the default one is a short run of
the same. The Ray executor's driver kill is in ``test_batch_faults.py``.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from .test_batch import statuses
from .web_server import children, save_figures

pytestmark = pytest.mark.slow

LEFT_BY_A_BATCH = {
    "batch.sqlite",
    "batch.sqlite-wal",
    "batch.sqlite-shm",
    ".batch.lock",
    "batch.csv",
    "index.html",
    "thumbs",
}
"""What a batch folder holds besides the results and their records: the store, the lock,
the report and its thumbnails."""


@dataclass(frozen=True)
class DriverChaos:
    """Photos x paintings (instant, 32 px) and the shares of jobs done at which the
    driver is killed."""

    photos: int
    styles: int
    kills_at: tuple[float, ...] = (0.3, 0.65)

    @property
    def jobs(self) -> int:
        return self.photos * self.styles


def inputs(root: Path, chaos: DriverChaos) -> tuple[Path, Path]:
    """Folders of small random photos and paintings."""
    rng = np.random.default_rng(0)
    photos, styles = root / "photos", root / "styles"
    for folder, count in ((photos, chaos.photos), (styles, chaos.styles)):
        folder.mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{folder.name[:-1]}{i}.png")
    return photos, styles


def _done(out: Path) -> dict[str, int]:
    """The results on disk of jobs the store says are done: name -> mtime (ns)."""
    try:
        rows = statuses(out)
    except sqlite3.OperationalError:  # not there yet
        return {}
    done = [name for name, (status, _, _) in rows.items() if status == "done"]
    return {name: (out / f"{name}.png").stat().st_mtime_ns for name in done}


def run_with_driver_kills(
    root: Path, chaos: DriverChaos, options: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run the batch, killing its driver at each of ``chaos.kills_at`` and running it again;
    check the folder; return the figures."""
    photos, styles = inputs(root, chaos)
    out = root / "out"
    command = [sys.executable, "-m", "portrait_stylize.cli", "batch", str(photos), str(styles)]
    command += ["-o", str(out), "--method", "instant", "--size", "32", "-q", *options]
    seen: dict[str, int] = {}
    orphans: list[int] = []
    errors = ""
    kills = runs = 0
    began = time.monotonic()
    pending = list(chaos.kills_at)
    while True:
        runs += 1
        run = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
        while run.poll() is None and pending:
            time.sleep(0.2)
            seen |= {k: v for k, v in _done(out).items() if k not in seen}
            if len(seen) >= pending[0] * chaos.jobs:
                orphans += children(run.pid, "spawn_main")
                run.send_signal(signal.SIGKILL)  # the driver alone
                pending.pop(0)
                kills += 1
        errors += run.communicate(timeout=900)[1]
        if run.returncode != -signal.SIGKILL:
            break
    wall = time.monotonic() - began
    assert not [pid for pid in orphans if Path(f"/proc/{pid}").is_dir()]  # they stopped
    assert run.returncode == 0, errors
    assert "Traceback" not in errors, errors
    final = statuses(out)
    assert len(final) == chaos.jobs and all(s == "done" for s, _, _ in final.values()), final
    results = _done(out)
    assert all(results[name] == mtime for name, mtime in seen.items())  # never written again
    for name in final:
        with Image.open(out / f"{name}.png") as image:
            image.load()
            assert max(image.size) == 32
    names = {p.name for p in out.iterdir()}
    expected = {f"{name}.png{suffix}" for name in final for suffix in ("", ".json")}
    assert names - LEFT_BY_A_BATCH == expected  # no checkpoint, no temporary file
    return {
        "jobs": chaos.jobs,
        "options": " ".join(options),
        "driver_kills": kills,
        "runs": runs,
        "done_before_the_last_run": len(seen),
        "extra_attempts": sum(attempts - 1 for _, attempts, _ in final.values()),
        "wall_s": round(wall, 1),
        "jobs_per_minute": round(chaos.jobs / wall * 60, 1),
    }


@pytest.mark.parametrize(
    "chaos",
    [
        pytest.param(DriverChaos(photos=4, styles=3), id="short"),
        pytest.param(
            DriverChaos(photos=25, styles=4), id="soak", marks=[pytest.mark.slow, pytest.mark.soak]
        ),
    ],
)
def test_batch_driver_killed_twice(
    tmp_path: Path, chaos: DriverChaos, request: pytest.FixtureRequest
) -> None:
    figures = run_with_driver_kills(tmp_path, chaos, ("--workers", "2"))
    save_figures(f"batch-chaos-{request.node.callspec.id}", figures)
    assert figures["driver_kills"] == len(chaos.kills_at)
