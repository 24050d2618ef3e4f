"""FaceNet Inception-ResNet-v1 (Szegedy et al. 2016; Schroff et al. 2015) in PyTorch.

Batch norm is folded into the convolutions: every conv unit is a conv with a bias
followed by ReLU, so the module holds only convs and one linear bottleneck. Input is
RGB in [0, 1] at 160x160; the fixed standardisation ``(x*255 - 127.5)/128`` of the
2018 models (or the per-image "prewhitening" of the 2017 ones) happens inside.

Weight converters read three published copies of the same architecture:

- a frozen TensorFlow GraphDef (``.pb``), parsed here without TensorFlow;
- a Keras H5 file (read with ``h5py``);
- a facenet-pytorch state dict.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "TAPS",
    "InceptionResnetV1",
    "load_facenet",
    "state_dict_from_facenet_pytorch",
    "state_dict_from_graphdef",
    "state_dict_from_keras_h5",
]

Standardization = Literal["fixed", "prewhiten"]

#: Feature taps in network order; ``features`` stops at the deepest one requested.
TAPS = (
    "conv_1a",
    "conv_2a",
    "conv_2b",
    "maxpool_3a",
    "conv_3b",
    "conv_4a",
    "conv_4b",
    "block35",
    "reduction_a",
    "block17",
    "reduction_b",
    "block8",
    "embedding",
)

_BN_EPS = 1e-3  # TF-slim / Keras batch-norm epsilon of every FaceNet release
_N35, _N17, _N8 = 5, 10, 5  # residual blocks per stage (the last Block8 is separate)


class ConvUnit(nn.Conv2d):
    """Conv (batch norm folded into its bias) followed by ReLU."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(super().forward(x))


def _unit(cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1) -> ConvUnit:
    """A conv unit with TF "SAME" padding for stride 1 and "VALID" for stride 2."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    padding = (kh // 2, kw // 2) if stride == 1 else (0, 0)
    return ConvUnit(cin, cout, (kh, kw), stride=stride, padding=padding)


class Block35(nn.Module):
    """Inception-ResNet-A on a 256-channel 17x17 map."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.branch0 = _unit(256, 32, 1)
        self.branch1 = nn.Sequential(_unit(256, 32, 1), _unit(32, 32, 3))
        self.branch2 = nn.Sequential(_unit(256, 32, 1), _unit(32, 32, 3), _unit(32, 32, 3))
        self.up = nn.Conv2d(96, 256, 1)

    def forward(self, x: Tensor) -> Tensor:
        mixed = torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1)
        return F.relu(x + self.scale * self.up(mixed))


class Block17(nn.Module):
    """Inception-ResNet-B on an 896-channel 8x8 map."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.branch0 = _unit(896, 128, 1)
        self.branch1 = nn.Sequential(
            _unit(896, 128, 1), _unit(128, 128, (1, 7)), _unit(128, 128, (7, 1))
        )
        self.up = nn.Conv2d(256, 896, 1)

    def forward(self, x: Tensor) -> Tensor:
        mixed = torch.cat([self.branch0(x), self.branch1(x)], 1)
        return F.relu(x + self.scale * self.up(mixed))


class Block8(nn.Module):
    """Inception-ResNet-C on a 1792-channel 3x3 map (the last one has no ReLU)."""

    def __init__(self, scale: float, relu: bool = True) -> None:
        super().__init__()
        self.scale = scale
        self.relu = relu
        self.branch0 = _unit(1792, 192, 1)
        self.branch1 = nn.Sequential(
            _unit(1792, 192, 1), _unit(192, 192, (1, 3)), _unit(192, 192, (3, 1))
        )
        self.up = nn.Conv2d(384, 1792, 1)

    def forward(self, x: Tensor) -> Tensor:
        mixed = torch.cat([self.branch0(x), self.branch1(x)], 1)
        out = x + self.scale * self.up(mixed)
        return F.relu(out) if self.relu else out


class ReductionA(nn.Module):
    """Mixed_6a: 256x17x17 -> 896x8x8."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = _unit(256, 384, 3, stride=2)
        self.branch1 = nn.Sequential(
            _unit(256, 192, 1), _unit(192, 192, 3), _unit(192, 256, 3, stride=2)
        )

    def forward(self, x: Tensor) -> Tensor:
        pooled = F.max_pool2d(x, 3, 2)
        return torch.cat([self.branch0(x), self.branch1(x), pooled], 1)


