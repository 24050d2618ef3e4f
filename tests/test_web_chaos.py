"""A chaos soak of ``portrait-stylize serve``: many small jobs from concurrent clients while
a loop kills a random worker (SIGKILL) every 10-20 s and, at set points, the whole server
(its process group), which is then started again on the same data folder.

Afterwards: every job done exactly once (one ``done`` event), every result decodes, the
data folder holds exactly the files the jobs refer to (nothing in ``tmp/`` or ``work/``),
no traceback in the log. The clients ride out the kills as a client would: a request that
fails for a dead server is sent again once it is back (a job submitted again is the same
job: its id comes from its inputs and settings). The ``soak`` version (100 jobs, 5
clients, the server killed twice) gives the figures of docs/reliability.md
(``out/tests/web-chaos-*.json``); the default one is a short run of the same.
"""

from __future__ import annotations

import io
import os
import random
import signal
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest
import tifffile
from PIL import Image

from portrait_stylize.web.store import JobStore

from .web_server import (
    Server,
    children,
    event_kinds,
    only_what_jobs_use,
    save_figures,
    submit,
)

pytestmark = pytest.mark.slow

JOB = {"method": "instant", "size": 32}
"""Well under a second a job once a worker is warm."""
T = TypeVar("T")


@dataclass(frozen=True)
class Chaos:
    """One soak: how many jobs from how many clients, the seconds between worker kills,
    and after which share of the jobs done the whole server is killed."""

    jobs: int
    clients: int
    worker_kill_s: tuple[float, float] = (10.0, 20.0)
    server_kills_at: tuple[float, ...] = (0.3, 0.65)
    submit_every_s: float = 0.5
    seed: int = 0


class Soak:
    """The server, the kill loop and what it did."""

    def __init__(self, data: Path, chaos: Chaos) -> None:
        self.chaos = chaos
        self.server = Server(data, "--workers", "2")
        self.random = random.Random(chaos.seed)
        self.done: set[str] = set()
        self.stop = threading.Event()
        self.up = threading.Event()
        self.worker_kills = 0
        self.server_kills = 0

    def start(self) -> None:
        self.server.start(timeout=600)
        self.up.set()

    def call(self, request: Callable[[httpx.Client], T]) -> T:
        """``request`` against the server as it is now, again until the server answers
        (it may be down, or have come back on another port)."""
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            self.up.wait(600)
            try:
                with self.server.client() as client:
                    return request(client)
            except httpx.TransportError:
                time.sleep(0.5)
        raise AssertionError("the server stayed away for 15 minutes")

    def workers(self) -> list[int]:
        """The pids of the server's worker processes."""
        assert self.server.process is not None
        return children(self.server.process.pid, "spawn_main")

    def kill_loop(self) -> None:
        """Kill a random worker every 10-20 s; kill the whole server (then start it again)
        as the share of jobs done passes each of ``server_kills_at``."""
        low, high = self.chaos.worker_kill_s
        next_worker = time.monotonic() + self.random.uniform(low, high)
        pending = list(self.chaos.server_kills_at)
        while not self.stop.wait(0.2):
            if pending and len(self.done) >= pending[0] * self.chaos.jobs:
                pending.pop(0)
                self.up.clear()
                self.server.kill()
                self.server_kills += 1
                self.start()
            elif time.monotonic() >= next_worker and (workers := self.workers()):
                os.kill(self.random.choice(workers), signal.SIGKILL)
                self.worker_kills += 1
                next_worker = time.monotonic() + self.random.uniform(low, high)

    def client(self, index: int) -> list[str]:
        """One client: submit its share of the jobs, then wait for each."""
        mine = []
        for seed in range(index, self.chaos.jobs, self.chaos.clients):
            response = self.call(lambda c, seed=seed: submit(c, {**JOB, "seed": seed}))
            assert response.status_code in (200, 201), response.text
            mine.append(response.json()["id"])
            time.sleep(self.chaos.submit_every_s)
        for job in mine:
            while job not in self.done:
                state = self.call(lambda c, job=job: c.get(f"/api/jobs/{job}").json())
                assert state["status"] in ("queued", "running", "done"), state
                if state["status"] == "done":
                    self.done.add(job)
                else:
                    time.sleep(0.3)
        return mine


def _decodes(png: bytes, tif: bytes) -> None:
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        assert max(image.size) == JOB["size"]
    assert tifffile.imread(io.BytesIO(tif)).dtype == np.uint16


def run_soak(data: Path, chaos: Chaos) -> dict[str, Any]:
    """Run ``chaos`` on a server in ``data``; check the outcome; return the figures."""
    soak = Soak(data, chaos)
    soak.start()
    began = time.time()
    killer = threading.Thread(target=soak.kill_loop, daemon=True)
    killer.start()
    try:
        with ThreadPoolExecutor(chaos.clients) as pool:
            ids = [job for part in pool.map(soak.client, range(chaos.clients)) for job in part]
        soak.stop.set()
        killer.join(600)
        time.sleep(3)  # a worker killed last is started again and sweeps
        with soak.server.client() as client:
            listed = client.get("/api/jobs", params={"limit": 1000}).json()
            kinds = {job: event_kinds(client, job) for job in ids}
            for job in ids:
                png = client.get(f"/api/jobs/{job}/result").content
                tif = client.get(f"/api/jobs/{job}/result", params={"format": "tif"}).content
                _decodes(png, tif)
    finally:
        soak.stop.set()
        soak.server.stop()
    log = soak.server.log.read_text(errors="replace")
    assert len(set(ids)) == chaos.jobs
    assert sorted(j["id"] for j in listed) == sorted(ids)  # none lost, none twice
    assert all(j["status"] == "done" for j in listed)
    assert all(k.count("done") == 1 and k[-1] == "done" for k in kinds.values()), kinds
    only_what_jobs_use(data)
    assert not any((data / "work").iterdir()) and not any((data / "tmp").iterdir())
    assert "Traceback" not in log, log[-3000:]
    rows = JobStore(data).list(1000)
    latencies = sorted(row.updated - row.created for row in rows)
    last = max(row.updated for row in rows)
    return {
        "jobs": chaos.jobs,
        "clients": chaos.clients,
        "workers": 2,
        "settings": JOB,
        "worker_kills": soak.worker_kills,
        "server_kills": soak.server_kills,
        "worker_restarts": log.count("exited (code -9)"),
        "claims_after_a_kill": sum(k.count("started") - 1 for k in kinds.values()),
        "wall_s": round(last - began, 1),
        "jobs_per_minute": round(chaos.jobs / (last - began) * 60, 1),
        "queued_to_done_median_s": round(statistics.median(latencies), 1),
        "queued_to_done_max_s": round(latencies[-1], 1),
    }


@pytest.mark.parametrize(
    "chaos",
    [
        pytest.param(
            Chaos(jobs=12, clients=3, worker_kill_s=(4, 8), server_kills_at=(0.4,)), id="short"
        ),
        pytest.param(
            Chaos(jobs=100, clients=5, submit_every_s=3.0),
            id="soak",
            marks=[pytest.mark.slow, pytest.mark.soak],
        ),
    ],
)
def test_chaos_soak(tmp_path: Path, chaos: Chaos, request: pytest.FixtureRequest) -> None:
    figures = run_soak(tmp_path / "data", chaos)
    save_figures(f"web-chaos-{request.node.callspec.id}", figures)
    assert figures["worker_kills"] >= 1 and figures["server_kills"] == len(chaos.server_kills_at)
