"""Shared fixtures: the real photos and paintings, small random-weight networks.

Real images come from ``examples/`` (public domain, committed) or else from
``../shared/data`` beside the checkout (``$PORTRAIT_STYLIZE_SHARED_DATA`` moves it, e.g.
to a missing folder to see which tests a fresh clone skips).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from portrait_stylize.features import BACKBONES, FeatureExtractor, relu_layers
from portrait_stylize.nets.vgg import VGGTrunk
from portrait_stylize.weights import WeightsError, weight_path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SHARED_DATA = Path(os.environ.get("PORTRAIT_STYLIZE_SHARED_DATA", ROOT.parent / "shared" / "data"))
CONTENT = SHARED_DATA / "content"
needs_photos = pytest.mark.skipif(
    not CONTENT.is_dir(), reason=f"shared test photos not found at {CONTENT}"
)


def weights_or_skip(name: str) -> Path:
    """The verified file of weights ``name``; the test is skipped when it cannot be had."""
    try:
        return weight_path(name)
    except WeightsError as exc:
        pytest.skip(f"weights {name!r} unavailable: {exc}")


def data_file(kind: str, name: str) -> Path:
    """Path of real test image ``name`` ("content" or "style" ``kind``): examples/NAME when
    committed there, else ../shared/data/KIND/NAME; skips the test when neither exists."""
    shared = SHARED_DATA / kind / name
    for path in (EXAMPLES / name, shared):
        if path.is_file():
            return path
    pytest.skip(f"real test image {shared} is absent (../shared/data lies beside the repo)")


@pytest.fixture
def tiny_extractor() -> FeatureExtractor:
    """A random-weight VGG-16 extractor (seeded), uncalibrated: for plumbing tests."""
    torch.manual_seed(0)
    trunk = VGGTrunk("vgg16")
    return FeatureExtractor(BACKBONES["vgg16-hed"], trunk, dict.fromkeys(relu_layers("vgg16"), 1.0))


@pytest.fixture
def pair(tmp_path) -> tuple[Path, Path]:
    """A small content and style image."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:40, 0:48]
    content = np.stack([x * 5, y * 6, 128 + 0 * x], axis=2).astype(np.uint8)
    Image.fromarray(content).save(tmp_path / "content.png")
    style = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(style).save(tmp_path / "style.jpg")
    return tmp_path / "content.png", tmp_path / "style.jpg"
