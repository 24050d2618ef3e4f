"""portrait-stylize: portrait-aware neural style transfer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .api import StylizeResult, stylize


def __getattr__(name: str) -> Any:
    """``stylize`` and ``StylizeResult``, imported (with PyTorch) when first asked for, so
    that the CLI's help and its argument checks need not wait for PyTorch."""
    if name in ("StylizeResult", "stylize"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["StylizeResult", "__version__", "stylize"]
