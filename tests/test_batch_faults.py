"""Batch faults: a worker killed mid-job (local executor, and a Ray actor on a 2-node
local cluster: a head and a second node process on 127.0.0.1, one CPU each), a second
batch command on the same folder, the store locked by another process."""

from __future__ import annotations

import csv
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from portrait_stylize.batch.store import BatchStore
from portrait_stylize.checkpoint import checkpoint_path
from portrait_stylize.errors import InputError

from .test_batch import images, statuses
from .test_batch_chaos import DriverChaos, run_with_driver_kills
from .web_server import save_figures

pytestmark = pytest.mark.slow

RAY = str(Path(sys.executable).parent / "ray")
LONG = {
    "size": 64,
    "min_size": 32,
    "initial_iterations": 10,
    "iterations": 40,
    "converge_tol": 0,
    "seed": 3,
}
"""The job to kill: three scales (32, 45, 64 px), checkpointed between them."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, dict[str, str]]]:
    """A Ray head and a second node on this machine, one CPU each: its address, and the
    environment (with the cluster's token) for processes that join it."""
    pytest.importorskip("ray")
    address = f"127.0.0.1:{_free_port()}"
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's sockets live there
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    head = [RAY, "start", "--head", "--node-ip-address", "127.0.0.1"]
    head += ["--port", address.split(":")[1], "--include-dashboard", "false", "--temp-dir", temp]
    try:
        subprocess.run([*head, *common], check=True, capture_output=True, timeout=180, env=env)
        second = [RAY, "start", "--address", address, "--node-ip-address", "127.0.0.1"]
        subprocess.run([*second, *common], check=True, capture_output=True, timeout=180, env=env)
        yield address, env
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120, env=env)


def manifest_with_long_job(tmp_path: Path) -> Path:
    """3 photos x 2 paintings (tiny gatys jobs, the first one LONG crowson instead) and a
    corrupt photo, as a CSV manifest."""
    photos, _ = images(tmp_path)
    (photos / "broken.png").write_bytes(b"not an image")
    rows = [[f"photos/photo{i}.png", f"styles/style{j}.jpg"] for i in range(3) for j in range(2)]
    rows[0] += ["crowson", json.dumps(LONG)]
    rows.append(["photos/broken.png", "styles/style0.jpg"])
    manifest = tmp_path / "jobs.csv"
    with manifest.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return manifest


def batch_command(manifest: Path, out: Path, *options: str) -> list[str]:
    command = [sys.executable, "-m", "portrait_stylize.cli", "batch", str(manifest), "-o"]
    return [
        *command,
        str(out),
        "--size",
        "32",
        "--iterations",
        "3",
        "--method",
        "gatys",
        "-q",
        *options,
    ]


def owner_when_checkpointed(out: Path, name: str, run: subprocess.Popen[str]) -> int | None:
    """The pid running job ``name`` once it has saved a checkpoint (None if ``run`` ended
    first)."""
    checkpoint = checkpoint_path(out / f"{name}.png")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and run.poll() is None:
        if (out / "batch.sqlite").is_file() and checkpoint.is_file():
            with sqlite3.connect(out / "batch.sqlite") as conn:
                (owner,) = conn.execute("SELECT owner FROM jobs WHERE name = ?", (name,)).fetchone()
            if owner:
                return owner
        time.sleep(0.2)
    return None


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_killed_worker_job_resumes_from_checkpoint(tmp_path, request, executor):
    options = ["--executor", executor, "--workers", "2"]
    env = dict(os.environ)
    if executor == "ray":
        address, env = request.getfixturevalue("cluster")
        options += ["--ray-address", address]
    out = tmp_path / "out"
    command = batch_command(manifest_with_long_job(tmp_path), out, *options)
    run = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    long_job = "photo0--style0--crowson"
    killed = owner_when_checkpointed(out, long_job, run)
    if killed:
        os.kill(killed, signal.SIGKILL)
    _, err = run.communicate(timeout=900)
    assert killed, f"the long job was never seen mid-run: {err}"
    assert run.returncode == 4, err

    jobs = statuses(out)
    assert len(jobs) == 7
    assert jobs[long_job][:2] == ("done", 2)  # killed once, then finished
    assert jobs["broken--style0--gatys"][0] == "failed"
    assert "not a readable image" in jobs["broken--style0--gatys"][2]
    assert sum(status == "done" for status, _, _ in jobs.values()) == 6
    record = json.loads((out / f"{long_job}.png.json").read_text())
    assert record["resumed"]["stage"] >= 1  # continued from a scale boundary
    assert record["batch"]["attempt"] == 2 and f"pid {killed}" not in record["batch"]["worker"]
    assert len(list(out.glob("*.png"))) == 6 and not list(out.glob("*.ckpt.pt"))
    if executor == "ray":
        workers = [json.loads(p.read_text())["batch"]["worker"] for p in out.glob("*.png.json")]
        assert len({worker.split("Ray node ")[1] for worker in workers}) == 2  # both nodes


def test_one_batch_per_folder_and_a_locked_store(tmp_path):
    manifest = manifest_with_long_job(tmp_path)
    out = tmp_path / "out"
    first = subprocess.Popen(batch_command(manifest, out), stderr=subprocess.PIPE, text=True)
    try:
        assert owner_when_checkpointed(out, "photo0--style0--crowson", first)
        second = subprocess.run(batch_command(manifest, out), capture_output=True, text=True)
        assert second.returncode == 2
        assert f"another batch command is running there (pid {first.pid})" in second.stderr
        assert "Traceback" not in second.stderr
        with sqlite3.connect(out / "batch.sqlite", isolation_level=None) as conn:
            conn.execute("BEGIN EXCLUSIVE")  # the driver's and workers' writes wait for it
            with pytest.raises(InputError, match=r"batch\.sqlite: locked by another process"):
                BatchStore(out, timeout=0.2).release("no such job", 0)
            time.sleep(2)
            conn.execute("COMMIT")
    finally:
        _, err = first.communicate(timeout=900)
    assert first.returncode == 4, err
    assert sum(status == "done" for status, _, _ in statuses(out).values()) == 6


def test_ray_driver_killed_then_run_again(tmp_path, cluster):
    """The driver killed (SIGKILL, it alone) with jobs done and others on the actors: the
    cluster drops its actors, and running the batch again does only what is left."""
    address, env = cluster
    options = ("--executor", "ray", "--workers", "2", "--ray-address", address)
    figures = run_with_driver_kills(
        tmp_path, DriverChaos(photos=6, styles=3, kills_at=(0.2,)), options, env
    )
    save_figures("batch-chaos-ray", figures)
    assert figures["driver_kills"] == 1 and figures["runs"] == 2
