"""Jobs that survive: kill -9 of the server and its worker mid-run, and a small load.

Each test writes its figures (timings, counts) to ``out/tests/web-*.json`` (the figures
of docs/reliability.md come from there).
"""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tifffile

from portrait_stylize.api import stylize
from portrait_stylize.web.store import JobStore

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

pytestmark = pytest.mark.slow

CRASH = {
    "method": "crowson",
    "size": 64,
    "min_size": 32,
    "initial_iterations": 10,
    "iterations": 150,
    "converge_tol": 0,
    "seed": 3,
}
"""Three scales (32, 45, 64 px), long enough at the second to be killed there: seconds
of steps after the poll that sees it (30 steps, under a second, could end the scale
before the kill lands)."""


def test_kill_9_mid_run_then_restart_finishes_the_job(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = Server(data).start()
    try:
        with first.client() as client:
            job = submit(client, CRASH).json()["id"]
            began = time.monotonic()
            deadline = began + 900
            while time.monotonic() < deadline:
                state = client.get(f"/api/jobs/{job}").json()
                if (state["stage"] or 0) >= 2 and (state["step"] or 0) >= 5:
                    break
                time.sleep(0.2)
            else:
                raise AssertionError(f"never reached the second scale: {state}")
    finally:
        first.kill()
    killed_after = time.monotonic() - began
    row = JobStore(data).get(job)
    assert row is not None and row.status == "running"
    assert (data / "work" / job / "checkpoint.pt").is_file()

    second = Server(data).start()
    try:
        restarted = time.monotonic()
        with second.client() as client:
            final = wait_for(client, job, timeout=900)  # a busy 2-core machine is slow
            finished_after = time.monotonic() - restarted
            record = client.get(f"/api/jobs/{job}/record").json()
            tif = client.get(f"/api/jobs/{job}/result", params={"format": "tif"}).content
            kinds = event_kinds(client, job)
    finally:
        second.stop()
    assert final["attempts"] == 2 and final["error"] is None
    assert record["resumed"]["stage"] == state["stage"] - 1  # from the scale it was killed in
    assert kinds.count("started") == 2 and kinds.count("done") == 1 and kinds[-1] == "done"
    only_what_jobs_use(data)
    assert not any((data / "work").iterdir()) and not any((data / "tmp").iterdir())

    settings = {k: v for k, v in CRASH.items() if k != "method"}
    reference = stylize(PHOTO, [PAINTING], CRASH["method"], device="cpu", **settings).image
    expected = reference.permute(1, 2, 0).numpy()
    got = tifffile.imread(io.BytesIO(tif)).astype(np.float32) / 65535
    difference = np.abs(got - expected)
    save_figures(
        "web-crash",
        {
            "killed_at": {"stage": state["stage"], "step": state["step"]},
            "killed_after_s": round(killed_after, 1),
            "restart_to_done_s": round(finished_after, 1),
            "resumed_from_stage": record["resumed"]["stage"] + 1,
            "attempts": final["attempts"],
            "mean_abs_difference": float(difference.mean()),
            "max_abs_difference": float(difference.max()),
        },
    )
    assert difference.mean() < 2 / 255 and difference.max() < 0.1


@pytest.mark.parametrize(
    ("jobs", "clients"), [(10, 3), pytest.param(50, 5, marks=pytest.mark.slow)]
)
def test_load(tmp_path: Path, jobs: int, clients: int) -> None:
    server = Server(tmp_path / "data", "--workers", "2").start()
    began = time.time()

    def client_run(index: int) -> list[str]:
        """One client: submit its share of the jobs, then wait for each."""
        with server.client() as client:
            mine = []
            for seed in range(index, jobs, clients):
                response = submit(client, {**TINY, "seed": seed})
                assert response.status_code == 201, response.text
                mine.append(response.json()["id"])
            for job in mine:
                wait_for(client, job, timeout=600)
            return mine

    try:
        with ThreadPoolExecutor(clients) as pool:
            ids = [job for part in pool.map(client_run, range(clients)) for job in part]
        with server.client() as client:
            listed = client.get("/api/jobs", params={"limit": 1000}).json()
            kinds = {job: event_kinds(client, job) for job in ids}
    finally:
        server.stop()
    assert len(set(ids)) == jobs
    assert sorted(j["id"] for j in listed) == sorted(ids)  # none lost, none twice
    assert all(j["status"] == "done" and j["attempts"] == 1 for j in listed)
    assert all(k.count("started") == 1 and k.count("done") == 1 for k in kinds.values())
    only_what_jobs_use(server.data)
    rows = JobStore(server.data).list(1000)  # created: queued; updated: done
    latencies = sorted(row.updated - row.created for row in rows)
    ends = sorted(row.updated - began for row in rows)
    save_figures(
        f"web-load-{jobs}",
        {
            "jobs": jobs,
            "clients": clients,
            "workers": 2,
            "settings": TINY,
            "first_done_s": round(ends[0], 1),
            "last_done_s": round(ends[-1], 1),
            "jobs_per_minute_after_first": round((jobs - 1) / (ends[-1] - ends[0]) * 60, 1),
            "latency_median_s": round(latencies[len(latencies) // 2], 1),
            "latency_max_s": round(latencies[-1], 1),
        },
    )
