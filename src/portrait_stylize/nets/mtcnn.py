"""MTCNN face detection (Zhang et al. 2016): P-, R- and O-Net and their cascade.

The cascade: an image pyramid (smallest face ``min_face_size`` px, scale step
``factor``) scanned by the fully convolutional P-Net, non-maximum suppression,
box regression and squaring; the survivors are cropped, resized to 24 px and
re-scored by R-Net, then to 48 px for O-Net, which also places five landmarks
(eyes, nose, mouth corners). As in the original, boxes are squared and snapped to
whole pixels before each crop, and crop parts outside the image are black.

Candidates of all pyramid levels go through one batched NMS, and each stage cuts
and scores all its crops as one batch (``roi_align``). Boxes are in continuous pixel
coordinates: pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MTCNN", "ONet", "PNet", "RNet", "load_mtcnn", "state_dict_from_pt"]


def _normalize(pixels: Tensor) -> Tensor:
    """Pixels in [0, 255] -> the networks' input range."""
    return (pixels - 127.5) / 128.0


def _flatten_transposed(x: Tensor) -> Tensor:
    """(B,C,H,W) -> (B, W*H*C): the flattening order the dense layers were trained with."""
    return x.permute(0, 3, 2, 1).flatten(1)


class PNet(nn.Module):
    """Proposal net: 12x12 windows at stride 2, fully convolutional."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, 3)
        self.prelu1 = nn.PReLU(10)
        self.conv2 = nn.Conv2d(10, 16, 3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, 3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (B,3,H,W) normalised -> face probability (B,h,w), box offsets (B,4,h,w)."""
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 2, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_1(x).softmax(1)[:, 1], self.conv4_2(x)


class RNet(nn.Module):
    """Refinement net on 24x24 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, 3)
        self.prelu1 = nn.PReLU(28)
        self.conv2 = nn.Conv2d(28, 48, 3)
        self.prelu2 = nn.PReLU(48)
        self.conv3 = nn.Conv2d(48, 64, 2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (B,3,24,24) normalised -> face probability (B,), box offsets (B,4)."""
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = self.prelu4(self.dense4(_flatten_transposed(self.prelu3(self.conv3(x)))))
        return self.dense5_1(x).softmax(1)[:, 1], self.dense5_2(x)


class ONet(nn.Module):
    """Output net on 48x48 crops: score, box offsets and five landmarks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3)
        self.prelu1 = nn.PReLU(32)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.prelu2 = nn.PReLU(64)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.prelu3 = nn.PReLU(64)
        self.conv4 = nn.Conv2d(64, 128, 2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (B,3,48,48) normalised -> probability (B,), offsets (B,4), landmarks (B,5,2).

        Landmarks are (x, y) fractions of the crop's width and height.
        """
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu3(self.conv3(x)), 2, 2, ceil_mode=True)
        x = self.prelu5(self.dense5(_flatten_transposed(self.prelu4(self.conv4(x)))))
        points = self.dense6_3(x).view(-1, 2, 5).transpose(1, 2)
        return self.dense6_1(x).softmax(1)[:, 1], self.dense6_2(x), points


def _regress(boxes: Tensor, offsets: Tensor) -> Tensor:
    """Shift each box edge by its offset times the box size: (N,4), (N,4) -> (N,4)."""
    size = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    return boxes + offsets * size


