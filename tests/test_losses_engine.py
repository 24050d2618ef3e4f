"""Loss terms and the optimisation engine, on small images with random weights."""

from __future__ import annotations

import copy
import io
import math
from dataclasses import replace

import pytest
import torch

from portrait_stylize.callbacks import EarlyStop, Recorder
from portrait_stylize.engine import optimise
from portrait_stylize.losses import (
    ContentTerm,
    Objective,
    StyleTerm,
    Term,
    TVTerm,
    gram_matrix,
    gram_squared_error,
    mean_squared_error,
    normalized_squared_error,
    total_variation,
)


def test_gram_matrix_matches_definition() -> None:
    feats = torch.randn(2, 3, 4, 5)
    gram = gram_matrix(feats)
    flat = feats[1].reshape(3, 20)
    assert gram.shape == (2, 3, 3)
    torch.testing.assert_close(gram[1], flat @ flat.T / 20)


def test_loss_formulas_by_hand() -> None:
    a, b = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[0.0, 2.0], [1.0, 4.0]])
    assert mean_squared_error(a, b).item() == pytest.approx((1 + 4) / 4)
    # Σ(G−A)² / (4 N²) with N = 2
    assert gram_squared_error(a[None], b[None]).item() == pytest.approx(5 / 16)
    assert normalized_squared_error(a, b).item() == pytest.approx(5 / 3)


def test_total_variation_of_a_step_edge() -> None:
    image = torch.zeros(1, 1, 4, 4)
    image[..., 2:] = 1.0  # one vertical edge: 4 horizontal differences of 1
    assert total_variation(image).item() == pytest.approx(4 / 16)


