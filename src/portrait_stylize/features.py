"""VGG feature extraction by layer name, with per-backbone input normalisation and calibration.

A Gram loss grows with the fourth power of the activation scale and a content loss with
the second, and backbones differ in scale by orders of magnitude (a Caffe-convention VGG
fed 0-255 against torchvision's [0,1]-normalised one), so a preset's weights only mean
what their authors meant on the network and input convention they were tuned on. The
``calibration`` of an extractor says how its activations are scaled (docs/backbones.md):

- ``none``: raw activations. The papers' own network and convention (Gatys, Xing et al.:
  the original Caffe VGG-19 fed 0-255) need nothing else.
- ``torchvision``: every layer scaled by the ratio of torchvision's input units to this
  backbone's (1 / (255 · 0.226) ≈ 1/57.7 for a Caffe-convention network fed 0-255), so a
  preset tuned on torchvision's VGG-19 (Crowson, paper 2) sees activations of the size it
  was tuned for.
- ``layer-mean``: following Gatys et al., who normalised VGG so that mean activations over
  natural images are 1, each layer's mean ReLU activation is measured once on natural
  images (cached beside the weights) and scaled to :data:`REFERENCE_ACTIVATION`.

The factors are folded into the convolutions, so calibration costs nothing per step.
"""

from __future__ import annotations

import contextlib
import json
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .files import atomic_output
from .nets.vgg import VGGTrunk
from .vocabulary import BACKBONES, CALIBRATIONS, DEFAULT_BACKBONE, BackboneSpec, layer_names
from .weights import cache_root, get_spec, load_state_dict

REFERENCE_ACTIVATION = 1 / 8
"""Mean activation every calibrated layer is scaled to (see the module docstring)."""
CALIBRATION_SIZE = 256
"""Long side (px) of the natural images on which activation means are measured."""


def torchvision_factor(spec: BackboneSpec) -> float:
    """Ratio of torchvision's input units to ``spec``'s: 1 for torchvision's own
    convention, 1 / (255 · 0.226) ≈ 0.0173 for a Caffe network fed 0-255."""

    def units(backbone: BackboneSpec) -> float:
        return backbone.input_scale / (sum(backbone.std) / 3)

    return units(BACKBONES["vgg19-imagenet"]) / units(spec)


def calibration_images() -> list[torch.Tensor]:
    """Natural photographs shipped with scikit-image, each (3, H, W) in [0, 1]."""
    from skimage import data

    images = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry"):
        array = np.asarray(getattr(data, name)(), dtype=np.float32) / 255.0
        images.append(torch.from_numpy(array).permute(2, 0, 1).contiguous())
    return images


class FeatureExtractor(nn.Module):
    """Calibrated VGG features of an RGB image.

    ``forward(image, layers)``: image (B, 3, H, W) RGB in [0, 1] -> dict layer name ->
    (B, C, h, w) activations times the layer's calibration scale. The scales are folded
    into the convolutions (:func:`fold_scales`), so calibration costs nothing per step.
    """

    def __init__(self, spec: BackboneSpec, trunk: VGGTrunk, scales: dict[str, float]) -> None:
        super().__init__()
        self.spec = spec
        self.trunk = fold_scales(trunk, scales).eval().requires_grad_(False)
        self.scales = scales
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1))

    def normalise(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> the trunk's input convention."""
        return (image * self.spec.input_scale - self.mean) / self.std

    def forward(
        self, image: torch.Tensor, layers: list[str] | tuple[str, ...]
    ) -> dict[str, torch.Tensor]:
        return self.trunk(self.normalise(image), layers)


@torch.no_grad()
def fold_scales(trunk: VGGTrunk, scales: dict[str, float]) -> VGGTrunk:
    """Scale ``trunk``'s convolutions in place so that every ReLU layer's output is
    multiplied by ``scales[layer]`` (missing layers: 1).

    ReLU and pooling commute with positive factors, so conv l gets weight x s_l / s_(l-1)
    and bias x s_l, where s_(l-1) is the scale of the ReLU feeding it (1 for the image).
    """
    previous = 1.0
    for name in trunk.names:
        if name.startswith("conv"):
            scale = scales.get(name.replace("conv", "relu"), 1.0)
            conv = cast(nn.Conv2d, trunk.layers[name])
            conv.weight.mul_(scale / previous)
            conv.bias.mul_(scale)
            previous = scale
    return trunk


def relu_layers(arch: str) -> list[str]:
    return [name for name in layer_names(arch) if name.startswith("relu")]


@torch.no_grad()
def measure_activation_means(extractor: FeatureExtractor) -> dict[str, float]:
    """Mean activation of every ReLU layer over :func:`calibration_images` at 256 px
    (of an uncalibrated extractor, for the raw means)."""
    layers = relu_layers(extractor.spec.arch)
    totals = dict.fromkeys(layers, 0.0)
    device = extractor.mean.device
    images = calibration_images()
    for image in images:
        h, w = image.shape[1:]
        size = (round(h * CALIBRATION_SIZE / max(h, w)), round(w * CALIBRATION_SIZE / max(h, w)))
        batch = F.interpolate(image[None], size=size, mode="bilinear", antialias=True)
        for name, act in extractor(batch.to(device), layers).items():
            totals[name] += act.mean().item() / len(images)
    return totals


def _activation_means(extractor: FeatureExtractor, key: str | None) -> dict[str, float]:
    """Raw activation means of uncalibrated ``extractor``, cached on disk under ``key``
    (None: measured, not cached). An unreadable cached file is measured again; a cache
    that cannot be written (read-only, full) only costs measuring again next time."""
    if key is None:
        return measure_activation_means(extractor)
    path = cache_root() / "calibration" / f"{key}.json"
    with contextlib.suppress(OSError, ValueError):
        return json.loads(path.read_text())
    means = measure_activation_means(extractor)
    with contextlib.suppress(OSError), atomic_output(path) as tmp:
        tmp.write_text(json.dumps(means, indent=1))
    return means


def build_extractor(
    backbone: str = DEFAULT_BACKBONE,
    *,
    pooling: str = "max",
    first_padding: str = "zeros",
    device: str | torch.device = "cpu",
    calibration: str = "none",
    state_dict: dict[str, torch.Tensor] | None = None,
) -> FeatureExtractor:
    """Build a backbone's extractor with ``calibration`` (one of :data:`CALIBRATIONS`, see the
    module docstring); weights come from the registry by default."""
    try:
        spec = BACKBONES[backbone]
    except KeyError:
        raise ValueError(
            f"unknown backbone {backbone!r}; choose from {sorted(BACKBONES)}"
        ) from None
    trunk = VGGTrunk(spec.arch, pooling=pooling, first_padding=first_padding)
    trunk.load_state_dict(state_dict if state_dict is not None else load_state_dict(spec.weights))
    if calibration not in CALIBRATIONS:
        raise ValueError(f"calibration must be one of {', '.join(CALIBRATIONS)}")
    raw = FeatureExtractor(spec, trunk, {}).to(device)
    if calibration == "none":
        return raw
    if calibration == "torchvision":
        scales = dict.fromkeys(relu_layers(spec.arch), torchvision_factor(spec))
        return FeatureExtractor(spec, raw.trunk, scales).to(device)
    key = None
    if state_dict is None:
        digest = get_spec(spec.weights).checksum[1]
        key = f"{spec.name}-{digest[:16]}-{pooling}-{first_padding}"
    means = _activation_means(raw, key)
    scales = {name: REFERENCE_ACTIVATION / mean for name, mean in means.items()}
    return FeatureExtractor(spec, raw.trunk, scales).to(device)
