"""Differentiable PyTorch replay of TFLite models.

:class:`TFLiteModule` parses a ``.tflite`` flatbuffer with the ``tflite`` package and
replays its operator list with torch ops, so that gradients reach the inputs. Weights
stored as float16 behind DEQUANTIZE ops are converted to float32 once, at load, and kept
as buffers (``.to(device)`` and ``.double()`` move and cast them).

Layout: TFLite tensors are NHWC. Here every 4-D tensor (inputs, intermediates and
outputs) is NCHW; tensors of other ranks keep the TFLite layout. Ops whose attributes
name axes (RESHAPE, CONCATENATION, PAD, MEAN) translate them. Dimension 0 is the batch:
a model declared for a batch of 1 runs on any batch size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tflite
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "OP_BUILDERS",
    "OpContext",
    "TFLiteModule",
    "TensorInfo",
    "UnsupportedOperatorError",
    "tflite_state_dict",
]

_NUMPY_DTYPES = {
    tflite.TensorType.FLOAT32: np.float32,
    tflite.TensorType.FLOAT16: np.float16,
    tflite.TensorType.INT32: np.int32,
    tflite.TensorType.INT64: np.int64,
}
_FLOAT_TYPES = (tflite.TensorType.FLOAT32, tflite.TensorType.FLOAT16)
_BUILTIN_NAMES = {
    code: name for name, code in vars(tflite.BuiltinOperator).items() if not name.startswith("_")
}
# NCHW dimension d holds NHWC dimension _NCHW_FROM_NHWC[d].
_NCHW_FROM_NHWC = (0, 3, 1, 2)
# NHWC axis a is NCHW dimension _NHWC_TO_NCHW[a].
_NHWC_TO_NCHW = (0, 2, 3, 1)


class UnsupportedOperatorError(NotImplementedError):
    """The model uses an operator (or an operator variant) this executor cannot replay."""


@dataclass(frozen=True)
class TensorInfo:
    """Static description of one TFLite tensor (shape in TFLite layout)."""

    name: str
    shape: tuple[int, ...]
    dtype: int  # a tflite.TensorType value


@dataclass(frozen=True)
class _Graph:
    """The parsed first subgraph: tensors, stored constants and operators."""

    tensors: tuple[TensorInfo, ...]
    constants: dict[int, np.ndarray]
    operators: tuple[tuple[str, Any], ...]  # (kind, tflite.Operator)
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


def _op_kind(model: Any, op: Any) -> str:
    """Builtin operator name (``"CONV_2D"``) or ``"CUSTOM:<code>"``."""
    code = model.OperatorCodes(op.OpcodeIndex())
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    if builtin == tflite.BuiltinOperator.CUSTOM:
        return "CUSTOM:" + code.CustomCode().decode()
    return _BUILTIN_NAMES.get(builtin, f"BUILTIN_{builtin}")


def _read_graph(path: str | Path) -> _Graph:
    """Parse a ``.tflite`` file (single subgraph) into tensors, constants and operators."""
    model = tflite.Model.GetRootAsModel(Path(path).read_bytes(), 0)
    if model.SubgraphsLength() != 1:
        raise UnsupportedOperatorError(f"{path}: models with several subgraphs are not supported")
    graph = model.Subgraphs(0)
    tensors = []
    constants: dict[int, np.ndarray] = {}
    for index in range(graph.TensorsLength()):
        tensor = graph.Tensors(index)
        shape = tuple(int(s) for s in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
        info = TensorInfo(tensor.Name().decode(), shape, tensor.Type())
        tensors.append(info)
        buffer = model.Buffers(tensor.Buffer())
        if buffer.DataLength():
            dtype = _NUMPY_DTYPES.get(info.dtype)
            if dtype is None:
                raise UnsupportedOperatorError(
                    f"{path}: constant {info.name!r} has unsupported tensor type {info.dtype}"
                )
            raw = buffer.DataAsNumpy().tobytes()
            constants[index] = np.frombuffer(raw, dtype).reshape(shape)
    operators = tuple(
        (_op_kind(model, graph.Operators(k)), graph.Operators(k))
        for k in range(graph.OperatorsLength())
    )
    return _Graph(
        tensors=tuple(tensors),
        constants=constants,
        operators=operators,
        inputs=tuple(graph.Inputs(k) for k in range(graph.InputsLength())),
        outputs=tuple(graph.Outputs(k) for k in range(graph.OutputsLength())),
    )


def tflite_state_dict(path: str | Path) -> dict[str, Tensor]:
    """All floating-point constants of a ``.tflite`` file, dequantised to float32.

    Keys are the stored tensors' TFLite names (e.g. ``"conv2d_1/Kernel"``); values keep
    the TFLite layout (conv kernels OHWI, depthwise kernels 1HWC, biases (C,)).
    """
    graph = _read_graph(path)
    return {
        graph.tensors[i].name: torch.from_numpy(array.astype(np.float32))
        for i, array in graph.constants.items()
        if graph.tensors[i].dtype in _FLOAT_TYPES
    }


# --- Op context ----------------------------------------------------------------------


@dataclass(frozen=True)
class OpContext:
    """What an op builder sees: one operator, its tensors and the known constants."""

    kind: str
    operator: Any  # tflite.Operator
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    tensors: tuple[TensorInfo, ...]
    constants: Mapping[int, np.ndarray]

    def shape(self, position: int) -> tuple[int, ...]:
        """TFLite (NHWC) shape of input ``position``."""
        return self.tensors[self.inputs[position]].shape

    @property
    def out_shape(self) -> tuple[int, ...]:
        """TFLite (NHWC) shape of the single output."""
        return self.tensors[self.outputs[0]].shape

    def constant(self, position: int) -> np.ndarray | None:
        """The constant value of input ``position``, or None (runtime or absent input)."""
        if position >= len(self.inputs) or self.inputs[position] < 0:
            return None
        return self.constants.get(self.inputs[position])

    def weight(self, position: int) -> Tensor:
        """Input ``position`` as a float32 tensor; it must be a constant."""
        value = self.constant(position)
        if value is None:
            raise UnsupportedOperatorError(f"{self.kind} with a non-constant input {position}")
        return torch.from_numpy(value.astype(np.float32))

    def options(self, cls: type) -> Any:
        """The builtin options table, read as ``cls`` (e.g. ``tflite.Conv2DOptions``)."""
        table = self.operator.BuiltinOptions()
        options = cls()
        options.Init(table.Bytes, table.Pos)
        return options


# --- Op modules ----------------------------------------------------------------------


def _identity(x: Tensor) -> Tensor:
    return x


_UNARY: dict[str, Callable[[Tensor], Tensor]] = {
    "RELU": F.relu,
    "RELU6": F.relu6,
    "RELU_N1_TO_1": lambda x: x.clamp(-1.0, 1.0),
    "TANH": torch.tanh,
    "LOGISTIC": torch.sigmoid,
    "HARD_SWISH": F.hardswish,
    "ABS": torch.abs,
}
_FUSED = {
    tflite.ActivationFunctionType.NONE: _identity,
    tflite.ActivationFunctionType.RELU: _UNARY["RELU"],
    tflite.ActivationFunctionType.RELU_N1_TO_1: _UNARY["RELU_N1_TO_1"],
    tflite.ActivationFunctionType.RELU6: _UNARY["RELU6"],
    tflite.ActivationFunctionType.TANH: _UNARY["TANH"],
}


def _fused(ctx: OpContext, code: int) -> Callable[[Tensor], Tensor]:
    try:
        return _FUSED[code]
    except KeyError:
        raise UnsupportedOperatorError(f"{ctx.kind} with fused activation {code}") from None


def _pad_same(
    x: Tensor,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    value: float,
) -> Tensor:
    """Pad (N,C,H,W) like TFLite SAME: the odd extra pixel goes bottom/right."""
    pads: list[int] = []
    for size, k, s, d in zip(x.shape[-2:], kernel, stride, dilation, strict=True):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        pads.append(total // 2)
        pads.append(total - total // 2)
    top, bottom, left, right = pads
    if not any(pads):
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


def _nchw_constant(value: Tensor, rank: int) -> Tensor:
    """A constant operand broadcast against a rank-``rank`` tensor, in our layout."""
    if rank != 4:
        return value
    value = value.reshape((1,) * (4 - value.dim()) + tuple(value.shape))
    return value.permute(_NCHW_FROM_NHWC).contiguous()


class _Conv(nn.Module):
    """CONV_2D / DEPTHWISE_CONV_2D on (N,C,H,W) with TFLite padding."""

    weight: Tensor  # (out, in / groups, kh, kw)
    bias: Tensor | None

    def __init__(
        self,
        weight: Tensor,
        bias: Tensor | None,
        stride: tuple[int, int],
        dilation: tuple[int, int],
        same: bool,
        groups: int,
        activation: Callable[[Tensor], Tensor],
    ) -> None:
        super().__init__()
        self.register_buffer("weight", weight.contiguous())
        self.register_buffer("bias", bias)
        self.stride, self.dilation, self.same, self.groups = stride, dilation, same, groups
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        if self.same:
            kernel = (int(self.weight.shape[-2]), int(self.weight.shape[-1]))
            x = _pad_same(x, kernel, self.stride, self.dilation, 0.0)
        y = F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return self.activation(y)


class _TransposeConvBias(nn.Module):
    """MediaPipe's custom ``Convolution2DTransposeBias`` on (N,C,H,W)."""

    weight: Tensor  # (in, out, kh, kw)
    bias: Tensor  # (out,)

    def __init__(self, weight: Tensor, bias: Tensor, stride: tuple[int, int], same: bool) -> None:
        super().__init__()
        self.register_buffer("weight", weight.contiguous())
        self.register_buffer("bias", bias)
        self.stride = stride
        # SAME: the output is input * stride; crop kernel - stride, the odd pixel bottom/right.
        kernel = weight.shape[2:]
        self.crop = (
            tuple((k - s) // 2 for k, s in zip(kernel, stride, strict=True)) if same else None
        )

    def forward(self, x: Tensor) -> Tensor:
        y = F.conv_transpose2d(x, self.weight, None, self.stride)
        if self.crop is not None:
            (top, left), (sh, sw) = self.crop, self.stride
            y = y[..., top : top + x.shape[-2] * sh, left : left + x.shape[-1] * sw]
        return y + self.bias.reshape(1, -1, 1, 1)


class _Pool(nn.Module):
    """MAX_POOL_2D / AVERAGE_POOL_2D with TFLite SAME semantics."""

    def __init__(
        self,
        kind: str,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        same: bool,
        activation: Callable[[Tensor], Tensor],
    ) -> None:
        super().__init__()
        self.kind, self.kernel, self.stride, self.same = kind, kernel, stride, same
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        k, s = self.kernel, self.stride
        if self.kind == "max":
            if self.same:
                x = _pad_same(x, k, s, (1, 1), float("-inf"))
            return self.activation(F.max_pool2d(x, k, s))
        if not self.same:
            return self.activation(F.avg_pool2d(x, k, s))
        # Padding is left out of the divisor: divide by the pooled count of real pixels.
        total = F.avg_pool2d(_pad_same(x, k, s, (1, 1), 0.0), k, s)
        ones = torch.ones_like(x[:1, :1])
        count = F.avg_pool2d(_pad_same(ones, k, s, (1, 1), 0.0), k, s)
        return self.activation(total / count)


def _rsub(a: Tensor, b: Tensor) -> Tensor:
    """SUB whose constant operand comes first: b - a (the constant is passed second)."""
    return torch.sub(b, a)


_BINARY: dict[str, tuple[Callable[[Tensor, Tensor], Tensor], type]] = {
    "ADD": (torch.add, tflite.AddOptions),
    "MUL": (torch.mul, tflite.MulOptions),
    "SUB": (torch.sub, tflite.SubOptions),
}


class _Binary(nn.Module):
    """ADD / MUL / SUB, with an optional constant operand already in our layout."""

    constant: Tensor | None

    def __init__(
        self,
        op: Callable[[Tensor, Tensor], Tensor],
        constant: Tensor | None,
        activation: Callable[[Tensor], Tensor],
    ) -> None:
        super().__init__()
        self.op, self.activation = op, activation
        self.register_buffer("constant", constant)

    def forward(self, *xs: Tensor) -> Tensor:
        a, b = (*xs, self.constant) if self.constant is not None else xs
        return self.activation(self.op(a, b))


class _PRelu(nn.Module):
    """PRELU: x if x >= 0 else alpha * x."""

    alpha: Tensor

    def __init__(self, alpha: Tensor) -> None:
        super().__init__()
        self.register_buffer("alpha", alpha)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x) - self.alpha * F.relu(-x)  # faster than torch.where, same values