class ReductionB(nn.Module):
    """Mixed_7a: 896x8x8 -> 1792x3x3."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = nn.Sequential(_unit(896, 256, 1), _unit(256, 384, 3, stride=2))
        self.branch1 = nn.Sequential(_unit(896, 256, 1), _unit(256, 256, 3, stride=2))
        self.branch2 = nn.Sequential(
            _unit(896, 256, 1), _unit(256, 256, 3), _unit(256, 256, 3, stride=2)
        )

    def forward(self, x: Tensor) -> Tensor:
        pooled = F.max_pool2d(x, 3, 2)
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), pooled], 1)


class InceptionResnetV1(nn.Module):
    """FaceNet Inception-ResNet-v1 returning L2-normalised embeddings.

    Args:
        embedding_dim: 512 (2018 models) or 128 (2017 models).
        standardization: ``"fixed"`` (x*255 - 127.5)/128, used by the 2018 models, or
            ``"prewhiten"`` (per-image zero mean, unit variance), used by the 2017 ones.
        replicate_pad: pad the first conv's input by one replicated pixel, as paper 2's
            loss intends (its reference sets ``padding_mode="replicate"`` on a conv
            without padding, where it does nothing). conv_1a then reads every pixel,
            on a grid shifted by one, and conv_1a/conv_2a grow to 80x80/78x78 at 160 px.
            Off by default, which matches the original network.
    """

    def __init__(
        self,
        embedding_dim: int = 512,
        standardization: Standardization = "fixed",
        replicate_pad: bool = False,
    ) -> None:
        super().__init__()
        if standardization not in ("fixed", "prewhiten"):
            raise ValueError(f"unknown standardization {standardization!r}")
        self.standardization = standardization
        padding = 1 if replicate_pad else 0
        self.conv_1a = ConvUnit(3, 32, 3, stride=2, padding=padding, padding_mode="replicate")
        self.conv_2a = ConvUnit(32, 32, 3)
        self.conv_2b = _unit(32, 64, 3)
        self.maxpool_3a = nn.MaxPool2d(3, 2)
        self.conv_3b = _unit(64, 80, 1)
        self.conv_4a = ConvUnit(80, 192, 3)
        self.conv_4b = _unit(192, 256, 3, stride=2)
        self.block35 = nn.Sequential(*(Block35(0.17) for _ in range(_N35)))
        self.reduction_a = ReductionA()
        self.block17 = nn.Sequential(*(Block17(0.10) for _ in range(_N17)))
        self.reduction_b = ReductionB()
        self.block8 = nn.Sequential(*(Block8(0.20) for _ in range(_N8)))
        self.block8_final = Block8(1.0, relu=False)
        self.bottleneck = nn.Linear(1792, embedding_dim)

    def standardize(self, x: Tensor) -> Tensor:
        """(B,3,H,W) RGB in [0,1] -> the network's input range."""
        if self.standardization == "fixed":
            return (x * 255.0 - 127.5) / 128.0
        x = x * 255.0
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True, correction=0)
        return (x - mean) / std.clamp_min(1.0 / x[0].numel() ** 0.5)

    def _embed(self, x: Tensor) -> Tensor:
        x = self.block8_final(x)
        x = self.bottleneck(x.mean(dim=(2, 3)))
        return F.normalize(x, dim=1, eps=1e-5)

    def _stages(self) -> Iterator[tuple[str, nn.Module]]:
        yield "conv_1a", self.conv_1a
        yield "conv_2a", self.conv_2a
        yield "conv_2b", self.conv_2b
        yield "maxpool_3a", self.maxpool_3a
        yield "conv_3b", self.conv_3b
        yield "conv_4a", self.conv_4a
        yield "conv_4b", self.conv_4b
        yield "block35", self.block35
        yield "reduction_a", self.reduction_a
        yield "block17", self.block17
        yield "reduction_b", self.reduction_b
        yield "block8", self.block8

    def features(self, x: Tensor, taps: tuple[str, ...] | list[str]) -> dict[str, Tensor]:
        """Activations at ``taps`` (names from :data:`TAPS`) for x (B,3,160,160) in [0,1].

        Convolutional taps are post-ReLU maps (B,C,h,w), e.g. conv_1a (B,32,79,79),
        conv_2a (B,32,77,77), maxpool_3a (B,64,38,38), conv_4a (B,192,36,36),
        conv_4b (B,256,17,17); "embedding" is (B,D). Computation stops at the deepest tap.
        """
        unknown = set(taps) - set(TAPS)
        if unknown:
            raise ValueError(f"unknown taps {sorted(unknown)}; known: {', '.join(TAPS)}")
        wanted = set(taps)
        out: dict[str, Tensor] = {}
        x = self.standardize(x)
        for name, stage in self._stages():
            if len(out) == len(wanted):
                return out
            x = stage(x)
            if name in wanted:
                out[name] = x
        if "embedding" in wanted:
            out["embedding"] = self._embed(x)
        return out

    def forward(self, x: Tensor) -> Tensor:
        """x (B,3,160,160) RGB in [0,1] -> L2-normalised embeddings (B,D)."""
        return self.features(x, ("embedding",))["embedding"]