class CountingView(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return image * 0.5


def test_objective_runs_each_view_once_and_weights_terms(tiny_extractor) -> None:
    content = torch.rand(1, 3, 32, 32)
    target = tiny_extractor(content, ["relu2_1"])["relu2_1"]
    view = CountingView()
    grams = {k: gram_matrix(v) for k, v in tiny_extractor(content, ["relu1_1"]).items()}
    terms: list[Term] = [
        ContentTerm("relu2_1", target, weight=2.0),
        StyleTerm(grams, {"relu1_1": 1.0}, weight=3.0, name="bg1", view=view),
        StyleTerm(grams, {"relu1_1": 1.0}, weight=1.0, name="bg2", view=view),
        TVTerm(0.5),
    ]
    objective = Objective(tiny_extractor, terms)
    total, values = objective(content)
    assert view.calls == 1
    assert values["content"] == pytest.approx(0.0, abs=1e-6)
    assert values["bg1"] == pytest.approx(3 * values["bg2"], rel=1e-5)
    assert values["tv"] == pytest.approx(0.5 * total_variation(content).item(), rel=1e-5)
    assert total.item() == pytest.approx(sum(values.values()), rel=1e-5)


def _content_objective(extractor, seed: int = 0) -> tuple[Objective, torch.Tensor]:
    torch.manual_seed(seed)
    content = torch.rand(1, 3, 32, 32)
    target = extractor(content, ["relu2_1"])["relu2_1"]
    return Objective(extractor, [ContentTerm("relu2_1", target, weight=1.0)]), content


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_engine_lowers_the_loss_and_reports_every_step(tiny_extractor, optimizer) -> None:
    objective, _ = _content_objective(tiny_extractor)
    start = torch.full((1, 3, 32, 32), 0.5)
    recorder = Recorder()
    result = optimise(start, objective, iterations=30, optimizer=optimizer, callbacks=[recorder])
    assert [s[1] for s in recorder.steps] == list(range(1, 31))
    assert result.stopped is None and result.iterations == 30
    assert recorder.steps[-1][2] < 0.5 * recorder.steps[0][2]
    assert result.image.min() >= 0 and result.image.max() <= 1


def test_engine_stops_on_request_and_keeps_the_image(tiny_extractor) -> None:
    objective, _ = _content_objective(tiny_extractor)
    recorder = Recorder()
    result = optimise(
        torch.full((1, 3, 32, 32), 0.5),
        objective,
        iterations=100,
        callbacks=[recorder, lambda step: step.iteration == 5],
    )
    assert result.stopped == "stopped by request" and result.iterations == 5
    torch.testing.assert_close(result.image, recorder.last_image.clamp(0, 1))


class ExplodesAfter(Term):
    """A loss that becomes NaN at its n-th evaluation."""

    def __init__(self, n: int) -> None:
        super().__init__("explode", 1.0)
        self.n, self.calls = n, 0

    def forward(self, features, image):
        self.calls += 1
        value = (image - 0.3).pow(2).sum()
        return value * math.nan if self.calls >= self.n else value


def test_engine_returns_the_last_good_image_on_nan(tiny_extractor) -> None:
    objective = Objective(tiny_extractor, [ExplodesAfter(4)])
    recorder = Recorder()
    result = optimise(
        torch.full((1, 3, 8, 8), 0.5),
        objective,
        iterations=10,
        optimizer="adam",
        callbacks=[recorder],
    )
    assert result.stopped == "non-finite loss or image"
    assert result.iterations == 4 and len(recorder.steps) == 3
    assert torch.isfinite(result.image).all()
    torch.testing.assert_close(result.image, recorder.last_image)


def test_early_stop_fires_on_a_plateau() -> None:
    stop = EarlyStop(tolerance=1e-3, window=3)

    class S:  # the fields EarlyStop reads
        def __init__(self, i, loss):
            self.iteration, self.loss = i, loss

    losses = [10.0, 5.0, 4.0, 3.99999, 3.99999, 3.99999, 3.99999]
    fired = [stop(S(i + 1, v)) for i, v in enumerate(losses)]
    # step 6 compares with step 3 (4.0 -> 3.99999): under 0.1 %, so it stops
    assert fired == [False, False, False, False, False, True, True]


def test_crowson_scale_schedule() -> None:
    from portrait_stylize.methods import resolve_settings, scale_schedule

    assert scale_schedule(resolve_settings("crowson")) == [
        (128, 1000),
        (181, 500),
        (256, 500),
        (362, 500),
        (512, 500),
    ]
    assert scale_schedule(resolve_settings("crowson", {"size": 256, "min_size": 200})) == [
        (256, 1000)
    ]
    assert scale_schedule(resolve_settings("gatys")) == [(512, 1000)]


def test_ema_is_bias_corrected() -> None:
    from portrait_stylize.engine import EMA

    ema = EMA(torch.zeros(1, 3, 2, 2), decay=0.99)
    ema.update(torch.full((1, 3, 2, 2), 0.7))
    torch.testing.assert_close(ema.value, torch.full((1, 3, 2, 2), 0.7))  # not 0.007
    ema.update(torch.full((1, 3, 2, 2), 0.1))
    expected = (0.99 * 0.01 * 0.7 + 0.01 * 0.1) / (1 - 0.99**2)
    torch.testing.assert_close(ema.value, torch.full((1, 3, 2, 2), expected))


def test_adam_state_resizes_and_warm_starts(tiny_extractor) -> None:
    from portrait_stylize.engine import AdamState

    state = AdamState(
        step=1000.0, exp_avg=torch.randn(1, 3, 8, 8), exp_avg_sq=torch.rand(1, 3, 8, 8) * 1e-4
    )
    bigger = state.resized((11, 11))
    assert bigger.exp_avg.shape == (1, 3, 11, 11) and bigger.step == 1000.0
    assert bigger.exp_avg_sq.min() >= 0  # bicubic could undershoot; bilinear + ReLU cannot
    flat = AdamState(1.0, torch.full((1, 3, 4, 4), 0.5), torch.full((1, 3, 4, 4), 0.25))
    torch.testing.assert_close(flat.resized((6, 6)).exp_avg, torch.full((1, 3, 6, 6), 0.5))
    objective, _ = _content_objective(tiny_extractor)
    first = optimise(torch.full((1, 3, 32, 32), 0.5), objective, iterations=3, optimizer="adam")
    assert first.adam_state is not None and first.adam_state.step == 3
    second = optimise(
        first.image, objective, iterations=2, optimizer="adam", adam_state=first.adam_state
    )
    assert second.adam_state is not None and second.adam_state.step == 5


class Quadratic(Term):
    """(image − 0.3)² summed: its minimum is a flat 0.3 image."""

    def __init__(self) -> None:
        super().__init__("quadratic", 1.0)

    def forward(self, features, image):
        return (image - 0.3).pow(2).sum()


def test_a_stage_ends_early_once_the_image_stops_changing(tiny_extractor) -> None:
    objective = Objective(tiny_extractor, [Quadratic()])
    start = torch.full((1, 3, 8, 8), 0.8)
    run = dict(iterations=2000, optimizer="adam", lr=0.05, ema_decay=0.9)
    full = optimise(start, objective, **run)
    early = optimise(start, objective, converge_tol=1e-4, converge_window=20, **run)
    assert not full.converged and full.iterations == 2000
    assert early.converged and early.iterations < 1000 and early.iterations % 20 == 0
    torch.testing.assert_close(early.image, full.image, atol=2e-3, rtol=0)


def test_paper_exact_sets_fp32_and_every_iteration() -> None:
    from portrait_stylize.methods import resolve_settings

    fast = resolve_settings("portrait-stylization")
    exact = resolve_settings("portrait-stylization", {"paper_exact": True})
    assert fast.precision == "auto" and fast.converge_tol > 0
    assert exact.precision == "fp32" and exact.converge_tol == 0
    assert (exact.iterations, exact.initial_iterations) == (500, 1000)
    with pytest.raises(ValueError, match="paper_exact"):
        resolve_settings("gatys", {"paper_exact": True, "precision": "bf16"})


def test_auto_precision_is_bf16_only_where_it_is_fast(monkeypatch) -> None:
    from portrait_stylize.methods import resolve_settings

    for fast in (True, False):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda fast=fast: fast)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
        assert resolve_settings("gatys").autocast is fast
    assert resolve_settings("gatys", {"precision": "bf16"}).autocast
    assert not resolve_settings("gatys", {"precision": "fp32"}).autocast


