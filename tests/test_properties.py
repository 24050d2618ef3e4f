"""Property-based tests (hypothesis) of every setting and of the command line: NaN,
infinities, negative, zero and enormous numbers for each numeric setting of the schema,
unknown methods, layers and devices, empty lists, mismatched blend weights. Each is
accepted when the schema allows it, else refused with a SettingsError (the CLI: exit 2)
whose one line names the setting. Nothing here optimises: the CLI cases name a content
file that does not exist, so an accepted command stops there, naming that file."""

from __future__ import annotations

import contextlib
import io
import math
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from portrait_stylize import api, stylize
from portrait_stylize.cli import RUN_OPTIONS, build_parser, main
from portrait_stylize.errors import DeviceError, InputError, SettingsError
from portrait_stylize.features import BACKBONES
from portrait_stylize.methods import KINDS, METHODS, SPECS, parse_settings, resolve_settings
from portrait_stylize.methods.settings import FLOAT32_MAX, MAX_SIZE
from portrait_stylize.nets.vgg import layer_names

from .hostile import EXAMPLES

NUMERIC = [name for name, kind in KINDS.items() if kind.base in (int, float)]
LAYERS = ("content_layers", "style_layers", "background_layers")
KNOWN_LAYERS = layer_names(BACKBONES["vgg19-caffe"].arch)
BASE = resolve_settings("gatys")
EDGES = [math.nan, math.inf, -math.inf, -1.0, -0.0, 0.0, 5e-324, 1e-300, 1.0, 1e300]
EDGES += [FLOAT32_MAX, 3.5e38, -1, 0, 1, 15, 16, 31, 32, MAX_SIZE, MAX_SIZE + 1]
EDGES += [2**63 - 1, 2**63, 10**30, 10**400, -(10**400), True, False]
numbers = st.sampled_from(EDGES) | st.floats() | st.integers()
"""Any number, the hostile ones often: NaN, infinities, zero, the bounds, enormous."""
MISSING = "no-such-content.png"


def acceptable(name: str, value: Any) -> bool:
    """Whether the schema lets ``name`` (of the gatys settings) be ``value``: its type, a
    finite float32 number, within its bounds, and the rules between settings."""
    kind, spec = KINDS[name], SPECS[name]
    if value is None:
        return kind.optional
    items = value if kind.many else [value]
    for item in items:
        if isinstance(item, bool) or (kind.base is int and not isinstance(item, int)):
            return False
        item = as_float(item) if kind.base is float else item
        if isinstance(item, float) and not (math.isfinite(item) and abs(item) <= FLOAT32_MAX):
            return False
        if not spec.within(item):
            return False
    if name == "style_layer_weights":
        return len(value) == len(BASE.style_layers)
    if name == "style_blend_weights":
        return not value or sum(value) > 0
    if name in ("size", "style_scale"):
        size, scale = (value, BASE.style_scale) if name == "size" else (BASE.size, value)
        return round(size * scale) <= MAX_SIZE
    return True


def as_float(number: float) -> float:
    """``number`` as a float, infinite when it is an integer beyond floats."""
    try:
        return float(number)
    except OverflowError:
        return math.inf if number > 0 else -math.inf


def values_of(name: str) -> st.SearchStrategy[Any]:
    """Values for setting ``name``: a number, or a list of them for a list setting (often
    as long as the style layers)."""
    if not KINDS[name].many:
        return numbers
    fitting = st.lists(numbers, min_size=len(BASE.style_layers), max_size=len(BASE.style_layers))
    return fitting | st.lists(numbers, max_size=7)


def assert_refused(error: SettingsError, name: str) -> None:
    assert error.field == name and name in str(error) and "\n" not in str(error), str(error)


def _check(resolve: Any, name: str, value: Any) -> None:
    """``resolve({name: value})`` accepts exactly what the schema allows, and keeps it."""
    if acceptable(name, value):
        settings = resolve({name: value})
        got = getattr(settings, name)
        plain = as_float if KINDS[name].base is float else int
        assert got == (tuple(map(plain, value)) if KINDS[name].many else plain(value))
        assert all(
            not isinstance(item, float) or abs(item) <= FLOAT32_MAX
            for item in (got if KINDS[name].many else [got])
        )
        assert 16 <= settings.size <= MAX_SIZE
    else:
        with pytest.raises(SettingsError) as caught:
            resolve({name: value})
        assert_refused(caught.value, name)


@EXAMPLES
@given(name=st.sampled_from(NUMERIC), data=st.data())
def test_numeric_settings_through_the_api(name: str, data: st.DataObject) -> None:
    _check(lambda values: resolve_settings("gatys", values), name, data.draw(values_of(name)))


@EXAMPLES
@given(name=st.sampled_from(NUMERIC), data=st.data())
def test_numeric_settings_through_a_jobs_json(name: str, data: st.DataObject) -> None:
    value = data.draw(values_of(name))
    json_value = list(value) if isinstance(value, tuple) else value
    _check(lambda values: parse_settings("gatys", values), name, json_value)


@EXAMPLES
@given(method=st.text(max_size=30))
def test_unknown_methods_are_refused(method: str) -> None:
    if method in METHODS:
        assert resolve_settings(method).method == method
        return
    for resolve in (resolve_settings, parse_settings):
        with pytest.raises(SettingsError) as caught:
            resolve(method, {})
        assert caught.value.field == "method" and "\n" not in str(caught.value)


