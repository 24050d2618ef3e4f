"""Pretrained networks loaded once per process and device, frozen, shared by every caller.

The first call for a network and device loads (and verifies) its weights; later calls,
from any thread, return the same module, so a second run in a process loads and hashes
nothing. Inside :func:`tracking` every network asked for is noted (for the run record,
whether loaded now or earlier) and a load announces itself as a
:class:`~portrait_stylize.events.WeightsLoading` event.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from torch import nn

from .events import Event, WeightsLoading
from .features import BACKBONES, FeatureExtractor, build_extractor
from .nets.dlib import load_dlib
from .nets.facenet import InceptionResnetV1, load_facenet
from .nets.facerec import load_face_recognizer
from .nets.magenta import WEIGHTS as MAGENTA_WEIGHTS
from .nets.magenta import StylePredictor, StyleTransformer, load_magenta
from .nets.mediapipe import load_mediapipe
from .nets.modnet import WEIGHTS as MODNET_WEIGHTS
from .nets.modnet import MODNet, load_modnet
from .nets.mtcnn import MTCNN, STAGES, load_mtcnn

T = TypeVar("T")
_CACHE: dict[tuple[Any, ...], Any] = {}
_LOCK = threading.RLock()


class _Usage:
    """The networks one run asked for (registry names, in order) and where its events go."""

    def __init__(self, notify: Callable[[Event], None]) -> None:
        self.names: list[str] = []
        self.notify = notify


_RUN: ContextVar[_Usage | None] = ContextVar("portrait_stylize_run", default=None)


@contextmanager
def tracking(notify: Callable[[Event], None] = lambda event: None) -> Iterator[list[str]]:
    """Note the registry names of every network used in this context (the yielded list)
    and send :class:`~portrait_stylize.events.WeightsLoading` events to ``notify``."""
    usage = _Usage(notify)
    token = _RUN.set(usage)
    try:
        yield usage.names
    finally:
        _RUN.reset(token)


def _warm(key: tuple[Any, ...], names: tuple[str, ...], device: str, load: Callable[[], T]) -> T:
    """The cached network under ``key``, loaded by ``load()`` on the first call."""
    usage = _RUN.get()
    if usage is not None:
        usage.names.extend(name for name in names if name not in usage.names)
    with _LOCK:  # one load at a time: two threads asking for one network load it once
        if key not in _CACHE:
            if usage is not None:
                usage.notify(WeightsLoading(names, device))
            _CACHE[key] = load()
        return _CACHE[key]


def extractor(
    backbone: str, pooling: str, first_padding: str, calibration: str, device: str
) -> FeatureExtractor:
    """The calibrated VGG feature extractor ``backbone`` on ``device``."""
    return _warm(
        ("extractor", backbone, pooling, first_padding, calibration, device),
        (BACKBONES[backbone].weights,),
        device,
        lambda: build_extractor(
            backbone,
            pooling=pooling,
            first_padding=first_padding,
            device=device,
            calibration=calibration,
        ),
    )


def mtcnn(device: str) -> MTCNN:
    """The MTCNN cascade on ``device``."""
    names = tuple(f"mtcnn-{stage}" for stage in STAGES)
    return _warm(("mtcnn", device), names, device, lambda: load_mtcnn(device))


def mediapipe(name: str, device: str) -> nn.Module:
    """MediaPipe network ``name`` (facemesh, blazeface, selfie-segmentation...) on ``device``."""
    return _warm(("mediapipe", name, device), (name,), device, lambda: load_mediapipe(name, device))


def facenet(name: str, device: str, replicate_pad: bool = False) -> InceptionResnetV1:
    """FaceNet ``name`` on ``device``; ``replicate_pad`` pads its first conv (paper 2's loss)."""
    return _warm(
        ("facenet", name, device, replicate_pad),
        (name,),
        device,
        lambda: load_facenet(name, device, replicate_pad=replicate_pad),
    )


def face_recognizer(name: str, device: str) -> nn.Module:
    """A face-recognition network of another family than FaceNet on ``device``: ``sface``,
    ``mobilefacenet`` (ArcFace-aligned 112 px chips) or ``dlib`` (150 px chips); each maps
    chips (N, 3, S, S) in [0, 1] to embeddings (N, D)."""
    if name == "dlib":
        return _warm(("dlib", device), (name,), device, lambda: load_dlib(device))
    return _warm(
        ("face_recognizer", name, device),
        (name,),
        device,
        lambda: load_face_recognizer(name, device),
    )


def magenta(device: str) -> tuple[StylePredictor, StyleTransformer]:
    """Magenta's arbitrary stylization pair (style prediction, transformer) on ``device``."""
    return _warm(("magenta", device), MAGENTA_WEIGHTS, device, lambda: load_magenta(device))


def modnet(device: str) -> MODNet:
    """MODNet portrait matting on ``device``: images (B, 3, H, W) -> alpha (B, 1, H, W)."""
    return _warm(("modnet", device), (MODNET_WEIGHTS,), device, lambda: load_modnet(device))
