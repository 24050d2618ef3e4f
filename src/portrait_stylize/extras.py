"""The optional extras (``pip install 'portrait-stylize[EXTRA]'``) and the check a
command that needs one makes first, so that a missing one is a clear one-line error
(exit 2), not an ``internal error: ModuleNotFoundError`` halfway through."""

from __future__ import annotations

import importlib

from .errors import ExtraMissing

EXTRAS: dict[str, tuple[tuple[str, ...], ...]] = {
    "web": (("fastapi",), ("uvicorn",), ("python_multipart", "multipart")),
    "ray": (("ray",),),
}
"""Each extra of pyproject.toml -> the modules it provides, each as the names it is
imported by (python-multipart before 0.0.13 is only ``multipart``)."""


def require_extra(extra: str, needed_by: str) -> None:
    """Import the modules of ``extra``; ExtraMissing naming ``needed_by`` (the command,
    such as "portrait-stylize serve"), the extra and how to install it when one of them,
    or what it imports, is not installed."""
    for names in EXTRAS[extra]:
        missing = ""
        for name in names:
            try:
                importlib.import_module(name)
            except ImportError as exc:
                missing = missing or exc.name or name
            else:
                missing = ""
                break
        if missing:
            raise ExtraMissing(
                f"{needed_by} needs the {extra} extra ({missing} is not installed): "
                f"pip install 'portrait-stylize[{extra}]'"
            )