class _Unary(nn.Module):
    """An elementwise activation op."""

    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)


class _Pad(nn.Module):
    """PAD with zeros; ``pads`` is in F.pad order (last dimension first)."""

    def __init__(self, pads: tuple[int, ...]) -> None:
        super().__init__()
        self.pads = pads

    def forward(self, x: Tensor) -> Tensor:
        return F.pad(x, self.pads)


class _Reshape(nn.Module):
    """RESHAPE in NHWC order to (batch, *tail)."""

    def __init__(self, in_rank: int, tail: tuple[int, ...]) -> None:
        super().__init__()
        self.in_rank, self.tail = in_rank, tail

    def forward(self, x: Tensor) -> Tensor:
        if self.in_rank == 4:
            x = x.permute(0, 2, 3, 1)
        y = x.reshape(x.shape[0], *self.tail)
        return y.permute(_NCHW_FROM_NHWC) if y.dim() == 4 else y


class _Concat(nn.Module):
    """CONCATENATION along an already translated dimension."""

    def __init__(self, dim: int, activation: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.dim, self.activation = dim, activation

    def forward(self, *xs: Tensor) -> Tensor:
        return self.activation(torch.cat(xs, self.dim))


class _Mean(nn.Module):
    """MEAN over NHWC ``axes``."""

    def __init__(self, axes: tuple[int, ...], keep_dims: bool, in_rank: int) -> None:
        super().__init__()
        # Keeping dimensions preserves the layout; dropping them needs the NHWC order.
        self.nhwc = in_rank == 4 and not keep_dims
        self.dims = tuple(_NHWC_TO_NCHW[a] for a in axes) if in_rank == 4 and keep_dims else axes
        self.keep_dims = keep_dims

    def forward(self, x: Tensor) -> Tensor:
        if self.nhwc:
            x = x.permute(0, 2, 3, 1)
        return x.mean(dim=self.dims, keepdim=self.keep_dims)


class _ResizeBilinear(nn.Module):
    """RESIZE_BILINEAR to a fixed (H, W)."""

    def __init__(self, size: tuple[int, int], align_corners: bool) -> None:
        super().__init__()
        self.size, self.align_corners = size, align_corners

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, self.size, mode="bilinear", align_corners=self.align_corners)


