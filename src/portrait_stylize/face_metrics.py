"""How well a result keeps the content's faces (methods.md §5).

Both metrics crop the same boxes from the content and the result (the content resized
to the result's size, the boxes scaled with it), so face i of the result is the region
of face i of the content even when a stylized face can no longer be detected.

- :func:`identity_cosine`: cosine similarity of FaceNet embeddings, by default of the
  MS-Celeb-1M model (facenet-msceleb), independent of the CASIA model the FaceID loss
  optimises, so the metric is not the objective.
- :func:`landmark_nme`: mean FaceMesh landmark distance between content and result,
  divided by the content face's inter-ocular distance (outer eye corners).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .face_losses import FACENET_SIZE
from .faces import (
    crop_faces,
    crop_to_image,
    detect_faces,
    face_embedding,
    face_landmarks,
    filter_small,
    square_boxes,
)
from .nets.mediapipe import FaceMesh

IDENTITY_PADDING = 0.1
"""Margin of the identity crops: FaceNet was trained on detector boxes with a small margin."""
LANDMARK_PADDING = 0.25
"""Margin of the landmark crops: FaceMesh expects the face box enlarged 1.5 times."""
OUTER_EYE_CORNERS = (33, 263)
"""FaceMesh landmark indices of the outer eye corners (inter-ocular distance)."""


class FaceScores(NamedTuple):
    """A metric's mean over the faces (None without faces) and its value per face."""

    mean: float | None
    per_face: list[float]


def _aligned(content: Tensor, result: Tensor, boxes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """content and result as (1, 3, H, W) at the result's size, boxes (N, 4) scaled from
    content pixels to it."""
    content = content[None] if content.dim() == 3 else content
    result = result[None] if result.dim() == 3 else result
    (height, width), (h, w) = content.shape[-2:], result.shape[-2:]
    if (height, width) != (h, w):
        content = F.interpolate(content, (h, w), mode="bicubic", antialias=True).clamp(0, 1)
    scale = boxes.new_tensor([w / width, h / height, w / width, h / height])
    return content.float(), result.float().to(content.device), boxes.float() * scale


def _scores(values: Tensor) -> FaceScores:
    per_face = [float(v) for v in values]
    return FaceScores(sum(per_face) / len(per_face) if per_face else None, per_face)


@torch.no_grad()
def identity_cosine(
    content: Tensor, result: Tensor, boxes: Tensor, model: str = "facenet-msceleb"
) -> FaceScores:
    """Cosine similarity of the FaceNet ``model`` embeddings of each face, content vs result.

    content (3, H, W) and result (3, h, w) (or with a batch axis of 1) in [0, 1];
    ``boxes`` (N, 4) detected faces in content pixels, squared with a margin of
    :data:`IDENTITY_PADDING` of their longer side.
    """
    content, result, boxes = _aligned(content, result, boxes)
    if len(boxes) == 0:
        return FaceScores(None, [])
    crops = crop_faces(
        torch.cat([content, result]), square_boxes(boxes, IDENTITY_PADDING), FACENET_SIZE
    )
    embeddings = face_embedding(crops, model).view(2, len(boxes), -1)
    return _scores(F.cosine_similarity(embeddings[0], embeddings[1], dim=-1))


@torch.no_grad()
def landmark_nme(content: Tensor, result: Tensor, boxes: Tensor) -> FaceScores:
    """Normalised mean error of the FaceMesh landmarks of each face, result vs content.

    Per face: the mean image-plane distance of the 468 landmarks (x, y in pixels) over
    the content's inter-ocular distance. Inputs as in :func:`identity_cosine`; crops
    with a margin of :data:`LANDMARK_PADDING`.
    """
    content, result, boxes = _aligned(content, result, boxes)
    if len(boxes) == 0:
        return FaceScores(None, [])
    squared = square_boxes(boxes, LANDMARK_PADDING)
    crops = crop_faces(torch.cat([content, result]), squared, FaceMesh.SIZE)
    points = crop_to_image(face_landmarks(crops)[0], squared.repeat(2, 1), FaceMesh.SIZE)
    points = points[..., :2].view(2, len(boxes), FaceMesh.NUM_LANDMARKS, 2)
    left, right = OUTER_EYE_CORNERS
    interocular = (points[0, :, left] - points[0, :, right]).norm(dim=-1)
    error = (points[1] - points[0]).norm(dim=-1).mean(dim=-1)
    return _scores(error / interocular)


def content_face_boxes(content: Tensor, min_fraction: float = 0.01) -> Tensor:
    """Faces (N, 4) of content (3, H, W) in [0, 1] (MTCNN) whose box covers at least
    ``min_fraction`` of the image, as the portrait-stylization loss selects them."""
    boxes = detect_faces(content).boxes
    return boxes[filter_small(boxes, (content.shape[-2], content.shape[-1]), min_fraction)]


def face_scores(content: Tensor, result: Tensor) -> dict[str, float | list[float] | None]:
    """identity_cosine (mean), identity_cosine_per_face and landmark_nme of result
    (3, h, w) against content (3, H, W), on the content's faces (None without faces)."""
    boxes = content_face_boxes(content)
    identity = identity_cosine(content, result, boxes)
    return {
        "identity_cosine": identity.mean,
        "identity_cosine_per_face": identity.per_face,
        "landmark_nme": landmark_nme(content, result, boxes).mean,
    }
