"""PyTorch replay of ONNX graphs, including int8 QuantizeLinear/DequantizeLinear pairs.

:class:`ONNXModule` parses a ``.onnx`` file with the ``onnx`` package and replays its node
list with torch ops, so the graph runs wherever torch runs (CPU, CUDA) and on any batch
size. Nodes whose inputs are all constants (e.g. the dequantisation of int8 weights) are
evaluated once, at load, and constant attributes and inputs (pads, shapes, scales, zero
points, clip bounds) are resolved to Python values there too.

Quantised activations are replayed exactly, in float32: a quantised tensor is held as the
values its DequantizeLinear gives back, so each QuantizeLinear becomes one fake
quantisation (x / scale rounded half to even, saturated to the int8 or uint8 range, times
scale) and the DequantizeLinear nodes reading it (directly or through Reshape / Transpose)
with the same scale and zero point vanish, as does a QuantizeLinear of values already on
its grid (e.g. after a Pad). The fake quantisation is four in-place vectorised ops; when a
gradient is needed it is ``torch.fake_quantize_per_tensor_affine`` instead (straight-
through gradient; it multiplies by 1 / scale, so rare ties may round the other way; on
CPU it is a scalar loop, about 8x slower). Quantisation, Add, Sub, Mul, Relu, Clip and
Sigmoid write into their first input where no later node reads its storage (and no
gradient is recorded): fewer allocations and cache misses.

Tensors keep the ONNX layout; a Reshape to a constant shape with a leading 1 keeps the
batch dimension instead. Shapes computed in the graph (Shape, Gather, Unsqueeze, Concat
feeding a Reshape or Expand, as PyTorch exports for dynamic sizes) are small int64
tensors at run time. Inference semantics throughout: BatchNormalization uses its stored
statistics, Dropout is the identity. Only the operators (and attribute values) of the
graphs this tool loads are supported (Magenta's int8 pair, SFace's float graph, MODNet's
float graph); others raise :class:`UnsupportedOperatorError` naming the node.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ONNXModule", "UnsupportedOperatorError", "onnx_state_dict"]

_INT_RANGES = {np.dtype(np.int8): (-128, 127), np.dtype(np.uint8): (0, 255)}
_LAYOUT = ("Reshape", "Transpose")
"""Operators that may read a quantised tensor: they move its integers without changing them."""
_KEEP_GRID = (*_LAYOUT, "Pad", "Resize")
"""Operators whose output values lie on the quantisation grid of their input (zero padding
included: 0 is a grid point)."""
_VIEWS = (*_KEEP_GRID, "Dropout", "Flatten", "Slice", "Unsqueeze", "Expand")
"""Operators whose output may share the storage of their first input."""


class UnsupportedOperatorError(NotImplementedError):
    """The graph uses an operator (or an attribute value) this executor cannot replay."""


class _Grid(NamedTuple):
    """A per-tensor quantisation grid: values (q - zero) * scale, q in [low, high]."""

    scale: float
    zero: int
    low: int
    high: int


class _Op(NamedTuple):
    """The torch function of a node, reading its first ``arity`` inputs (the others are
    constants resolved at load; None: all), and optionally a variant that may overwrite
    its first input (and computes out of place when that input requires a gradient)."""

    fn: Callable[..., Tensor]
    arity: int | None = None
    overwriting: Callable[..., Tensor] | None = None


class _Node(nn.Module):
    """One replayed node: ``fn`` applied to the runtime inputs and the stored constants.

    ``slots`` gives, for each input ``fn`` reads, the index of a runtime input (an int) or
    the name of a constant buffer (a str).
    """

    def __init__(
        self, fn: Callable[..., Tensor], slots: Sequence[int | str], constants: dict[str, Tensor]
    ) -> None:
        super().__init__()
        self.fn = fn
        self.slots = tuple(slots)
        for name, value in constants.items():
            self.register_buffer(name, value)

    def forward(self, *xs: Tensor) -> Tensor:
        args = [xs[s] if isinstance(s, int) else getattr(self, s) for s in self.slots]
        return self.fn(*args)


def _fake_quantize(x: Tensor, grid: _Grid, *, overwrite: bool = False) -> Tensor:
    """QuantizeLinear then DequantizeLinear of ``x`` (any shape) on a per-tensor ``grid``,
    exactly (in place with ``overwrite``); straight-through when ``x`` needs a gradient."""
    if torch.is_grad_enabled() and x.requires_grad:
        return torch.fake_quantize_per_tensor_affine(x, *grid)
    y = x.div_(grid.scale) if overwrite else x / grid.scale
    return y.round_().clamp_(grid.low - grid.zero, grid.high - grid.zero).mul_(grid.scale)


def _overwriting(fn_: Callable[..., Tensor], fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """``fn_`` (``fn`` writing into its first argument) where that is possible: no gradient
    to record and no broadcast growing the first argument; ``fn`` elsewhere."""

    def run(x: Tensor, *rest: Tensor) -> Tensor:
        grad = torch.is_grad_enabled() and any(t.requires_grad for t in (x, *rest))
        # numpy's broadcast: torch.broadcast_shapes imports sympy on first use (0.3 s)
        grows = bool(rest) and x.shape != np.broadcast_shapes(x.shape, *(t.shape for t in rest))
        return fn(x, *rest) if grad or grows else fn_(x, *rest)

    return run


def _dequantize(q: Tensor, scale: Tensor, zero: Tensor, axis: int) -> Tensor:
    """DequantizeLinear of integers q (as floats): (q - zero) * scale, per tensor or per
    channel along ``axis``."""
    channel = axis % q.dim()
    shape = tuple(-1 if d == channel else 1 for d in range(q.dim())) if scale.dim() else ()
    return (q - zero.reshape(shape)) * scale.reshape(shape)


def _pad(x: Tensor, pads: tuple[int, ...], mode: str) -> Tensor:
    """ONNX Pad (begins then ends per dimension) of a 4-D tensor with reflect or constant."""
    rank = x.dim()
    begins, ends = pads[:rank], pads[rank:]
    padded = [d for d in range(rank) if begins[d] or ends[d]]
    if not padded:
        return x
    if mode == "constant":
        flat = [p for d in reversed(range(rank)) for p in (begins[d], ends[d])]
        return F.pad(x, flat)
    # Reflect padding of torch pads the last dimensions: move the padded ones there.
    rest = [d for d in range(rank) if d not in padded]
    order = rest + padded
    moved = x.permute(order)
    flat = [p for d in reversed(padded) for p in (begins[d], ends[d])]
    out = F.pad(moved, flat, mode="reflect")
    return out.permute([order.index(d) for d in range(rank)])


def _conv(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    pads: tuple[int, ...],
    groups: int,
) -> Tensor:
    """ONNX Conv with explicit (possibly asymmetric) zero padding [top, left, bottom, right]."""
    top, left, bottom, right = pads
    if (top, left) == (bottom, right):
        return F.conv2d(x, weight, bias, stride, (top, left), dilation, groups)
    x = F.pad(x, (left, right, top, bottom))
    return F.conv2d(x, weight, bias, stride, 0, dilation, groups)


def _reshape(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Reshape to a constant shape; a leading 1 stands for the batch."""
    if shape and shape[0] == 1:
        return x.reshape(x.shape[0], *shape[1:])
    return x.reshape(shape)


