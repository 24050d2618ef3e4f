"""Faces: detection, box utilities, differentiable crops, identity features and landmarks.

Boxes are (N,4) float tensors x1, y1, x2, y2 in image pixels, continuous coordinates
(pixel (i, j) covers [j, j+1) x [i, i+1)). Images are RGB floats in [0, 1]. Networks are
loaded once per (name, device) and frozen; everything except detection is
differentiable with respect to the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor
from torchvision.ops import box_iou, roi_align

from . import models
from .nets.mediapipe import BlazeFace, FaceMesh

__all__ = [
    "BLAZEFACE_LANDMARKS",
    "DETECTORS",
    "MTCNN_LANDMARKS",
    "Faces",
    "crop_faces",
    "crop_to_image",
    "detect_faces",
    "face_embedding",
    "face_features",
    "face_landmarks",
    "filter_small",
    "match_faces",
    "square_boxes",
]

DETECTORS = ("mtcnn", "blazeface")
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
