"""A full disk under ``portrait-stylize serve``: the data folder on a 20 MB tmpfs, filled to
the last byte while a job runs. The job fails with a clear message or waits; the server
keeps answering (a refused request gets a JSON error, never a 500 or a traceback);
nothing half-written is served or left; once space returns, the job can be sent again
and is done, and new jobs run. Needs root (mount); skipped otherwise.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from portrait_stylize.jobdb import file_sha256

from .web_server import Server, save_figures, submit, wait_for

pytestmark = pytest.mark.slow

SIZE_MB = 20
RUN = {"method": "gatys", "size": 48, "iterations": 60, "converge_tol": 0, "seed": 7}
"""A gatys job of a few seconds, long enough to fill the disk under it."""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A fresh 20 MB tmpfs at ``tmp_path/disk``."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte with one file; returns it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for block in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, bytes(block))
    finally:
        os.close(fd)
    stat = os.statvfs(disk)
    assert stat.f_bavail == 0, stat
    return filler


def test_disk_full_mid_job_then_space_returns(small_disk: Path) -> None:
    server = Server(small_disk).start()  # its log beside the disk, not on it
    offset = server.log.stat().st_size
    try:
        with server.client() as client:
            job = submit(client, RUN).json()["id"]
            wait_for(client, job, ("running",))
            deadline = time.monotonic() + 300
            while (client.get(f"/api/jobs/{job}").json()["step"] or 0) < 2:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            filler = fill(small_disk)
            # the server keeps answering while the disk is full: JSON, never a 500
            answers: dict[str, list[int]] = {}
            full_at = time.monotonic()
            while time.monotonic() - full_at < 8:
                for name, response in (
                    ("job", client.get(f"/api/jobs/{job}")),
                    ("list", client.get("/api/jobs")),
                    ("result", client.get(f"/api/jobs/{job}/result")),
                    ("settings", client.get("/api/settings")),
                ):
                    assert response.status_code in (200, 404, 507), (name, response.text)
                    if response.status_code == 507:
                        assert "disk is full" in response.json()["error"]
                        assert response.headers["retry-after"].isdigit()
                    if name == "result":
                        assert response.status_code != 200  # nothing half-written served
                    answers.setdefault(name, [])
                    if response.status_code not in answers[name]:
                        answers[name].append(response.status_code)
                time.sleep(0.5)
            refused = submit(client, {**RUN, "seed": 8})
            answers["submit"] = [refused.status_code]
            assert refused.status_code == 507, refused.text
            assert not any((server.data / "tmp").iterdir())  # the upload removed

            filler.unlink()  # space returns
            freed_at = time.monotonic()
            state = wait_for(client, job, ("failed", "done"), timeout=120)
            if state["status"] == "failed":  # the message says why, and what to do
                assert "No space left on device" in state["error"], state["error"]
                assert "send the job again" in state["error"]
                assert str(server.data) not in state["error"]
                again = submit(client, RUN)
                assert again.status_code == 201 and again.json()["id"] == job
            final = wait_for(client, job, timeout=300)
            recovered_s = time.monotonic() - freed_at
            png = client.get(f"/api/jobs/{job}/result").content
            with Image.open(io.BytesIO(png)) as image:
                image.load()
            other = submit(client, {**RUN, "seed": 8})
            assert other.status_code == 201, other.text
            wait_for(client, other.json()["id"], timeout=300)
    finally:
        server.stop()
    log = server.log.read_text(errors="replace")[offset:]
    assert "Traceback" not in log, log[-4000:]
    for path in (server.data / "files").glob("*/*"):  # every stored file whole
        assert file_sha256(path) == path.name
    assert not any((server.data / "tmp").iterdir())
    save_figures(
        "web-disk-full",
        {
            "answers_while_full": answers,
            "job_after_the_disk_filled": {"status": state["status"], "error": state["error"]},
            "attempts": final["attempts"],
            "space_back_to_done_s": round(recovered_s, 1),
        },
    )
