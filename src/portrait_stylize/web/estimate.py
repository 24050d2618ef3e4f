"""How long a job would take on this server's workers, before it is sent.

The figure is the library's (:meth:`portrait_stylize.machine.Speed.plan`): this
machine's measured speed of the method's feature network, at the method's precision,
and the method's cost per step, for a photograph of the given size with the given faces
in the loss. A worker measures the speed when it starts (:func:`measure_once`) and every
finished run refines it. Until then there is no figure. A feed-forward method takes
about a second whatever the machine.
"""

from __future__ import annotations

import dataclasses
import logging

import torch

from .. import machine
from ..methods import METHODS, Settings, resolve_settings

log = logging.getLogger("portrait_stylize.web")

FEED_FORWARD_S = 1.0
"""A feed-forward method's time (one pass of a small network), whatever the machine."""


def estimate(
    settings: Settings, device: str, width: int, height: int, faces: int
) -> dict[str, object]:
    """{"seconds", "stages", "measured"} of a run of ``settings`` on the workers'
    ``device`` for a ``width`` x ``height`` px photograph with ``faces`` usable faces
    (the methods without a face loss ignore them); seconds None before the machine's
    speed is measured."""
    method = METHODS[settings.method]
    if method.renderer is not None:
        return {"seconds": FEED_FORWARD_S, "stages": [FEED_FORWARD_S], "measured": False}
    settings = dataclasses.replace(settings, device=device)
    speed = machine.load(settings.backbone, torch.device(device), settings.autocast)
    if speed is None:
        return {"seconds": None, "stages": [], "measured": False}
    in_loss = faces if method.preparer is not None else 0
    stages = [max(0.0, s) for s in speed.plan(settings, height, width, in_loss)]
    return {
        "seconds": round(sum(stages), 1),
        "stages": [round(s, 1) for s in stages],
        "measured": True,
    }


def measure_once(method: str, device: str) -> bool:
    """Measure this machine's speed for ``method``'s feature network and precision on
    ``device``, unless it was measured (seconds to a minute); whether it measured now."""
    from .. import models  # loads networks: only for a worker

    settings = resolve_settings(method, {"device": device})
    where = torch.device(device)
    if machine.load(settings.backbone, where, settings.autocast) is not None:
        return False
    precision = "bf16" if settings.autocast else "fp32"
    log.info(
        "timing %s (%s) on %s once, for the estimates (seconds to a minute)",
        settings.backbone,
        precision,
        device,
    )
    extractor = models.extractor(
        settings.backbone,
        settings.pooling,
        settings.first_padding,
        settings.calibration,
        device,
    )
    speed = machine.measure(extractor, settings.autocast)
    machine.save(speed)
    log.info("timed %s (%s) on %s: %s", settings.backbone, precision, device, _floor(speed))
    return True


def _floor(speed: machine.Speed) -> str:
    sizes = ", ".join(f"{size} px {seconds:.2f} s" for size, seconds in sorted(speed.floor.items()))
    layout = "channels-last" if speed.channels_last else "nchw"
    return f"forward + backward {sizes} ({layout})"
