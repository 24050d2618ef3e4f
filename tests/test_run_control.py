"""Running a job: typed errors and exit codes, cancellation, warm networks, progress lines,
run events, checkpoints and resume."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from portrait_stylize import models, stylize
from portrait_stylize.callbacks import ProgressBar
from portrait_stylize.checkpoint import checkpoint_path
from portrait_stylize.cli import main
from portrait_stylize.errors import (
    OUTCOMES,
    UNEXPECTED,
    Cancelled,
    DeviceError,
    ExtraMissing,
    InputError,
    PortraitStylizeError,
    SettingsError,
    WeightsError,
    outcome,
)
from portrait_stylize.events import (
    CancelToken,
    Estimated,
    FacesFound,
    MachineMeasuring,
    StageFinished,
    StageStarted,
    Step,
    StopReason,
    WeightsLoading,
)
from portrait_stylize.images import load_image
from portrait_stylize.methods import resolve_settings
from portrait_stylize.weights import registry

from .conftest import data_file

TWO_SCALES = {
    "size": 32,
    "min_size": 22,  # scales 23 and 32 px
    "initial_iterations": 2,
    "iterations": 6,
    "precision": "fp32",
    "converge_tol": 0.0,
}
"""A tiny crowson run with two scales, exact in fp32."""


class Events:
    """Keeps every step and every other event of a run."""

    def __init__(self) -> None:
        self.events: list[object] = []

    def __call__(self, step: Step) -> bool:
        self.events.append(step)
        return False

    def on_event(self, event: object) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


# -- errors -------------------------------------------------------------------------------


def test_every_error_class_has_an_exit_code_and_http_status() -> None:
    expected = {
        InputError: (2, 400),
        SettingsError: (2, 400),
        WeightsError: (3, 503),
        DeviceError: (2, 503),
        ExtraMissing: (2, 501),
        Cancelled: (130, 409),
    }
    assert {cls: (o.exit_code, o.http_status) for cls, o in OUTCOMES.items()} == expected
    for cls in expected:
        assert outcome(cls("x")) == OUTCOMES[cls] and issubclass(cls, PortraitStylizeError)
    assert outcome(ValueError("a bug")) == UNEXPECTED
    assert (UNEXPECTED.exit_code, UNEXPECTED.http_status) == (1, 500)
    # `except ValueError` callers keep working
    assert registry.WeightsError is WeightsError
    assert issubclass(SettingsError, ValueError) and issubclass(InputError, ValueError)
    with pytest.raises(SettingsError, match="unknown method"):
        resolve_settings("picasso")


def _fail_with(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    """Make every run fail with ``error`` when it asks for its feature network."""

    def extractor(*args: object) -> None:
        raise error

    monkeypatch.setattr(models, "extractor", extractor)


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (InputError("photo.png: not a readable image"), 2, "error: photo.png: not a readable"),
        (SettingsError("size must be at least 16 px"), 2, "error: size must be at least"),
        (WeightsError("could not obtain weights 'vgg'"), 3, "error: could not obtain weights"),
        (DeviceError("no CUDA GPU"), 2, "error: no CUDA GPU"),
        (KeyboardInterrupt(), 130, "error: interrupted"),
        (Cancelled("cancelled"), 130, "error: cancelled"),
        (
            ZeroDivisionError("division by zero"),
            1,
            "internal error: ZeroDivisionError: division by zero (a bug; rerun with --debug "
            "for the traceback)",
        ),
    ],
)
def test_cli_exit_code_per_error_class(pair, tmp_path, capsys, monkeypatch, error, code, line):
    _fail_with(monkeypatch, error)
    argv = [*map(str, pair), "-o", str(tmp_path / "out.png"), "--size", "32", "-q"]
    assert main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"portrait-stylize: {line}")
    assert not (tmp_path / "out.png").exists()


def test_debug_shows_the_traceback_anywhere_on_the_line(pair, tmp_path, capsys, monkeypatch):
    _fail_with(monkeypatch, ZeroDivisionError("division by zero"))
    argv = [*map(str, pair), "-o", str(tmp_path / "out.png"), "-q"]
    assert main(["--debug", *argv]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "raise error" in err
    assert err.strip().splitlines()[-1].startswith("portrait-stylize: internal error:")
    assert main([*argv, "--debug"]) == 1 and "Traceback" in capsys.readouterr().err


def test_subcommands_share_the_error_ladder(capsys) -> None:
    assert main(["weights", "pull", "no-such-network"]) == 3
    assert capsys.readouterr().err.startswith("portrait-stylize: error: unknown weights")
    assert main(["weights", "pull", "a", "b", "--file", "x"]) == 2
    assert "--file needs exactly one NAME" in capsys.readouterr().err
    assert main(["evaluate", "missing.png", "missing.png", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "missing.png: no such file" in err


# -- cancellation ---------------------------------------------------------------------------


def test_cancelling_from_another_thread_stops_a_run_in_any_thread(pair) -> None:
    """The run works in a worker thread (no signal handlers there) and stops soon after
    the token is cancelled from the main thread, with its last good image."""
    token = CancelToken()
    started = threading.Event()
    events = Events()

    def first_step(step: Step) -> bool:
        started.set()
        return False

    outcome_box: dict[str, object] = {}

    def work() -> None:
        outcome_box["result"] = stylize(
            *pair, size=32, iterations=100_000, cancel=token, callbacks=[first_step, events]
        )

    worker = threading.Thread(target=work)
    worker.start()
    assert started.wait(timeout=120)
    token.cancel()
    worker.join(timeout=120)
    assert not worker.is_alive()
    result = outcome_box["result"]
    assert result.stopped == StopReason.CANCELLED and result.record["stopped"] == "cancelled"
    assert json.loads(json.dumps(result.record))["stopped"] == "cancelled"
    assert 1 <= result.record["stages"][0]["iterations"] < 100
    assert torch.isfinite(result.image).all()
    assert events.of(StageFinished)[-1].stopped == StopReason.CANCELLED


# -- warm networks and the weights in the record ----------------------------------------------


def test_a_second_run_in_a_process_loads_and_hashes_nothing(pair, monkeypatch) -> None:
    monkeypatch.setattr(models, "_CACHE", {})  # a fresh process's cache (restored afterwards)
    calls = {"hash": 0, "load": 0}
    file_digest, weight_path = registry.file_digest, registry.weight_path

    def counting_digest(*args, **kwargs):
        calls["hash"] += 1
        return file_digest(*args, **kwargs)

    def counting_path(*args, **kwargs):
        calls["load"] += 1
        return weight_path(*args, **kwargs)

    monkeypatch.setattr(registry, "file_digest", counting_digest)
    monkeypatch.setattr(registry, "weight_path", counting_path)
    first_events, second_events = Events(), Events()
    first = stylize(*pair, "gatys", size=32, iterations=1, callbacks=[first_events])
    assert calls["hash"] >= 1 and calls["load"] >= 1
    assert [e.names for e in first_events.of(WeightsLoading)] == [("vgg19-caffe",)]
    seen = dict(calls)
    second = stylize(*pair, "gatys", size=32, iterations=1, callbacks=[second_events])
    assert calls == seen and not second_events.of(WeightsLoading)
    assert first.record["weights"] == second.record["weights"]
    spec = registry.get_spec("vgg19-caffe")
    assert first.record["weights"] == [
        {"name": "vgg19-caffe", "file": spec.filename, "sha256": spec.sha256}
    ]


def test_the_record_lists_every_network_used_and_faces_are_reported() -> None:
    """portrait-stylization on a real portrait: backbone, MTCNN (3 files) and FaceNet."""
    events = Events()
    result = stylize(
        data_file("content", "astronaut.jpg"),
        data_file("style", "starry_night.jpg"),
        "portrait-stylization",
        size=48,
        min_size=None,
        initial_iterations=1,
        callbacks=[events],
    )
    names = [entry["name"] for entry in result.record["weights"]]
    assert names[:3] == ["mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet"]
    assert set(names[3:]) == {"vgg16-hed", "facenet-casia"}
    for entry in result.record["weights"]:
        spec = registry.get_spec(entry["name"])
        assert entry["file"] == spec.filename and entry["sha256"] == spec.sha256
    (found,) = events.of(FacesFound)
    assert len(found.boxes) == 1 and found.boxes == result.record["faces"]
    once = WeightsLoading | MachineMeasuring  # only where not done before in this process
    kinds = [type(e).__name__ for e in events.events if not isinstance(e, once)]
    assert kinds == ["FacesFound", "Estimated", "StageStarted", "Step", "StageFinished"]
    (estimate,) = events.of(Estimated)
    assert len(estimate.stages) == 1 and estimate.seconds > 0
    assert result.record["estimated_s"] == round(estimate.seconds, 1)
    assert result.record["layout"] in ("nchw", "channels-last")


# -- progress without a terminal ----------------------------------------------------------------


def test_progress_is_a_plain_line_every_few_seconds_without_a_terminal() -> None:
    stream = io.StringIO()  # not a terminal, like a log file
    now = [100.0]
    bar = ProgressBar([10, 5], stream=stream, interval=5.0, clock=lambda: now[0])
    bar.on_event(StageStarted(0, 2, (8, 12), 10))
    for i in range(1, 11):
        now[0] += 1.0
        bar(Step(i, 10, 0, 2, (8, 12), 2.5, {"style": 1.5}, 0.0, torch.zeros(1)))
    bar.on_event(StageFinished(0, 2, 10, 2.5, 10.0, False, None))
    bar.on_event(WeightsLoading(("vgg16-hed",), "cpu"))
    for i in range(1, 6):
        now[0] += 1.0
        bar(Step(i, 5, 1, 2, (8, 12), 1.0, {}, 0.0, torch.zeros(1)))
    bar.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines == [
        "scale 1/2 12x8: 10 steps",
        "scale 1/2 12x8 step 1/15 loss=2.5 style=1.5 eta 0 s",
        "scale 1/2 12x8 step 6/15 loss=2.5 style=1.5 eta 9 s",
        "scale 1/2 done: 10 steps in 10.0 s, loss=2.5",
        "loading vgg16-hed on cpu",
        "scale 2/2 12x8 step 11/15 loss=1 eta 4 s",
        "scale 2/2 12x8 step 15/15 loss=1 eta 0 s",
    ]
    quiet = io.StringIO()
    bar = ProgressBar([3], disable=True, stream=quiet)
    bar(Step(1, 3, 0, 1, (8, 8), 1.0, {}, 0.0, torch.zeros(1)))
    bar.on_event(WeightsLoading(("vgg16-hed",), "cpu"))
    assert quiet.getvalue() == ""


# -- checkpoints and resume -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "settings", "planned"),
    [
        ("crowson", TWO_SCALES, [2, 6]),
        ("gatys", {"size": 32, "iterations": 6, "precision": "fp32"}, [6]),
    ],
    ids=["adam-ema-two-scales", "lbfgs"],
)
def test_a_cancelled_run_resumes_mid_stage_and_equals_an_uninterrupted_one(
    pair, tmp_path, method, settings, planned
):
    """Cancelled at step 4 of the last scale (checkpointing every 3 steps); resumed, it
    continues from that step (Adam and its moving average, or L-BFGS and its history) and
    ends on the uninterrupted run's image."""
    reference = stylize(*pair, method, **settings)
    token = CancelToken()
    ckpt = tmp_path / "out.png.ckpt.pt"
    last = len(planned) - 1

    def cancel_in_last_scale(step: Step) -> bool:
        if step.stage == last and step.iteration == 4:
            token.cancel()
        return False

    common = {"checkpoint": ckpt, "checkpoint_every": 3, **settings}
    cut = stylize(*pair, method, cancel=token, callbacks=[cancel_in_last_scale], **common)
    assert cut.stopped == "cancelled" and ckpt.is_file()
    assert [s["iterations"] for s in cut.record["stages"]] == [*planned[:-1], 4]
    events = Events()
    resumed = stylize(*pair, method, resume=True, callbacks=[events], **common)
    assert resumed.record["resumed"] == {"checkpoint": str(ckpt), "stage": last, "step": 4}
    assert [s.iteration for s in events.of(Step)] == [5, 6]
    assert events.of(StageStarted)[0].iteration == 4
    assert [s["iterations"] for s in resumed.record["stages"]] == planned
    assert torch.allclose(resumed.image, reference.image, atol=1e-6)
    assert resumed.record["stopped"] is None and reference.record["resumed"] is None


