"""portrait-stylization: "Portrait Stylization: Artistic Style Transfer with Auxiliary
Networks for Human Face Stylization" (paper 2): crowson plus a FaceID loss on the faces'
FaceNet features and an optional FaceMesh landmark loss, all faces at once
(docs/results-paper2.md).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..face_losses import BoxJitter, FaceIDTerm, MeshTerm, content_faces, scale_boxes
from ..faces import crop_faces
from ..features import FeatureExtractor
from ..losses import StyleTerm
from .base import OPTIMISED, Built, Method
from .crowson import CROWSON_DEFAULTS
from .gatys import build_content_style
from .settings import Settings

MIN_CROP = 32
"""Smallest side (px) of a face crop for the face style term (VGG needs room to pool)."""


class FaceCrops(nn.Module):
    """The faces as the face style term sees them: image (1, 3, H, W) -> crops
    (N, 3, side, side) of ``boxes`` (N, 4), at about the faces' own scale, each box moved
    at random per step by ``jitter`` so that the term's edge is not one fixed square."""

    boxes: torch.Tensor

    def __init__(self, boxes: torch.Tensor, jitter: BoxJitter) -> None:
        super().__init__()
        self.register_buffer("boxes", boxes.detach().clone())
        self.jitter = jitter
        sides = (boxes[:, 2:] - boxes[:, :2]).mean()
        self.side = max(MIN_CROP, round(float(sides)))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return crop_faces(image, self.jitter(self.boxes), self.side)


def uses_face_id(settings: Settings) -> bool:
    """Whether the FaceID term is built: a positive weight, and for the embedding hinge a
    positive identity (at 0 it could never pull)."""
    return settings.face_weight > 0 and (settings.face_loss != "embedding" or settings.identity > 0)


def uses_face_terms(settings: Settings) -> bool:
    """Whether any term reads the faces."""
    return uses_face_id(settings) or settings.mesh_weight > 0 or settings.face_style_weight > 0


def prepare_portrait_stylization(settings: Settings, content: torch.Tensor) -> dict[str, Any]:
    """Faces of the full-resolution content (3, H, W), detected once per run:
    {"faces": normalised boxes (M, 4)}; nothing when no face term is built."""
    if not uses_face_terms(settings):
        return {}
    return {
        "faces": content_faces(
            content,
            settings.face_detector,
            settings.face_padding,
            settings.min_face_fraction,
        )
    }


def build_portrait_stylization(
    settings: Settings,
    extractor: FeatureExtractor,
    content: torch.Tensor,
    styles: list[torch.Tensor],
    faces: torch.Tensor | None = None,
) -> Built:
    """Portrait Stylization at one scale: crowson plus the FaceID and mesh terms on the
    content's faces.

    content (1, 3, H, W); styles list of (1, 3, h, w). ``faces``: normalised boxes
    (M, 4) from :func:`prepare_portrait_stylization`; None detects them in ``content``.
    ``face_style_weight`` adds the style loss on the face crops. A term whose weight (or
    identity) is 0 is left out, so without any this is exactly crowson.
    """
    built = build_content_style(settings, extractor, content, styles)
    if not uses_face_terms(settings):
        return built
    if faces is None:
        faces = prepare_portrait_stylization(settings, content[0])["faces"]
    if len(faces) == 0:
        return built
    boxes = scale_boxes(faces, (content.shape[-2], content.shape[-1]))
    jitter = BoxJitter(settings.face_jitter, settings.seed)
    if uses_face_id(settings):
        built.terms.append(
            FaceIDTerm(
                boxes,
                content,
                settings.face_weight,
                settings.face_model,
                autocast=settings.autocast,
                loss=settings.face_loss,
                identity=settings.identity,
                jitter=jitter,
                views=settings.face_views,
            )
        )
    if settings.mesh_weight > 0:
        built.terms.append(MeshTerm(boxes, content, settings.mesh_weight))
    if settings.face_style_weight > 0:
        style = next(term for term in built.terms if isinstance(term, StyleTerm))
        built.terms.append(
            StyleTerm(
                dict(style.targets.items()),
                style.layer_weights,
                settings.face_style_weight,
                style.criterion,
                name="face_style",
                view=FaceCrops(boxes, jitter),
                by_channels=style.by_channels,
            )
        )
    return built


PORTRAIT_STYLIZATION = Method(
    name="portrait-stylization",
    description=(
        "Portrait Stylization: crowson plus a FaceID loss on the faces' FaceNet "
        "embeddings (--identity 0..1) and an optional FaceMesh landmark loss"
    ),
    defaults={
        **CROWSON_DEFAULTS,
        "face_loss": "embedding",
        "face_weight": 0.2,
        "identity": 0.9,
        "face_style_weight": 1.0,
    },
    paper_settings={
        "face_loss": "activations",
        "face_weight": 0.015,
        "face_views": 1,
        "face_jitter": 0.0,
        "face_style_weight": 0.0,
    },
    build=build_portrait_stylization,
    prepare=prepare_portrait_stylization,
    paper="Portrait Stylization: Artistic Style Transfer with Auxiliary Networks "
    "for Human Face Stylization (reference defaults)",
    notes=[
        "faces: detected once on the full-resolution content (--face-detector), "
        "padded by --face-padding of their longer side, squared; faces under "
        "--min-face-fraction of the image are left out; no usable face: a warning, "
        "and the run is plain crowson",
        "FaceNet facenet-casia (offline; the paper's: facenet-vggface2, --face-model), "
        "first conv replicate-padded",
        "--identity 0 drops the identity term; the face style term still paints the "
        "faces (with --face-style-weight 0 too, the run is crowson)",
        "the paper's activations loss (--paper-exact): face_weight 0.015 keeps faces "
        "close to the photograph; about 0.001-0.002 paints them on a large single "
        "portrait but loses small faces",
    ],
    groups=(*OPTIMISED, "faces"),
)

PORTRAIT_PAINTING = Method(
    name="portrait-painting",
    description=(
        "portrait-stylization on the original VGG-19 in torchvision's units: the whole "
        "picture painted, each face held by the identity hinge at 1 (weight 1) and the "
        "FaceMesh landmarks"
    ),
    defaults={
        **PORTRAIT_STYLIZATION.defaults,
        "backbone": "vgg19-caffe",
        "calibration": "torchvision",
        "identity": 1.0,
        "face_weight": 1.0,
        "face_style_weight": 0.0,
        "mesh_weight": 1e-3,
    },
    paper_settings=PORTRAIT_STYLIZATION.paper_settings,
    build=build_portrait_stylization,
    prepare=prepare_portrait_stylization,
    paper="this tool's recipe, measured in docs/identity.md",
    notes=[
        "the face style term is off: on this network it paints a square frame around "
        "each face (docs/backbones.md)",
        "made for one sitter: on a six-face group identity is portrait-stylization's, "
        "and --content-weight 0.06 keeps the bodies painted rather than dissolved "
        "(docs/identity.md)",
    ],
    groups=PORTRAIT_STYLIZATION.groups,
)
