"""dlib's face descriptor network (ResNet-29, Davis King 2017) in PyTorch, and a reader of
its ``.dat`` file.

The network of ``dlib_face_recognition_resnet_model_v1.dat`` (dlib's ``anet_type``): a 7x7
stride-2 conv and a 3x3 stride-2 max pool, then 14 residual blocks of two 3x3 convs (32,
64, 128, 256, 256 channels; the first block of each wider level strides by 2 and its skip
path is a 2x2 average pool), a global average and a 128-d linear map without bias. dlib's
``affine`` layers (its inference-time batch norm) are folded into the convs' biases here.
Where a block's two paths differ in size (channels, or a stride-2 conv without padding
against the pool's larger map), dlib adds them zero-padded at the end of each dimension,
as :func:`_add_padded` does.

Input: 150x150 face chips, RGB in [0, 1]; inside, ``(x * 255 - mean) / 256`` with dlib's
per-channel means (122.782, 117.001, 104.298). Descriptors of one person lie within a
Euclidean distance of 0.6 (dlib's threshold), unnormalised.

The ``.dat`` file is dlib's serialisation of the trained network object: nested layer
objects, each written as its type name (a length-prefixed string such as ``con_4``) and
its fields (dlib's variable-length integers, floats as mantissa and exponent, tensors as
four dimensions and raw little-endian float32), around training state this reader skips.
:func:`read_layers` walks the file from the input side, finding each layer by its name
and reading its fields; a tensor's data is skipped by its declared size, so a name is
never looked for inside weights.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "CHIP_SIZE",
    "DlibResNet",
    "Layer",
    "load_dlib",
    "read_layers",
    "state_dict_from_dat",
]

CHIP_SIZE = 150
"""Side of the face chips the network reads."""
MEAN = (122.782, 117.001, 104.298)
"""dlib's per-channel means (R, G, B) of its input layer, in 0-255 units."""
LEVELS = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))
"""(channels, residual blocks, whether the first one strides by 2), from the input side."""
_NAMES = (
    "input_rgb_image_sized",
    "con_4",
    "affine_",
    "relu_",
    "max_pool_2",
    "avg_pool_2",
    "add_prev_",
    "fc_2",
)
# A dlib string is its length (an integer of one byte: 0x01, then the byte) and its bytes.
_RECORD = re.compile(
    b"\x01(?:" + b"|".join(re.escape(bytes([len(n)]) + n.encode()) for n in _NAMES) + b")"
)


class Layer(NamedTuple):
    """One layer of a ``.dat`` file: its dlib type name and the fields this reader uses."""

    name: str
    fields: dict[str, Any]


class _Reader:
    """dlib's serialisation primitives over a byte string, from position ``pos``."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def integer(self) -> int:
        """A variable-length integer: a byte (bit 7 the sign, bits 0-3 the length), then
        the magnitude in that many little-endian bytes."""
        head = self.data[self.pos]
        size = head & 0x0F
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if head & 0x80 else value

    def real(self) -> float:
        """A float: mantissa and exponent integers (exponents 32000-32002: inf, -inf, nan)."""
        mantissa, exponent = self.integer(), self.integer()
        if exponent >= 32000:
            return {32000: math.inf, 32001: -math.inf}.get(exponent, math.nan)
        return math.ldexp(mantissa, exponent)

    def tensor(self) -> np.ndarray:
        """A tensor (version 2): num_samples, k, nr, nc, then raw little-endian float32."""
        version = self.integer()
        if version != 2:
            raise ValueError(f"dlib tensor version {version} at byte {self.pos}, expected 2")
        shape = tuple(self.integer() for _ in range(4))
        count = math.prod(shape)
        values = np.frombuffer(self.data, "<f4", count, self.pos).reshape(shape)
        self.pos += 4 * count
        return values


def read_layers(path: str | Path) -> list[Layer]:
    """The layers of a dlib ``.dat`` network, input side first, with their fields:
    convs (params, num_filters, nr, nc, stride, padding), affine (params), pools (nr, nc,
    stride, padding), fc (num_outputs, num_inputs, params), input (mean, size); relu and
    add_prev have none."""
    data = Path(path).read_bytes()
    reader = _Reader(data)
    layers: list[Layer] = []
    while match := _RECORD.search(data, reader.pos):
        name = data[match.start() + 2 : match.end()].decode()
        reader.pos = match.end()
        fields: dict[str, Any] = {}
        if name == "input_rgb_image_sized":
            fields["mean"] = tuple(reader.real() for _ in range(3))
            fields["size"] = (reader.integer(), reader.integer())
        elif name == "con_4":
            fields["params"] = reader.tensor()
            keys = ("num_filters", "nr", "nc", "stride_y", "stride_x", "pad_y", "pad_x")
            fields.update((key, reader.integer()) for key in keys)
        elif name == "affine_":
            fields["params"] = reader.tensor()
        elif name in ("max_pool_2", "avg_pool_2"):
            keys = ("nr", "nc", "stride_y", "stride_x", "pad_y", "pad_x")
            fields.update((key, reader.integer()) for key in keys)
        elif name == "fc_2":
            fields["num_outputs"], fields["num_inputs"] = reader.integer(), reader.integer()
            fields["params"] = reader.tensor()
        layers.append(Layer(name, fields))
    return layers


def _expected_layers() -> list[str]:
    """The layer names of :data:`LEVELS`' network, input side first."""
    names = ["input_rgb_image_sized", "con_4", "affine_", "relu_", "max_pool_2"]
    for _, blocks, first_down in LEVELS:
        for block in range(blocks):
            down = first_down and block == 0
            names += ["con_4", "affine_", "relu_", "con_4", "affine_"]
            names += ["avg_pool_2", "add_prev_", "relu_"] if down else ["add_prev_", "relu_"]
    return [*names, "avg_pool_2", "fc_2"]


