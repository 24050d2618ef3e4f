"""The torch replay of the MediaPipe TFLite models against the TFLite interpreter.

Reference: ``ai_edge_litert`` (the TFLite runtime, a dev dependency), batch 1, float32 NHWC.
Inputs are real face crops and photos (examples/, and ../shared/data where needed).
"""

from __future__ import annotations

import copy
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
import tflite
import torch
import torch.nn.functional as F
from PIL import Image

from portrait_stylize.nets import tflite as tflite_executor
from portrait_stylize.nets.mediapipe import load_mediapipe
from portrait_stylize.nets.tflite import TFLiteModule, UnsupportedOperatorError, tflite_state_dict
from portrait_stylize.weights import load_state_dict

from .conftest import data_file, needs_photos, weights_or_skip

try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:  # the reference is a test-only dependency
    Interpreter = None

needs_litert = pytest.mark.skipif(
    Interpreter is None, reason="ai-edge-litert (the TFLite reference interpreter) is not installed"
)

# Square face crops (x0, y0, side) in image pixels: the BlazeFace box enlarged 1.5x.
FACE_CROPS = {
    "astronaut.jpg": (153, 56, 141),
    "grace_hopper.jpg": (119, 96, 294),
    "closeup_portrait.jpg": (60, 250, 660),
}
PHOTOS = ("astronaut.jpg", "grace_hopper.jpg", "closeup_portrait.jpg", "group_six_faces.jpg")


def _photo(name: str) -> torch.Tensor:
    """(3,H,W) RGB in [0,1]."""
    array = np.array(Image.open(data_file("content", name)).convert("RGB"), dtype=np.float32)
    array /= 255.0
    return torch.from_numpy(array).permute(2, 0, 1)


def _resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(3,H,W) -> (1,3,*size), antialiased."""
    return F.interpolate(image[None], size, mode="bilinear", antialias=True)


def _face_crops(size: int, names: tuple[str, ...] = tuple(FACE_CROPS)) -> torch.Tensor:
    """(N,3,size,size) face crops of the N photos ``names`` (keys of FACE_CROPS)."""
    crops = []
    for name in names:
        x0, y0, side = FACE_CROPS[name]
        crops.append(_resize(_photo(name)[:, y0 : y0 + side, x0 : x0 + side], (size, size)))
    return torch.cat(crops)


def _photos(size: tuple[int, int], names: tuple[str, ...] = PHOTOS) -> torch.Tensor:
    """(N,3,*size) the N photos ``names``, stretched."""
    return torch.cat([_resize(_photo(name), size) for name in names])


def _reference(model: Path | bytes, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run the TFLite interpreter image by image; 4-D outputs returned as NCHW."""
    source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    interpreter = Interpreter(**source)
    interpreter.allocate_tensors()
    (input_detail,) = interpreter.get_input_details()
    results: dict[str, list[np.ndarray]] = {}
    for image in images:
        interpreter.set_tensor(input_detail["index"], image.permute(1, 2, 0)[None].numpy())
        interpreter.invoke()
        for detail in interpreter.get_output_details():
            results.setdefault(detail["name"], []).append(interpreter.get_tensor(detail["index"]))
    out = {}
    for name, arrays in results.items():
        value = torch.from_numpy(np.concatenate(arrays))
        out[name] = value.permute(0, 3, 1, 2) if value.dim() == 4 else value
    return out


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a - b).abs().max().item()


# --- Parity ----------------------------------------------------------------------------


@needs_litert
@needs_photos
def test_facemesh_matches_tflite() -> None:
    model = load_mediapipe("facemesh")
    crops = _face_crops(192)
    ref = _reference(weights_or_skip("facemesh"), crops)
    with torch.no_grad():
        landmarks, presence = model(crops)
    assert landmarks.shape == (3, 468, 3) and presence.shape == (3,)
    assert _max_diff(landmarks, ref["conv2d_21"].reshape(3, 468, 3)) <= 1e-3  # crop pixels
    assert _max_diff(presence, ref["conv2d_31"].reshape(3)) <= 1e-3
    assert (presence > 5).all(), "every crop holds a face"
    assert landmarks[..., :2].min() > 0 and landmarks[..., :2].max() < 192


