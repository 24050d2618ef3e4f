"""Faces: detection, box utilities, differentiable crops and aligned chips, identity
embeddings and landmarks.

Boxes are (N,4) float tensors x1, y1, x2, y2 in image pixels, continuous coordinates
(pixel (i, j) covers [j, j+1) x [i, i+1)); landmarks (N,K,2) x, y in the same
coordinates. Images are RGB floats in [0, 1]. Networks are loaded once per (name, device)
and frozen; everything except detection is differentiable with respect to the image.

Identity networks (:data:`IDENTITY_MODELS`) read faces two ways: FaceNet a square crop of
the face box (:func:`crop_faces`), the others a chip aligned by a similarity transform
that puts the five landmarks where a template says (:func:`align_faces`).
:func:`identity_embedding` gives every network's unit-length embeddings through one call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor

from . import models
from .nets.mediapipe import BlazeFace, FaceMesh
from .vocabulary import DETECTORS

__all__ = [
    "ARCFACE_TEMPLATE",
    "BLAZEFACE_LANDMARKS",
    "DETECTORS",
    "DLIB_TEMPLATE",
    "FACENET_PADDING",
    "IDENTITY_MODELS",
    "MTCNN_LANDMARKS",
    "Faces",
    "IdentityModel",
    "align_faces",
    "alignment_transforms",
    "crop_faces",
    "crop_to_image",
    "detect_faces",
    "embed_crops",
    "face_embedding",
    "face_features",
    "face_landmarks",
    "filter_small",
    "identity_crops",
    "identity_embedding",
    "match_faces",
    "square_boxes",
]

# Landmark order per detector; left/right as seen in the image. Both start with the
# two eyes and the nose, so landmarks[:, :3] means the same for either detector.
MTCNN_LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
BLAZEFACE_LANDMARKS = ("left_eye", "right_eye", "nose", "mouth", "left_ear", "right_ear")


@dataclass
class Faces:
    """Detected faces, best score first.

    ``boxes`` (N,4) x1,y1,x2,y2 in image pixels (may extend past the border),
    ``scores`` (N,) probabilities, ``landmarks`` (N,K,2) x,y in image pixels named by
    ``landmark_names`` (K = 5 for MTCNN, 6 for BlazeFace, which has no mouth corners).
    """

    boxes: Tensor
    scores: Tensor
    landmarks: Tensor
    landmark_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, index: Tensor | slice | list[int]) -> Faces:
        """The faces selected by a boolean mask, indices or a slice."""
        return Faces(
            self.boxes[index], self.scores[index], self.landmarks[index], self.landmark_names
        )

    def to(self, device: str | torch.device) -> Faces:
        """The same faces with every tensor on ``device``."""
        return Faces(
            self.boxes.to(device),
            self.scores.to(device),
            self.landmarks.to(device),
            self.landmark_names,
        )


def detect_faces(
    image: Tensor, detector: str = "mtcnn", device: str | torch.device | None = None
) -> Faces:
    """Faces in one image (3,H,W) RGB in [0,1], on ``device`` (default: the image's).

    "mtcnn" finds faces of 20 px and up at any distance; "blazeface" is MediaPipe's
    short-range detector (faces filling a good part of the frame, e.g. selfies).
    """
    if detector not in DETECTORS:
        raise ValueError(f"unknown face detector {detector!r}; known: {', '.join(DETECTORS)}")
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"expected one image (3,H,W), got {tuple(image.shape)}")
    device = str(torch.device(device) if device is not None else image.device)
    image = image.detach().to(device, torch.float32)
    if detector == "mtcnn":
        boxes, scores, landmarks = models.mtcnn(device).detect(image)
        return Faces(boxes, scores, landmarks, MTCNN_LANDMARKS)
    found = cast(BlazeFace, models.mediapipe("blazeface", device)).detect(image)
    return Faces(found.boxes, found.scores, found.keypoints, BLAZEFACE_LANDMARKS)


def square_boxes(boxes: Tensor, padding: float = 0.2) -> Tensor:
    """Square boxes (N,4) around boxes (N,4): same centre, side = longer side x (1 + 2 x
    ``padding``), i.e. each box is padded by ``padding`` x its longer side on every side
    (along its longer axis; the shorter axis is padded more to make it square)."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).amax(dim=1, keepdim=True) * (0.5 + padding)
    return torch.cat([centre - half, centre + half], dim=1)


def filter_small(boxes: Tensor, image_size: tuple[int, int], min_fraction: float = 0.01) -> Tensor:
    """Keep mask (N,) bool: boxes (N,4) whose area is at least ``min_fraction`` of the
    image area; ``image_size`` is (height, width). Index :class:`Faces` with it."""
    height, width = image_size
    areas = (boxes[:, 2] - boxes[:, 0]).clamp_min(0) * (boxes[:, 3] - boxes[:, 1]).clamp_min(0)
    return areas >= min_fraction * height * width


def crop_faces(image: Tensor, boxes: Tensor, size: int) -> Tensor:
    """Crops of boxes (N,4) from image (B,3,H,W) or (3,H,W), resized to size x size.

    Returns (B*N,3,size,size), every box from every image, image-major. Bilinear with
    area-averaged samples (``roi_align``, aligned=True), differentiable with respect to
    the image. Parts of a box outside the image read as black (zero padding).
    """
    from torchvision.ops import roi_align  # slow to import: here only

    batch = image[None] if image.dim() == 3 else image
    boxes = boxes.to(batch)
    count = len(boxes)
    index = torch.arange(len(batch), device=batch.device, dtype=batch.dtype)
    rois = torch.cat([index.repeat_interleave(count)[:, None], boxes.repeat(len(batch), 1)], 1)
    return roi_align(batch, rois, size, sampling_ratio=-1, aligned=True)


def crop_to_image(points: Tensor, boxes: Tensor, size: int) -> Tensor:
    """Map points (N,K,2+) in crop pixels of ``crop_faces(..., boxes, size)`` back to
    image pixels (x, y scaled and shifted; further columns such as z only scaled)."""
    scale = ((boxes[:, 2:] - boxes[:, :2]) / size)[:, None]
    xy = points[..., :2] * scale + boxes[:, None, :2]
    rest = points[..., 2:] * scale[..., :1]
    return torch.cat([xy, rest], dim=-1)


# --- Aligned chips ---------------------------------------------------------------------

TEMPLATE_POINTS = MTCNN_LANDMARKS
"""The points of an alignment template, in order (left/right as seen in the image)."""
ARCFACE_TEMPLATE = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)
"""ArcFace's 5-point template of a 112x112 chip (InsightFace's ``arcface_dst``), in
OpenCV's pixel-centre coordinates (add 0.5 for continuous ones): eyes, nose tip, mouth
corners, as MTCNN places them."""
DLIB_TEMPLATE = (
    (46.6, 44.1),
    (100.9, 44.5),
    (73.7, 79.0),
    (47.4, 100.6),
    (98.8, 100.8),
)
"""Where MTCNN's five landmarks fall, on average, in dlib's 150x150 face chip
(``get_face_chip``, padding 0.25), pixel-centre coordinates: fitted here, not dlib's own
(dlib aligns by its shape predictor's eye corners and nose base, which MTCNN does not
give). Measured on 26 faces (the shared photos, four more, and their mirror images); see
docs/identity.md, "The face networks"."""


