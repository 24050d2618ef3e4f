"""A job's settings from untrusted JSON: the CLI's long options, checked before any work.

Names are the CLI's long options with dashes as underscores (``{"method": "crowson",
"min_size": 128}``); unknown names, wrong JSON types and values out of range (the
library's own checks and this server's limits) raise SettingsError naming the field.
Settings that would name a file on the server (``mask``, ``background=texture:FILE``)
or choose the worker's device are refused.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

from ..cli import SETTING_HELP
from ..errors import SettingsError
from ..methods import METHODS, Settings, resolve_settings

DEFAULT_METHOD = "gatys"
"""The method of a job whose settings name none (the CLI's default)."""
PAGE_METHOD = "portrait-stylization"
"""The method the page preselects."""
REFUSED = {
    "mask": "names a file on the server; not accepted here",
    "device": "is chosen by the server (serve --device), not by a job",
}
MAX_LIST = 16
MAX_TEXT = 200
NON_NEGATIVE = ("content_weight", "style_weight", "tv_weight", "background_weight", "ema_decay")


@dataclass(frozen=True)
class Limits:
    """What this server accepts: result size, steps, upload bytes and pixels, styles."""

    max_size: int = 1024
    max_iterations: int = 2000
    max_bytes: int = 20_000_000
    max_pixels: int = 25_000_000
    max_styles: int = 8


_HINTS = typing.get_type_hints(Settings)
ACCEPTED = [f.name for f in dataclasses.fields(Settings) if f.name not in REFUSED]


def _fits(value: Any, hint: Any) -> bool:
    """Whether JSON ``value`` has the Python type ``hint`` (bool is no number here)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return any(_fits(value, option) for option in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return (
            isinstance(value, list)
            and len(value) <= MAX_LIST
            and all(_fits(v, item) for v in value)
        )
    if hint is type(None):
        return value is None
    if hint is bool or isinstance(value, bool):
        return hint is bool and isinstance(value, bool)
    if hint is int:
        return isinstance(value, int)
    if hint is float:
        return isinstance(value, int | float) and math.isfinite(value)
    return hint is str and isinstance(value, str) and len(value) <= MAX_TEXT


def kind(hint: Any) -> str:
    """A JSON type's name for messages and the page's form: integer, number, string, ..."""
    options = [h for h in typing.get_args(hint) if h is not type(None)] or [hint]
    base = options[0]
    if typing.get_origin(base) is tuple:
        return f"list of {kind(typing.get_args(base)[0])}s"
    return {bool: "boolean", int: "integer", float: "number"}.get(base, "string")


def _check_limits(given: dict[str, Any], limits: Limits) -> None:
    """This server's bounds on what costs time and memory."""
    bounds = {
        "size": (16, limits.max_size),
        "min_size": (16, limits.max_size),
        "iterations": (0, limits.max_iterations),
        "initial_iterations": (0, limits.max_iterations),
        "style_scale": (0.05, 2.0),
        "seed": (0, 2**63 - 1),
        **{name: (0.0, math.inf) for name in NON_NEGATIVE},
    }
    for name, (low, high) in bounds.items():
        value = given.get(name)
        if value is not None and not low <= value <= high:
            raise SettingsError(f"{name}: must be between {low} and {high} on this server")
    background = given.get("background")
    if isinstance(background, str) and background.startswith("texture:"):
        raise SettingsError(
            "background: texture:FILE names a file on the server; not accepted here"
        )


def parse_settings(text: str, limits: Limits) -> tuple[dict[str, Any], Settings]:
    """The settings JSON object ``text`` checked: (what was given, with ``method`` and
    ``seed`` filled in; the resolved settings). SettingsError names the first bad field."""
    try:
        given = json.loads(text or "{}", parse_constant=_no_constant)
    except ValueError as exc:
        raise SettingsError(f"settings: not valid JSON ({exc})") from None
    if not isinstance(given, dict):
        raise SettingsError("settings: must be a JSON object of option names and values")
    method = given.pop("method", DEFAULT_METHOD)
    if not isinstance(method, str) or method not in METHODS:
        raise SettingsError(f"method: must be one of {', '.join(METHODS)}")
    for name, value in given.items():
        if name in REFUSED:
            raise SettingsError(f"{name}: {REFUSED[name]}")
        if name not in _HINTS:
            raise SettingsError(f"{name}: unknown setting")
        if not _fits(value, _HINTS[name]):
            raise SettingsError(f"{name}: expected {kind(_HINTS[name])}")
    _check_limits(given, limits)
    settings = resolve_settings(method, given)
    return {"method": method, "seed": settings.seed, **given}, settings


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number here")


def form_schema(limits: Limits) -> dict[str, Any]:
    """What the page needs to build its form: methods, each accepted setting's type, help
    and default per method, and this server's limits."""
    defaults = {name: dataclasses.asdict(resolve_settings(name)) for name in METHODS}
    fields = [
        {
            "name": name,
            "type": kind(_HINTS[name]),
            "help": SETTING_HELP.get(name, ""),
            "defaults": {method: values[name] for method, values in defaults.items()},
        }
        for name in ACCEPTED
        if name != "method"
    ]
    return {
        "methods": {name: method.description for name, method in METHODS.items()},
        "default_method": PAGE_METHOD,
        "fields": fields,
        "limits": dataclasses.asdict(limits),
    }