def test_resume_refuses_other_inputs_or_settings(pair, tmp_path) -> None:
    content, style = pair
    ckpt = tmp_path / "run.ckpt.pt"
    with pytest.raises(InputError, match="no checkpoint to resume from"):
        stylize(content, style, "crowson", checkpoint=ckpt, resume=True, **TWO_SCALES)
    stylize(content, style, "crowson", checkpoint=ckpt, **{**TWO_SCALES, "iterations": 1})
    assert ckpt.is_file()  # written at the boundary between the two scales
    with pytest.raises(SettingsError, match=r"other settings \(iterations 1 -> 6\)"):
        stylize(content, style, "crowson", checkpoint=ckpt, resume=True, **TWO_SCALES)
    with pytest.raises(InputError, match="other content or style images"):
        stylize(style, style, "crowson", checkpoint=ckpt, resume=True, **TWO_SCALES)
    garbage = tmp_path / "garbage.ckpt.pt"
    garbage.write_text("not a checkpoint")
    with pytest.raises(InputError, match="not a readable checkpoint"):
        stylize(content, style, "crowson", checkpoint=garbage, resume=True, **TWO_SCALES)


def _cli(content: Path, style: Path, out: Path, **overrides: object) -> list[str]:
    """The command line of a TWO_SCALES crowson run (with ``overrides``) to ``out``."""
    argv = [str(content), str(style), "-o", str(out), "--method", "crowson", "-q"]
    for name, value in {**TWO_SCALES, **overrides}.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv


@pytest.mark.slow
def test_a_run_killed_in_its_second_scale_resumes_and_equals_an_uninterrupted_one(pair, tmp_path):
    """SIGKILL once the checkpoint between the scales exists; ``--resume`` continues from the
    second scale and its 16-bit result equals the uninterrupted run's."""
    content, style = pair
    out = tmp_path / "killed.tif"
    argv = _cli(content, style, out, iterations=20)  # a second scale to be killed in
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "portrait_stylize.cli", *argv], env=env, stderr=subprocess.PIPE
    )
    ckpt = checkpoint_path(out)
    deadline = time.monotonic() + 300
    while not ckpt.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL and ckpt.is_file() and not out.exists()

    assert main([*argv, "--resume"]) == 0
    record = json.loads((tmp_path / "killed.tif.json").read_text())
    assert record["resumed"] == {"checkpoint": str(ckpt), "stage": 1, "step": 0}
    assert [s["iterations"] for s in record["stages"]] == [2, 20]
    assert not ckpt.exists()  # the run is done
    reference = tmp_path / "reference.tif"
    assert main(_cli(content, style, reference, iterations=20)) == 0
    resumed, uninterrupted = load_image(out).rgb, load_image(reference).rgb
    assert float((resumed - uninterrupted).abs().max()) <= 1 / 65535