@dataclass(frozen=True)
class IdentityModel:
    """How a face-recognition network reads a face.

    ``size``: the side of its input crop; ``template``: the landmark template of its aligned
    chip in OpenCV pixel-centre coordinates of that chip (None: a square crop of the face box,
    FaceNet); ``metric``: how its embeddings are compared by their makers ("cosine", or
    "euclidean" for dlib's unnormalised descriptors, same person below 0.6).
    """

    name: str
    family: str
    size: int
    template: tuple[tuple[float, float], ...] | None
    metric: str = "cosine"


IDENTITY_MODELS: dict[str, IdentityModel] = {
    model.name: model
    for model in (
        IdentityModel("facenet-casia", "FaceNet Inception-ResNet-v1", 160, None),
        IdentityModel("facenet-vggface2", "FaceNet Inception-ResNet-v1", 160, None),
        IdentityModel("facenet-msceleb", "FaceNet Inception-ResNet-v1", 160, None),
        IdentityModel("sface", "SFace", 112, ARCFACE_TEMPLATE),
        IdentityModel("mobilefacenet", "MobileFaceNet", 112, ARCFACE_TEMPLATE),
        IdentityModel("dlib", "dlib ResNet-29", 150, DLIB_TEMPLATE, "euclidean"),
    )
}
"""The face-recognition networks by name: every one :func:`identity_embedding` reads."""
FACENET_PADDING = 0.1
"""Margin of FaceNet's crops of a :class:`Faces`' boxes: it was trained on detector boxes
with a small margin."""


