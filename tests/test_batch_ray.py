"""The batch command on the Ray executor: a 2-node local cluster (a head and a second
node process on 127.0.0.1, one CPU each), one actor killed mid-job."""

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

from portrait_stylize.checkpoint import checkpoint_path

from .test_batch import images, statuses

ray = pytest.importorskip("ray")
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


def test_two_nodes_killed_actor_resumes_from_checkpoint(tmp_path, cluster):
    address, env = cluster
    photos, _ = images(tmp_path)
    (photos / "broken.png").write_bytes(b"not an image")
    manifest = tmp_path / "jobs.csv"
    rows = [[f"photos/photo{i}.png", f"styles/style{j}.jpg"] for i in range(3) for j in range(2)]
    rows[0] += ["crowson", json.dumps(LONG)]
    rows.append(["photos/broken.png", "styles/style0.jpg"])
    with manifest.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "portrait_stylize.cli", "batch", str(manifest), "-o"]
    command += [str(out), "--executor", "ray", "--ray-address", address, "--workers", "2"]
    command += ["--size", "32", "--iterations", "3", "--method", "gatys", "-q"]
    run = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    long_job = "photo0--style0--crowson"
    checkpoint = checkpoint_path(out / f"{long_job}.png")
    killed = None
    deadline = time.monotonic() + 600
    while killed is None and time.monotonic() < deadline and run.poll() is None:
        if (out / "batch.sqlite").is_file() and checkpoint.is_file():
            with sqlite3.connect(out / "batch.sqlite") as conn:
                (owner,) = conn.execute(
                    "SELECT owner FROM jobs WHERE name = ?", (long_job,)
                ).fetchone()
            if owner:
                os.kill(owner, signal.SIGKILL)
                killed = owner
        time.sleep(0.2)
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
    assert record["batch"]["attempt"] == 2 and f"pid {killed}," not in record["batch"]["worker"]
    nodes = set()
    for path in out.glob("*.png.json"):
        nodes.add(json.loads(path.read_text())["batch"]["worker"].split("Ray node ")[1])
    assert len(nodes) == 2  # both nodes ran jobs
    assert len(list(out.glob("*.png"))) == 6 and not list(out.glob("*.ckpt.pt"))
