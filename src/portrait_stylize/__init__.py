"""portrait-stylize: portrait-aware neural style transfer."""

__version__ = "0.1.0"

from .api import StylizeResult, stylize

__all__ = ["StylizeResult", "__version__", "stylize"]