@EXAMPLES
@given(name=st.text(max_size=20))
def test_unknown_setting_names_are_refused(name: str) -> None:
    if name in SPECS:
        return
    for resolve in (resolve_settings, parse_settings):
        with pytest.raises(SettingsError) as caught:
            resolve("gatys", {name: 1})
        assert caught.value.field == name and "\n" not in str(caught.value)


@EXAMPLES
@given(
    name=st.sampled_from(LAYERS),
    layers=st.lists(st.sampled_from(KNOWN_LAYERS) | st.text(max_size=12), max_size=6),
)
def test_layer_names_are_known_ones(name: str, layers: list[str]) -> None:
    known = all(layer in KNOWN_LAYERS for layer in layers)
    if known and (layers or name != "style_layers"):
        assert getattr(resolve_settings("gatys", {name: layers}), name) == tuple(layers)
        return
    with pytest.raises(SettingsError) as caught:
        resolve_settings("gatys", {name: layers})
    assert_refused(caught.value, name)


@EXAMPLES
@given(device=st.sampled_from(["cpu", "cuda", "cuda:0", "cuda:127", "cuda:128"]) | st.text())
def test_devices_are_ones_pytorch_reads(device: str) -> None:
    digits = device.removeprefix("cuda:")
    index_ok = digits.isascii() and digits.isdigit() and str(int(digits)) == digits
    if device in ("cpu", "cuda") or (device.startswith("cuda:") and index_ok and int(digits) < 128):
        assert resolve_settings("gatys", {"device": device}).device == device
        return
    with pytest.raises(SettingsError) as caught:
        resolve_settings("gatys", {"device": device})
    assert_refused(caught.value, "device")


def test_a_missing_gpu_is_a_device_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(DeviceError, match="'cuda:3': this machine has 1 GPU"):
        api.resolve_device("cuda:3")


def test_wrong_python_types_are_refused() -> None:
    for name, value in [("size", "512"), ("size", 512.0), ("style_layers", "relu1_1")]:
        with pytest.raises(SettingsError) as caught:
            resolve_settings("gatys", {name: value})
        assert_refused(caught.value, name)


def cli(tmp_path: Path, *options: str, styles: int = 1) -> tuple[int, str]:
    """The CLI run in-process on a missing content: (exit status, standard error)."""
    argv = [MISSING, *(["style.png"] * styles), "-o", str(tmp_path / "out.png"), *options]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit:  # argparse
            code = exit.code
    assert not (tmp_path / "out.png").exists() and len(err.getvalue().splitlines()) == 1
    assert "Traceback" not in err.getvalue()
    return code, err.getvalue()


ACTIONS = {action.dest: action for action in build_parser()._actions}
NEGATIVE = re.compile(r"^-\d+$|^-\d*\.\d+$")
"""The words argparse takes for negative numbers; another word starting with "-" (-inf,
-1e+300) it takes for an option, and refuses (still one line, exit 2)."""


def as_argument(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def parsed(text: str, base: type) -> Any:
    """What argparse makes of ``text`` for an option of type ``base``, None if nothing."""
    try:
        return base(text)
    except ValueError:
        return None


@EXAMPLES
@given(name=st.sampled_from([*NUMERIC, *RUN_OPTIONS]), data=st.data())
def test_numeric_options_on_the_command_line(
    tmp_path: Path, name: str, data: st.DataObject
) -> None:
    action = ACTIONS[name]
    flag, many = action.option_strings[0], action.nargs == "+"
    texts = data.draw(st.lists(numbers.map(as_argument), min_size=1, max_size=7 if many else 1))
    if many:
        code, err = cli(tmp_path, flag, *texts)
        if not all(NEGATIVE.match(text) or not text.startswith("-") for text in texts):
            assert code == 2
            return
    else:
        code, err = cli(tmp_path, f"{flag}={texts[0]}")
    assert code == 2
    values = [parsed(text, action.type) for text in texts]
    if any(value is None for value in values):
        assert f"argument {flag}: invalid" in err, err
        return
    value = values if many else values[0]
    if name in RUN_OPTIONS:
        finite = not isinstance(value, float) or abs(value) <= FLOAT32_MAX
        ok = finite and value >= RUN_OPTIONS[name]
    else:
        ok = acceptable(name, value) and (name != "style_blend_weights" or len(value) == 1)
    if ok:
        assert f"{MISSING}: no such file" in err, err
    else:
        assert any(word in err for word in (name, flag, name.replace("_", " "))), err


@EXAMPLES
@given(styles=st.integers(1, 4), weights=st.lists(st.integers(0, 3), min_size=1, max_size=5))
def test_blend_weights_must_fit_the_styles(tmp_path: Path, styles: int, weights: list[int]) -> None:
    given_weights = ["--style-blend-weights", *map(str, weights)]
    code, err = cli(tmp_path, *given_weights, styles=styles)
    assert code == 2
    if len(weights) == styles and sum(weights) > 0:
        assert f"{MISSING}: no such file" in err, err
    else:
        assert "style_blend_weights" in err or "style blend weights" in err, err


def test_empty_style_lists(tmp_path: Path) -> None:
    code, err = cli(tmp_path, styles=0)
    assert code == 2 and "required: PAINTING" in err
    code, err = cli(tmp_path, "--style-layers")
    assert code == 2 and "argument --style-layers: expected at least one argument" in err
    with pytest.raises(SettingsError, match="style_layers needs at least one layer"):
        resolve_settings("gatys", {"style_layers": []})
    with pytest.raises(InputError, match="at least one style image"):
        stylize(torch.rand(3, 32, 32), [], "gatys", size=32)
