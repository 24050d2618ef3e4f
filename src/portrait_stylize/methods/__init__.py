"""Named methods: default settings plus the loss terms they build.

One module per method family (:mod:`.gatys`, :mod:`.crowson`, :mod:`.portrait_aware`,
:mod:`.portrait_stylization`, :mod:`.instant`) declares its :class:`Method`; the list
below registers them in :data:`METHODS`. :mod:`.settings` holds :class:`Settings`, the
one schema of every setting. Adding a method: see docs/architecture.md.
"""

from .base import METHODS, OPTIMISED, Built, Method, Renderer, blend_weights, scale_schedule
from .crowson import CROWSON, CROWSON_DEFAULTS
from .gatys import GATYS, GATYS_PLUS, build_content_style, style_grams
from .instant import INSTANT, render_instant
from .portrait_aware import PORTRAIT_AWARE, background_of, build_portrait_aware
from .portrait_stylization import (
    PORTRAIT_PAINTING,
    PORTRAIT_STYLIZATION,
    build_portrait_stylization,
    prepare_portrait_stylization,
    uses_face_id,
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

# In the order the CLI and the web form list them.
METHODS.update(
    (method.name, method)
    for method in (
        GATYS,
        GATYS_PLUS,
        CROWSON,
        PORTRAIT_AWARE,
        PORTRAIT_STYLIZATION,
        PORTRAIT_PAINTING,
        INSTANT,
    )
)

__all__ = [
    "CROWSON_DEFAULTS",
    "GROUPS",
    "KINDS",
    "METHODS",
    "OPTIMISED",
    "PAPER_EXACT",
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
