"""How well a result keeps the content's faces (docs/results-paper2.md, "Comparison").

The metrics crop the same boxes from the content and the result (the content resized
to the result's size, the boxes scaled with it), so face i of the result is the region
of face i of the content even when a stylized face can no longer be detected.

- :func:`identity_cosine`: cosine similarity of FaceNet embeddings, by default of the
  MS-Celeb-1M model (facenet-msceleb), independent of the CASIA model the FaceID loss
  optimises, so the metric is not the objective.
- :func:`identity_dlib`: the Euclidean distance between dlib's face descriptors (ResNet-29,
  a family in no loss: :mod:`portrait_stylize.nets.dlib`) of each content face and its
  result, the chips aligned by the content's MTCNN landmarks; dlib calls two faces one
  person below :data:`DLIB_SAME_PERSON` (0.6), which :func:`face_scores` also reports as
  the fraction of faces kept.
- :func:`rank1_identification`: whether each result face is still nearer its own content
  face than every other face of the content and of a gallery of other people (FaceNet
  cosine, and dlib distance in :func:`face_scores`).
- :func:`landmark_nme`: mean FaceMesh landmark distance between content and result,
  divided by the content face's inter-ocular distance (outer eye corners).
- :func:`face_stylization`: how much each face changed relative to the rest of the
  picture, (1 − SSIM over the face box) / (1 − SSIM outside every face box): 0 when the
  face is left as the photograph, about 1 when it changed as much as the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity
from torch import Tensor

from .face_losses import FACENET_SIZE
from .faces import (
    FACENET_PADDING,
    IDENTITY_MODELS,
    Faces,
    crop_faces,
    crop_to_image,
    detect_faces,
    face_embedding,
    face_landmarks,
    filter_small,
    identity_embedding,
    match_faces,
    square_boxes,
)
from .nets.mediapipe import FaceMesh

IDENTITY_PADDING = FACENET_PADDING
"""Margin of the identity crops: FaceNet was trained on detector boxes with a small margin."""
DLIB_SAME_PERSON = 0.6
"""dlib's threshold: descriptors nearer than this (Euclidean) are one person (its model
card: 99.38 % on LFW with it)."""
LANDMARK_PADDING = 0.25
"""Margin of the landmark crops: FaceMesh expects the face box enlarged 1.5 times."""
OUTER_EYE_CORNERS = (33, 263)
"""FaceMesh landmark indices of the outer eye corners (inter-ocular distance)."""
REST_MIN_CHANGE = 0.01
"""Smallest 1 − SSIM outside the faces for which :func:`face_stylization` is defined: below
it the rest is as good as unchanged (re-encoding alone) and the ratio would measure noise."""


class FaceScores(NamedTuple):
    """A metric's mean over the faces and its value per face; None and [] without faces
    or where the metric is undefined, ``reason`` saying why (face_stylization and
    rank1_identification only)."""

    mean: float | None
    per_face: list[float]
    reason: str | None = None


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


def _aligned_points(content: Tensor, result: Tensor, points: Tensor) -> Tensor:
    """Points (..., 2) in content (…, H, W) pixels -> pixels of result (…, h, w)."""
    (height, width), (h, w) = content.shape[-2:], result.shape[-2:]
    return points.float() * points.new_tensor([w / width, h / height]).float()


@torch.no_grad()
def identity_cosine(
    content: Tensor, result: Tensor, boxes: Tensor, model: str = "facenet-msceleb"
) -> FaceScores:
    """Cosine similarity of the FaceNet ``model`` embeddings of each face, content vs result.

    content (3, H, W) and result (3, h, w) (or with a batch axis of 1) in [0, 1];
    ``boxes`` (N, 4) detected faces in content pixels, squared with a margin of
    :data:`IDENTITY_PADDING` of their longer side.
    """
    return _cosines(_pair_embeddings(content, result, boxes, model))


@torch.no_grad()
def _pair_embeddings(content: Tensor, result: Tensor, boxes: Tensor, model: str) -> Tensor | None:
    """Embeddings (2, N, D) of each face of content and of result, inputs as in
    :func:`identity_cosine`; None without faces."""
    content, result, boxes = _aligned(content, result, boxes)
    if len(boxes) == 0:
        return None
    return _embeddings(torch.cat([content, result]), boxes, model).view(2, len(boxes), -1)


@torch.no_grad()
def identity_dlib(content: Tensor, result: Tensor, landmarks: Tensor) -> FaceScores:
    """Euclidean distance between dlib's descriptors of each face, content vs result (0:
    the same face; dlib's one-person threshold :data:`DLIB_SAME_PERSON`).

    content (3, H, W) and result (3, h, w) (or with a batch axis of 1) in [0, 1];
    ``landmarks`` (N, 5, 2) MTCNN's landmarks of the content's faces, in content pixels:
    both images' chips are aligned by them.
    """
    return _distances(_dlib_pair(content, result, landmarks))


@torch.no_grad()
def _dlib_pair(content: Tensor, result: Tensor, landmarks: Tensor | None) -> Tensor | None:
    """dlib descriptors (2, N, 128) of each face of content and of result, inputs as in
    :func:`identity_dlib`; None without faces."""
    if landmarks is None or len(landmarks) == 0:
        return None
    points = _aligned_points(content, result, landmarks)
    content, result, _ = _aligned(content, result, landmarks.new_zeros(0, 4))
    images = torch.cat([content, result])
    return identity_embedding(images, points, "dlib", normalize=False).view(2, len(points), -1)


def _distances(pair: Tensor | None) -> FaceScores:
    """identity_dlib of :func:`_dlib_pair`'s (2, N, D)."""
    return FaceScores(None, []) if pair is None else _scores((pair[0] - pair[1]).norm(dim=-1))


