"""Face terms of Portrait Stylization (paper 2, docs/results-paper2.md) and the faces they read.

FaceID, two forms (``face_loss``):

- ``activations`` (the paper's): normalised squared error between FaceNet activations
  (conv_1a, conv_2a, maxpool_3a, conv_4a, conv_4b, equal weights) of the content's faces
  and the result's. Its early taps tie the crop's pixels to the photograph, and its
  gradient keeps its size however small the error, so it never lets the face be painted.
- ``embedding`` (this tool's default): a hinge on the cosine of each face's FaceNet
  embedding to the content's, mean over faces: max(0, identity − cos). It pulls only
  while a face is less like the person than ``identity`` and lets go once it is, leaving
  the face's texture to the style loss; every face counts the same, large or small.

Ensemble (``face_models``): the embedding hinge may read each face with several networks
of different families (FaceNet on a crop of the face box; SFace and MobileFaceNet on a
chip aligned by the face's five landmarks) and average their hinges, so that no single
network's blind spots decide what counts as the person (docs/identity.md).

Robustness (``face_jitter``, ``face_views``): at every step the embedding hinge reads
each face through several randomly shifted, scaled and mirrored crops and averages the
cosines, so the optimisation cannot satisfy the loss's one network with a face only that
network sees as the person (a pattern tuned to one exact crop; docs/identity.md). The
draws are a function of the run's seed and the step, so a resumed run repeats them.

Mesh: the same error between their FaceMesh landmarks (468 x 3). Each term crops the
same boxes from the image at every step (differentiably) and stacks all faces as one
batch, so per layer the features of all faces are compared together.

Faces are found once per run on the full-resolution content (:func:`content_faces`)
and kept as boxes (and landmarks) in normalised coordinates; each scale maps them to its
own size (:func:`scale_boxes`, :func:`scale_points`).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from . import models
from .faces import (
    IDENTITY_MODELS,
    MTCNN_LANDMARKS,
    crop_faces,
    detect_faces,
    embed_crops,
    face_landmarks,
    filter_small,
    identity_crops,
    square_boxes,
)
from .losses import Term, normalized_squared_error
from .nets.mediapipe import FaceMesh
from .vocabulary import FACE_LOSSES

FACE_LAYERS = ("conv_1a", "conv_2a", "maxpool_3a", "conv_4a", "conv_4b")
FACENET_SIZE = 160
ALIGNED_JITTER = 0.25
"""The fraction of each view's move (shift and scale of the crop box) that the networks
reading aligned chips follow. They were trained on chips aligned to a pixel or two: at the
full move (0.15 of the box's side) their mean cosine over four views of the photograph
itself falls to 0.3-0.5, at a quarter of it to 0.91-0.96, about FaceNet's at the full move
(0.90) (docs/identity.md, "The face networks")."""


def prepare_boxes(
    boxes: Tensor, image_size: tuple[int, int], padding: float, min_fraction: float
) -> Tensor:
    """The faces the loss uses, as normalised square boxes (M, 4).

    ``boxes`` (N, 4) are detected faces in pixels of an image of ``image_size`` (H, W).
    Faces whose detected box covers less than ``min_fraction`` of the image are dropped
    (the face's own size decides, whatever the padding); the rest are padded by
    ``padding`` x their longer side on every side and made square. Coordinates are
    divided by (W, H, W, H), so :func:`scale_boxes` places them on any resized copy.
    """
    height, width = image_size
    kept = boxes[filter_small(boxes, image_size, min_fraction)]
    squared = square_boxes(kept, padding)
    return squared / squared.new_tensor([width, height, width, height])


def scale_boxes(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Normalised boxes (N, 4) -> pixels of an image of ``size`` (H, W)."""
    height, width = size
    return boxes * boxes.new_tensor([width, height, width, height])


def scale_points(points: Tensor, size: tuple[int, int]) -> Tensor:
    """Points (..., 2) x, y: normalised -> pixels of an image of ``size`` (H, W)."""
    height, width = size
    return points * points.new_tensor([width, height])


def content_faces(
    content: Tensor, detector: str = "mtcnn", padding: float = 0.2, min_fraction: float = 0.01
) -> Tensor:
    """Detect the faces of content (3, H, W) in [0, 1] once: normalised boxes (M, 4).

    Warns (and returns no boxes) when no face is found or every face is too small; the
    face terms are then left out and the run is plain crowson.
    """
    return content_faces_and_landmarks(content, detector, padding, min_fraction)[0]


def content_faces_and_landmarks(
    content: Tensor, detector: str = "mtcnn", padding: float = 0.2, min_fraction: float = 0.01
) -> tuple[Tensor, Tensor]:
    """:func:`content_faces`' normalised boxes (M, 4) and the same faces' landmarks
    (M, K, 2), x and y divided by the content's width and height (K and their order:
    :data:`~portrait_stylize.faces.MTCNN_LANDMARKS` or ``BLAZEFACE_LANDMARKS``)."""
    faces = detect_faces(content, detector)
    size = (content.shape[-2], content.shape[-1])
    boxes = prepare_boxes(faces.boxes, size, padding, min_fraction)
    kept = faces.landmarks[filter_small(faces.boxes, size, min_fraction)]
    landmarks = kept / kept.new_tensor([size[1], size[0]])
    if len(boxes) == 0:
        reason = (
            "no face was found"
            if len(faces) == 0
            else f"all {len(faces)} faces found cover under {min_fraction:g} of the image"
        )
        warnings.warn(
            f"{reason} in the content image ({detector}): the face terms are left out and "
            "the run is plain crowson (lower --min-face-fraction to keep small faces)",
            stacklevel=3,
        )
    return boxes, landmarks


class BoxJitter(nn.Module):
    """Random views of face boxes, drawn afresh at every step and repeatable.

    Each view moves a box (N, 4) by up to ``amount`` x its side in x and y and scales it
    by 1 ± ``amount`` / 2 about its centre. :meth:`at_step` reseeds the draws from
    (``seed``, step), so a run resumed mid-stage draws what an uninterrupted one did.
    ``amount`` 0 returns the boxes unchanged.
    """

    def __init__(self, amount: float, seed: int) -> None:
        super().__init__()
        self.amount = amount
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    def at_step(self, step: int) -> None:
        """Draw this step's views from (seed, step)."""
        self.generator.manual_seed((self.seed * 1_000_003 + step) % 2**63)

    def uniform(self, *shape: int) -> Tensor:
        """Uniform draws in [-1, 1) of ``shape`` (on the CPU)."""
        return torch.rand(shape, generator=self.generator) * 2 - 1

    def forward(self, boxes: Tensor, views: int = 1) -> Tensor:
        """``views`` jittered copies of boxes (N, 4): (views * N, 4), view-major."""
        if self.amount == 0:
            return boxes.repeat(views, 1)
        count = views * len(boxes)
        tiled = boxes.repeat(views, 1)
        side = tiled[:, 2:] - tiled[:, :2]
        shift = self.uniform(count, 2).to(boxes) * self.amount * side
        half = side / 2 * (1 + self.uniform(count, 1).to(boxes) * self.amount / 2)
        centre = (tiled[:, :2] + tiled[:, 2:]) / 2 + shift
        return torch.cat([centre - half, centre + half], dim=1)


def move_points(points: Tensor, boxes: Tensor, moved: Tensor, fraction: float = 1.0) -> Tensor:
    """Points (N, K, 2) of the faces in boxes (N, 4), carried along as those boxes become
    ``moved`` (V * N, 4), view-major (:class:`BoxJitter`'s views): (V * N, K, 2), each
    point keeping its place relative to its box (same shift, same scale about the centre).
    ``fraction`` < 1 moves them by that fraction of each box's shift and scale change."""
    views = len(moved) // max(len(boxes), 1)
    tiled, tiled_points = boxes.repeat(views, 1), points.repeat(views, 1, 1)
    scale = ((moved[:, 2:] - moved[:, :2]) / (tiled[:, 2:] - tiled[:, :2]))[:, None]
    centre, new_centre = (tiled[:, :2] + tiled[:, 2:]) / 2, (moved[:, :2] + moved[:, 2:]) / 2
    new_centre = centre + (new_centre - centre) * fraction
    scale = 1 + (scale - 1) * fraction
    return new_centre[:, None] + (tiled_points - centre[:, None]) * scale


class FaceIDTerm(Term):
    """FaceID loss on the image's faces, all faces of a network as one batch.

    ``loss="activations"``: mean over :data:`FACE_LAYERS` of the NSE between the FaceNet
    activations of the crops (160 x 160) and the content's. ``loss="embedding"``: for each
    network of ``model`` (one name, or several of
    :data:`~portrait_stylize.faces.IDENTITY_MODELS` for an ensemble), the mean over faces
    of max(0, ``identity`` − cos(e, e_content)) for its L2-normalised embeddings e (N, D);
    the term is the mean of those hinges over the networks (one network: exactly its
    hinge). ``boxes`` (N, 4) in pixels of the current scale; ``landmarks`` (N, K, 2) in the
    same pixels, named ``landmark_names``: needed by the networks that read aligned chips
    (SFace, MobileFaceNet). ``content`` (1, 3, H, W) in [0, 1], whose faces give the
    targets (computed here, once per scale). ``autocast`` runs the networks in bfloat16
    (targets too); the loss is computed in float32. ``jitter`` (embedding loss only) gives
    each face ``views`` random views per step (half of them mirrored): a moved crop box,
    and the landmarks moved by :data:`ALIGNED_JITTER` of its move; each network's cosines
    are averaged over the views.
    """

    boxes: Tensor
    landmarks: Tensor | None

    def __init__(
        self,
        boxes: Tensor,
        content: Tensor,
        weight: float,
        model: str | tuple[str, ...] = "facenet-casia",
        name: str = "face_id",
        autocast: bool = False,
        loss: str = "activations",
        identity: float = 1.0,
        jitter: BoxJitter | None = None,
        views: int = 1,
        landmarks: Tensor | None = None,
        landmark_names: tuple[str, ...] = MTCNN_LANDMARKS,
    ) -> None:
        super().__init__(name, weight)
        if loss not in FACE_LOSSES:
            raise ValueError(f"face_loss must be one of {', '.join(FACE_LOSSES)}")
        self.models = (model,) if isinstance(model, str) else tuple(dict.fromkeys(model))
        unknown = [m for m in self.models if m not in IDENTITY_MODELS]
        if not self.models or unknown:
            raise ValueError(f"unknown face models {unknown}; known: {', '.join(IDENTITY_MODELS)}")
        aligned = [m for m in self.models if IDENTITY_MODELS[m].template is not None]
        if loss == "activations" and (aligned or len(self.models) > 1):
            raise ValueError("the activations FaceID loss reads one FaceNet network")
        if aligned and landmarks is None:
            raise ValueError(f"{', '.join(aligned)} align faces by landmarks: none were given")
        self.autocast = autocast
        self.taps = ("embedding",) if loss == "embedding" else FACE_LAYERS
        self.identity = identity
        self.jitter = jitter if loss == "embedding" else None
        self.views = views if self.jitter is not None else 1
        self.landmark_names = landmark_names
        facenet = next((m for m in self.models if m not in aligned), None)
        # First conv replicate-padded, as the paper's reference means to (docs/results-paper2.md).
        self.network = (
            models.facenet(facenet, str(content.device), replicate_pad=True) if facenet else None
        )
        self.register_buffer("boxes", boxes.detach().clone())
        self.register_buffer("landmarks", None if landmarks is None else landmarks.detach().clone())
        with torch.no_grad():
            if self.taps == FACE_LAYERS:
                targets = self.activations(content)
            else:
                crops = {
                    m: self._crops(content, self.boxes, self.landmarks, m) for m in self.models
                }
                targets = {m: self._embed(crops[m], m) for m in self.models}
                targets["embedding"] = targets[self.models[0]]
        self.targets = {key: value.detach() for key, value in targets.items()}

    def activations(self, image: Tensor) -> dict[str, Tensor]:
        """FaceNet outputs of image (1, 3, H, W) in its boxes: tap -> (N, C, h, w) or (N, D)."""
        return self.network_features(crop_faces(image, self.boxes, FACENET_SIZE))

    def network_features(self, crops: Tensor) -> dict[str, Tensor]:
        """FaceNet outputs of crops (M, 3, 160, 160) at the term's taps, in float32."""
        if self.network is None:
            raise ValueError("this FaceID term reads no FaceNet network")
        with torch.autocast(crops.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            features = self.network.features(crops, self.taps)
        return {layer: value.float() for layer, value in features.items()}

    def _crops(self, image: Tensor, boxes: Tensor, landmarks: Tensor | None, model: str) -> Tensor:
        """Network ``model``'s crops (M, 3, S, S) of image (1, 3, H, W): of ``boxes`` (M, 4)
        for FaceNet, aligned by ``landmarks`` (M, K, 2) for the others."""
        if IDENTITY_MODELS[model].template is None:
            return identity_crops(image, boxes, model)
        assert landmarks is not None  # checked at construction
        return identity_crops(image, landmarks, model, self.landmark_names)

    def _embed(self, crops: Tensor, model: str) -> Tensor:
        """Unit-length embeddings (M, D), float32, of network ``model``'s crops."""
        with torch.autocast(crops.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            return embed_crops(crops, model, replicate_pad=True)

    def model_cosines(self, image: Tensor) -> Tensor:
        """Cosine of each face's embedding to the content's, per network (in the order of
        ``models``), averaged over the views: (networks, N) (embedding loss only)."""
        boxes, landmarks = self.boxes, self.landmarks
        if self.jitter is not None:
            boxes = self.jitter(self.boxes, self.views)
            if landmarks is not None:
                landmarks = move_points(landmarks, self.boxes, boxes, ALIGNED_JITTER)
        view = torch.arange(len(boxes), device=image.device) // len(self.boxes)
        mirrored = (view % 2 == 1)[:, None, None, None]
        cosines = []
        for model in self.models:
            crops = self._crops(image, boxes, landmarks, model)
            if self.jitter is not None:
                crops = torch.where(mirrored, crops.flip(-1), crops)
            embedding = self._embed(crops, model)
            target = self.targets[model]
            per_view = (embedding.view(self.views, *target.shape) * target).sum(dim=2)
            cosines.append(per_view.mean(dim=0))
        return torch.stack(cosines)

    def cosines(self, image: Tensor) -> Tensor:
        """:meth:`model_cosines` averaged over the networks: (N,) (embedding loss only;
        one network: its cosines)."""
        return self.model_cosines(image).mean(dim=0)

    def forward(self, features: dict[str, Tensor], image: Tensor) -> Tensor:
        if self.taps == ("embedding",):
            # the mean over networks and faces of each one's hinge: the mean of per-network terms
            return (self.identity - self.model_cosines(image)).clamp_min(0).mean()
        values = self.activations(image)
        total = image.new_zeros(())
        for layer in FACE_LAYERS:
            total = total + normalized_squared_error(values[layer], self.targets[layer])
        return total / len(FACE_LAYERS)


class MeshTerm(Term):
    """Mesh loss: NSE between the FaceMesh landmarks (N, 468, 3) of the image's face crops
    (192 x 192) and the content's (targets computed here, once per scale)."""

    boxes: Tensor
    target: Tensor

    def __init__(self, boxes: Tensor, content: Tensor, weight: float, name: str = "mesh") -> None:
        super().__init__(name, weight)
        self.register_buffer("boxes", boxes.detach().clone())
        with torch.no_grad():
            self.register_buffer("target", self.landmarks(content))

    def landmarks(self, image: Tensor) -> Tensor:
        """Landmarks (N, 468, 3), in crop pixels, of image (1, 3, H, W) in its boxes."""
        return face_landmarks(crop_faces(image, self.boxes, FaceMesh.SIZE))[0]

    def forward(self, features: dict[str, Tensor], image: Tensor) -> Tensor:
        return normalized_squared_error(self.landmarks(image), self.target)
