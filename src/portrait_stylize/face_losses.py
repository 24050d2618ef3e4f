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

Robustness (``face_jitter``, ``face_views``): at every step the embedding hinge reads
each face through several randomly shifted, scaled and mirrored crops and averages the
cosines, so the optimisation cannot satisfy the loss's one network with a face only that
network sees as the person (a pattern tuned to one exact crop; docs/identity.md). The
draws are a function of the run's seed and the step, so a resumed run repeats them.

Mesh: the same error between their FaceMesh landmarks (468 x 3). Each term crops the
same boxes from the image at every step (differentiably) and stacks all faces as one
batch, so per layer the features of all faces are compared together.

Faces are found once per run on the full-resolution content (:func:`content_faces`)
and kept as boxes in normalised coordinates; each scale maps them to its own size
(:func:`scale_boxes`).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import models
from .faces import crop_faces, detect_faces, face_landmarks, filter_small, square_boxes
from .losses import Term, normalized_squared_error
from .nets.mediapipe import FaceMesh

FACE_LAYERS = ("conv_1a", "conv_2a", "maxpool_3a", "conv_4a", "conv_4b")
FACE_LOSSES = ("embedding", "activations")
FACE_MODELS = ("facenet-casia", "facenet-vggface2")
FACENET_SIZE = 160


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


def content_faces(
    content: Tensor, detector: str = "mtcnn", padding: float = 0.2, min_fraction: float = 0.01
) -> Tensor:
    """Detect the faces of content (3, H, W) in [0, 1] once: normalised boxes (M, 4).

    Warns (and returns no boxes) when no face is found or every face is too small; the
    face terms are then left out and the run is plain crowson.
    """
    faces = detect_faces(content, detector)
    boxes = prepare_boxes(
        faces.boxes, (content.shape[-2], content.shape[-1]), padding, min_fraction
    )
    if len(boxes) == 0:
        reason = (
            "no face was found"
            if len(faces) == 0
            else f"all {len(faces)} faces found cover under {min_fraction:g} of the image"
        )
        warnings.warn(
            f"{reason} in the content image ({detector}): the face terms are left out and "
            "the run is plain crowson (lower --min-face-fraction to keep small faces)",
            stacklevel=2,
        )
    return boxes


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


class FaceIDTerm(Term):
    """FaceID loss on the image's face crops (160 x 160, all faces as one batch).

    ``loss="activations"``: mean over :data:`FACE_LAYERS` of the NSE between the FaceNet
    activations of the crops and the content's. ``loss="embedding"``: mean over faces of
    max(0, ``identity`` − cos(e, e_content)) for the L2-normalised embeddings e (N, D).
    ``boxes`` (N, 4) in pixels of the current scale; ``content`` (1, 3, H, W) in [0, 1],
    whose crops give the targets (computed here, once per scale). ``autocast`` runs
    FaceNet in bfloat16 (targets too); the loss is computed in float32. ``jitter``
    (embedding loss only) gives each face ``views`` random crops per step (half of them
    mirrored), whose cosines to the content's embedding are averaged.
    """

    boxes: Tensor

    def __init__(
        self,
        boxes: Tensor,
        content: Tensor,
        weight: float,
        model: str = "facenet-casia",
        name: str = "face_id",
        autocast: bool = False,
        loss: str = "activations",
        identity: float = 1.0,
        jitter: BoxJitter | None = None,
        views: int = 1,
    ) -> None:
        super().__init__(name, weight)
        if loss not in FACE_LOSSES:
            raise ValueError(f"face_loss must be one of {', '.join(FACE_LOSSES)}")
        self.autocast = autocast
        self.taps = ("embedding",) if loss == "embedding" else FACE_LAYERS
        self.identity = identity
        self.jitter = jitter if loss == "embedding" else None
        self.views = views if self.jitter is not None else 1
        # First conv replicate-padded, as the paper's reference means to (docs/results-paper2.md).
        self.network = models.facenet(model, str(content.device), replicate_pad=True)
        self.register_buffer("boxes", boxes.detach().clone())
        with torch.no_grad():
            targets = self.activations(content)
        self.targets = {layer: value.detach() for layer, value in targets.items()}

    def activations(self, image: Tensor) -> dict[str, Tensor]:
        """FaceNet outputs of image (1, 3, H, W) in its boxes: tap -> (N, C, h, w) or (N, D)."""
        return self.network_features(crop_faces(image, self.boxes, FACENET_SIZE))

    def network_features(self, crops: Tensor) -> dict[str, Tensor]:
        """FaceNet outputs of crops (M, 3, 160, 160) at the term's taps, in float32."""
        with torch.autocast(crops.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            features = self.network.features(crops, self.taps)
        return {layer: value.float() for layer, value in features.items()}

    def cosines(self, image: Tensor) -> Tensor:
        """Cosine of each face's embedding to the content's, averaged over the views:
        (N,) (embedding loss only)."""
        if self.jitter is None:
            crops = crop_faces(image, self.boxes, FACENET_SIZE)
        else:
            crops = crop_faces(image, self.jitter(self.boxes, self.views), FACENET_SIZE)
            view = torch.arange(len(crops), device=crops.device) // len(self.boxes)
            mirrored = view % 2 == 1
            crops = torch.where(mirrored[:, None, None, None], crops.flip(-1), crops)
        embedding = F.normalize(self.network_features(crops)["embedding"], dim=1)
        target = F.normalize(self.targets["embedding"], dim=1)
        return (embedding.view(self.views, *target.shape) * target).sum(dim=2).mean(dim=0)

    def forward(self, features: dict[str, Tensor], image: Tensor) -> Tensor:
        if self.taps == ("embedding",):
            return (self.identity - self.cosines(image)).clamp_min(0).mean()
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
