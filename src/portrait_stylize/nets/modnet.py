"""MODNet portrait matting (Ke et al., "MODNet: Real-Time Trimap-Free Portrait Matting via
Objective Decomposition", AAAI 2022) as a torch module.

The photographic checkpoint's ONNX export is replayed with
:class:`~portrait_stylize.nets.onnx.ONNXModule`. The graph reads RGB in [-1, 1] with both
sides multiples of 32 and returns the alpha matte (N, 1, H, W) in [0, 1];
:class:`MODNet` resizes an image in [0, 1] to such a size around a 512 px reference
side and the matte back.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..weights import weight_path
from .onnx import ONNXModule

__all__ = ["REFERENCE_SIDE", "WEIGHTS", "MODNet", "load_modnet", "network_size"]

WEIGHTS = "modnet"
"""Registry name of the network."""
REFERENCE_SIDE = 512
"""The side MODNet was trained and is run at."""
_STRIDE = 32
"""Both input sides must be multiples of this (the backbone's total stride)."""


def network_size(height: int, width: int) -> tuple[int, int]:
    """The (height, width) MODNet reads an image of ``height`` x ``width`` at.

    An image entirely below or entirely above the reference side is scaled so that its
    short side is 512 px (aspect kept); one whose sides straddle 512 keeps its size. Each
    side is then rounded down to a multiple of 32 (at least 32).
    """
    if max(height, width) < REFERENCE_SIDE or min(height, width) > REFERENCE_SIDE:
        scale = REFERENCE_SIDE / min(height, width)
        height, width = round(height * scale), round(width * scale)
    return max(_STRIDE, height - height % _STRIDE), max(_STRIDE, width - width % _STRIDE)


class MODNet(nn.Module):
    """Images (B, 3, H, W) RGB in [0, 1] -> alpha mattes (B, 1, H, W) in [0, 1], 1 on the
    person; differentiable with respect to the images."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.net = ONNXModule(path)

    def forward(self, images: Tensor) -> Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"MODNet reads (B, 3, H, W) images, got {tuple(images.shape)}")
        height, width = images.shape[-2:]
        size = network_size(height, width)
        shrink = size[0] < height or size[1] < width
        x = images
        if size != (height, width):
            x = F.interpolate(x, size, mode="bilinear", align_corners=False, antialias=shrink)
        (alpha,) = self.net(x * 2 - 1).values()
        if size != (height, width):
            alpha = F.interpolate(
                alpha, (height, width), mode="bilinear", align_corners=False, antialias=not shrink
            )
        return alpha.clamp(0, 1)


def load_modnet(device: str | torch.device = "cpu") -> MODNet:
    """The verified MODNet, frozen, in eval mode, on ``device``."""
    model = MODNet(weight_path(WEIGHTS)).to(device).eval()
    model.requires_grad_(False)
    return model