# --- Builders ------------------------------------------------------------------------


def _require_nchw(ctx: OpContext) -> None:
    if len(ctx.shape(0)) != 4:
        raise UnsupportedOperatorError(f"{ctx.kind} on a tensor of rank {len(ctx.shape(0))}")


def _bias(ctx: OpContext, position: int) -> Tensor | None:
    return ctx.weight(position) if ctx.constant(position) is not None else None


def _build_conv(ctx: OpContext) -> nn.Module:
    _require_nchw(ctx)
    opts = ctx.options(tflite.Conv2DOptions)
    weight = ctx.weight(1)  # (out, kh, kw, in / groups)
    return _Conv(
        weight.permute(0, 3, 1, 2),
        _bias(ctx, 2),
        (opts.StrideH(), opts.StrideW()),
        (opts.DilationHFactor(), opts.DilationWFactor()),
        opts.Padding() == tflite.Padding.SAME,
        ctx.shape(0)[3] // weight.shape[3],
        _fused(ctx, opts.FusedActivationFunction()),
    )


def _build_depthwise(ctx: OpContext) -> nn.Module:
    _require_nchw(ctx)
    opts = ctx.options(tflite.DepthwiseConv2DOptions)
    weight = ctx.weight(1)  # (1, kh, kw, in * multiplier)
    return _Conv(
        weight.permute(3, 0, 1, 2),
        _bias(ctx, 2),
        (opts.StrideH(), opts.StrideW()),
        (opts.DilationHFactor(), opts.DilationWFactor()),
        opts.Padding() == tflite.Padding.SAME,
        ctx.shape(0)[3],
        _fused(ctx, opts.FusedActivationFunction()),
    )


