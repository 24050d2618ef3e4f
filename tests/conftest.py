"""Shared fixtures: the real photos beside the repo, small random-weight networks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from portrait_stylize.features import BACKBONES, FeatureExtractor, relu_layers
from portrait_stylize.nets.vgg import VGGTrunk

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CONTENT = SHARED_DATA / "content"
needs_photos = pytest.mark.skipif(
    not CONTENT.is_dir(), reason=f"shared test photos not found at {CONTENT}"
)


def shared_image(kind: str, name: str) -> Path:
    """Path of a real test image in ../shared/data, or skip the test when it is absent."""
    path = SHARED_DATA / kind / name
    if not path.is_file():
        pytest.skip(f"real test image {path} is absent (../shared/data lies beside the repo)")
    return path


@pytest.fixture
def tiny_extractor() -> FeatureExtractor:
    """A random-weight VGG-16 extractor (seeded), uncalibrated: for plumbing tests."""
    torch.manual_seed(0)
    trunk = VGGTrunk("vgg16")
    return FeatureExtractor(BACKBONES["vgg16-hed"], trunk, dict.fromkeys(relu_layers("vgg16"), 1.0))