def _resize(x: Tensor, scales: tuple[float, ...], mode: str) -> Tensor:
    """Resize (N, C, H, W) by constant scales of H and W: ``nearest`` (asymmetric
    coordinates, floor) or ``bilinear`` (pytorch_half_pixel coordinates, no antialias)."""
    if all(s == 1 for s in scales):
        return x
    if mode == "nearest":
        return F.interpolate(x, scale_factor=scales[2:], mode="nearest")
    return F.interpolate(x, scale_factor=scales[2:], mode="bilinear", align_corners=False)


def _reshape_to(x: Tensor, shape: Tensor) -> Tensor:
    """Reshape to a shape computed in the graph (int64 (R,)): 0 keeps that dimension of
    ``x``, -1 is inferred."""
    dims = [x.shape[i] if d == 0 else d for i, d in enumerate(shape.tolist())]
    return x.reshape(dims)


def _expand(x: Tensor, shape: Tensor) -> Tensor:
    """ONNX Expand: ``x`` broadcast against a shape computed in the graph (int64 (R,))."""
    return x.expand(np.broadcast_shapes(tuple(x.shape), tuple(shape.tolist())))


def _slice(
    x: Tensor, starts: np.ndarray, ends: np.ndarray, axes: np.ndarray, steps: np.ndarray
) -> Tensor:
    """ONNX Slice by constant (K,) starts, ends, axes and positive steps (a view of ``x``)."""
    index = [slice(None)] * x.dim()
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        index[int(axis) % x.dim()] = slice(int(start), int(end), int(step))
    return x[tuple(index)]