@needs_litert
@needs_photos
def test_blazeface_matches_tflite() -> None:
    model = load_mediapipe("blazeface")
    images = torch.cat([_face_crops(128), _photos((128, 128))])
    ref = _reference(weights_or_skip("blazeface"), images * 2 - 1)
    with torch.no_grad():
        regressors, logits = model(images)
    assert regressors.shape == (7, 896, 16) and logits.shape == (7, 896)
    assert _max_diff(regressors, ref["regressors"]) <= 1e-3
    assert _max_diff(logits, ref["classificators"].squeeze(-1)) <= 1e-3


@needs_litert
@needs_photos
@pytest.mark.parametrize(
    ("name", "size"),
    [("selfie-segmentation", (256, 256)), ("selfie-segmentation-landscape", (144, 256))],
)
def test_selfie_segmentation_matches_tflite(name: str, size: tuple[int, int]) -> None:
    model = load_mediapipe(name)
    images = _photos(size)
    (ref,) = _reference(weights_or_skip(name), images).values()
    with torch.no_grad():
        mask = model(images)
    assert mask.shape == (4, 1, *size)
    assert _max_diff(mask, ref) <= 1e-4
    assert mask.max() > 0.9 and mask.min() < 0.1, "photos of people hold person and background"


def test_selfie_segmentation_resizes_to_the_input_size() -> None:
    model = load_mediapipe("selfie-segmentation")
    image = _photo("grace_hopper.jpg")[None]
    with torch.no_grad():
        mask = model(image)
        small = model(_resize(image[0], (256, 256)))
    assert mask.shape == (1, 1, 600, 512)
    assert mask.min() >= 0 and mask.max() <= 1
    # The same mask as the model-size run, up to the two resamplings.
    assert (
        F.interpolate(mask, (256, 256), mode="bilinear", antialias=True) - small
    ).abs().mean() < 0.02


# --- Batches, gradients --------------------------------------------------------------


def _first_output(out: object) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out[0]  # type: ignore[index]


