"""MediaPipe face and person networks as differentiable torch modules.

Thin wrappers over :class:`~portrait_stylize.nets.tflite.TFLiteModule` that fix each
model's input convention and name its outputs. All images are RGB float tensors in
[0, 1], NCHW.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..weights import weight_path
from .tflite import TFLiteModule

__all__ = [
    "MEDIAPIPE_MODELS",
    "BlazeFace",
    "BlazeFaceOutput",
    "Detections",
    "FaceMesh",
    "FaceMeshOutput",
    "SelfieSegmentation",
    "blazeface_anchors",
    "load_mediapipe",
    "weighted_nms",
]


class FaceMeshOutput(NamedTuple):
    landmarks: Tensor  # (B, 468, 3): x, y in crop pixels (0..192), z in the same scale
    presence: Tensor  # (B,): face-presence logit


class FaceMesh(nn.Module):
    """FaceMesh: 468 3-D landmarks from a face crop.

    Input (B,3,192,192) RGB in [0,1]: a square crop around the face (MediaPipe enlarges
    the detected face box by 1.5). Output :class:`FaceMeshOutput`.
    """

    SIZE = 192
    NUM_LANDMARKS = 468

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.net = TFLiteModule(path)

    def forward(self, crops: Tensor) -> FaceMeshOutput:
        out = self.net(crops)
        batch = crops.shape[0]
        landmarks = out["conv2d_21"].reshape(batch, self.NUM_LANDMARKS, 3)
        return FaceMeshOutput(landmarks, out["conv2d_31"].reshape(batch))


class BlazeFaceOutput(NamedTuple):
    regressors: Tensor  # (B, 896, 16): per anchor dx, dy, w, h, then 6 keypoints (x, y)
    logits: Tensor  # (B, 896): face score logits


class Detections(NamedTuple):
    boxes: Tensor  # (N, 4): x1, y1, x2, y2 in image pixels
    scores: Tensor  # (N,): probabilities
    keypoints: Tensor  # (N, 6, 2): right eye, left eye, nose, mouth, right ear, left ear


def blazeface_anchors(
    size: int = 128, strides: tuple[int, ...] = (8, 16, 16, 16), per_layer: int = 2
) -> Tensor:
    """Anchor centres (896, 2) as (x, y) in [0, 1] for the short-range detector.

    MediaPipe's SSD anchor calculator with fixed-size anchors (one unit-size anchor and
    one interpolated-scale anchor per layer): consecutive layers of equal stride share a
    grid, giving 16x16 cells x 2 anchors then 8x8 cells x 6 anchors, row-major, with the
    anchors of a cell adjacent.
    """
    centres = []
    start = 0
    while start < len(strides):
        end = start
        while end < len(strides) and strides[end] == strides[start]:
            end += 1
        cells = math.ceil(size / strides[start])
        grid = (torch.arange(cells, dtype=torch.float32) + 0.5) / cells
        ys, xs = torch.meshgrid(grid, grid, indexing="ij")
        cell_centres = torch.stack([xs, ys], dim=-1).reshape(-1, 1, 2)
        centres.append(cell_centres.expand(-1, (end - start) * per_layer, 2).reshape(-1, 2))
        start = end
    return torch.cat(centres)


def weighted_nms(
    boxes: Tensor, scores: Tensor, keypoints: Tensor, iou_threshold: float
) -> Detections:
    """MediaPipe's weighted non-maximum suppression.

    Takes the best remaining detection and the remaining ones overlapping it by more
    than ``iou_threshold``; outputs their score-weighted mean box and keypoints with the
    best score. Inputs (N,4), (N,) and (N,K,2); outputs sorted by score.
    """
    from torchvision.ops import box_iou  # slow to import: here only

    order = scores.argsort(descending=True)
    boxes, scores, keypoints = boxes[order], scores[order], keypoints[order]
    iou = box_iou(boxes, boxes)
    remaining = torch.ones_like(scores, dtype=torch.bool)
    kept_boxes, kept_scores, kept_keypoints = [], [], []
    for best in range(len(scores)):
        if not remaining[best]:
            continue
        group = remaining & (iou[best] > iou_threshold)
        group[best] = True
        weights = scores[group] / scores[group].sum()
        kept_boxes.append((boxes[group] * weights[:, None]).sum(0))
        kept_keypoints.append((keypoints[group] * weights[:, None, None]).sum(0))
        kept_scores.append(scores[best])
        remaining &= ~group
    if not kept_scores:
        return Detections(boxes[:0], scores[:0], keypoints[:0])
    return Detections(
        torch.stack(kept_boxes), torch.stack(kept_scores), torch.stack(kept_keypoints)
    )


class BlazeFace(nn.Module):
    """BlazeFace short-range face detector (faces within about 2 m of the camera).

    ``forward``: (B,3,128,128) RGB in [0,1] (scaled to [-1,1] inside) ->
    :class:`BlazeFaceOutput`. ``detect`` runs the whole pipeline on one image.
    """

    SIZE = 128
    NUM_KEYPOINTS = 6
    anchors: Tensor  # (896, 2)

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.net = TFLiteModule(path)
        self.register_buffer("anchors", blazeface_anchors(self.SIZE))

    def forward(self, images: Tensor) -> BlazeFaceOutput:
        out = self.net(images * 2.0 - 1.0)
        return BlazeFaceOutput(out["regressors"], out["classificators"].squeeze(-1))

    def decode(self, regressors: Tensor) -> tuple[Tensor, Tensor]:
        """Regressors (..., 896, 16) -> boxes (..., 896, 4) x1,y1,x2,y2 and keypoints
        (..., 896, 6, 2), both in [0, 1] coordinates of the 128x128 input."""
        values = regressors / self.SIZE
        centre = values[..., 0:2] + self.anchors
        half = values[..., 2:4] / 2
        boxes = torch.cat([centre - half, centre + half], dim=-1)
        keypoints = values[..., 4:].unflatten(-1, (self.NUM_KEYPOINTS, 2)) + self.anchors[:, None]
        return boxes, keypoints

    @torch.no_grad()
    def detect(
        self, image: Tensor, score_threshold: float = 0.5, iou_threshold: float = 0.3
    ) -> Detections:
        """Faces in one image (3,H,W) RGB in [0,1], in image pixel coordinates.

        The image is letterboxed (aspect kept, centred, black borders) to 128x128.
        Boxes are not clipped to the image.
        """
        height, width = image.shape[-2:]
        scale = self.SIZE / max(height, width)
        new_h, new_w = round(height * scale), round(width * scale)
        resized = F.interpolate(
            image[None].to(self.anchors), (new_h, new_w), mode="bilinear", antialias=True
        )
        pad_x, pad_y = (self.SIZE - new_w) // 2, (self.SIZE - new_h) // 2
        letterboxed = F.pad(
            resized, (pad_x, self.SIZE - new_w - pad_x, pad_y, self.SIZE - new_h - pad_y)
        )
        regressors, logits = self(letterboxed)
        scores = torch.sigmoid(logits[0].clamp(-100.0, 100.0))
        keep = scores >= score_threshold
        boxes, keypoints = self.decode(regressors[0])
        found = weighted_nms(boxes[keep], scores[keep], keypoints[keep], iou_threshold)
        offset = torch.tensor([pad_x, pad_y], dtype=boxes.dtype, device=boxes.device)

        def to_image(xy: Tensor) -> Tensor:
            return (xy * self.SIZE - offset) / scale

        return Detections(
            to_image(found.boxes.unflatten(-1, (2, 2))).flatten(-2),
            found.scores,
            to_image(found.keypoints),
        )


class SelfieSegmentation(nn.Module):
    """MediaPipe selfie segmentation: person probability per pixel, differentiable.

    Input (B,3,H,W) RGB in [0,1], any size: stretched to the model size (256x256 for the
    general model, 144x256 for the landscape one), the output probability (B,1,H,W) is
    resized back bilinearly. Antialiasing is used when shrinking.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.net = TFLiteModule(path)
        (output_name,) = self.net.output_names
        self.output_name = output_name
        height, width = self.net.input_shapes[0][2:]
        self.size = (height, width)

    def forward(self, images: Tensor) -> Tensor:
        size = tuple(images.shape[-2:])
        x = _resize(images, self.size)
        return _resize(self.net(x)[self.output_name], size)


def _resize(x: Tensor, size: tuple[int, ...]) -> Tensor:
    """Bilinear resize of (B,C,H,W), antialiased when shrinking; identity if same size."""
    if tuple(x.shape[-2:]) == size:
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size, mode="bilinear", align_corners=False, antialias=shrink)


_WRAPPERS: dict[str, type[nn.Module]] = {
    "facemesh": FaceMesh,
    "blazeface": BlazeFace,
    "selfie-segmentation": SelfieSegmentation,
    "selfie-segmentation-landscape": SelfieSegmentation,
}
MEDIAPIPE_MODELS = tuple(_WRAPPERS)


def load_mediapipe(name: str, device: str | torch.device = "cpu") -> nn.Module:
    """Build the wrapper for MediaPipe model ``name`` (one of :data:`MEDIAPIPE_MODELS`)
    from its verified weights, frozen, in eval mode, on ``device``."""
    if name not in _WRAPPERS:
        raise ValueError(f"unknown MediaPipe model {name!r}; known: {', '.join(_WRAPPERS)}")
    model = _WRAPPERS[name](weight_path(name)).to(device).eval()
    model.requires_grad_(False)
    return model
