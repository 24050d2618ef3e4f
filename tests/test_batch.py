"""The batch command: 3 photos x 2 paintings at 32 px, killed halfway and resumed, a
corrupt photo failing alone, exit codes, manifests."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from portrait_stylize.batch.jobs import collect
from portrait_stylize.batch.run import Options, plan
from portrait_stylize.batch.store import BatchStore
from portrait_stylize.cli import main
from portrait_stylize.errors import SettingsError

TINY = ["--size", "32", "--iterations", "3", "--method", "gatys", "-q"]


def images(tmp_path: Path) -> tuple[Path, Path]:
    """Folders of 3 photos and 2 paintings, small random images."""
    rng = np.random.default_rng(0)
    photos, styles = tmp_path / "photos", tmp_path / "styles"
    for folder, count, suffix in ((photos, 3, "png"), (styles, 2, "jpg")):
        folder.mkdir()
        for i in range(count):
            pixels = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{folder.name[:-1]}{i}.{suffix}")
    return photos, styles


def statuses(outdir: Path) -> dict[str, tuple[str, int, str | None]]:
    """Each job's (status, attempts, error) in the batch store."""
    with sqlite3.connect(outdir / "batch.sqlite") as conn:
        rows = conn.execute("SELECT name, status, attempts, error FROM jobs").fetchall()
    return {name: (status, attempts, error) for name, status, attempts, error in rows}


def batch(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "portrait_stylize.cli", "batch", *map(str, args), *TINY]


def test_collect_pairs_manifest_and_clashes(tmp_path):
    photos, styles = images(tmp_path)
    jobs = collect(str(photos), str(styles), "gatys", {"size": 32})
    assert [job.name for job in jobs][:2] == ["photo0--style0--gatys", "photo0--style1--gatys"]
    assert len(jobs) == 6
    assert len(collect(str(photos / "photo[01].png"), str(styles), "gatys", {})) == 4
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(
        "content,style,method,settings\n"
        'photos/photo0.png,styles/style1.jpg,crowson,"{""iterations"": 5}"\n'
        "photos/photo1.png,styles/style0.jpg\n"
    )
    first, second = collect(str(manifest), None, "gatys", {"size": 32})
    assert (first.name, first.method, first.settings) == (
        "photo0--style1--crowson",
        "crowson",
        {"size": 32, "iterations": 5},
    )
    assert second.name == "photo1--style0--gatys" and second.content == photos / "photo1.png"
    (photos / "sub").mkdir()
    Image.new("RGB", (8, 8)).save(photos / "sub" / "photo0.png")
    with pytest.raises(SettingsError, match="both write"):
        collect(f"{photos}/**/photo0.png", str(styles), "gatys", {})


def test_a_folder_of_phone_photos_and_old_formats(tmp_path):
    """HEIC, AVIF, BMP and GIF files in a folder are inputs too; other files are not."""
    photos, styles = images(tmp_path)
    for name in ("phone.HEIC", "phone2.heif", "new.avif", "old.bmp", "anim.gif"):
        (photos / name).write_bytes(b"")  # collecting looks at names only
    (photos / "notes.txt").write_text("not a photo")
    (photos / "clip.mov").write_bytes(b"")
    jobs = collect(str(photos), str(styles), "gatys", {})
    contents = sorted({job.content.name for job in jobs})
    assert contents == sorted(
        ["anim.gif", "new.avif", "old.bmp", "phone.HEIC", "phone2.heif"]
        + [f"photo{i}.png" for i in range(3)]
    )


def test_bad_arguments_exit_2(tmp_path, capsys):
    photos, styles = images(tmp_path)
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "none"), str(styles), "-o", str(out)]) == 2
    assert "no images found" in capsys.readouterr().err
    assert main(["batch", str(photos), str(styles), "-o", str(out), "--size", "-3"]) == 2
    assert main(["batch", str(photos), "-o", str(out)]) == 2
    assert main(["batch", str(photos), str(styles), "-o", str(out), "--workers", "0"]) == 2


@pytest.mark.slow
def test_killed_halfway_resumes_and_corrupt_photo_fails_alone(tmp_path):
    photos, styles = images(tmp_path)
    (photos / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen(batch(photos, styles, "-o", out), start_new_session=True, env=env)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and first.poll() is None:
        if (out / "batch.sqlite").is_file():
            done = [n for n, (s, _, _) in statuses(out).items() if s == "done"]
            if len(done) >= 2:
                break
        time.sleep(0.5)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    kept = {name: (out / f"{name}.png").stat().st_mtime_ns for name in done}
    assert 2 <= len(kept) < 8

    rerun = subprocess.run(batch(photos, styles, "-o", out), capture_output=True, text=True)
    assert rerun.returncode == 4, rerun.stderr
    jobs = statuses(out)
    assert len(jobs) == 8
    failed = {name: error for name, (status, _, error) in jobs.items() if status == "failed"}
    assert set(failed) == {"broken--style0--gatys", "broken--style1--gatys"}
    assert all("not a readable image" in error for error in failed.values())
    assert "failed broken--style0--gatys" in rerun.stderr
    for name, mtime in kept.items():  # finished jobs were not redone
        assert (out / f"{name}.png").stat().st_mtime_ns == mtime
    results = sorted(p.name for p in out.glob("*.png"))
    assert len(results) == 6 and not list(out.glob("*.ckpt.pt"))
    record = json.loads((out / f"{results[0]}.json").read_text())
    assert record["batch"]["job"] == results[0][:-4] and record["settings"]["size"] == 32
    sheet = (out / "index.html").read_text()
    assert sheet.count("<img") == 6 and "not a readable image" in sheet
    assert len((out / "batch.csv").read_text().splitlines()) == 9

    (photos / "broken.png").unlink()
    again = subprocess.run(batch(photos, styles, "-o", out), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "6 done, 0 failed of 6" in again.stderr and len(statuses(out)) == 6
    for name, mtime in kept.items():
        assert (out / f"{name}.png").stat().st_mtime_ns == mtime


def test_done_is_known_by_the_record_key(tmp_path):
    photos, styles = images(tmp_path)
    out = tmp_path / "out"
    job = collect(str(photos / "photo0.png"), str(styles / "style0.jpg"), "gatys", {"size": 32})[0]
    store = BatchStore(out)
    job.output(out).write_bytes(b"result")
    record = out / f"{job.name}.png.json"
    record.write_text(json.dumps({"batch": {"key": "stale"}}))
    plan(store, [job], Options(out))
    assert statuses(out)[job.name][0] == "queued"  # the file exists, but not for this job
    record.write_text(json.dumps({"batch": {"key": job.key()}}))
    plan(store, [job], Options(out))
    assert statuses(out)[job.name][0] == "done"
    plan(store, [job], Options(out, force=True))
    assert statuses(out)[job.name][0] == "queued"
    other = collect(str(photos / "photo0.png"), str(styles / "style0.jpg"), "gatys", {"size": 40})
    assert other[0].key() != job.key()
    (photos / "photo0.png").unlink()
    plan(store, [job], Options(out))
    status, _, error = statuses(out)[job.name]
    assert status == "failed" and "cannot read input" in error