def _square(boxes: Tensor) -> Tensor:
    """Grow each box (N,4) to a square around its centre, side = its longer side."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).amax(1, keepdim=True) / 2
    return torch.cat([centre - half, centre + half], 1)


def _nms_min(boxes: Tensor, scores: Tensor, threshold: float) -> Tensor:
    """Greedy NMS where overlap = intersection / smaller area; returns kept indices."""
    order = scores.argsort(descending=True)
    boxes = boxes[order]
    area = (boxes[:, 2:] - boxes[:, :2]).prod(1)
    lo = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    hi = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = (hi - lo).clamp_min(0).prod(2)
    overlap = inter / torch.minimum(area[:, None], area[None, :]).clamp_min(1e-12)
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=boxes.device)
    keep = []
    for i in range(len(order)):
        if not suppressed[i]:
            keep.append(i)
            suppressed |= overlap[i] > threshold
    return order[keep]


class MTCNN(nn.Module):
    """The three-stage MTCNN detector.

    Args:
        min_face_size: smallest face searched, in pixels.
        factor: scale step of the image pyramid.
        thresholds: face-probability thresholds of P-, R- and O-Net.
    """

    def __init__(
        self,
        min_face_size: float = 20.0,
        factor: float = 0.709,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
    ) -> None:
        super().__init__()
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        self.min_face_size = min_face_size
        self.factor = factor
        self.thresholds = thresholds

    def scales(self, height: int, width: int) -> list[float]:
        """Pyramid scales: a face of ``min_face_size`` px maps to P-Net's 12 px window."""
        scale = 12.0 / self.min_face_size
        side = min(height, width) * scale
        scales = []
        while side >= 12:
            scales.append(scale)
            scale *= self.factor
            side *= self.factor
        return scales

    def _propose(self, pixels: Tensor) -> Tensor:
        """Stage 1 on (3,H,W) pixels: candidate boxes (N,4), squared, on whole pixels."""
        from torchvision.ops import batched_nms, nms  # slow to import: here only

        height, width = pixels.shape[1:]
        image = _normalize(pixels)[None]
        boxes, scores, offsets, level = [], [], [], []
        for i, scale in enumerate(self.scales(height, width)):
            size = (math.ceil(height * scale), math.ceil(width * scale))
            prob, reg = self.pnet(F.interpolate(image, size=size, mode="area"))
            ys, xs = torch.nonzero(prob[0] >= self.thresholds[0], as_tuple=True)
            corner = torch.stack([xs, ys], 1).to(image.dtype) * 2
            stretch = torch.tensor([width / size[1], height / size[0]], device=image.device)
            boxes.append(torch.cat([corner, corner + 12], 1) * stretch.repeat(2))
            scores.append(prob[0, ys, xs])
            offsets.append(reg[0, :, ys, xs].T)
            level.append(torch.full_like(ys, i))
        boxes_t, scores_t, offsets_t = torch.cat(boxes), torch.cat(scores), torch.cat(offsets)
        keep = batched_nms(boxes_t, scores_t, torch.cat(level), 0.5)
        keep = keep[nms(boxes_t[keep], scores_t[keep], 0.7)]
        return _square(_regress(boxes_t[keep], offsets_t[keep])).trunc()

    @staticmethod
    def _crops(pixels: Tensor, boxes: Tensor, size: int) -> Tensor:
        """Crops of boxes (N,4) from (3,H,W) pixels, resized to (N,3,size,size), normalised.

        Parts outside the image are black, as in the original cascade.
        """
        from torchvision.ops import roi_align  # slow to import: here only

        crops = roi_align(pixels[None], [boxes], size, sampling_ratio=-1, aligned=True)
        return _normalize(crops)

    @torch.no_grad()
    def detect(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Find faces in one RGB image (3,H,W) in [0,1] (a (1,H,W) gray image also works).

        Returns boxes (N,4) as x1, y1, x2, y2 in image pixels, scores (N,) and
        landmarks (N,5,2) as (x, y): left eye, right eye, nose, left and right mouth
        corner (as seen in the image). Best score first.
        """
        from torchvision.ops import nms  # slow to import: here only

        device = self.pnet.conv1.weight.device
        empty = (
            torch.zeros(0, 4, device=device),
            torch.zeros(0, device=device),
            torch.zeros(0, 5, 2, device=device),
        )
        if image.dim() != 3 or image.shape[0] not in (1, 3):
            raise ValueError(f"expected an image (3,H,W) or (1,H,W), got {tuple(image.shape)}")
        pixels = image.to(device, torch.float32).expand(3, -1, -1) * 255.0
        if min(pixels.shape[1:]) * 12.0 / self.min_face_size < 12:
            return empty

        boxes = self._propose(pixels)
        if len(boxes) == 0:
            return empty

        prob, reg = self.rnet(self._crops(pixels, boxes, 24))
        passed = prob >= self.thresholds[1]
        boxes, prob, reg = boxes[passed], prob[passed], reg[passed]
        keep = nms(boxes, prob, 0.7)
        boxes = _square(_regress(boxes[keep], reg[keep])).trunc()
        if len(boxes) == 0:
            return empty

        prob, reg, points = self.onet(self._crops(pixels, boxes, 48))
        passed = prob >= self.thresholds[2]
        boxes, prob, reg, points = boxes[passed], prob[passed], reg[passed], points[passed]
        landmarks = boxes[:, None, :2] + points * (boxes[:, 2:] - boxes[:, :2])[:, None]
        boxes = _regress(boxes, reg)
        keep = _nms_min(boxes, prob, 0.7)
        return boxes[keep], prob[keep], landmarks[keep]


STAGES = ("pnet", "rnet", "onet")
"""The cascade's networks, each with its registry weights ``mtcnn-<stage>``."""


def state_dict_from_pt(path: str | Path) -> dict[str, Tensor]:
    """A facenet-pytorch P/R/O-Net state dict file -> our state dict (same layer names)."""
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    return {name: tensor.float().contiguous() for name, tensor in loaded.items()}


def load_mtcnn(
    device: str | torch.device = "cpu",
    min_face_size: float = 20.0,
    factor: float = 0.709,
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
) -> MTCNN:
    """Pretrained MTCNN in eval mode with frozen parameters (options as in :class:`MTCNN`)."""
    from portrait_stylize.weights import load_state_dict

    model = MTCNN(min_face_size, factor, thresholds)
    for stage in STAGES:
        getattr(model, stage).load_state_dict(load_state_dict(f"mtcnn-{stage}"))
    return model.eval().requires_grad_(False).to(device)