def _template_points(names: tuple[str, ...]) -> tuple[list[int], list[list[float]]]:
    """For landmarks named ``names``: the indices of those an alignment uses and the
    weights (one row per used landmark, over :data:`TEMPLATE_POINTS`) giving each one's
    template position. BlazeFace's single "mouth" is the mean of the two corners."""
    used, weights = [], []
    for index, name in enumerate(names):
        if name in TEMPLATE_POINTS:
            row = [1.0 if point == name else 0.0 for point in TEMPLATE_POINTS]
        elif name == "mouth":
            row = [0.5 if point.startswith("mouth") else 0.0 for point in TEMPLATE_POINTS]
        else:
            continue
        used.append(index)
        weights.append(row)
    if len(used) < 3:
        raise ValueError(f"aligning a face needs the eyes and the nose; landmarks: {names}")
    return used, weights


def alignment_transforms(
    landmarks: Tensor,
    template: tuple[tuple[float, float], ...] | Tensor,
    landmark_names: tuple[str, ...] = MTCNN_LANDMARKS,
) -> Tensor:
    """The similarity transforms (N, 2, 3) from image to chip coordinates that put
    landmarks (N, K, 2) (named ``landmark_names``) nearest, in least squares, to
    ``template`` (5, 2) (:data:`TEMPLATE_POINTS` order; OpenCV pixel-centre coordinates of
    the chip, as published templates are). Rotation, uniform scale and shift only: no
    reflection, no shear. Returned in continuous coordinates: chip = A @ (x, y, 1)."""
    used, weights = _template_points(landmark_names)
    target = torch.as_tensor(template, dtype=torch.float64, device=landmarks.device)
    dst = torch.tensor(weights, dtype=torch.float64, device=landmarks.device) @ target + 0.5
    src = landmarks[:, used].double()
    src_mean, dst_mean = src.mean(dim=1, keepdim=True), dst.mean(dim=0)
    s, d = src - src_mean, dst - dst_mean
    norm = (s**2).sum(dim=(1, 2))
    a = (s * d).sum(dim=(1, 2)) / norm  # s cos θ
    b = (s[..., 0] * d[..., 1] - s[..., 1] * d[..., 0]).sum(dim=1) / norm  # s sin θ
    linear = torch.stack([torch.stack([a, -b], -1), torch.stack([b, a], -1)], dim=1)
    shift = dst_mean - (linear @ src_mean.transpose(1, 2)).squeeze(-1)
    return torch.cat([linear, shift[..., None]], dim=2).to(landmarks.dtype)


