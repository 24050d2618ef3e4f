"""The web app's parts without a server: the job store's leases, settings checks, sniffing."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from portrait_stylize.errors import SettingsError
from portrait_stylize.jobdb import StoreBusy, file_sha256, job_id
from portrait_stylize.methods import DEFAULT_METHOD
from portrait_stylize.web import store as store_module
from portrait_stylize.web.settings import Limits, form_schema, parse_job_settings
from portrait_stylize.web.store import JobStore
from portrait_stylize.web.uploads import UploadRejected, check_image, sniff

from .hostile import claiming_iso, encode, heif, photo


def _submit(store: JobStore, tmp: Path, name: str = "a", content: bytes = b"photo") -> str:
    """Queue a job with made-up input files; returns its id."""
    files = []
    for i, data in enumerate((content, b"painting")):
        path = tmp / f"{name}{i}"
        path.write_bytes(data)
        files.append((path, file_sha256(path)))
    job = job_id(files[0][1], [files[1][1]], {"name": name})
    store.submit(job, {"method": "gatys", "seed": 0}, files)
    return job


def test_claim_lease_expiry_and_attempts(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "data")
    job = _submit(store, tmp_path)
    first = store.claim("elsewhere:1:a", lease_s=0.2, max_attempts=2)
    assert first is not None and first.id == job and first.attempts == 1
    assert store.claim("elsewhere:2:b", lease_s=0.2, max_attempts=2) is None  # leased
    assert store.progress(job, "elsewhere:1:a", 0.2, {"stage": 1, "step": 3})
    time.sleep(0.3)  # the lease runs out: the next worker takes the job
    second = store.claim("elsewhere:2:b", lease_s=0.2, max_attempts=2)
    assert second is not None and second.attempts == 2 and second.stage == 1
    assert not store.progress(job, "elsewhere:1:a", 0.2, {"step": 4})  # the old owner lost it
    assert not store.finish(job, "elsewhere:1:a", {})
    time.sleep(0.3)
    assert store.claim("elsewhere:3:c", lease_s=0.2, max_attempts=2) is None
    failed = store.get(job)
    assert failed is not None and failed.status == "failed" and "2 attempts" in failed.error
    kinds = [kind for _, kind, _ in store.events(job)]
    assert kinds == ["queued", "started", "started", "failed"]


def test_a_dead_worker_on_this_host_frees_its_job_at_once(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "data")
    job = _submit(store, tmp_path)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    owner = f"{socket.gethostname()}:{gone.stdout.strip()}:x"
    assert store.claim(owner, lease_s=600, max_attempts=3) is not None
    alive = f"{socket.gethostname()}:{os.getpid()}:y"
    again = store.claim(alive, lease_s=600, max_attempts=3)
    assert again is not None and again.id == job and again.attempts == 2


def test_release_cancel_resubmit_and_delete(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "data")
    job = _submit(store, tmp_path)
    other = _submit(store, tmp_path, name="b", content=b"photo")  # shares both input files
    claimed = store.claim("w:1:a", 60, 3)
    assert claimed is not None and claimed.id == job
    assert store.release(job, "w:1:a")
    assert store.get(job).status == "queued" and store.get(job).attempts == 0
    assert store.position(store.get(job)) == 1 and store.position(store.get(other)) == 2
    store.claim("w:1:a", 60, 3)
    cancelled = store.cancel(job)
    assert cancelled is not None and cancelled.status == "cancelled"
    assert not store.progress(job, "w:1:a", 60, {"step": 1})  # the worker stops
    assert not store.delete(other)  # still queued
    _submit(store, tmp_path)  # identical: queued again
    assert store.get(job).status == "queued"
    store.cancel(job)
    assert store.delete(job)
    assert store.get(job) is None and store.events(job) == []
    assert len(list(store.files.rglob("*"))) == 4  # 2 folders + the files job b still uses
    store.cancel(other)
    assert store.delete(other)
    assert [p for p in store.files.rglob("*") if p.is_file()] == []


def test_finish_stores_outputs_by_hash(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "data")
    job = _submit(store, tmp_path)
    store.claim("w:1:a", 60, 3)
    result = tmp_path / "result.png"
    result.write_bytes(b"result")
    assert store.finish(job, "w:1:a", {"png": result})
    done = store.get(job)
    assert done.status == "done" and store.file_path(done.outputs["png"]).read_bytes() == b"result"
    assert not result.exists()


LIMITS = Limits(max_size=512, max_iterations=100)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ("[1, 2]", "settings"),
        ("{not json", "settings"),
        ('{"size": NaN}', "settings"),
        ('{"method": "nope"}', "method"),
        ('{"colour": 1}', "colour"),
        ('{"size": "big"}', "size"),
        ('{"size": 4096}', "size"),
        ('{"size": 16}', "size"),
        ('{"iterations": 101}', "iterations"),
        ('{"method": "crowson"}', "iterations"),  # its default, 500, is over this limit
        ('{"mask": "/etc/passwd"}', "mask"),
        ('{"background": "texture:/etc/passwd"}', "background"),
        ('{"device": "cuda"}', "device"),
    ],
)
def test_bad_settings_name_the_field(settings: str, field: str) -> None:
    with pytest.raises(SettingsError, match=f"^{field}") as error:
        parse_job_settings(settings, LIMITS)
    assert error.value.field == field


def test_good_settings_resolve() -> None:
    text = '{"method": "crowson", "min_size": 64, "size": 128, "initial_iterations": 50}'
    given, settings = parse_job_settings(text, Limits())
    assert given == {"method": "crowson", "seed": 0, **json.loads(text)}
    assert settings.optimizer == "adam" and settings.size == 128
    given, settings = parse_job_settings('{"iterations": 100}', Limits())
    assert given["method"] == "portrait-painting" and settings.size == 512
    schema = form_schema(Limits())
    names = {f["name"] for f in schema["fields"]}
    assert "identity" in names and "mask" not in names and "device" not in names
    assert schema["default_method"] == "portrait-painting" == DEFAULT_METHOD
    fields = {f["name"]: f for f in schema["fields"]}
    strength = fields["style_strength"]  # the instant network's knob, not every method's
    assert strength["methods"] == ["instant"] and strength["also_when"] == {"init": "instant"}
    assert "instant" not in fields["style_weight"]["methods"]
    json.dumps(schema)


@pytest.mark.parametrize(
    ("head", "media"),
    [
        (b"\x89PNG\r\n\x1a\n\0\0\0\r", "image/png"),
        (b"\xff\xd8\xff\xe0\0\x10JFIF\0", "image/jpeg"),
        (b"RIFF\0\0\0\0WEBPVP8 ", "image/webp"),
        (b"II*\0\x08\0\0\0", "image/tiff"),
        (b"GIF89a\0\0\0\0\0\0", "image/gif"),
        (b"GIF87a\0\0\0\0\0\0", "image/gif"),
        (b"BM\x36\x10\0\0\0\0\0\0\x36\0", "image/bmp"),
        (b"\0\0\0\x18ftypheic", "image/heic"),
        (b"\0\0\0\x18ftypmif1", "image/heif"),
        (b"\0\0\0\x1cftypavif", "image/avif"),
        (b"\0\0\0\x18ftypisom", None),  # an MP4 video
        (b"<svg xmlns=", None),
        (b"", None),
    ],
)
def test_sniff(head: bytes, media: str | None) -> None:
    assert sniff(head) == media


def test_sweep_removes_only_what_no_job_needs(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "data")
    running, done, cancelled = (_submit(store, tmp_path, name) for name in "abc")
    for job in (running, done):
        claimed = store.claim("elsewhere:1:a", lease_s=60, max_attempts=3)
        assert claimed is not None and claimed.id == job
    result = tmp_path / "result.png"
    result.write_bytes(b"result")
    assert store.finish(done, "elsewhere:1:a", {"png": result})
    store.cancel(cancelled)
    stray = store.file_path("ff" * 32)  # moved in by a transaction that never committed
    stray.parent.mkdir()
    stray.write_bytes(b"orphan")
    for job in (running, done, cancelled, "gone"):
        store.work_dir(job).mkdir()
    abandoned, uploading = store.temp_path(".png"), store.temp_path(".png")
    for path in (abandoned, uploading):
        path.write_bytes(b"upload")
    old = time.time() - store_module.STALE_UPLOAD_S - 60  # a server killed mid-upload
    os.utime(abandoned, (old, old))
    before = sorted(path for path in store.files.glob("*/*") if path != stray)
    assert store.sweep() == (1, 1, 2)
    assert list(store.tmp.iterdir()) == [uploading]  # maybe another server's upload
    assert sorted(store.files.glob("*/*")) == before
    assert sorted(path.name for path in store.work.iterdir()) == sorted([running, cancelled])


def test_a_locked_database_is_store_busy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "WAIT_S", 0.2)
    store = JobStore(tmp_path / "data")
    job = _submit(store, tmp_path)
    other = sqlite3.connect(store.database, isolation_level=None)  # as another process would
    other.execute("BEGIN EXCLUSIVE")
    assert store.get(job) is not None  # WAL: readers go on
    with pytest.raises(StoreBusy, match="locked by another process"):
        store.cancel(job)
    other.execute("ROLLBACK")
    other.execute("PRAGMA locking_mode=EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StoreBusy):
        store.get(job)  # the whole file locked: readers wait too
    other.close()
    assert store.cancel(job) is not None


def test_a_floating_point_rgb_tiff_upload_is_read_and_its_size_checked(tmp_path: Path) -> None:
    pixels = np.linspace(0, 1, 40 * 30 * 3, dtype=np.float32).reshape(30, 40, 3)
    path = tmp_path / "upload"
    tifffile.imwrite(path, pixels, photometric="rgb")  # Pillow cannot open this one
    loaded = check_image(path, "content", Limits())
    assert loaded.rgb.shape == (3, 30, 40)
    assert np.allclose(loaded.rgb.permute(1, 2, 0).numpy(), pixels, atol=1e-6)
    with pytest.raises(UploadRejected, match="40x30 is over") as refused:
        check_image(path, "content", Limits(max_pixels=1000))
    assert refused.value.status == 413


@pytest.mark.parametrize(
    ("fmt", "write"),
    [
        ("HEIF", lambda: heif(photo(), quality=90)),
        ("AVIF", lambda: encode(photo(), "AVIF", quality=90)),
        ("BMP", lambda: encode(photo(), "BMP")),
        ("GIF", lambda: encode(photo(), "GIF")),
    ],
)
def test_heic_avif_bmp_and_gif_uploads_are_read(tmp_path: Path, fmt: str, write) -> None:
    path = tmp_path / "upload"  # no suffix: the type comes from the bytes
    path.write_bytes(write())
    loaded = check_image(path, "content", Limits())
    assert loaded.info["format"] == fmt and loaded.rgb.shape == (3, 32, 48)
    with pytest.raises(UploadRejected, match="48x32 is over") as refused:
        check_image(path, "content", Limits(max_pixels=1000))
    assert refused.value.status == 413


def test_a_heic_claiming_too_many_pixels_is_refused_by_its_header(tmp_path: Path) -> None:
    path = tmp_path / "upload"
    path.write_bytes(claiming_iso(heif(photo(64, 64), quality=90), 30_000, 30_000))
    with pytest.raises(UploadRejected, match="too many pixels") as refused:
        check_image(path, "content", Limits())
    assert refused.value.status == 413
    path.write_bytes(claiming_iso(heif(photo(64, 64), quality=90), 5000, 5000))
    with pytest.raises(UploadRejected, match="5000x5000 is over") as refused:
        check_image(path, "content", Limits(max_pixels=1_000_000))
    assert refused.value.status == 413
