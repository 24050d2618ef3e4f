"""A real ``portrait-stylize serve`` process on 127.0.0.1 for the web tests, and helpers
to submit jobs to it and wait for them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from portrait_stylize.web.store import JobStore

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "out" / "tests"
"""Where a test writes its figures (those of docs/reliability.md)."""
EXAMPLES = ROOT / "examples"
PHOTO = EXAMPLES / "astronaut.jpg"
PAINTING = EXAMPLES / "starry_night.jpg"
TINY = {"method": "gatys", "size": 32, "iterations": 3}
"""A real run that takes about a second on a CPU once the networks are loaded."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``portrait-stylize serve`` in its own process group (so that a test can kill the
    server and its workers at once), logging to ``data/../NAME.log``."""

    def __init__(
        self,
        data: Path,
        *options: str,
        token: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data = data
        self.options = options
        self.token = token
        self.env = env
        """Variables set for the server and its workers, besides this process's."""
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log = data.parent / f"{data.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.url, timeout=60, headers=headers, **kwargs)

    def start(self, timeout: float = 120) -> Server:
        self.port = free_port()
        command = [sys.executable, "-m", "portrait_stylize.cli", "serve", "--data", str(self.data)]
        command += ["--port", str(self.port), *self.options]
        if self.token:
            command += ["--token", self.token]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **(self.env or {})},
            )
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited {self.process.returncode}: {self.tail()}")
                try:
                    if client.get("/api/settings").status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.3)
        self.kill()
        raise RuntimeError(f"server not up in {timeout} s: {self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        """SIGTERM: the server stops and its workers give their jobs back."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the server and every worker of its process group."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)


def submit(
    client: httpx.Client,
    settings: dict[str, Any],
    content: Path = PHOTO,
    styles: tuple[Path, ...] = (PAINTING,),
) -> httpx.Response:
    """POST /api/jobs with these files and settings."""
    files = [("content", (content.name, content.read_bytes(), "image/jpeg"))]
    files += [("style", (s.name, s.read_bytes(), "image/jpeg")) for s in styles]
    return client.post("/api/jobs", files=files, data={"settings": json.dumps(settings)})


def wait_for(
    client: httpx.Client, job: str, statuses: tuple[str, ...] = ("done",), timeout: float = 240
) -> dict[str, Any]:
    """Poll the job until its status is one of ``statuses``; fails on another final one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"/api/jobs/{job}").json()
        if state["status"] in statuses:
            return state
        if state["status"] in ("done", "failed", "cancelled"):
            raise AssertionError(f"job {job} ended {state['status']}: {state['error']}")
        time.sleep(0.3)
    raise AssertionError(f"job {job} not {statuses} in {timeout} s: {state}")


def stored_files(data: Path) -> list[Path]:
    """Every file the server keeps besides its database."""
    return sorted(
        p for p in data.rglob("*") if p.is_file() and not p.name.startswith("jobs.sqlite3")
    )


def only_what_jobs_use(data: Path) -> None:
    """Every stored file belongs to a job, and no job's file is missing; nothing else."""
    store = JobStore(data)
    used = set()
    for job in store.list(1000):
        used |= {job.inputs["content"], *job.inputs["styles"], *(job.outputs or {}).values()}
    assert set(stored_files(data)) == {store.file_path(sha) for sha in used}


def event_kinds(client: httpx.Client, job: str) -> list[str]:
    """The kinds of a finished job's events, in order."""
    stream = client.get(f"/api/jobs/{job}/events")
    return [line[7:] for line in stream.text.splitlines() if line.startswith("event: ")]


def save_figures(name: str, figures: dict[str, Any]) -> None:
    """Write a test's figures to ``out/tests/NAME.json`` (and print them)."""
    FIGURES.mkdir(parents=True, exist_ok=True)
    (FIGURES / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(name, json.dumps(figures))


def children(parent: int, marker: str) -> list[int]:
    """The pids of ``parent``'s child processes whose command line holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and marker in command:
            found.append(int(entry.name))
    return found