def _batch_norm(
    x: Tensor, scale: Tensor, bias: Tensor, mean: Tensor, var: Tensor, *, eps: float
) -> Tensor:
    """BatchNormalization in inference mode of (N, C, ...) with per-channel (C,) constants."""
    return F.batch_norm(x, mean, var, scale, bias, training=False, eps=eps)


def _prelu(x: Tensor, slope: Tensor) -> Tensor:
    """PRelu: x where x >= 0, else slope * x (slope broadcast against x, e.g. (C, 1, 1))."""
    return F.relu(x) - slope * F.relu(-x)  # as fast as torch.where, same values


def _gemm(
    a: Tensor, b: Tensor, c: Tensor | None = None, *, alpha: float, beta: float, trans_b: bool
) -> Tensor:
    """Gemm alpha * A B' + beta * C of A (N, K), B (K, M) or (M, K) with ``trans_b``, C (M,)."""
    weight = b if trans_b else b.T
    y = F.linear(a, weight)
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        y = y + (c if beta == 1.0 else beta * c)
    return y


def _unsqueeze(x: Tensor, axes: tuple[int, ...]) -> Tensor:
    """ONNX Unsqueeze: ``x`` with a new dimension of size 1 at each of ``axes`` (of the
    output's rank; negative from its end)."""
    rank = x.dim() + len(axes)
    for axis in sorted(a % rank for a in axes):
        x = x.unsqueeze(axis)
    return x


def _keeps_grid(op_type: str, op: _Op) -> bool:
    """Whether a node's output stays on its input's quantisation grid: layout, Pad and a
    nearest Resize (not a bilinear one)."""
    if op_type == "Resize":
        return getattr(op.fn, "keywords", {}).get("mode") == "nearest"
    return op_type in _KEEP_GRID


def _resize_mode(attrs: dict[str, Any]) -> str | None:
    """The interpolation of a Resize node's attributes that :func:`_resize` replays
    ("nearest" or "bilinear"), or None."""
    coordinates = attrs.get("coordinate_transformation_mode", b"half_pixel")
    if attrs.get("mode", b"nearest") == b"nearest":
        asymmetric_floor = attrs.get("nearest_mode") == b"floor" and coordinates == b"asymmetric"
        return "nearest" if asymmetric_floor else None
    linear = attrs.get("mode") == b"linear" and coordinates == b"pytorch_half_pixel"
    return "bilinear" if linear else None