def test_a_non_finite_bf16_stage_continues_in_fp32(tiny_extractor) -> None:
    from functools import partial

    from portrait_stylize.api import run_with_fallback

    class NanInBf16(Term):
        """Finite in fp32; NaN from its 3rd evaluation while the objective runs in bf16."""

        def __init__(self) -> None:
            super().__init__("nan_in_bf16", 1.0)
            self.calls = 0

        def forward(self, features, image):
            self.calls += 1
            bad = self.objective.autocast and self.calls >= 3
            return (image - 0.3).pow(2).mean() * (math.nan if bad else 1.0)

    term = NanInBf16()
    objective = Objective(tiny_extractor, [term], autocast=True)
    term.objective = objective
    run = partial(optimise, objective=objective, optimizer="adam")
    with pytest.warns(UserWarning, match="non-finite in bf16 after 2 steps"):
        result = run_with_fallback(run, objective, torch.full((1, 3, 8, 8), 0.5), 6, None)
    assert result.iterations == 6 and result.stopped is None and not objective.autocast
    assert torch.isfinite(result.image).all() and float(result.image.mean()) < 0.5


def test_lbfgs_history_fits_its_memory_budget() -> None:
    from portrait_stylize.engine import LBFGS_HISTORY_BYTES, lbfgs_history

    assert lbfgs_history(torch.zeros(1, 3, 512, 512)) == 100
    big = torch.zeros(1, 3, 2048, 2048)
    assert lbfgs_history(big) == 21 and 21 * 2 * big.numel() * 4 <= LBFGS_HISTORY_BYTES
    assert lbfgs_history(torch.zeros(1, 3, 8192, 8192)) == 5


