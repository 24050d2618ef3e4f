"""The machine's measured speed: layout choice, the floor's power law, the cost model that
finished runs refine, the estimate a run announces, and the channels-last path."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from portrait_stylize import machine
from portrait_stylize.api import stylize
from portrait_stylize.callbacks import TimeLeft
from portrait_stylize.events import Estimated, MachineMeasuring, Step
from portrait_stylize.losses import Objective, StyleTerm, gram_matrix
from portrait_stylize.methods import resolve_settings, scale_schedule


def speed(observed: dict | None = None) -> machine.Speed:
    """A made-up measurement: the floor 0.1 s at 256 px and 0.5 s at 512 px."""
    return machine.Speed("key", False, {256: 0.1, 512: 0.5}, observed or {})


def test_the_floor_follows_the_power_law_through_the_two_probe_sizes() -> None:
    measured = speed()
    assert measured.floor_seconds(256 * 256) == pytest.approx(0.1)
    assert measured.floor_seconds(512 * 512) == pytest.approx(0.5)
    exponent = math.log(5) / math.log(4)
    assert measured.floor_seconds(1024 * 1024) == pytest.approx(0.5 * 4**exponent)


def test_the_cost_model_is_the_default_until_runs_are_seen_then_fitted_to_them() -> None:
    assert speed().step_cost("crowson") == machine.DEFAULT_COST
    # steps that cost 1.5 x the floor plus 0.2 x the 512 px floor per face
    rows = [
        (floor, faces, 1.5 * floor + 0.2 * faces * 0.5) for floor in (0.1, 0.5) for faces in (1, 2)
    ]
    a, b = speed({"portrait-painting": rows}).step_cost("portrait-painting")
    assert (a, b) == (pytest.approx(1.5), pytest.approx(0.2))
    no_faces = [(0.1, 0, 0.13), (0.5, 0, 0.65)]
    a, b = speed({"gatys": no_faces}).step_cost("gatys")
    assert a == pytest.approx(1.3) and b == machine.DEFAULT_COST[1]
    seconds = speed({"gatys": no_faces}).stage_seconds("gatys", 512 * 512, 0, 10)
    assert seconds == pytest.approx(10 * 1.3 * 0.5)


def test_a_measurement_is_cached_per_machine_and_learns_from_finished_runs(
    tmp_path, monkeypatch, tiny_extractor
) -> None:
    monkeypatch.setenv("PORTRAIT_STYLIZE_HOME", str(tmp_path))
    monkeypatch.setattr(machine, "PROBE_SIZES", (32, 64))
    cpu = torch.device("cpu")
    assert machine.load("vgg16-hed", cpu, False) is None
    measured = machine.measure(tiny_extractor, False)
    assert set(measured.floor) == {32, 64} and all(s > 0 for s in measured.floor.values())
    machine.save(measured)
    loaded = machine.load("vgg16-hed", cpu, False)
    assert loaded is not None and loaded.channels_last == measured.channels_last
    assert machine.load("vgg16-hed", cpu, True) is None  # another precision: not measured
    stages = [
        {"size": [128, 128], "iterations": 10, "seconds": 1.0, "precision": "fp32"},
        {"size": [128, 181], "iterations": 20, "seconds": 6.0, "precision": "fp32"},
        {"size": [128, 128], "iterations": 20, "seconds": 9.0, "precision": "bf16"},  # not this
        {"size": [64, 64], "iterations": 20, "seconds": 2.0, "precision": "fp32"},  # too small
        {"size": [128, 128], "iterations": 9, "seconds": 2.0, "precision": "fp32"},  # too short
    ]
    settings = resolve_settings("crowson", {"precision": "fp32"})
    machine.learn(settings, cpu, 0, stages)
    rows = machine.load("vgg16-hed", cpu, False).observed["crowson"]
    assert [seconds for _, _, seconds in rows] == [pytest.approx(0.1), pytest.approx(0.3)]
    speed = machine.load("vgg16-hed", cpu, False)

    def run_at(rate: float) -> list[dict]:  # a run whose steps cost rate x the floor
        sides = (128, 256)
        return [
            {"size": [s, s], "iterations": 10, "seconds": 10 * rate * speed.floor_seconds(s * s)}
            | {"precision": "fp32"}
            for s in sides
        ]

    gatys = resolve_settings("gatys", {"backbone": "vgg16-hed", "precision": "fp32"})
    for rate, kept in ((2.0, 2), (2.2, 4), (6.0, 2)):  # 6x: the machine changed, learnt afresh
        machine.learn(gatys, cpu, 0, run_at(rate))
        again = machine.load("vgg16-hed", cpu, False)
        assert len(again.observed["gatys"]) == kept
    assert again.step_cost("gatys")[0] == pytest.approx(6.0, rel=1e-3)
    machine._path(measured.key).write_text("{not json")
    assert machine.load("vgg16-hed", cpu, False) is None  # unreadable: measured again


def test_channels_last_features_give_the_same_losses(tiny_extractor) -> None:
    torch.manual_seed(0)
    image = torch.rand(1, 3, 40, 48)
    features = tiny_extractor(image, ("relu2_1",))["relu2_1"]
    channels_last = features.contiguous(memory_format=torch.channels_last)
    assert torch.allclose(gram_matrix(channels_last), gram_matrix(features), atol=1e-5)
    targets = {"relu1_1": torch.rand(1, 64, 64), "relu3_1": torch.rand(1, 256, 256)}
    term = StyleTerm(targets, {"relu1_1": 1.0, "relu3_1": 1.0}, 1.0)
    grads = []
    for layout in (False, True):
        pixels = image.clone().requires_grad_(True)
        loss, _ = Objective(tiny_extractor, [term], channels_last=layout)(pixels)
        loss.backward()
        grads.append((loss.detach(), pixels.grad))
    assert torch.allclose(grads[0][0], grads[1][0], rtol=1e-4)
    assert torch.allclose(grads[0][1], grads[1][1], rtol=1e-3, atol=1e-7)


def test_a_run_announces_its_estimate_and_records_its_layout(pair) -> None:
    events: list[object] = []

    class Listener:
        def __call__(self, step: Step) -> bool:
            return False

        def on_event(self, event: object) -> None:
            events.append(event)

    result = stylize(
        *pair,
        "crowson",
        size=48,
        min_size=32,
        initial_iterations=3,
        iterations=2,
        layout="channels-last",
        callbacks=[Listener()],
    )
    estimates = [e for e in events if isinstance(e, Estimated)]
    assert len(estimates) == 1 and len(estimates[0].stages) == 2
    assert result.record["layout"] == "channels-last"
    assert result.record["estimated_s"] == round(estimates[0].seconds, 1)
    kinds = [type(e) for e in events]
    assert kinds.index(Estimated) < [k.__name__ for k in kinds].index("StageStarted")
    if MachineMeasuring in kinds:
        assert kinds.index(MachineMeasuring) < kinds.index(Estimated)


def test_the_schedule_gives_the_costlier_scales_fewer_steps_by_the_exponent() -> None:
    settings = resolve_settings(
        "crowson",
        {"size": 512, "iterations": 160, "step_exponent": 1.0, "initial_iterations": 200},
    )
    assert scale_schedule(settings) == [(128, 200), (181, 113), (256, 80), (362, 57), (512, 40)]
    flat = dataclasses.replace(settings, step_exponent=0.0, iterations=7)
    assert scale_schedule(flat) == [(128, 200)] + [(side, 7) for side in (181, 256, 362, 512)]
    painting = resolve_settings("portrait-painting", {"size": 1024})
    steps = [n for _, n in scale_schedule(painting)]
    assert steps[0] == painting.iterations and steps == sorted(steps, reverse=True)


def test_the_time_left_counts_the_slower_scales_still_to_come() -> None:
    """With the estimate, a step of the second stage weighs four of the first: after the
    first stage (1 s a step) the 5 steps left are worth 20 s, not 5."""
    left = TimeLeft([10, 5])
    left.estimate(Estimated([10.0, 20.0]))
    assert left.total == pytest.approx(30.0) and left.work(1, 0) == pytest.approx(10.0)
    assert left.update(1.0, 0, 1) is None  # the first step: no rate yet
    assert left.update(10.0, 0, 10) == pytest.approx(20.0)
    unweighed = TimeLeft([10, 5])
    unweighed.update(1.0, 0, 1)
    assert unweighed.update(10.0, 0, 10) == pytest.approx(5.0)
    late = TimeLeft([10, 5])
    late.update(0.0, 0, 1)
    late.estimate(Estimated([10.0, 20.0]))  # after the first step: too late to reweigh
    assert late.total == 15


def test_the_moving_average_spans_a_fraction_of_each_scale_and_the_step_size_decays() -> None:
    from portrait_stylize.api import _ema_decay
    from portrait_stylize.engine import optimise

    painting = resolve_settings("portrait-painting")
    assert _ema_decay(painting, 60) == pytest.approx(1 - 1 / 15)  # a quarter of 60 steps
    assert _ema_decay(painting, 4) == pytest.approx(0.5)  # at least 2 iterates
    crowson = resolve_settings("crowson")
    assert crowson.ema_window == 0 and _ema_decay(crowson, 60) == crowson.ema_decay

    class Gradient(torch.nn.Module):  # loss = sum(x): Adam's first step moves each pixel by lr
        autocast = False

        def __init__(self) -> None:
            super().__init__()
            self.kept: dict = {}

        def at_step(self, step: int) -> None:
            pass

        def forward(self, image):
            return image.sum(), {}

    start = torch.full((1, 3, 4, 4), 0.5)
    moved = [
        0.5
        - float(
            optimise(
                start, Gradient(), iterations=n, optimizer="adam", lr=0.1, lr_end=0.1
            ).image.mean()
        )
        for n in (1, 2)
    ]
    assert moved[0] == pytest.approx(0.1, rel=1e-3)  # the first step: the whole lr
    assert moved[1] - moved[0] == pytest.approx(0.01, rel=5e-2)  # the last: a tenth of it