def _attrs(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _grid(consts: list[np.ndarray | None]) -> _Grid:
    """The per-tensor grid of a QuantizeLinear/DequantizeLinear's constant scale and zero."""
    scale, zero = [*consts, None][1:3]
    if scale is None or scale.size != 1:
        raise UnsupportedOperatorError("quantisation by a non-constant or per-channel scale")
    dtype = zero.dtype if zero is not None else np.dtype(np.uint8)
    if dtype not in _INT_RANGES:
        raise UnsupportedOperatorError(f"quantisation to {dtype}")
    return _Grid(float(scale), int(zero) if zero is not None else 0, *_INT_RANGES[dtype])


def _build(op: str, attrs: dict[str, Any], consts: list[np.ndarray | None]) -> _Op:
    """The torch function of one node, given its attributes and constant inputs."""
    if op == "QuantizeLinear":
        grid = _grid(consts)
        overwriting = partial(_fake_quantize, grid=grid, overwrite=True)
        return _Op(partial(_fake_quantize, grid=grid), 1, overwriting)
    if op == "DequantizeLinear":
        axis = int(attrs.get("axis", 1))
        return _Op(lambda q, s, z: _dequantize(q, s, z, axis))
    if op == "Conv":
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise UnsupportedOperatorError("Conv with auto_pad")
        return _Op(
            partial(
                _conv,
                stride=tuple(attrs.get("strides", (1, 1))),
                dilation=tuple(attrs.get("dilations", (1, 1))),
                pads=tuple(attrs.get("pads", (0, 0, 0, 0))),
                groups=int(attrs.get("group", 1)),
            )
        )
    if op == "Pad":
        pads = consts[1]
        mode = attrs.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if pads is None or mode not in ("reflect", "constant") or len(consts) > 2:
            raise UnsupportedOperatorError("Pad other than reflect or zeros by constant pads")
        return _Op(partial(_pad, pads=tuple(int(p) for p in pads), mode=mode), 1)
    if op == "Reshape":
        shape = consts[1]
        if int(attrs.get("allowzero", 0)):
            raise UnsupportedOperatorError("Reshape with allowzero")
        if shape is None:
            return _Op(_reshape_to)
        if (shape <= 0).any():
            raise UnsupportedOperatorError("Reshape to a constant inferred shape")
        return _Op(partial(_reshape, shape=tuple(int(s) for s in shape)), 1)
    if op == "Resize":
        scales = consts[2] if len(consts) > 2 else None
        mode = _resize_mode(attrs)
        if scales is None or len(consts) > 3 or mode is None:
            raise UnsupportedOperatorError(
                "Resize other than nearest/asymmetric/floor or linear/pytorch_half_pixel by scales"
            )
        if len(scales) != 4 or tuple(scales[:2]) != (1.0, 1.0):
            raise UnsupportedOperatorError("Resize other than of the last two of 4 dimensions")
        return _Op(partial(_resize, scales=tuple(float(s) for s in scales), mode=mode), 1)
    if op == "Slice":
        starts, ends, axes, steps = [*consts[1:], None, None][:4]
        if len(consts) > 5 or any(c is None for c in consts[1:]):
            raise UnsupportedOperatorError("Slice by non-constant starts, ends, axes or steps")
        axes = np.arange(len(starts)) if axes is None else axes
        steps = np.ones(len(starts), np.int64) if steps is None else steps
        if (steps <= 0).any():
            raise UnsupportedOperatorError("Slice with a step below 1")
        return _Op(partial(_slice, starts=starts, ends=ends, axes=axes, steps=steps), 1)
    if op == "Concat":
        axis = int(attrs["axis"])
        return _Op(lambda *xs: torch.cat(xs, axis))
    if op == "Shape":
        if "start" in attrs or "end" in attrs:
            raise UnsupportedOperatorError("Shape with start or end")
        return _Op(lambda x: torch.tensor(x.shape, dtype=torch.int64, device=x.device))
    if op == "Gather":
        index, axis = consts[1], int(attrs.get("axis", 0))
        if index is None or index.ndim:
            raise UnsupportedOperatorError("Gather other than of one constant index")
        return _Op(lambda x: x.select(axis, int(index)), 1)
    if op == "Unsqueeze":
        axes = attrs.get("axes", consts[1] if len(consts) > 1 else None)
        if axes is None:
            raise UnsupportedOperatorError("Unsqueeze by non-constant axes")
        return _Op(partial(_unsqueeze, axes=tuple(int(a) for a in axes)), 1)
    if op == "Expand":
        return _Op(_expand)
    if op == "MatMul":
        return _Op(torch.matmul)
    if op == "InstanceNormalization":
        if consts[1] is None or consts[2] is None:
            raise UnsupportedOperatorError("InstanceNormalization by non-constant scale or bias")
        eps = float(attrs.get("epsilon", 1e-5))
        return _Op(lambda x, scale, bias: F.instance_norm(x, weight=scale, bias=bias, eps=eps))
    if op == "Transpose":
        perm = tuple(attrs["perm"])
        return _Op(lambda x: x.permute(perm))
    if op == "BatchNormalization":
        if any(c is None for c in consts[1:5]) or int(attrs.get("training_mode", 0)):
            raise UnsupportedOperatorError("BatchNormalization other than inference by constants")
        return _Op(partial(_batch_norm, eps=float(attrs.get("epsilon", 1e-5))))
    if op == "PRelu":
        if consts[1] is None:
            raise UnsupportedOperatorError("PRelu with a non-constant slope")
        return _Op(_prelu)
    if op == "Dropout":
        if len(consts) > 1:
            raise UnsupportedOperatorError("Dropout with a ratio or training-mode input")
        return _Op(lambda x: x, 1)
    if op == "Flatten":
        axis = int(attrs.get("axis", 1))
        return _Op(lambda x: x.reshape(math.prod(x.shape[:axis]), -1), 1)
    if op == "Gemm":
        if int(attrs.get("transA", 0)) or consts[1] is None:
            raise UnsupportedOperatorError("Gemm with a transposed A or a non-constant B")
        return _Op(
            partial(
                _gemm,
                alpha=float(attrs.get("alpha", 1.0)),
                beta=float(attrs.get("beta", 1.0)),
                trans_b=bool(attrs.get("transB", 0)),
            )
        )
    if op == "Clip":
        low, high = (None if b is None else float(b) for b in [*consts, None, None][1:3])
        clamp = partial(torch.clamp, min=low, max=high)
        return _Op(clamp, 1, _overwriting(partial(torch.clamp_, min=low, max=high), clamp))
    elementwise: dict[str, tuple[Callable[..., Tensor], Callable[..., Tensor]]] = {
        "Add": (torch.add, Tensor.add_),
        "Sub": (torch.sub, Tensor.sub_),
        "Mul": (torch.mul, Tensor.mul_),
        "Relu": (torch.relu, torch.relu_),
        "Sigmoid": (torch.sigmoid, torch.sigmoid_),
    }
    if op in elementwise:
        fn, fn_ = elementwise[op]
        return _Op(fn, None, _overwriting(fn_, fn))
    other: dict[str, Callable[..., Tensor]] = {
        "Sqrt": torch.sqrt,
        "Reciprocal": torch.reciprocal,
        "GlobalAveragePool": lambda x: x.mean(dim=tuple(range(2, x.dim())), keepdim=True),
    }
    if op in other:
        return _Op(other[op])
    raise UnsupportedOperatorError(f"operator {op}")


def _to_tensor(array: np.ndarray) -> Tensor:
    """A constant as float32 (integer data and zero points included), or int64 shapes."""
    if array.dtype == np.int64:
        return torch.from_numpy(array.copy())
    return torch.from_numpy(array.astype(np.float32))


class _Step(NamedTuple):
    """A node to replay: its runtime inputs, constant buffers and output name."""

    op_type: str
    op: _Op
    reads: tuple[str, ...]
    slots: list[int | str]
    buffers: dict[str, Tensor]
    write: str


class ONNXModule(nn.Module):
    """An ``.onnx`` graph replayed with torch ops.

    ``forward(*inputs)`` takes the graph's inputs in order, in the graph's layout (e.g.
    (B, H, W, 3) for an NHWC image input, any batch size B and, for convolutional graphs,
    any H and W), and returns ``{output name: tensor}``.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        import onnx
        from onnx import numpy_helper

        graph = onnx.load(str(path)).graph
        known: dict[str, np.ndarray] = {
            init.name: numpy_helper.to_array(init) for init in graph.initializer
        }
        folded: dict[str, Tensor] = {}
        alias: dict[str, str] = {}  # a vanished node's output -> the tensor holding its value
        quantised: dict[str, _Grid] = {}  # ONNX int8/uint8 tensors, held dequantised
        on_grid: dict[str, _Grid] = {}  # float tensors whose values lie on a grid
        self.input_names = [i.name for i in graph.input if i.name not in known]
        available = set(self.input_names)
        steps: list[_Step] = []
        for index, node in enumerate(graph.node):
            where = f"{Path(path).name}: node #{index} ({node.op_type} {node.name!r})"
            op_type, output = node.op_type, node.output[0]
            if op_type == "Constant":
                value = _attrs(node).get("value")
                if value is None:
                    raise UnsupportedOperatorError(f"{where}: a Constant other than a tensor")
                known[output] = numpy_helper.to_array(value)
                continue
            if len(node.output) != 1 or not node.input:
                raise UnsupportedOperatorError(f"{where}: {len(node.output)} outputs, no inputs")
            inputs = [alias.get(n, n) for n in node.input]
            consts = [known.get(name) for name in node.input]
            try:
                if any(n in quantised for n in node.input[1:]) or (
                    node.input[0] in quantised and op_type not in (*_LAYOUT, "DequantizeLinear")
                ):
                    raise UnsupportedOperatorError("arithmetic on quantised integers")
                if op_type == "QuantizeLinear":
                    quantised[output] = on_grid[output] = _grid(consts)
                    if on_grid.get(inputs[0]) == on_grid[output]:  # already on the grid
                        alias[output] = inputs[0]
                        continue
                if op_type == "DequantizeLinear" and node.input[0] in quantised:
                    if _grid(consts) != quantised[node.input[0]]:
                        raise UnsupportedOperatorError("dequantisation by other parameters")
                    alias[output] = inputs[0]  # held dequantised already
                    continue
                op = _build(op_type, _attrs(node), consts)
                used = inputs[: op.arity]
                if any(n and n not in known for n in node.input[len(used) :]):
                    raise UnsupportedOperatorError("a non-constant parameter input")
            except UnsupportedOperatorError as exc:
                raise UnsupportedOperatorError(f"{where}: {exc}") from exc
            if node.input[0] in quantised and op_type in _LAYOUT:
                quantised[output] = quantised[node.input[0]]
            if inputs[0] in on_grid and _keeps_grid(op_type, op):
                on_grid[output] = on_grid[inputs[0]]
            runtime = tuple(n for n in used if n and n not in known and n not in folded)
            missing = [n for n in runtime if n not in available]
            if missing:
                raise ValueError(f"{where} reads unset tensors {missing}")
            slots: list[int | str] = []
            buffers: dict[str, Tensor] = {}
            for name in used:
                if name in runtime:
                    slots.append(runtime.index(name))
                else:
                    key = f"c{len(buffers)}"
                    buffers[key] = folded[name] if name in folded else _to_tensor(known[name])
                    slots.append(key)
            if not runtime:  # all inputs constant: evaluate once
                with torch.no_grad():
                    folded[output] = _Node(op.fn, slots, buffers)()
                continue
            steps.append(_Step(op_type, op, runtime, slots, buffers, output))
            available.add(output)
        self.output_names = [o.name for o in graph.output]
        self._outputs = [alias.get(n, n) for n in self.output_names]
        if any(n in quantised for n in self.output_names):
            raise UnsupportedOperatorError(f"{Path(path).name}: quantised graph outputs")
        self.steps = nn.ModuleList(
            _Node(fn, step.slots, step.buffers)
            for step, fn in zip(steps, self._plan_storage(steps), strict=True)
        )
        self._reads = [step.reads for step in steps]
        self._writes = [step.write for step in steps]
        last_read = {n: k for k, step_reads in enumerate(self._reads) for n in step_reads}
        self._frees = [
            tuple({n for n in step_reads if last_read[n] == k and n not in self._outputs})
            for k, step_reads in enumerate(self._reads)
        ]

    def _plan_storage(self, steps: list[_Step]) -> list[Callable[..., Tensor]]:
        """Each step's function: the overwriting variant where its first input's storage is
        not read again (nor shared by a view read later, a graph input or output)."""
        never = len(steps)
        last_read = {n: k for k, step in enumerate(steps) for n in step.reads}
        last_read.update(dict.fromkeys([*self.input_names, *self._outputs], never))
        sharing: dict[str, list[str]] = {n: [n] for n in self.input_names}
        storage = {n: n for n in self.input_names}  # tensor -> first tensor of its storage
        fns = []
        for k, step in enumerate(steps):
            first = storage[step.reads[0]]
            overwrite = (
                step.op.overwriting is not None
                and step.slots[0] == 0
                and k == max(last_read.get(n, -1) for n in sharing[first])
                and all(n == step.reads[0] or storage[n] != first for n in step.reads[1:])
            )
            fns.append(step.op.overwriting if overwrite else step.op.fn)
            storage[step.write] = first if overwrite or step.op_type in _VIEWS else step.write
            sharing.setdefault(storage[step.write], []).append(step.write)
        return fns

    def forward(self, *inputs: Tensor) -> dict[str, Tensor]:
        if len(inputs) != len(self.input_names):
            raise ValueError(f"expected {len(self.input_names)} inputs, got {len(inputs)}")
        values = dict(zip(self.input_names, inputs, strict=True))
        for step, step_reads, write, frees in zip(
            self.steps, self._reads, self._writes, self._frees, strict=True
        ):
            values[write] = step(*(values[n] for n in step_reads))
            for n in frees:
                del values[n]
        return {name: values[n] for name, n in zip(self.output_names, self._outputs, strict=True)}


def onnx_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The constants of an ``.onnx`` graph as the replay holds them (float32, int8 weights
    dequantised), keyed by node position: ``steps.<k>.c<i>``."""
    return ONNXModule(path).state_dict()
