"""VGG-16/19 convolutional trunks with named layers, and their weight converters."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

from ..vocabulary import VGG_BLOCKS, layer_names


def _torchvision_indices(arch: str) -> dict[str, int]:
    """Position of each conv layer in torchvision's ``features`` Sequential."""
    return {name: i for i, name in enumerate(layer_names(arch)) if name.startswith("conv")}


class VGGTrunk(nn.Module):
    """The convolutional part of VGG with named layers.

    ``forward(x, layers)`` runs only as deep as the deepest requested layer.
    Input (B, 3, H, W) already normalised for the weights; output dict name -> (B, C, h, w).
    """

    def __init__(
        self, arch: str = "vgg16", pooling: str = "max", first_padding: str = "zeros"
    ) -> None:
        super().__init__()
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', not {pooling!r}")
        self.arch = arch
        self.names = layer_names(arch)
        modules: dict[str, nn.Module] = {}
        in_channels = 3
        for block, widths in enumerate(VGG_BLOCKS[arch], start=1):
            for index, width in enumerate(widths, start=1):
                padding_mode = first_padding if (block, index) == (1, 1) else "zeros"
                modules[f"conv{block}_{index}"] = nn.Conv2d(
                    in_channels, width, 3, padding=1, padding_mode=padding_mode
                )
                modules[f"relu{block}_{index}"] = nn.ReLU(inplace=False)
                in_channels = width
            pool: nn.Module = nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2)
            modules[f"pool{block}"] = pool
        self.layers = nn.ModuleDict(modules)

    def forward(
        self, x: torch.Tensor, layers: list[str] | tuple[str, ...]
    ) -> dict[str, torch.Tensor]:
        wanted = set(layers)
        unknown = wanted - set(self.names)
        if unknown:
            raise KeyError(f"unknown {self.arch} layers: {sorted(unknown)}")
        deepest = max(self.names.index(name) for name in wanted)
        out: dict[str, torch.Tensor] = {}
        for name in self.names[: deepest + 1]:
            x = self.layers[name](x)
            if name in wanted:
                out[name] = x
        return out


def _trunk_state_dict(arch: str, convs: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict:
    state = {}
    for name in _torchvision_indices(arch):
        weight, bias = convs[name]
        state[f"layers.{name}.weight"] = weight
        state[f"layers.{name}.bias"] = bias
    return state


def _bgr_to_rgb_first_conv(convs: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Flip conv1_1's input channels in place so a BGR-trained trunk takes RGB."""
    weight, bias = convs["conv1_1"]
    convs["conv1_1"] = (weight.flip(1).contiguous(), bias)


def vgg16_state_dict_from_hed_h5(path: Path) -> dict[str, torch.Tensor]:
    """Read the VGG-16 trunk of HED's Keras weights (h5py only) as a trunk state dict.

    Kernels are HWIO and expect BGR input; the first conv's input channels are
    flipped so the trunk takes RGB (still 0-255 minus the Caffe mean).
    """
    convs = {}
    with h5py.File(path, "r") as h5:
        for block, widths in enumerate(VGG_BLOCKS["vgg16"], start=1):
            for index in range(1, len(widths) + 1):
                suffix = "" if index == 1 else f"_{index - 1}"
                group = h5[f"block{block}/layers/conv2d{suffix}/vars"]
                kernel = np.asarray(group["0"], dtype=np.float32).transpose(3, 2, 0, 1)
                bias = np.asarray(group["1"], dtype=np.float32)
                convs[f"conv{block}_{index}"] = (
                    torch.from_numpy(np.ascontiguousarray(kernel)),
                    torch.from_numpy(bias),
                )
    _bgr_to_rgb_first_conv(convs)
    return _trunk_state_dict("vgg16", convs)


def vgg19_state_dict_from_codebook(path: Path) -> dict[str, torch.Tensor]:
    """Decode the 8-bit codebook file of the original (Caffe-trained) VGG-19.

    The file is a ``torch.save`` dictionary with, per conv ``block{b}_conv{i}``: ``_W_q``
    (uint8 indices, out x in x 3 x 3), ``_W_table`` (256 float32 centroids) and ``_b``
    (float32 bias); weight = table[index]. Kernels expect BGR input; conv1_1 is flipped
    to take RGB (still 0-255 minus the Caffe mean).
    """
    packed = torch.load(path, map_location="cpu", weights_only=True)
    convs = {}
    for block, widths in enumerate(VGG_BLOCKS["vgg19"], start=1):
        for index in range(1, len(widths) + 1):
            key = f"block{block}_conv{index}"
            indices, table = packed[f"{key}_W_q"], packed[f"{key}_W_table"]
            if indices.dtype != torch.uint8 or table.shape != (256,):
                raise ValueError(f"{path}: {key} is not an 8-bit codebook layer")
            weight = table.float()[indices.long()]
            convs[f"conv{block}_{index}"] = (weight, packed[f"{key}_b"].float())
    _bgr_to_rgb_first_conv(convs)
    return _trunk_state_dict("vgg19", convs)


def vgg19_state_dict_from_keras_h5(path: Path) -> dict[str, torch.Tensor]:
    """Read Keras' full-precision VGG-19 (``..._notop.h5``, the original Caffe weights,
    BGR) with h5py: per layer ``block{b}_conv{i}`` a kernel (HWIO) and a bias, named
    ``*_W_1:0``/``*_b_1:0`` or ``kernel:0``/``bias:0`` depending on the Keras version."""
    convs = {}
    with h5py.File(path, "r") as h5:
        for block, widths in enumerate(VGG_BLOCKS["vgg19"], start=1):
            for index in range(1, len(widths) + 1):
                key = f"block{block}_conv{index}"
                arrays: list[np.ndarray] = []
                h5[key].visititems(
                    lambda _name, item, found=arrays: (
                        found.append(np.asarray(item)) if isinstance(item, h5py.Dataset) else None
                    )
                )
                kernel = next(a for a in arrays if a.ndim == 4).astype(np.float32)
                bias = next(a for a in arrays if a.ndim == 1).astype(np.float32)
                convs[f"conv{block}_{index}"] = (
                    torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))),
                    torch.from_numpy(bias),
                )
    _bgr_to_rgb_first_conv(convs)
    return _trunk_state_dict("vgg19", convs)


def vgg_state_dict_from_torchvision(path: Path) -> dict[str, torch.Tensor]:
    """Map a torchvision VGG-16/19 checkpoint (``features.N.*``) to trunk names."""
    source = torch.load(path, map_location="cpu", weights_only=True)
    n_convs = sum(1 for key in source if key.startswith("features.") and key.endswith(".weight"))
    arch = {13: "vgg16", 16: "vgg19"}.get(n_convs)
    if arch is None:
        raise ValueError(f"{path}: {n_convs} conv layers, expected a VGG-16 (13) or VGG-19 (16)")
    convs = {
        name: (source[f"features.{i}.weight"], source[f"features.{i}.bias"])
        for name, i in _torchvision_indices(arch).items()
    }
    return _trunk_state_dict(arch, convs)
