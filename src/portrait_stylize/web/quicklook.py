"""What the page shows before a job runs: the faces and the person mask the methods would
find in a photograph, and an instant (feed-forward) preview of the painting.

Both reuse the library: the face detector of ``portrait-stylization``
(:func:`~portrait_stylize.faces.detect_faces`, the faces it keeps by
:func:`~portrait_stylize.faces.filter_small`), the person mask of ``portrait-aware``
(:func:`~portrait_stylize.methods.background_of`) and the ``instant`` method through
:func:`~portrait_stylize.api.stylize`; the networks come from the warm cache of
:mod:`portrait_stylize.models`. Images are shrunk to a bounded working size first.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from ..api import stylize
from ..faces import detect_faces, filter_small
from ..images import LoadedImage, resize_long_side
from ..masks import tint
from ..methods import Settings, background_of

DEVICE = "cpu"
"""Where the server process runs these small networks (the workers hold the GPUs)."""
WORKING_SIZE = 1024
"""Long side (px) the photograph is shrunk to before detection and segmentation."""
OVERLAY_SIZE = 512
"""Long side (px) of the overlay image, at most the photograph's."""
INSTANT_SIZE = 256
"""Long side (px) of the instant preview."""
TINT = (0.0, 0.85, 1.0)
"""The colour the person is tinted with (RGB in [0, 1])."""
FACE_COLOUR = (255, 214, 0)
SMALL_FACE_COLOUR = (255, 255, 255)
"""Faces under ``min_face_fraction``: found, but left out by the method."""


def bounded(image: LoadedImage, long_side: int = WORKING_SIZE) -> LoadedImage:
    """``image`` shrunk to ``long_side`` on its long side when larger (never enlarged)."""
    if max(image.size) <= long_side:
        return image
    alpha = None if image.alpha is None else resize_long_side(image.alpha, long_side)
    return dataclasses.replace(image, rgb=resize_long_side(image.rgb, long_side), alpha=alpha)


def _pil(rgb: torch.Tensor) -> Image.Image:
    """An RGB image (3, H, W) in [0, 1] as an 8-bit PIL image."""
    pixels = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(pixels)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def inspect_photo(photo: LoadedImage, settings: Settings) -> dict[str, Any]:
    """The faces and person mask of ``photo`` as ``settings`` would find them.

    {"size": [W, H] of the photograph, "detector", "faces": [{"box": [x1, y1, x2, y2] in
    the photograph's pixels, "score", "used": whether it is large enough for the face
    terms}], "face_count": the faces used, "person_fraction": the share of pixels on the
    person, "overlay": data URL of a PNG (at most :data:`OVERLAY_SIZE`) with the used
    faces boxed in yellow, small ones in white and the person tinted}. No face and no
    person are ordinary answers (0).
    """
    work = bounded(photo).rgb
    height, width = work.shape[-2:]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no person found": an answer here, not a warning
        faces = detect_faces(work, settings.face_detector, DEVICE)
        person = 1 - background_of(settings, work[None].to(DEVICE))
    used = filter_small(faces.boxes, (height, width), settings.min_face_fraction)
    to_photo = photo.size[0] / width
    found = [
        {
            "box": [round(float(v) * to_photo, 1) for v in box],
            "score": round(float(score), 4),
            "used": bool(keep),
        }
        for box, score, keep in zip(faces.boxes, faces.scores, used, strict=True)
    ]
    overlay = _overlay(work, person[0], faces.boxes, used)
    return {
        "size": list(photo.size),
        "detector": settings.face_detector,
        "faces": found,
        "face_count": int(used.sum()),
        "person_fraction": round(float(person.mean()), 4),
        "overlay": "data:image/png;base64," + base64.b64encode(overlay).decode("ascii"),
    }


def _overlay(
    work: torch.Tensor, person: torch.Tensor, boxes: torch.Tensor, used: torch.Tensor
) -> bytes:
    """PNG of ``work`` (3, h, w) at most :data:`OVERLAY_SIZE` long, the person (1, h, w)
    tinted, ``boxes`` (N, 4) in ``work``'s pixels outlined (``used`` (N,) in yellow)."""
    small = resize_long_side(work, min(OVERLAY_SIZE, max(work.shape[-2:])))
    scale = small.shape[-1] / work.shape[-1]
    mask = F.interpolate(person[None], size=small.shape[-2:], mode="bilinear")[0]
    image = _pil(tint(small, mask, TINT))
    draw = ImageDraw.Draw(image)
    line = max(2, round(max(image.size) / 170))
    for box, keep in zip(boxes.tolist(), used.tolist(), strict=True):
        colour = FACE_COLOUR if keep else SMALL_FACE_COLOUR
        draw.rectangle([v * scale for v in box], outline=colour, width=line if keep else 1)
    return _png(image)


def instant_preview(photo: LoadedImage, paintings: list[LoadedImage], strength: float) -> bytes:
    """PNG of the ``instant`` method's result at :data:`INSTANT_SIZE` on its long side,
    ``strength`` its ``style_strength`` (the paintings blended equally)."""
    result = stylize(
        photo,
        paintings,
        "instant",
        size=INSTANT_SIZE,
        style_strength=strength,
        device=DEVICE,
    )
    return _png(_pil(result.image))
