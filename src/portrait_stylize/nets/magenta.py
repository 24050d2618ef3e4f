"""Magenta's arbitrary image stylization network (Ghiasi et al. 2017) as torch modules.

A style prediction network (MobileNet-v2) maps a style image to a 100-d style embedding;
the transformer, a small convolutional network whose instance-norm scales and shifts are
linear in that embedding, paints a content image in one forward pass. The weights are the
int8 TFLite release of TF Hub's ``arbitrary-image-stylization-v1-256`` as ONNX graphs,
replayed with :class:`~portrait_stylize.nets.onnx.ONNXModule` (quantised activations kept).
Images are RGB float tensors in [0, 1], NCHW.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..weights import weight_path
from .onnx import ONNXModule

__all__ = [
    "EMBEDDING",
    "STYLE_SIZE",
    "WEIGHTS",
    "StylePredictor",
    "StyleTransformer",
    "load_magenta",
    "style_square",
]

STYLE_SIZE = 256
"""Side of the square style image the prediction network was trained and quantised at."""
EMBEDDING = 100
"""Length of the style embedding (the "bottleneck")."""
WEIGHTS = ("magenta-style-predict", "magenta-style-transform")
"""Registry names of the prediction and transformer networks."""
MIN_SIDE = 16
"""Smallest content side the transformer's reflection pads and two stride-2 convs accept."""


def style_square(image: Tensor) -> Tensor:
    """The central square of (B, 3, H, W), resized (antialiased bicubic) to (B, 3, 256, 256)."""
    h, w = image.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[..., top : top + side, left : left + side]
    out = F.interpolate(square, size=(STYLE_SIZE, STYLE_SIZE), mode="bicubic", antialias=True)
    return out.clamp(0, 1)


def _dense_nhwc(image: Tensor) -> Tensor:
    """(B, 3, H, W) as the graphs' dense (B, H, W, 3) input. Their first Transpose then gives
    channels-last (B, C, H, W) tensors, whose convolutions are faster on CPU (measured:
    0.16 s against 0.26 s for the transformer's at 512 px, one thread)."""
    return image.permute(0, 2, 3, 1).contiguous()


class StylePredictor(nn.Module):
    """Style image (B, 3, 256, 256) in [0, 1] -> style embedding (B, 100)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.net = ONNXModule(path)

    def forward(self, style: Tensor) -> Tensor:
        if tuple(style.shape[1:]) != (3, STYLE_SIZE, STYLE_SIZE):
            raise ValueError(f"style images must be (B, 3, 256, 256), got {tuple(style.shape)}")
        (out,) = self.net(_dense_nhwc(style)).values()
        return out.reshape(style.shape[0], EMBEDDING)


class StyleTransformer(nn.Module):
    """Content (B, 3, H, W) and style embedding (B, 100) -> stylized (B, 3, H, W) in [0, 1].

    The network works on any size; for sides that are not multiples of 4 (its stride) its
    output is larger and is cropped to (H, W).
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.net = ONNXModule(path)

    def forward(self, content: Tensor, embedding: Tensor) -> Tensor:
        h, w = content.shape[-2:]
        if min(h, w) < MIN_SIDE:
            raise ValueError(
                f"the content must be at least {MIN_SIDE} px on each side, got {w}x{h}"
            )
        (out,) = self.net(_dense_nhwc(content), embedding.reshape(-1, 1, 1, EMBEDDING)).values()
        return out.permute(0, 3, 1, 2)[..., :h, :w]


def load_magenta(device: str | torch.device = "cpu") -> tuple[StylePredictor, StyleTransformer]:
    """The verified prediction and transformer networks, frozen, on ``device``."""
    predict, transform = WEIGHTS
    nets = (StylePredictor(weight_path(predict)), StyleTransformer(weight_path(transform)))
    for net in nets:
        net.eval().requires_grad_(False).to(device)
    return nets
