"""Named methods: default settings plus the loss terms they build.

:mod:`.registry` declares every method in :data:`METHODS` (in the order the CLI and the
web form list them); :mod:`.settings` holds :class:`Settings`, the one schema of every
setting. Both import no PyTorch: the code of each method family (:mod:`.gatys`,
:mod:`.portrait_aware`, :mod:`.portrait_stylization`, :mod:`.instant`), and the names of
it this package offers, are imported on first use. Adding a method: see
docs/architecture.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import OPTIMISED, Built, Method, Renderer, blend_weights, scale_schedule
from .registry import (
    CROWSON,
    CROWSON_DEFAULTS,
    DEFAULT_METHOD,
    GATYS,
    GATYS_PLUS,
    INSTANT,
    METHODS,
    PORTRAIT_AWARE,
    PORTRAIT_PAINTING,
    PORTRAIT_STYLIZATION,
)
from .settings import (
    GROUPS,
    KINDS,
    PAPER_EXACT,
    SPECS,
    WORKER_SETTINGS,
    Settings,
    Spec,
    job_settings,
    method_defaults,
    paper_exact_settings,
    parse_settings,
    resolve_settings,
    settings_json,
    settings_schema,
)

if TYPE_CHECKING:
    from .gatys import build_content_style, style_grams
    from .instant import render_instant
    from .portrait_aware import background_of, build_portrait_aware
    from .portrait_stylization import (
        build_portrait_stylization,
        prepare_portrait_stylization,
        uses_face_id,
    )

_CODE = {
    "build_content_style": "gatys",
    "style_grams": "gatys",
    "render_instant": "instant",
    "background_of": "portrait_aware",
    "build_portrait_aware": "portrait_aware",
    "build_portrait_stylization": "portrait_stylization",
    "prepare_portrait_stylization": "portrait_stylization",
    "uses_face_id": "portrait_stylization",
}
"""The names of the methods' code offered here, by module: imported (with PyTorch) when
first asked for."""


def __getattr__(name: str) -> Any:
    """A name of :data:`_CODE`, its module imported now."""
    if name not in _CODE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_CODE[name]}"), name)


__all__ = [
    "CROWSON",
    "CROWSON_DEFAULTS",
    "DEFAULT_METHOD",
    "GATYS",
    "GATYS_PLUS",
    "GROUPS",
    "INSTANT",
    "KINDS",
    "METHODS",
    "OPTIMISED",
    "PAPER_EXACT",
    "PORTRAIT_AWARE",
    "PORTRAIT_PAINTING",
    "PORTRAIT_STYLIZATION",
    "SPECS",
    "WORKER_SETTINGS",
    "Built",
    "Method",
    "Renderer",
    "Settings",
    "Spec",
    "background_of",
    "blend_weights",
    "build_content_style",
    "build_portrait_aware",
    "build_portrait_stylization",
    "job_settings",
    "method_defaults",
    "paper_exact_settings",
    "parse_settings",
    "prepare_portrait_stylization",
    "render_instant",
    "resolve_settings",
    "scale_schedule",
    "settings_json",
    "settings_schema",
    "style_grams",
    "uses_face_id",
]