# --- converters ----------------------------------------------------------------------


def _conv_scopes() -> list[tuple[str, str, bool]]:
    """(module name, TF scope under InceptionResnetV1, has batch norm) for every conv."""
    scopes = [
        ("conv_1a", "Conv2d_1a_3x3", True),
        ("conv_2a", "Conv2d_2a_3x3", True),
        ("conv_2b", "Conv2d_2b_3x3", True),
        ("conv_3b", "Conv2d_3b_1x1", True),
        ("conv_4a", "Conv2d_4a_3x3", True),
        ("conv_4b", "Conv2d_4b_3x3", True),
    ]

    def block(module: str, tf: str, branches: list[list[str]]) -> None:
        for b, convs in enumerate(branches):
            for j, conv in enumerate(convs):
                suffix = f".{j}" if len(convs) > 1 else ""
                scopes.append((f"{module}.branch{b}{suffix}", f"{tf}/Branch_{b}/{conv}", True))
        scopes.append((f"{module}.up", f"{tf}/Conv2d_1x1", False))

    for i in range(_N35):
        block(
            f"block35.{i}",
            f"Repeat/block35_{i + 1}",
            [
                ["Conv2d_1x1"],
                ["Conv2d_0a_1x1", "Conv2d_0b_3x3"],
                ["Conv2d_0a_1x1", "Conv2d_0b_3x3", "Conv2d_0c_3x3"],
            ],
        )
    scopes += [
        ("reduction_a.branch0", "Mixed_6a/Branch_0/Conv2d_1a_3x3", True),
        ("reduction_a.branch1.0", "Mixed_6a/Branch_1/Conv2d_0a_1x1", True),
        ("reduction_a.branch1.1", "Mixed_6a/Branch_1/Conv2d_0b_3x3", True),
        ("reduction_a.branch1.2", "Mixed_6a/Branch_1/Conv2d_1a_3x3", True),
    ]
    for i in range(_N17):
        block(
            f"block17.{i}",
            f"Repeat_1/block17_{i + 1}",
            [["Conv2d_1x1"], ["Conv2d_0a_1x1", "Conv2d_0b_1x7", "Conv2d_0c_7x1"]],
        )
    for b, convs in enumerate(
        [
            ["Conv2d_0a_1x1", "Conv2d_1a_3x3"],
            ["Conv2d_0a_1x1", "Conv2d_1a_3x3"],
            ["Conv2d_0a_1x1", "Conv2d_0b_3x3", "Conv2d_1a_3x3"],
        ]
    ):
        for j, conv in enumerate(convs):
            scopes.append((f"reduction_b.branch{b}.{j}", f"Mixed_7a/Branch_{b}/{conv}", True))
    block8_branches = [["Conv2d_1x1"], ["Conv2d_0a_1x1", "Conv2d_0b_1x3", "Conv2d_0c_3x1"]]
    for i in range(_N8):
        block(f"block8.{i}", f"Repeat_2/block8_{i + 1}", block8_branches)
    block("block8_final", "Block8", block8_branches)
    return scopes


