"""Faults against a real ``portrait-stylize serve`` with tiny jobs: a worker killed while it
stores a job's results, the job database locked by another process, a client that leaves
mid-upload. After each, every job is done exactly once with a whole result, nothing is
half-written or left over in the data folder, the worker lives on (or is replaced), and
the client got JSON (never a traceback). Figures go to ``out/tests/web-faults-*.json``
(those of docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import re
import socket
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tifffile
from PIL import Image

from portrait_stylize.web.store import WAIT_S

from .web_server import (
    PAINTING,
    PHOTO,
    TINY,
    Server,
    event_kinds,
    only_what_jobs_use,
    save_figures,
    submit,
    wait_for,
)

FAULTS = Path(__file__).parent / "faults"
"""``sitecustomize.py``: a worker kills itself at an armed moment."""
MOMENTS = {"temp-result": 2, "half-stored": 2, "done-not-cleaned": 1}
"""Where a worker is killed while storing results: the attempts the job then takes."""
LOCKS = {
    "writes, 2 s": (False, 2.0),
    "writes, past the wait": (False, WAIT_S + 3),
    "whole file, past the wait": (True, WAIT_S + 3),
}
"""How the database is locked (the whole file: readers kept out too) and for how long."""
SEEDS = itertools.count(1)
"""A fresh seed for each job, so that no two jobs are the same."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One warm server for every case, its processes loading ``faults/sitecustomize.py``
    (inert until a test writes a moment to its kill file)."""
    root = tmp_path_factory.mktemp("faults")
    paths = [str(FAULTS), *filter(None, [os.environ.get("PYTHONPATH")])]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join(paths))
        patch.setenv("PORTRAIT_STYLIZE_KILL_FILE", str(root / "kill"))
        running = Server(root / "data").start()
    try:
        with running.client() as client:
            wait_for(client, submit(client, TINY).json()["id"])
        yield running
    finally:
        running.stop()


def _log_from(server: Server, offset: int) -> str:
    """The server's log (its workers' too) from byte ``offset``."""
    with server.log.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


def _wait_for_log(server: Server, offset: int, text: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while text not in _log_from(server, offset):
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not logged in {timeout} s: {server.tail()}")
        time.sleep(0.3)


def _assert_clean(server: Server, offset: int) -> None:
    """The data folder holds exactly the jobs' files (no stray or temporary one, no
    working folder) and the log from ``offset`` no traceback."""
    only_what_jobs_use(server.data)
    assert not any((server.data / "work").iterdir())
    assert not any((server.data / "tmp").iterdir())
    assert "Traceback" not in _log_from(server, offset)


def _assert_whole(png: bytes, tif: bytes) -> None:
    """The PNG and the 16-bit TIFF decode in full and hold the same picture."""
    with Image.open(io.BytesIO(png)) as image:
        eight = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
    sixteen = tifffile.imread(io.BytesIO(tif))[..., :3].astype(np.float32) / 65535
    assert eight.shape == sixteen.shape
    assert np.abs(eight - sixteen).max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_worker_killed_while_storing_results(server: Server, moment: str) -> None:
    kill = server.data.parent / "kill"
    offset = server.log.stat().st_size
    kill.write_text(moment)
    began = time.monotonic()
    with server.client() as client:
        job = submit(client, {**TINY, "seed": next(SEEDS)}).json()["id"]
        final = wait_for(client, job)
        done_s = time.monotonic() - began
        _wait_for_log(server, offset, " ready on ")  # the replacement swept the data folder
        base = f"/api/jobs/{job}"
        png = client.get(f"{base}/result").content
        tif = client.get(f"{base}/result", params={"format": "tif"}).content
        record = client.get(f"{base}/record").json()
        kinds = event_kinds(client, job)
        listed = [entry["id"] for entry in client.get("/api/jobs").json()]
    log = _log_from(server, offset)
    assert not kill.exists() and "exited (code -9)" in log  # it died at that moment
    assert final["attempts"] == MOMENTS[moment] and final["error"] is None
    assert kinds.count("started") == MOMENTS[moment]
    assert kinds.count("done") == 1 and kinds[-1] == "done" and listed.count(job) == 1
    assert record["settings"]["seed"] == final["settings"]["seed"]
    _assert_whole(png, tif)
    _assert_clean(server, offset)
    save_figures(
        f"web-faults-kill-{moment}",
        {"attempts": final["attempts"], "submit_to_done_s": round(done_s, 1)},
    )


@contextlib.contextmanager
def _locked(database: Path, whole_file: bool) -> Iterator[None]:
    """``BEGIN EXCLUSIVE`` on ``database`` from this process (not the server's); with
    ``whole_file`` in exclusive locking mode, which keeps readers out too."""
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        if whole_file:
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        yield
        conn.execute("COMMIT")
    finally:
        conn.close()


def _timed(server: Server, call: Callable[[httpx.Client], httpx.Response]) -> dict[str, Any]:
    """``call`` with a client of its own: the response and its seconds."""
    began = time.monotonic()
    with server.client() as client:
        response = call(client)
    return {"response": response, "s": round(time.monotonic() - began, 1)}


def _follow(server: Server, job: str, opened: threading.Event) -> str:
    """The text of ``job``'s event stream to its end; ``opened`` set once it answered."""
    with server.client() as client, client.stream("GET", f"/api/jobs/{job}/events") as stream:
        opened.set()
        return stream.read().decode()


@pytest.mark.slow
@pytest.mark.parametrize("case", list(LOCKS))
def test_database_locked_by_another_process(server: Server, case: str) -> None:
    whole_file, hold = LOCKS[case]
    offset = server.log.stat().st_size
    with server.client() as client:
        job = submit(client, {**TINY, "seed": next(SEEDS)}).json()["id"]
    opened = threading.Event()
    with ThreadPoolExecutor(3) as pool:
        events = pool.submit(_follow, server, job, opened)
        assert opened.wait(30)
        # locked at once: the job, claimed or not, cannot end before its worker meets the lock
        with _locked(server.data / "jobs.sqlite3", whole_file):
            created = pool.submit(
                _timed, server, lambda c: submit(c, {**TINY, "seed": next(SEEDS)})
            )
            read = pool.submit(_timed, server, lambda c: c.get(f"/api/jobs/{job}"))
            time.sleep(hold)
        released = time.monotonic()
        post, get, stream = created.result(), read.result(), events.result()
    with server.client() as client:
        after = wait_for(client, job)
        retried = submit(client, {**TINY, "seed": next(SEEDS)})
        assert retried.status_code == 201, retried.text
        wait_for(client, retried.json()["id"])
        if post["response"].status_code == 201:
            wait_for(client, post["response"].json()["id"])
        done_after_s = time.monotonic() - released
    log = _log_from(server, offset)
    past_the_wait = hold > WAIT_S
    expected = {"post": 503 if past_the_wait else 201, "get": 503 if whole_file else 200}
    for name, outcome in (("post", post), ("get", get)):
        response = outcome["response"]
        assert response.status_code == expected[name], response.text
        if response.status_code == 503:
            assert "locked by another process" in response.json()["error"]
            assert response.headers["retry-after"].isdigit()
            assert outcome["s"] >= WAIT_S - 1
    assert after["attempts"] == 1 and after["error"] is None  # the same worker finished it
    assert "exited (code" not in log
    waited = re.search(r"(worker \S+|progress report skipped): the job database is locked", log)
    assert bool(waited) == past_the_wait  # the worker waited the lock out
    assert ("the job database is busy" in stream) == whole_file  # keepalives while locked
    kinds = [line[7:] for line in stream.splitlines() if line.startswith("event: ")]
    assert kinds.count("done") == 1 and kinds[-1] == "done"
    _assert_clean(server, offset)
    save_figures(
        f"web-faults-lock-{'file' if whole_file else 'writes'}-{hold:g}s",
        {
            "held_s": hold,
            "post": [post["response"].status_code, post["s"]],
            "get": [get["response"].status_code, get["s"]],
            "release_to_done_s": round(done_after_s, 1),
        },
    )


def _deleted_files(pid: int) -> int:
    """How many deleted files (spooled uploads) process ``pid`` holds open."""
    folder = Path(f"/proc/{pid}/fd")
    count = 0
    for fd in folder.iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            count += os.readlink(fd).endswith(" (deleted)")
    return count


def _multipart(parts: list[tuple[str, bytes]], boundary: str) -> bytes:
    """A multipart/form-data body of file fields (name, bytes)."""
    body = b""
    for name, data in parts:
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{name}.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
        body += data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


UPLOADS = {
    "half the photograph, then close": ([("content", PHOTO.read_bytes())], 0.5, False),
    "3 MB photograph and half the painting, then reset": (
        [("content", PHOTO.read_bytes() + bytes(3_000_000)), ("style", PAINTING.read_bytes())],
        0.9,
        True,
    ),
}
"""What a client sends of a POST /api/jobs (its parts, the share of the body sent), and
whether it leaves with a reset (else a plain close)."""


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
@pytest.mark.parametrize("case", list(UPLOADS))
def test_client_leaves_mid_upload(server: Server, case: str) -> None:
    parts, share, reset = UPLOADS[case]
    assert server.process is not None
    offset = server.log.stat().st_size
    with server.client() as client:
        jobs = len(client.get("/api/jobs").json())
    held = _deleted_files(server.process.pid)
    body = _multipart(parts, "fault-boundary")
    head = (
        f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        "Content-Type: multipart/form-data; boundary=fault-boundary\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head.encode() + body[: int(len(body) * share)])
        time.sleep(1.0)  # the server has read what came
        spooled = _deleted_files(server.process.pid) - held
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    deadline = time.monotonic() + 10
    while _deleted_files(server.process.pid) > held and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _deleted_files(server.process.pid) <= held  # the spooled parts were closed
    with server.client() as client:
        assert len(client.get("/api/jobs").json()) == jobs  # no job from the lost upload
        response = submit(client, {**TINY, "seed": next(SEEDS)})
        assert response.status_code == 201, response.text
        wait_for(client, response.json()["id"])
    _assert_clean(server, offset)
    save_figures(
        f"web-faults-upload-{'reset' if reset else 'close'}",
        {"body_bytes": len(body), "sent_bytes": int(len(body) * share), "spooled": spooled},
    )