@pytest.mark.parametrize(
    ("name", "size", "tolerance"),
    [
        ("facemesh", (192, 192), 1e-3),
        ("blazeface", (128, 128), 1e-3),
        ("selfie-segmentation", (256, 256), 1e-4),
        ("selfie-segmentation-landscape", (144, 256), 1e-4),
    ],
)
def test_batch_equals_singles(name: str, size: tuple[int, int], tolerance: float) -> None:
    """Up to float32 summation order (the parity tolerances)."""
    model = load_mediapipe(name)
    images = _photos(size, PHOTOS[:2])
    with torch.no_grad():
        batch = model(images)
        singles = [model(images[i : i + 1]) for i in range(2)]
    for k, value in enumerate(batch if isinstance(batch, tuple) else (batch,)):
        single = torch.cat([s[k] if isinstance(s, tuple) else s for s in singles])
        assert value.shape[0] == 2
        assert _max_diff(value, single) <= tolerance


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("facemesh", (192, 192)),
        ("selfie-segmentation", (256, 256)),
        ("selfie-segmentation-landscape", (144, 256)),
    ],
)
def test_gradient_reaches_every_input_value(name: str, size: tuple[int, int]) -> None:
    """d(sum of the output)/d(input) is nonzero for every pixel and every channel."""
    model = load_mediapipe(name)
    face = _face_crops(192, ("astronaut.jpg",))
    image = (face if name == "facemesh" else _photos(size, PHOTOS[1:2])).requires_grad_()
    (grad,) = torch.autograd.grad(_first_output(model(image)).sum(), image)
    assert grad.shape == image.shape
    assert torch.isfinite(grad).all()
    assert (grad != 0).all(), f"{(grad == 0).sum().item()} input values get no gradient"


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("facemesh", (192, 192)),
        ("blazeface", (128, 128)),
        ("selfie-segmentation", (256, 256)),
        ("selfie-segmentation-landscape", (144, 256)),
    ],
)
def test_gradient_matches_finite_differences(name: str, size: tuple[int, int]) -> None:
    """Float64 autograd against central differences at six input values (corners too)."""
    model = copy.deepcopy(load_mediapipe(name)).double()
    image = _photos(size, PHOTOS[:1]).double()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        weights = torch.randn(
            _first_output(model(image)).shape, generator=generator, dtype=torch.float64
        )

    def loss(x: torch.Tensor) -> torch.Tensor:
        return (_first_output(model(x)) * weights).sum()

    x = image.clone().requires_grad_()
    (grad,) = torch.autograd.grad(loss(x), x)
    height, width = size
    points = [(0, 0, 0), (2, height - 1, width - 1), (1, height // 2, width // 3)]
    points += [
        (c, int(y), int(xx)) for c, y, xx in torch.randint(0, 3, (3, 3), generator=generator)
    ]
    eps = 1e-6
    for c, y, xx in points:
        step = torch.zeros_like(image)
        step[0, c, y, xx] = eps
        with torch.no_grad():
            numeric = (loss(image + step) - loss(image - step)) / (2 * eps)
        analytic = grad[0, c, y, xx]
        assert abs(numeric - analytic) <= 1e-5 + 1e-4 * abs(analytic), (c, y, xx)


# --- Executor: errors, state dict, SAME pooling ---------------------------------------


@pytest.mark.parametrize(
    ("name", "op"),
    [("facemesh", "PRELU"), ("selfie-segmentation", "CUSTOM:Convolution2DTransposeBias")],
)
def test_unsupported_operator_is_named(name: str, op: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = weights_or_skip(name)
    monkeypatch.delitem(tflite_executor.OP_BUILDERS, op)
    with pytest.raises(UnsupportedOperatorError, match=f"operator {op} "):
        TFLiteModule(path)


def test_unknown_model_name() -> None:
    with pytest.raises(ValueError, match="unknown MediaPipe model 'facenet'"):
        load_mediapipe("facenet")


def test_wrong_input_shape_is_reported() -> None:
    model = TFLiteModule(weights_or_skip("facemesh"))
    with pytest.raises(ValueError, match=r"expected \(B, 3, 192, 192\)"):
        model(torch.zeros(1, 3, 128, 128))


def test_state_dict_holds_dequantised_weights() -> None:
    state = tflite_state_dict(weights_or_skip("facemesh"))
    assert len(state) == 113  # every fp16 constant behind a DEQUANTIZE
    assert all(v.dtype == torch.float32 for v in state.values())
    assert state["conv2d_21/Kernel"].shape == (1404, 3, 3, 32)  # OHWI
    assert state["p_re_lu_1/Alpha"].shape == (1, 1, 16)
    registry = load_state_dict("facemesh")  # the converter declared in the catalogue
    assert registry.keys() == state.keys()
    # The module holds the same values, transposed to OIHW.
    module = TFLiteModule(weights_or_skip("facemesh"))
    weights = [b for n, b in module.named_buffers() if n.endswith("weight")]
    assert any(torch.equal(w, state["conv2d_21/Kernel"].permute(0, 3, 1, 2)) for w in weights)


def _pool_model(op: int, height: int, width: int, kernel: int, stride: int) -> bytes:
    """A one-operator float32 .tflite model: ``op`` pooling with SAME padding."""
    b = flatbuffers.Builder(1024)

    def int_vector(values: list[int]) -> int:
        b.StartVector(4, len(values), 4)
        for value in reversed(values):
            b.PrependInt32(value)
        return b.EndVector()

    def offset_vector(offsets: list[int]) -> int:
        b.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            b.PrependUOffsetTRelative(offset)
        return b.EndVector()

    def tensor(name: str, shape: list[int]) -> int:
        name_offset, shape_offset = b.CreateString(name), int_vector(shape)
        b.StartObject(4)  # Tensor: shape, type (FLOAT32 = default), buffer, name
        b.PrependUOffsetTRelativeSlot(0, shape_offset, 0)
        b.PrependUint32Slot(2, 1, 0)
        b.PrependUOffsetTRelativeSlot(3, name_offset, 0)
        return b.EndObject()

    out_h, out_w = -(-height // stride), -(-width // stride)
    tensors = offset_vector([tensor("x", [1, height, width, 2]), tensor("y", [1, out_h, out_w, 2])])
    b.StartObject(6)  # Pool2DOptions: padding (SAME = default), stride_w, stride_h, filter w, h
    for slot, value in ((1, stride), (2, stride), (3, kernel), (4, kernel)):
        b.PrependInt32Slot(slot, value, 0)
    options = b.EndObject()
    inputs, outputs = int_vector([0]), int_vector([1])
    b.StartObject(5)  # Operator: opcode_index, inputs, outputs, options type, options
    b.PrependUOffsetTRelativeSlot(1, inputs, 0)
    b.PrependUOffsetTRelativeSlot(2, outputs, 0)
    b.PrependUint8Slot(3, tflite.BuiltinOptions.Pool2DOptions, 0)
    b.PrependUOffsetTRelativeSlot(4, options, 0)
    operators = offset_vector([b.EndObject()])
    graph_inputs, graph_outputs = int_vector([0]), int_vector([1])
    b.StartObject(4)  # SubGraph: tensors, inputs, outputs, operators
    b.PrependUOffsetTRelativeSlot(0, tensors, 0)
    b.PrependUOffsetTRelativeSlot(1, graph_inputs, 0)
    b.PrependUOffsetTRelativeSlot(2, graph_outputs, 0)
    b.PrependUOffsetTRelativeSlot(3, operators, 0)
    subgraphs = offset_vector([b.EndObject()])
    b.StartObject(4)  # OperatorCode: deprecated_builtin_code, custom_code, version, builtin_code
    b.PrependInt8Slot(0, op, 0)
    b.PrependInt32Slot(2, 1, 1)
    b.PrependInt32Slot(3, op, 0)
    codes = offset_vector([b.EndObject()])
    buffers = []
    for _ in range(2):  # buffer 0 is the empty sentinel; tensors use buffer 1 (no data)
        b.StartObject(1)
        buffers.append(b.EndObject())
    buffer_vector = offset_vector(buffers)
    b.StartObject(5)  # Model: version, operator_codes, subgraphs, description, buffers
    b.PrependUint32Slot(0, 3, 0)
    b.PrependUOffsetTRelativeSlot(1, codes, 0)
    b.PrependUOffsetTRelativeSlot(2, subgraphs, 0)
    b.PrependUOffsetTRelativeSlot(4, buffer_vector, 0)
    b.Finish(b.EndObject(), file_identifier=b"TFL3")
    return bytes(b.Output())


@needs_litert
@pytest.mark.parametrize("op", ["MAX_POOL_2D", "AVERAGE_POOL_2D"])
@pytest.mark.parametrize(("height", "width", "kernel", "stride"), [(7, 8, 3, 2), (5, 5, 2, 2)])
def test_same_pooling_matches_tflite(
    op: str, height: int, width: int, kernel: int, stride: int, tmp_path: Path
) -> None:
    """SAME pooling: extra padding bottom/right, -inf for max, left out of the average."""
    content = _pool_model(getattr(tflite.BuiltinOperator, op), height, width, kernel, stride)
    path = tmp_path / "pool.tflite"
    path.write_bytes(content)
    # Negative values: zero padding would win a max pool and shift an average.
    x = -1 - torch.rand(2, 2, height, width, generator=torch.Generator().manual_seed(1))
    (ours,) = TFLiteModule(path)(x).values()
    (ref,) = _reference(content, x).values()
    assert _max_diff(ours, ref) <= 1e-6