def align_faces(
    image: Tensor,
    landmarks: Tensor,
    size: int,
    template: tuple[tuple[float, float], ...] | Tensor = ARCFACE_TEMPLATE,
    landmark_names: tuple[str, ...] = MTCNN_LANDMARKS,
) -> Tensor:
    """Aligned chips (B*N, 3, size, size) of the faces with landmarks (N, K, 2) of image
    (B, 3, H, W) or (3, H, W), image-major: each face warped by the similarity transform of
    :func:`alignment_transforms` (``template`` given for a chip of ``size``).

    Differentiable with respect to the image, and every pixel under a chip contributes:
    the chip's footprint (its rotated square in the image) is first cut out axis-aligned
    with area-averaged samples (``roi_align``, as :func:`crop_faces`), at about the chip's
    resolution, and then rotated into the chip bilinearly (``grid_sample``). Parts outside
    the image read as black.
    """
    batch = image[None] if image.dim() == 3 else image
    forward = alignment_transforms(landmarks.to(batch), template, landmark_names)
    linear, shift = forward[:, :, :2], forward[:, :, 2]
    inverse = torch.linalg.inv(linear)  # chip -> image
    corners = batch.new_tensor([[0.0, 0.0], [size, 0.0], [0.0, size], [size, size]])
    footprint = (corners[None] - shift[:, None]) @ inverse.transpose(1, 2)  # (N, 4, 2)
    boxes = torch.cat([footprint.amin(dim=1), footprint.amax(dim=1)], dim=1)
    extent = boxes[:, 2:] - boxes[:, :2]  # (N, 2), equal sides
    # The region's pixels as large as the chip's: its side is the chip's times |cos| + |sin|
    # of the rotation (1 upright, up to √2 at 45°).
    chip_per_image = linear[:, 0].norm(dim=1)
    side = max(size, math.ceil(float((extent[:, 0] * chip_per_image).max()) - 1e-3))
    region = crop_faces(batch, boxes, side)  # (B*N, 3, side, side)
    # chip continuous coords u -> image p = inverse (u - shift) -> the region's [-1, 1] units
    # of affine_grid / grid_sample (align_corners=False): 2 (p - box corner) / extent - 1.
    scale = 2 / extent
    theta_linear = scale[:, :, None] * inverse * (size / 2)
    centre = inverse @ (batch.new_full((2,), size / 2) - shift)[..., None]
    theta_shift = scale * (centre.squeeze(-1) - boxes[:, :2]) - 1
    theta = torch.cat([theta_linear, theta_shift[..., None]], dim=2).repeat(len(batch), 1, 1)
    grid = F.affine_grid(theta, [len(region), 3, size, size], align_corners=False)
    return F.grid_sample(region, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def identity_crops(
    image: Tensor,
    faces: Tensor | Faces,
    model: str,
    landmark_names: tuple[str, ...] = MTCNN_LANDMARKS,
) -> Tensor:
    """The crops (B*N, 3, S, S) that network ``model`` (of :data:`IDENTITY_MODELS`) reads of
    the N faces of image (B, 3, H, W) or (3, H, W), image-major.

    ``faces``: crop boxes (N, 4) for FaceNet (used as given: pad and square them first),
    landmarks (N, K, 2) named ``landmark_names`` for the aligned networks, or a
    :class:`Faces` (its landmarks, or its boxes squared with :data:`FACENET_PADDING`).
    """
    spec = _identity_model(model)
    if isinstance(faces, Faces):
        landmark_names = faces.landmark_names
        faces = faces.landmarks if spec.template else square_boxes(faces.boxes, FACENET_PADDING)
    if spec.template is None:
        if faces.dim() != 2 or faces.shape[-1] != 4:
            raise ValueError(f"{model} crops face boxes (N, 4), got {tuple(faces.shape)}")
        return crop_faces(image, faces, spec.size)
    if faces.dim() != 3 or faces.shape[-1] != 2:
        raise ValueError(f"{model} aligns by landmarks (N, K, 2), got {tuple(faces.shape)}")
    return align_faces(image, faces, spec.size, spec.template, landmark_names)


def embed_crops(
    crops: Tensor, model: str, replicate_pad: bool = False, normalize: bool = True
) -> Tensor:
    """Unit-length embeddings (M, D) of network ``model``'s crops (M, 3, S, S) in [0, 1]
    (from :func:`identity_crops`), on the crops' device, in float32. ``replicate_pad``:
    FaceNet's first conv replicate-padded (the FaceID loss's; nothing for the other
    networks). ``normalize=False``: the network's own output (dlib's descriptors, compared
    by Euclidean distance; FaceNet's are unit-length either way)."""
    spec = _identity_model(model)
    if tuple(crops.shape[-2:]) != (spec.size, spec.size):
        raise ValueError(f"{model} reads {spec.size}x{spec.size} crops, got {tuple(crops.shape)}")
    device = str(crops.device)
    if spec.template is None:
        embeddings = models.facenet(model, device, replicate_pad=replicate_pad)(crops)
    else:
        embeddings = models.face_recognizer(model, device)(crops)
    embeddings = embeddings.float()
    return F.normalize(embeddings, dim=-1) if normalize else embeddings


def identity_embedding(
    image: Tensor,
    faces: Tensor | Faces,
    model: str = "facenet-casia",
    landmark_names: tuple[str, ...] = MTCNN_LANDMARKS,
    normalize: bool = True,
) -> Tensor:
    """Unit-length identity embeddings (B*N, D) of the N faces of image (B, 3, H, W) or
    (3, H, W) in [0, 1], image-major, by network ``model`` (a key of
    :data:`IDENTITY_MODELS`): ``faces`` as :func:`identity_crops` takes them. Differentiable
    with respect to the image. ``normalize=False`` gives the raw embeddings (dlib's
    descriptors, whose makers compare them by Euclidean distance: same person below 0.6)."""
    crops = identity_crops(image, faces, model, landmark_names)
    return embed_crops(crops, model, normalize=normalize)


def _identity_model(model: str) -> IdentityModel:
    try:
        return IDENTITY_MODELS[model]
    except KeyError:
        known = ", ".join(IDENTITY_MODELS)
        raise ValueError(f"unknown identity model {model!r}; known: {known}") from None


def face_embedding(crops: Tensor, model: str = "facenet-casia") -> Tensor:
    """L2-normalised FaceNet embeddings (N,D) of face crops (N,3,160,160) in [0,1]."""
    return face_features(crops, ("embedding",), model)["embedding"]


def face_features(
    crops: Tensor, layers: tuple[str, ...] | list[str], model: str = "facenet-casia"
) -> dict[str, Tensor]:
    """FaceNet activations of crops (N,3,160,160) in [0,1] at ``layers`` (names from
    :data:`portrait_stylize.nets.facenet.TAPS`), on the crops' device."""
    return models.facenet(model, str(crops.device)).features(crops, layers)


def face_landmarks(crops: Tensor) -> tuple[Tensor, Tensor]:
    """FaceMesh on crops (N,3,192,192) in [0,1] (a face box enlarged 1.5x, e.g.
    ``square_boxes(boxes, 0.25)``): landmarks (N,468,3) in crop pixels and face-presence
    probability (N,)."""
    if crops.shape[-2:] != (FaceMesh.SIZE, FaceMesh.SIZE):
        raise ValueError(f"FaceMesh needs 192x192 crops, got {tuple(crops.shape)}")
    landmarks, presence = models.mediapipe("facemesh", str(crops.device))(crops)
    return landmarks, torch.sigmoid(presence)


def match_faces(boxes_a: Tensor, boxes_b: Tensor, min_iou: float = 0.3) -> list[tuple[int, int]]:
    """Pairs (i, j) of boxes_a (N,4) and boxes_b (M,4), greedily by highest IoU, each box
    used at most once, pairs below ``min_iou`` left out; best pair first."""
    from torchvision.ops import box_iou  # slow to import: here only

    if len(boxes_a) == 0 or len(boxes_b) == 0:
        return []
    iou = box_iou(boxes_a.float(), boxes_b.float())
    pairs: list[tuple[int, int]] = []
    while True:
        best = int(iou.argmax())
        i, j = divmod(best, iou.shape[1])
        if iou[i, j] < min_iou:
            return pairs
        pairs.append((i, j))
        iou[i, :] = -1.0
        iou[:, j] = -1.0
