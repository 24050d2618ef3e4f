"""A job's settings from an untrusted request, and what the page's form is built from.

The library's schema does the checking (:func:`~portrait_stylize.methods.parse_settings`:
unknown names, wrong JSON types, values out of range, settings naming a server file or
the worker's device); this server adds its own limits on what costs time and memory.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from ..errors import SettingsError
from ..methods import DEFAULT_METHOD, METHODS, Settings, parse_settings, settings_schema

INSTANT_ONLY = ("style_strength",)
"""Settings only the instant network reads: the methods that render with it, and any
other whose ``init`` starts from its result (``init`` instant)."""


@dataclass(frozen=True)
class Limits:
    """What this server accepts: result size, steps, upload bytes and pixels, styles."""

    max_size: int = 1024
    max_iterations: int = 2000
    max_bytes: int = 20_000_000
    max_pixels: int = 25_000_000
    max_styles: int = 8


MIN_SIZE = 32
"""The page's smallest size: below it a result is too small to judge (the library refuses
a short side under ``images.MIN_SIDE``, where VGG's poolings leave no pixel)."""


def _check_limits(settings: Settings, limits: Limits) -> None:
    """This server's bounds, on the resolved settings (so a method's defaults count too)."""
    bounds = {
        "size": (MIN_SIZE, limits.max_size),
        "min_size": (MIN_SIZE, limits.max_size),
        "iterations": (0, limits.max_iterations),
        "initial_iterations": (0, limits.max_iterations),
        "style_scale": (0.05, 2.0),
    }
    for name, (low, high) in bounds.items():
        value = getattr(settings, name)
        if value is not None and not low <= value <= high:
            raise SettingsError(f"{name} must be in [{low}, {high}] on this server", name)


def parse_job_settings(text: str, limits: Limits) -> tuple[dict[str, Any], Settings]:
    """The settings JSON object ``text`` of a request, checked: (what was given, with
    ``method`` and ``seed`` filled in; the resolved settings). SettingsError names the
    first bad field."""
    try:
        given = json.loads(text or "{}", parse_constant=_no_constant)
    except ValueError as exc:
        raise SettingsError(f"settings: not valid JSON ({exc})", "settings") from None
    if not isinstance(given, dict):
        raise SettingsError(
            "settings: must be a JSON object of option names and values", "settings"
        )
    method = given.pop("method", DEFAULT_METHOD)
    settings = parse_settings(method, given)
    _check_limits(settings, limits)
    return {"method": method, "seed": settings.seed, **given}, settings


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number here")


def form_schema(limits: Limits) -> dict[str, Any]:
    """The library's settings schema for the page: the settings a job may send (not the
    worker's, not those that only name a file), the method it preselects, the limits.

    A field's ``methods`` are those that read it; :data:`INSTANT_ONLY` fields name the
    feed-forward methods (those with a renderer: the instant network), and add
    ``also_when`` {"init": "instant"}: the other methods read them only with that setting."""
    schema = settings_schema()
    schema["fields"] = [
        entry
        for entry in schema["fields"]
        if not entry["worker"] and entry.get("file_prefix") != ""
    ]
    instant = [name for name, method in METHODS.items() if method.renderer is not None]
    for entry in schema["fields"]:
        if entry["name"] in INSTANT_ONLY:
            entry["methods"] = instant
            entry["also_when"] = {"init": "instant"}
    return {**schema, "default_method": DEFAULT_METHOD, "limits": dataclasses.asdict(limits)}