def test_progress_bar_moves_to_the_next_stage_when_a_stage_ends_early() -> None:
    from portrait_stylize.callbacks import ProgressBar
    from portrait_stylize.events import Step

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    bar = ProgressBar([10, 5], stream=Terminal())

    def step(stage: int, iteration: int) -> Step:
        return Step(iteration, 10, stage, 2, (8, 8), 1.0, {}, 0.0, torch.zeros(1))

    for i in range(1, 4):
        bar(step(0, i))
    assert bar.bar.n == 3
    bar(step(1, 1))  # stage 0 converged after 3 of its 10 steps
    assert bar.bar.n == 11 and bar.bar.total == 15
    bar.close()


class Noisy(Quadratic):
    """Quadratic plus noise drawn per step from ``at_step``: records the steps it was told."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[int] = []
        self.generator = torch.Generator()

    def at_step(self, step: int) -> None:
        self.steps.append(step)
        self.generator.manual_seed(step)

    def forward(self, features, image):
        noise = torch.rand(image.shape, generator=self.generator)
        return super().forward(features, image) + (image * noise).sum()


def test_terms_drawing_per_step_are_told_the_step_and_a_resumed_stage_repeats_them(
    tiny_extractor,
) -> None:
    term = Noisy()
    objective = Objective(tiny_extractor, [term])
    start = torch.full((1, 3, 8, 8), 0.8)
    run = dict(iterations=6, optimizer="adam", lr=0.05, ema_decay=0.9)
    saved = []  # copies: a state shares its tensors with the running stage
    save = lambda state: saved.append(copy.deepcopy(state))  # noqa: E731
    full = optimise(start, objective, checkpoint=save, checkpoint_every=3, **run)
    assert term.steps == [1, 2, 3, 4, 5, 6]
    term.steps.clear()
    resumed = optimise(start, objective, resume=saved[0], **run)
    assert term.steps == [4, 5, 6]
    torch.testing.assert_close(resumed.image, full.image, atol=0, rtol=0)


class Counted(Quadratic):
    """Quadratic that counts its evaluations."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, features, image):
        self.calls += 1
        return super().forward(features, image)


def test_a_reused_term_runs_every_n_steps_with_its_last_gradient_between(tiny_extractor) -> None:
    term = Counted()
    term.every = 3
    objective = Objective(tiny_extractor, [term])
    start = torch.full((1, 3, 8, 8), 0.8)
    gradients = []
    for step in (1, 2, 3):
        objective.at_step(step)
        pixels = (start - 0.1 * step).requires_grad_(True)
        loss, _ = objective(pixels)
        loss.backward()
        gradients.append(pixels.grad)
    assert term.calls == 2  # step 1 (nothing kept yet) and step 3 (a multiple of 3)
    torch.testing.assert_close(gradients[1], gradients[0])  # step 2 reuses step 1's
    torch.testing.assert_close(gradients[2], 2 * (start - 0.3 - 0.3))  # step 3: fresh
    assert float(loss.detach()) == pytest.approx(float((start - 0.6).pow(2).sum()))


def test_a_resumed_stage_continues_a_reused_term_exactly(tiny_extractor) -> None:
    term = Noisy()
    term.every = 4
    objective = Objective(tiny_extractor, [term])
    start = torch.full((1, 3, 8, 8), 0.8)
    run = dict(iterations=6, optimizer="adam", lr=0.05, ema_decay=0.9)
    saved = []
    save = lambda state: saved.append(copy.deepcopy(state))  # noqa: E731
    full = optimise(start, objective, checkpoint=save, checkpoint_every=2, **run)
    assert set(saved[0].kept) == {"quadratic"}  # after step 2: step 1's, reused at step 3
    fresh = optimise(
        start,
        Objective(tiny_extractor, [term]),
        resume=replace(copy.deepcopy(saved[0]), kept={}),
        **run,
    )
    assert not torch.equal(fresh.image, full.image)  # without it step 3 would differ
    resumed = optimise(start, Objective(tiny_extractor, [term]), resume=saved[0], **run)
    torch.testing.assert_close(resumed.image, full.image, atol=0, rtol=0)