def _build_transpose_conv_bias(ctx: OpContext) -> nn.Module:
    _require_nchw(ctx)
    raw = ctx.operator.CustomOptionsAsNumpy().tobytes()
    padding, stride_w, stride_h = np.frombuffer(raw, np.int32)[:3].tolist()
    if padding not in (1, 2):  # MediaPipe's enum: 1 SAME, 2 VALID
        raise UnsupportedOperatorError(f"{ctx.kind} with padding code {padding}")
    weight = ctx.weight(1)  # (out, kh, kw, in)
    if padding == 1 and (weight.shape[1] < stride_h or weight.shape[2] < stride_w):
        raise UnsupportedOperatorError(f"{ctx.kind} SAME with a kernel smaller than its stride")
    return _TransposeConvBias(
        weight.permute(3, 0, 1, 2), ctx.weight(2), (stride_h, stride_w), padding == 1
    )


def _build_pool(ctx: OpContext) -> nn.Module:
    _require_nchw(ctx)
    opts = ctx.options(tflite.Pool2DOptions)
    return _Pool(
        "max" if ctx.kind == "MAX_POOL_2D" else "avg",
        (opts.FilterHeight(), opts.FilterWidth()),
        (opts.StrideH(), opts.StrideW()),
        opts.Padding() == tflite.Padding.SAME,
        _fused(ctx, opts.FusedActivationFunction()),
    )