def _fold_bn(
    weight: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray, gamma: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fold y = gamma (Wx - mean) / sqrt(var + eps) + beta into W', b' (output axis 0)."""
    factor = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + _BN_EPS)
    shape = (-1,) + (1,) * (weight.ndim - 1)
    folded = weight.astype(np.float64) * factor.reshape(shape)
    return folded, beta.astype(np.float64) - mean.astype(np.float64) * factor


def _to_tensors(arrays: dict[str, np.ndarray]) -> dict[str, Tensor]:
    return {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in arrays.items()}


def _hwio(kernel: np.ndarray) -> np.ndarray:
    """TF/Keras conv kernel (H,W,I,O) -> PyTorch (O,I,H,W)."""
    return kernel.transpose(3, 2, 0, 1)


def _graphdef_constants(path: Path) -> dict[str, np.ndarray]:
    """Every float Const node of a frozen GraphDef: node name -> array.

    Parsed with the protobuf classes of TensorFlow's GraphDef that tensorboardX ships.
    """
    from tensorboardX.proto import graph_pb2, types_pb2

    graph = graph_pb2.GraphDef()
    graph.ParseFromString(Path(path).read_bytes())
    constants: dict[str, np.ndarray] = {}
    for node in graph.node:
        tensor = node.attr["value"].tensor if node.op == "Const" else None
        if tensor is None or tensor.dtype != types_pb2.DT_FLOAT:
            continue
        shape = [dim.size for dim in tensor.tensor_shape.dim]
        if tensor.tensor_content:
            array = np.frombuffer(tensor.tensor_content, dtype="<f4")
        else:  # a short float_val list; TF repeats its last value to fill the shape
            values = np.asarray(tensor.float_val, dtype=np.float32)
            array = np.full(int(np.prod(shape)), values[-1] if len(values) else 0, np.float32)
            array[: len(values)] = values
        constants[node.name] = array.reshape(shape)
    return constants


def state_dict_from_graphdef(path: str | Path) -> dict[str, Tensor]:
    """Frozen TF GraphDef of davidsandberg's FaceNet (BN folded) -> state dict."""
    consts = _graphdef_constants(Path(path))
    root = "InceptionResnetV1/"
    out: dict[str, np.ndarray] = {}
    for module, scope, has_bn in _conv_scopes():
        out[f"{module}.weight"] = _hwio(consts[f"{root}{scope}/weights"])
        offset = "Conv2D_bn_offset" if has_bn else "biases"  # batch norm folded in the file
        out[f"{module}.bias"] = consts[f"{root}{scope}/{offset}"]
    bn = f"{root}Bottleneck/BatchNorm/"
    weight, bias = _fold_bn(
        consts[f"{root}Bottleneck/weights"].T,
        consts[f"{bn}beta"],
        consts[f"{bn}moving_mean"],
        consts[f"{bn}moving_variance"],
        consts[f"{bn}Const"],  # gamma, all ones (slim batch norm without scale)
    )
    out["bottleneck.weight"], out["bottleneck.bias"] = weight, bias
    return _to_tensors(out)


def _keras_layer(scope: str) -> str:
    """TF scope -> layer name in the Keras port ("Repeat/block35_1/X" -> "Block35_1_X")."""
    scope = re.sub(r"^Repeat(_\d)?/block", "Block", scope)
    scope = re.sub(r"^Block8/", f"Block8_{_N8 + 1}/", scope)
    return scope.replace("/", "_")


def state_dict_from_keras_h5(path: str | Path) -> dict[str, Tensor]:
    """Keras H5 port of FaceNet (128-d, batch norm without scale) -> state dict."""
    import h5py

    with h5py.File(path, "r") as handle:
        weights = handle["model_weights"]

        def read(layer: str, name: str) -> np.ndarray:
            return np.asarray(weights[layer][f"{layer}/{name}:0"])

        def folded(layer: str, kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            bn = f"{layer}_BatchNorm"
            beta = read(bn, "beta")
            mean, var = read(bn, "moving_mean"), read(bn, "moving_variance")
            return _fold_bn(kernel, beta, mean, var, np.ones_like(beta))

        out: dict[str, np.ndarray] = {}
        for module, scope, has_bn in _conv_scopes():
            layer = _keras_layer(scope)
            kernel = _hwio(read(layer, "kernel"))
            if has_bn:
                out[f"{module}.weight"], out[f"{module}.bias"] = folded(layer, kernel)
            else:
                out[f"{module}.weight"], out[f"{module}.bias"] = kernel, read(layer, "bias")
        weight, bias = folded("Bottleneck", read("Bottleneck", "kernel").T)
        out["bottleneck.weight"], out["bottleneck.bias"] = weight, bias
    return _to_tensors(out)


def _facenet_pytorch_prefix(module: str) -> str:
    """Our module path -> facenet-pytorch's ("block35.0.up" -> "repeat_1.0.conv2d")."""
    renames = {
        "block35": "repeat_1",
        "reduction_a": "mixed_6a",
        "block17": "repeat_2",
        "reduction_b": "mixed_7a",
        "block8": "repeat_3",
        "block8_final": "block8",
    }
    head, _, rest = module.partition(".")
    head = renames.get(head, head.replace("conv_", "conv2d_"))
    rest = re.sub(r"(^|\.)up$", r"\1conv2d", rest)
    return f"{head}.{rest}" if rest else head


def state_dict_from_facenet_pytorch(
    source: str | Path | dict[str, Tensor],
) -> dict[str, Tensor]:
    """facenet-pytorch InceptionResnetV1 state dict (file or dict) -> our state dict.

    Batch norms (eps 1e-3) are folded into the convs and the bottleneck; the
    classifier head ``logits.*`` is dropped.
    """
    src = source if isinstance(source, dict) else torch.load(source, "cpu", weights_only=True)
    arrays = {k: v.detach().cpu().double().numpy() for k, v in src.items()}

    def folded(prefix: str, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bn = [arrays[f"{prefix}.{n}"] for n in ("bias", "running_mean", "running_var", "weight")]
        return _fold_bn(weight, *bn)

    out: dict[str, np.ndarray] = {}
    for module, _, has_bn in _conv_scopes():
        prefix = _facenet_pytorch_prefix(module)
        if has_bn:
            weight = arrays[f"{prefix}.conv.weight"]
            out[f"{module}.weight"], out[f"{module}.bias"] = folded(f"{prefix}.bn", weight)
        else:
            out[f"{module}.weight"] = arrays[f"{prefix}.weight"]
            out[f"{module}.bias"] = arrays[f"{prefix}.bias"]
    weight, bias = folded("last_bn", arrays["last_linear.weight"])
    out["bottleneck.weight"], out["bottleneck.bias"] = weight, bias
    return _to_tensors(out)


_VARIANTS: dict[str, tuple[int, Standardization]] = {
    "facenet-casia": (512, "fixed"),
    "facenet-vggface2": (512, "fixed"),
    "facenet-msceleb": (128, "prewhiten"),
}


def load_facenet(
    name: str = "facenet-casia",
    device: str | torch.device = "cpu",
    replicate_pad: bool = False,
    local_file: str | Path | None = None,
) -> InceptionResnetV1:
    """Pretrained FaceNet in eval mode with frozen parameters.

    ``name`` is a weights name of the registry (facenet-casia, facenet-vggface2,
    facenet-msceleb); ``local_file`` is a copy of the weight file the user already has.
    """
    from portrait_stylize.weights import load_state_dict

    if name not in _VARIANTS:
        raise ValueError(f"unknown FaceNet weights {name!r}; known: {', '.join(_VARIANTS)}")
    dim, standardization = _VARIANTS[name]
    model = InceptionResnetV1(dim, standardization, replicate_pad=replicate_pad)
    model.load_state_dict(load_state_dict(name, local_file))
    return model.eval().requires_grad_(False).to(device)
