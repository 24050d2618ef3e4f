"""Face-recognition networks of families other than FaceNet, as differentiable torch modules.

- :class:`SFace`: the OpenCV model zoo's SFace (Zhong et al. 2021, a MobileFaceNet-like
  network trained with a sigmoid-constrained hypersphere loss), 128-d, its ONNX graph
  replayed by :class:`~portrait_stylize.nets.onnx.ONNXModule`;
- :class:`MobileFaceNet`: sirius-ai's MobileFaceNet (Chen et al. 2018, ArcFace-style
  loss), 192-d, its TFLite model replayed by
  :class:`~portrait_stylize.nets.tflite.TFLiteModule`;
- dlib's ResNet-29 descriptor: :mod:`portrait_stylize.nets.dlib`.

Each reads face chips aligned by five landmarks (:func:`portrait_stylize.faces.align_faces`),
RGB in [0, 1], NCHW, any batch size, and returns unnormalised embeddings (N, D).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from ..weights import weight_path
from .onnx import ONNXModule
from .tflite import TFLiteModule

__all__ = ["ARCFACE_SIZE", "MobileFaceNet", "SFace", "load_face_recognizer"]

ARCFACE_SIZE = 112
"""Side of the ArcFace-aligned chips SFace and MobileFaceNet read."""


class SFace(nn.Module):
    """SFace: chips (N, 3, 112, 112) RGB in [0, 1] -> embeddings (N, 128). The graph takes
    0-255 RGB and standardises it itself ((x - 127.5) / 128)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.net = ONNXModule(path)

    def forward(self, chips: Tensor) -> Tensor:
        (out,) = self.net(chips * 255).values()
        return out


class MobileFaceNet(nn.Module):
    """MobileFaceNet: chips (N, 3, 112, 112) RGB in [0, 1] -> embeddings (N, 192); the
    model reads (x * 255 - 127.5) / 128. Declared for a batch of 2, replayed for any."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.net = TFLiteModule(path)

    def forward(self, chips: Tensor) -> Tensor:
        (out,) = self.net((chips * 255 - 127.5) / 128).values()
        return out


_WRAPPERS: dict[str, type[nn.Module]] = {"sface": SFace, "mobilefacenet": MobileFaceNet}


def load_face_recognizer(name: str, device: str | torch.device = "cpu") -> nn.Module:
    """Network ``name`` (sface, mobilefacenet) from its verified weights, frozen, in eval
    mode, on ``device``."""
    if name not in _WRAPPERS:
        raise ValueError(f"unknown face recognizer {name!r}; known: {', '.join(_WRAPPERS)}")
    model = _WRAPPERS[name](weight_path(name)).to(device).eval()
    return model.requires_grad_(False)