def _build_binary(ctx: OpContext) -> nn.Module:
    op, options = _BINARY[ctx.kind]
    rank = len(ctx.out_shape)
    constants = [p for p in range(2) if ctx.constant(p) is not None]
    if len(constants) == 2:
        raise UnsupportedOperatorError(f"{ctx.kind} of two constants")
    runtime = [p for p in range(2) if p not in constants]
    if rank == 4 and any(len(ctx.shape(p)) != 4 for p in runtime):
        raise UnsupportedOperatorError(f"{ctx.kind} broadcasting a non-constant lower rank")
    constant = _nchw_constant(ctx.weight(constants[0]), rank) if constants else None
    activation: Callable[[Tensor], Tensor] = _identity
    if ctx.operator.BuiltinOptions() is not None:
        activation = _fused(ctx, ctx.options(options).FusedActivationFunction())
    if ctx.kind == "SUB" and constants == [0]:
        op = _rsub
    return _Binary(op, constant, activation)


def _build_prelu(ctx: OpContext) -> nn.Module:
    return _PRelu(_nchw_constant(ctx.weight(1), len(ctx.shape(0))))


def _build_unary(ctx: OpContext) -> nn.Module:
    return _Unary(_UNARY[ctx.kind])


def _build_pad(ctx: OpContext) -> nn.Module:
    paddings = ctx.constant(1)
    if paddings is None:
        raise UnsupportedOperatorError("PAD with non-constant paddings")
    rank = len(ctx.shape(0))
    order = _NCHW_FROM_NHWC if rank == 4 else tuple(range(rank))
    pads: list[int] = []
    for dim in reversed(range(rank)):
        pads += [int(paddings[order[dim], 0]), int(paddings[order[dim], 1])]
    return _Pad(tuple(pads))


def _build_reshape(ctx: OpContext) -> nn.Module:
    return _Reshape(len(ctx.shape(0)), ctx.out_shape[1:])


def _build_concat(ctx: OpContext) -> nn.Module:
    if any(ctx.constant(p) is not None for p in range(len(ctx.inputs))):
        raise UnsupportedOperatorError("CONCATENATION with a constant input")
    opts = ctx.options(tflite.ConcatenationOptions)
    rank = len(ctx.out_shape)
    axis = opts.Axis() % rank
    dim = _NHWC_TO_NCHW[axis] if rank == 4 else axis
    return _Concat(dim, _fused(ctx, opts.FusedActivationFunction()))


def _build_mean(ctx: OpContext) -> nn.Module:
    axes = ctx.constant(1)
    if axes is None:
        raise UnsupportedOperatorError("MEAN with non-constant axes")
    rank = len(ctx.shape(0))
    keep_dims = bool(ctx.options(tflite.ReducerOptions).KeepDims())
    return _Mean(tuple(int(a) % rank for a in axes.reshape(-1)), keep_dims, rank)


def _build_resize_bilinear(ctx: OpContext) -> nn.Module:
    _require_nchw(ctx)
    size = ctx.constant(1)
    if size is None:
        raise UnsupportedOperatorError("RESIZE_BILINEAR with a non-constant size")
    opts = ctx.options(tflite.ResizeBilinearOptions)
    if not (opts.AlignCorners() or opts.HalfPixelCenters()):
        raise UnsupportedOperatorError("RESIZE_BILINEAR with legacy (corner) sampling")
    return _ResizeBilinear((int(size[0]), int(size[1])), bool(opts.AlignCorners()))


Builder = Callable[[OpContext], nn.Module]

#: Operator kind -> builder of the torch module that replays it.
OP_BUILDERS: dict[str, Builder] = {
    "CONV_2D": _build_conv,
    "DEPTHWISE_CONV_2D": _build_depthwise,
    "CUSTOM:Convolution2DTransposeBias": _build_transpose_conv_bias,
    "MAX_POOL_2D": _build_pool,
    "AVERAGE_POOL_2D": _build_pool,
    "ADD": _build_binary,
    "MUL": _build_binary,
    "SUB": _build_binary,
    "PRELU": _build_prelu,
    "PAD": _build_pad,
    "RESHAPE": _build_reshape,
    "CONCATENATION": _build_concat,
    "MEAN": _build_mean,
    "RESIZE_BILINEAR": _build_resize_bilinear,
    **dict.fromkeys(_UNARY, _build_unary),
}