def _cosines(pair: Tensor | None) -> FaceScores:
    """identity_cosine of :func:`_pair_embeddings`' (2, N, D)."""
    return FaceScores(None, []) if pair is None else _scores((pair[0] * pair[1]).sum(dim=-1))


def _embeddings(images: Tensor, boxes: Tensor, model: str) -> Tensor:
    """Unit-length FaceNet ``model`` embeddings (B * N, D), image-major, of the faces boxes
    (N, 4) of each of images (B, 3, H, W), squared with a margin of :data:`IDENTITY_PADDING`."""
    crops = crop_faces(images, square_boxes(boxes, IDENTITY_PADDING), FACENET_SIZE)
    return F.normalize(face_embedding(crops, model), dim=-1)


@torch.no_grad()
def gallery_embeddings(images: Sequence[Tensor], model: str = "facenet-msceleb") -> Tensor:
    """Embeddings (G, D) of every face found (as :func:`content_face_boxes` finds them) in
    images, each (3, H, W) in [0, 1]: photos of other people, for :func:`rank1_identification`
    (``model``: a key of :data:`~portrait_stylize.faces.IDENTITY_MODELS`; dlib's unnormalised,
    as its distances need)."""
    raw = IDENTITY_MODELS[model].metric == "euclidean"
    found = []
    for image in images:
        faces = content_faces_found(image)
        if len(faces):
            found.append(identity_embedding(image[None].float(), faces, model, normalize=not raw))
    return torch.cat(found) if found else torch.empty(0, 0)


@torch.no_grad()
def rank1_identification(
    content: Tensor,
    result: Tensor,
    boxes: Tensor,
    gallery: Tensor | None = None,
    model: str = "facenet-msceleb",
) -> FaceScores:
    """Per face 1.0 when its result crop is nearer (FaceNet cosine) its own content face
    than every other face of the content and of ``gallery`` (G, D), from
    :func:`gallery_embeddings`, else 0.0; the mean is the rank-1 identification rate.

    Inputs as in :func:`identity_cosine`. The content itself scores 1 on every face, so
    anything below 1 is a face mistaken for someone else. Undefined (None, with a reason)
    with a single identity to choose from.
    """
    return _rank1(_pair_embeddings(content, result, boxes, model), gallery)