def state_dict_from_dat(path: str | Path) -> dict[str, Tensor]:
    """The :class:`DlibResNet` state dict of a dlib face-recognition ``.dat`` file: each
    conv with its affine layer folded in (``weight`` (out, in, k, k), ``bias`` (out,)), and
    ``fc.weight`` (128, 256). Raises ValueError when the file holds another network."""
    layers = read_layers(path)
    names = [layer.name for layer in layers]
    if names != _expected_layers():
        raise ValueError(f"{Path(path).name} is not dlib's ResNet face descriptor network")
    (source,) = (layer.fields for layer in layers if layer.name == "input_rgb_image_sized")
    if source["size"] != (CHIP_SIZE, CHIP_SIZE) or not np.allclose(source["mean"], MEAN):
        raise ValueError(f"{Path(path).name}: input {source}, expected 150x150 with {MEAN}")
    convs = [layer.fields for layer in layers if layer.name == "con_4"]
    downs = [first and block == 0 for _, count, first in LEVELS for block in range(count)]
    expected = [(7, 2, 0)]
    for down in downs:  # (kernel, stride, padding) of each block's two convs
        expected += [(3, 2, 0) if down else (3, 1, 1), (3, 1, 1)]
    found = [(c["nr"], c["stride_y"], c["pad_y"]) for c in convs]
    if found != expected or any(
        (c["nr"], c["stride_y"], c["pad_y"]) != (c["nc"], c["stride_x"], c["pad_x"]) for c in convs
    ):
        raise ValueError(f"{Path(path).name}: conv kernels, strides or paddings differ from dlib's")
    affines = [layer.fields["params"].reshape(-1) for layer in layers if layer.name == "affine_"]
    keys = [f"blocks.{i // 2}.conv{i % 2 + 1}" for i in range(len(convs) - 1)]
    state: dict[str, Tensor] = {}
    for key, conv, affine in zip(["stem", *keys], convs, affines, strict=True):
        out, kernel = conv["num_filters"], (conv["nr"], conv["nc"])
        params = conv["params"].reshape(-1)
        weight = params[: params.size - out].reshape(out, -1, *kernel)
        gamma, beta = affine[:out], affine[out:]
        state[f"{key}.weight"] = torch.from_numpy(weight * gamma[:, None, None, None])
        state[f"{key}.bias"] = torch.from_numpy(params[params.size - out :] * gamma + beta)
    (fc,) = (layer.fields for layer in layers if layer.name == "fc_2")
    matrix = fc["params"].reshape(fc["num_inputs"], fc["num_outputs"])
    state["fc.weight"] = torch.from_numpy(np.ascontiguousarray(matrix.T))
    return state


def _add_padded(a: Tensor, b: Tensor) -> Tensor:
    """dlib's add_prev: a + b (N, C, H, W) each zero-padded at the end of every dimension
    to the larger of the two."""
    if a.shape == b.shape:
        return a + b
    size = [max(p, q) for p, q in zip(a.shape[1:], b.shape[1:], strict=True)]

    def grown(x: Tensor) -> Tensor:
        c, h, w = x.shape[1:]
        return F.pad(x, (0, size[2] - w, 0, size[1] - h, 0, size[0] - c))

    return grown(a) + grown(b)


class _Block(nn.Module):
    """Two 3x3 convs (affine folded, ReLU between) plus the input, or its 2x2 average when
    the first conv strides by 2 (unpadded, as dlib's stride-2 convs are); ReLU after."""

    def __init__(self, cin: int, cout: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        return F.relu(_add_padded(y, F.avg_pool2d(x, 2) if self.down else x))


class DlibResNet(nn.Module):
    """dlib's face descriptor: chips (N, 3, 150, 150) RGB in [0, 1] -> descriptors (N, 128)
    (unnormalised; same person within Euclidean 0.6)."""

    mean: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 7, stride=2)
        blocks = []
        cin = 32
        for channels, count, first_down in LEVELS:
            for block in range(count):
                blocks.append(_Block(cin, channels, first_down and block == 0))
                cin = channels
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, 128, bias=False)
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)

    def forward(self, chips: Tensor) -> Tensor:
        x = (chips * 255 - self.mean) / 256
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        return self.fc(self.blocks(x).mean(dim=(2, 3)))


def load_dlib(
    device: str | torch.device = "cpu", local_file: str | Path | None = None
) -> DlibResNet:
    """The verified dlib face descriptor network, frozen, in eval mode, on ``device``."""
    from portrait_stylize.weights import load_state_dict

    model = DlibResNet()
    model.load_state_dict(load_state_dict("dlib", local_file))
    return model.eval().requires_grad_(False).to(device)