# --- The module ----------------------------------------------------------------------


class TFLiteModule(nn.Module):
    """A ``.tflite`` model replayed with differentiable torch ops.

    ``forward(*inputs)`` takes the model's inputs in order, 4-D ones as (B,C,H,W) float
    tensors (any batch size B), and returns ``{output name: tensor}``: 4-D outputs as
    (B,C,H,W), others in TFLite order with the batch first (e.g. (B,896,16)).
    ``tensors`` describes every tensor of the model (TFLite shapes, batch 1).
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        graph = _read_graph(path)
        self.tensors = graph.tensors
        constants = {
            i: a.astype(np.float32) if graph.tensors[i].dtype in _FLOAT_TYPES else a
            for i, a in graph.constants.items()
        }
        available = set(graph.inputs) | set(constants)
        steps: list[nn.Module] = []
        reads: list[tuple[int, ...]] = []
        writes: list[int] = []
        for index, (kind, op) in enumerate(graph.operators):
            inputs = tuple(op.Inputs(k) for k in range(op.InputsLength()))
            outputs = tuple(op.Outputs(k) for k in range(op.OutputsLength()))
            if kind == "DEQUANTIZE" and inputs[0] in constants:
                constants[outputs[0]] = constants[inputs[0]]  # already float32
                available.add(outputs[0])
                continue
            builder = OP_BUILDERS.get(kind)
            if builder is None:
                supported = ", ".join(sorted(OP_BUILDERS))
                raise UnsupportedOperatorError(
                    f"{Path(path).name}: operator {kind} (op #{index}) is not supported; "
                    f"supported: DEQUANTIZE of constants, {supported}"
                )
            if len(outputs) != 1:
                raise UnsupportedOperatorError(f"{kind} with {len(outputs)} outputs")
            runtime = tuple(i for i in inputs if i >= 0 and i not in constants)
            missing = [self.tensors[i].name for i in runtime if i not in available]
            if missing:
                raise ValueError(f"{kind} (op #{index}) reads unset tensors {missing}")
            ctx = OpContext(kind, op, inputs, outputs, self.tensors, constants)
            try:
                steps.append(builder(ctx))
            except UnsupportedOperatorError as exc:
                raise UnsupportedOperatorError(f"{Path(path).name}: op #{index}: {exc}") from exc
            reads.append(runtime)
            writes.append(outputs[0])
            available.add(outputs[0])
        self.steps = nn.ModuleList(steps)
        self._reads, self._writes = reads, writes
        self._inputs, self._outputs = graph.inputs, graph.outputs
        last_read = {i: k for k, step_reads in enumerate(reads) for i in step_reads}
        self._frees = [
            tuple({i for i in step_reads if last_read[i] == k and i not in graph.outputs})
            for k, step_reads in enumerate(reads)
        ]

    @property
    def input_names(self) -> list[str]:
        return [self.tensors[i].name for i in self._inputs]

    @property
    def output_names(self) -> list[str]:
        return [self.tensors[i].name for i in self._outputs]

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        """Declared input shapes in this module's layout, e.g. [(1, 3, 192, 192)]."""
        return [_to_layout(self.tensors[i].shape) for i in self._inputs]

    def forward(self, *inputs: Tensor) -> dict[str, Tensor]:
        if len(inputs) != len(self._inputs):
            raise ValueError(f"expected {len(self._inputs)} inputs, got {len(inputs)}")
        values: dict[int, Tensor] = {}
        for index, x in zip(self._inputs, inputs, strict=True):
            expected = _to_layout(self.tensors[index].shape)
            if tuple(x.shape[1:]) != expected[1:]:
                dims = ", ".join(str(d) for d in expected[1:])
                raise ValueError(
                    f"input {self.tensors[index].name!r}: expected (B, {dims}), "
                    f"got {tuple(x.shape)}"
                )
            values[index] = x
        for step, step_reads, write, frees in zip(
            self.steps, self._reads, self._writes, self._frees, strict=True
        ):
            values[write] = step(*(values[i] for i in step_reads))
            for i in frees:
                del values[i]
        return {self.tensors[i].name: values[i] for i in self._outputs}


def _to_layout(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A TFLite shape in this module's layout (NHWC -> NCHW for rank 4)."""
    return tuple(shape[d] for d in _NCHW_FROM_NHWC) if len(shape) == 4 else shape