def _rank1(pair: Tensor | None, gallery: Tensor | None, metric: str = "cosine") -> FaceScores:
    """rank1_identification of :func:`_pair_embeddings`' (2, N, D) against gallery (G, D),
    nearest by cosine or (``metric="euclidean"``) by distance."""
    if pair is None:
        return FaceScores(None, [], "no face found in the content")
    if gallery is None or len(gallery) == 0:
        gallery = pair.new_zeros(0, pair.shape[-1])
    if pair.shape[1] + len(gallery) < 2:
        return FaceScores(None, [], "one face and no gallery: no one to mistake it for")
    candidates = torch.cat([pair[0], gallery.to(pair)])
    if metric == "euclidean":
        nearest = torch.cdist(pair[1], candidates).argmin(dim=1)
    else:
        nearest = (pair[1] @ candidates.T).argmax(dim=1)
    return _scores((nearest == torch.arange(pair.shape[1], device=nearest.device)).float())


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


def _box_masks(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """(N, H, W) bool: the pixels of an image of ``size`` (H, W) whose centres lie inside
    each of boxes (N, 4)."""
    ys = torch.arange(size[0], dtype=boxes.dtype, device=boxes.device) + 0.5
    xs = torch.arange(size[1], dtype=boxes.dtype, device=boxes.device) + 0.5
    rows = (ys >= boxes[:, 1:2]) & (ys < boxes[:, 3:4])
    cols = (xs >= boxes[:, 0:1]) & (xs < boxes[:, 2:3])
    return rows[:, :, None] & cols[:, None, :]


def _ssim_map(reference: Tensor, image: Tensor) -> Tensor:
    """Per-pixel SSIM (H, W) of image against reference (3, H, W) in [0, 1] on the CPU,
    mean over the channels: scikit-image with Wang et al.'s settings (11 px Gaussian
    window, σ = 1.5, the constants of piq.ssim)."""
    _, values = structural_similarity(
        reference.double().numpy(),
        image.double().numpy(),
        data_range=1.0,
        channel_axis=0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        full=True,
    )
    return torch.from_numpy(values).mean(dim=0)


@torch.no_grad()
def face_stylization(content: Tensor, result: Tensor, boxes: Tensor) -> FaceScores:
    """(1 − SSIM_face) / (1 − SSIM_rest) of each face of result against content.

    SSIM maps at the result's resolution (no downsampling): SSIM_face is the mean of the
    map over the face's box, computed with the result's pixels outside every face box set
    to the content's; SSIM_rest is the mean over the pixels outside every box, with the
    result's face pixels set to the content's. Each term thus sees only its own region's
    changes, and neither is pulled towards 1 by the other region's matching pixels.
    Inputs as in :func:`identity_cosine`, ``boxes`` unpadded. Undefined (None, with a
    reason) when the rest changed by less than :data:`REST_MIN_CHANGE` in 1 − SSIM.
    """
    content, result, boxes = _aligned(content, result, boxes)
    if len(boxes) == 0:
        return FaceScores(None, [], "no face found in the content")
    content, result = content[0].cpu(), result[0].cpu()  # scikit-image runs on the CPU
    faces = _box_masks(boxes.cpu(), (content.shape[-2], content.shape[-1]))
    on_face = faces.any(dim=0)
    rest = ~on_face
    if not bool(rest.any()):
        return FaceScores(None, [], "the faces cover the whole image")
    only_rest = torch.where(on_face, content, result)
    rest_change = 1 - float(_ssim_map(content, only_rest)[rest].mean())
    if rest_change < REST_MIN_CHANGE:
        return FaceScores(
            None, [], f"the rest of the image is unchanged (1 − SSIM {rest_change:.2g})"
        )
    face_map = _ssim_map(content, torch.where(on_face, result, content))
    return _scores(torch.stack([1 - face_map[face].mean() for face in faces]) / rest_change)


def content_faces_found(content: Tensor, min_fraction: float = 0.01) -> Faces:
    """Faces of content (3, H, W) in [0, 1] (MTCNN: boxes and landmarks) whose box covers
    at least ``min_fraction`` of the image, as the portrait-stylization loss selects them."""
    faces = detect_faces(content)
    return faces[filter_small(faces.boxes, (content.shape[-2], content.shape[-1]), min_fraction)]


def content_face_boxes(content: Tensor, min_fraction: float = 0.01) -> Tensor:
    """The boxes (N, 4) of :func:`content_faces_found`."""
    return content_faces_found(content, min_fraction).boxes


def _landmarks_of(content: Tensor, boxes: Tensor) -> Tensor | None:
    """MTCNN's landmarks (N, 5, 2) of the faces in boxes (N, 4) of content (3, H, W): those
    of the detections that overlap them (IoU 0.5); None when one is not found again."""
    faces = detect_faces(content)
    pairs = dict(match_faces(boxes.to(faces.boxes), faces.boxes, min_iou=0.5))
    if len(pairs) < len(boxes):
        return None
    return faces.landmarks[[pairs[i] for i in range(len(boxes))]]


def face_scores(
    content: Tensor,
    result: Tensor,
    boxes: Tensor | None = None,
    gallery: Tensor | None = None,
    landmarks: Tensor | None = None,
    dlib_gallery: Tensor | None = None,
) -> dict[str, str | float | list[float] | None]:
    """identity_cosine, identity_dlib (the distance, and the fraction of faces under dlib's
    one-person threshold), rank1_identification by either network (against the content's
    other faces and ``gallery`` (G, D) of facenet-msceleb, ``dlib_gallery`` (G, 128) of
    dlib: :func:`gallery_embeddings`), face_stylization (means, per face, and why one is
    None) and landmark_nme of result (3, h, w) against content (3, H, W), on the content's
    faces ``boxes`` (N, 4) with their MTCNN ``landmarks`` (N, 5, 2) (None: detected; boxes
    alone: their landmarks are found again by detection) (None without faces)."""
    if boxes is None:
        found = content_faces_found(content)
        boxes, landmarks = found.boxes, found.landmarks
    elif landmarks is None and len(boxes):
        landmarks = _landmarks_of(content, boxes)
    pair = _pair_embeddings(content, result, boxes, "facenet-msceleb")  # once for both
    identity, rank1 = _cosines(pair), _rank1(pair, gallery)
    dlib_pair = _dlib_pair(content, result, landmarks)
    dlib, dlib_rank1 = _distances(dlib_pair), _rank1(dlib_pair, dlib_gallery, "euclidean")
    if dlib_pair is None and len(boxes):
        reason = "the given faces were not all found again in the content (no landmarks)"
        dlib = dlib_rank1 = FaceScores(None, [], reason)
    same = FaceScores(None, [], dlib.reason)
    if dlib.mean is not None:
        same = _scores(torch.tensor(dlib.per_face) < DLIB_SAME_PERSON)
    stylization = face_stylization(content, result, boxes)
    return {
        "identity_cosine": identity.mean,
        "identity_cosine_per_face": identity.per_face,
        "identity_dlib": dlib.mean,
        "identity_dlib_per_face": dlib.per_face,
        "identity_dlib_reason": dlib.reason,
        "identity_dlib_same": same.mean,
        "identity_dlib_same_per_face": same.per_face,
        "identity_dlib_same_reason": same.reason,
        "identity_rank1": rank1.mean,
        "identity_rank1_per_face": rank1.per_face,
        "identity_rank1_reason": rank1.reason,
        "identity_dlib_rank1": dlib_rank1.mean,
        "identity_dlib_rank1_per_face": dlib_rank1.per_face,
        "identity_dlib_rank1_reason": dlib_rank1.reason,
        "landmark_nme": landmark_nme(content, result, boxes).mean,
        "face_stylization": stylization.mean,
        "face_stylization_per_face": stylization.per_face,
        "face_stylization_reason": stylization.reason,
    }
