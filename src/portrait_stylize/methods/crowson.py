"""crowson: Katherine Crowson's multi-scale style transfer (style-transfer-pytorch,
https://github.com/crowsonkb/style-transfer-pytorch), the base of Portrait Stylization:
Adam on scales 128 → 512 px (√2 apart), normalised squared errors, the moving average of
the iterates as output. Its loss terms are :func:`~.gatys.build_content_style`'s under
the crowson convention; the rest is its defaults.
"""

from __future__ import annotations

from typing import Any

from .base import Method
from .gatys import build_content_style

CROWSON_LAYER_WEIGHTS = tuple(w / 341 for w in (256.0, 64.0, 16.0, 4.0, 1.0))
CROWSON_DEFAULTS: dict[str, Any] = {
    "optimizer": "adam",
    "lr": 0.02,
    "init": "content",
    "min_size": 128,
    "initial_iterations": 1000,
    "iterations": 500,
    "ema_decay": 0.99,
    "converge_tol": 5e-3,
    "first_padding": "replicate",
    "convention": "crowson",
    # Kept on the backbone its weights were balanced on here (docs/backbones.md): on the
    # original VGG-19 in torchvision units the face loss at 0.015 no longer keeps faces.
    "backbone": "vgg16-hed",
    "calibration": "layer-mean",
    "content_weight": 0.015,
    "style_weight": 1.0,
    "style_layer_weights": CROWSON_LAYER_WEIGHTS,
    "tv_weight": 2.0,
}
"""crowson's settings; portrait-stylization starts from them too."""

CROWSON = Method(
    name="crowson",
    description=(
        "Crowson's multi-scale style transfer: Adam (lr 0.02) on scales 128→512 "
        "(√2 apart), normalised squared errors, output the moving average"
    ),
    defaults=CROWSON_DEFAULTS,
    build=build_content_style,
    paper="Crowson, style-transfer-pytorch (base of Portrait Stylization)",
)
