"""Pretrained networks loaded once per process and device, frozen, shared by every caller."""

from __future__ import annotations

import functools

from torch import nn

from .nets.facenet import InceptionResnetV1, load_facenet
from .nets.magenta import StylePredictor, StyleTransformer, load_magenta
from .nets.mediapipe import load_mediapipe
from .nets.mtcnn import MTCNN, load_mtcnn


@functools.lru_cache(maxsize=4)
def mtcnn(device: str) -> MTCNN:
    """The MTCNN cascade on ``device``."""
    return load_mtcnn(device)


@functools.lru_cache(maxsize=8)
def mediapipe(name: str, device: str) -> nn.Module:
    """MediaPipe network ``name`` (facemesh, blazeface, selfie-segmentation...) on ``device``."""
    return load_mediapipe(name, device)


@functools.lru_cache(maxsize=4)
def facenet(name: str, device: str, replicate_pad: bool = False) -> InceptionResnetV1:
    """FaceNet ``name`` on ``device``; ``replicate_pad`` pads its first conv (paper 2's loss)."""
    return load_facenet(name, device, replicate_pad=replicate_pad)


@functools.lru_cache(maxsize=4)
def magenta(device: str) -> tuple[StylePredictor, StyleTransformer]:
    """Magenta's arbitrary stylization pair (style prediction, transformer) on ``device``."""
    return load_magenta(device)
