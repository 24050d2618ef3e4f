"""portrait-stylization: "Portrait Stylization: Artistic Style Transfer with Auxiliary
Networks for Human Face Stylization" (paper 2): crowson plus a FaceID loss on the faces'
FaceNet features and an optional FaceMesh landmark loss, all faces at once
(docs/results-paper2.md).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from ..face_losses import (
    BoxJitter,
    FaceIDTerm,
    MeshTerm,
    content_faces_and_landmarks,
    scale_boxes,
    scale_points,
)
from ..faces import BLAZEFACE_LANDMARKS, MTCNN_LANDMARKS, crop_faces
from ..features import FeatureExtractor
from ..losses import StyleTerm
from .base import Built
from .gatys import build_content_style
from .settings import Settings

GROUP_FACES = 3
"""Faces from which a photo is a group (docs/identity.md: a group's bodies dissolve at a
single portrait's content weight)."""
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
    {"faces": normalised boxes (M, 4), "landmarks": the same faces' normalised landmarks
    (M, K, 2), "group": whether they are a group (at least :data:`GROUP_FACES`) painted
    with ``group_content_weight``}; nothing when no face term is built."""
    if not uses_face_terms(settings):
        return {}
    faces, landmarks = content_faces_and_landmarks(
        content, settings.face_detector, settings.face_padding, settings.min_face_fraction
    )
    group = settings.group_content_weight is not None and len(faces) >= GROUP_FACES
    return {"faces": faces, "landmarks": landmarks, "group": group}


def build_portrait_stylization(
    settings: Settings,
    extractor: FeatureExtractor,
    content: torch.Tensor,
    styles: list[torch.Tensor],
    faces: torch.Tensor | None = None,
    group: bool = False,
    landmarks: torch.Tensor | None = None,
) -> Built:
    """Portrait Stylization at one scale: crowson plus the FaceID and mesh terms on the
    content's faces.

    content (1, 3, H, W); styles list of (1, 3, h, w). ``faces``: normalised boxes
    (M, 4) from :func:`prepare_portrait_stylization`, ``landmarks`` (M, K, 2) theirs (the
    networks of ``face_models`` that align faces read them); None detects them in
    ``content``. ``face_style_weight`` adds the style loss on the face crops. A term whose
    weight (or identity) is 0 is left out, so without any this is exactly crowson. A ``group`` is
    held to the photograph by ``group_content_weight`` instead of ``content_weight``.
    """
    if group and settings.group_content_weight is not None:
        settings = dataclasses.replace(settings, content_weight=settings.group_content_weight)
    built = build_content_style(settings, extractor, content, styles)
    if not uses_face_terms(settings):
        return built
    if faces is None:
        prepared = prepare_portrait_stylization(settings, content[0])
        faces, landmarks = prepared["faces"], prepared["landmarks"]
    if len(faces) == 0:
        return built
    size = (content.shape[-2], content.shape[-1])
    boxes = scale_boxes(faces, size)
    names = MTCNN_LANDMARKS if settings.face_detector == "mtcnn" else BLAZEFACE_LANDMARKS
    jitter = BoxJitter(settings.face_jitter, settings.seed)
    if uses_face_id(settings):
        built.terms.append(
            FaceIDTerm(
                boxes,
                content,
                settings.face_weight,
                settings.identity_models,
                autocast=settings.autocast,
                loss=settings.face_loss,
                identity=settings.identity,
                jitter=jitter,
                views=settings.face_views,
                landmarks=None if landmarks is None else scale_points(landmarks, size),
                landmark_names=names,
            )
        )
    if settings.mesh_weight > 0:
        built.terms.append(MeshTerm(boxes, content, settings.mesh_weight))
    for term in built.terms:
        if isinstance(term, FaceIDTerm | MeshTerm):
            term.every = settings.face_every
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
