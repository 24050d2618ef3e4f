"""The ``instant`` method: the ONNX replay against onnxruntime, the API, the CLI, the
strength and blend knobs, and ``--init instant``.

Reference runtime: ``onnxruntime`` (test-only), with graph optimisations off so that it
computes the ONNX operators as specified (its default QDQ fusion swaps in int8 kernels
whose rounding differs; measured beside the parity numbers in docs/performance.md).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from skimage import data

from portrait_stylize import stylize
from portrait_stylize.cli import main
from portrait_stylize.color import rgb_to_yiq
from portrait_stylize.images import load_image, resize_long_side
from portrait_stylize.methods import resolve_settings
from portrait_stylize.models import magenta
from portrait_stylize.nets.magenta import style_square
from portrait_stylize.nets.onnx import ONNXModule
from portrait_stylize.weights import weight_path

from .conftest import data_file

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _reference(model: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    """scikit-image's astronaut photo (1, 3, 512, 512) in [0, 1]."""
    return torch.from_numpy(data.astronaut()).permute(2, 0, 1)[None].float() / 255


@pytest.fixture(scope="module")
def starry() -> torch.Tensor:
    """The Starry Night (1, 3, h, w) in [0, 1]."""
    return load_image(data_file("style", "starry_night.jpg")).rgb[None]


def _tiny_graph(path: str) -> None:
    """An NHWC QDQ graph with every operator family of Magenta's pair, random weights."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def const(name: str, value: np.ndarray) -> TensorProto:
        return numpy_helper.from_array(value, name)

    scale = np.float32(1 / 64)
    inits = [
        const("s_in", np.float32(1 / 255)),
        const("z_in", np.int8(-128)),
        const("w_q", rng.integers(-127, 128, (4, 3, 3, 3), dtype=np.int8)),
        const("w_s", rng.uniform(0.001, 0.01, 4).astype(np.float32)),
        const("w_z", np.zeros(4, np.int8)),
        const("s_a", scale),
        const("z_a", np.int8(3)),
        const("pad1", np.array([0, 1, 1, 0, 0, 1, 1, 0], np.int64)),
        const("pads", np.array([0, 0, 1, 2, 0, 0, 1, 2], np.int64)),
        const("scales", np.array([1, 1, 2, 2], np.float32)),
        const("roi", np.zeros(0, np.float32)),
        const("shape", np.array([1, 4, 1, 1], np.int64)),
        const("lo", np.float32(0)),
        const("hi", np.float32(6)),
    ]
    nodes = [
        helper.make_node("Pad", ["x", "pad1"], ["p"], mode="reflect"),
        helper.make_node("QuantizeLinear", ["p", "s_in", "z_in"], ["pq"]),
        helper.make_node("Transpose", ["pq"], ["pt"], perm=[0, 3, 1, 2]),
        helper.make_node("DequantizeLinear", ["pt", "s_in", "z_in"], ["pf"]),
        helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["w"], axis=0),
        helper.make_node("Conv", ["pf", "w"], ["c"], strides=[2, 2], pads=[0, 0, 1, 1]),
        helper.make_node("Clip", ["c", "lo", "hi"], ["r"]),
        helper.make_node("QuantizeLinear", ["r", "s_a", "z_a"], ["rq"]),
        helper.make_node("DequantizeLinear", ["rq", "s_a", "z_a"], ["rf"]),
        helper.make_node("GlobalAveragePool", ["rf"], ["m"]),
        helper.make_node("Reshape", ["m", "shape"], ["mr"]),
        helper.make_node("Sub", ["rf", "mr"], ["d"]),
        helper.make_node("Mul", ["d", "d"], ["d2"]),
        helper.make_node("Sqrt", ["d2"], ["sq"]),
        helper.make_node("Add", ["sq", "rf"], ["a"]),
        helper.make_node("Reciprocal", ["hi"], ["inv"]),
        helper.make_node("Mul", ["a", "inv"], ["am"]),
        helper.make_node("Relu", ["am"], ["r0"]),
        helper.make_node("QuantizeLinear", ["r0", "s_a", "z_a"], ["r0q"]),
        helper.make_node("DequantizeLinear", ["r0q", "s_a", "z_a"], ["u"]),
        helper.make_node("Pad", ["u", "pads"], ["p0"], mode="reflect"),
        helper.make_node("QuantizeLinear", ["p0", "s_a", "z_a"], ["p0q"]),  # on its grid
        helper.make_node("DequantizeLinear", ["p0q", "s_a", "z_a"], ["up"]),
        helper.make_node(
            "Resize",
            ["up", "roi", "scales"],
            ["big"],
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        ),
        helper.make_node("Sigmoid", ["big"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 12, 10, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    onnx.save(model, path)


def test_replay_matches_onnxruntime_on_a_small_qdq_graph(tmp_path) -> None:
    path = str(tmp_path / "tiny.onnx")
    _tiny_graph(path)
    x = np.random.default_rng(1).random((1, 12, 10, 3), dtype=np.float32)
    (expected,) = _reference((tmp_path / "tiny.onnx").read_bytes()).run(None, {"x": x})
    kept = x.copy()
    with torch.no_grad():
        (got,) = ONNXModule(path)(torch.from_numpy(x)).values()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(x, kept)  # the replay overwrites only its own tensors
    twice = torch.from_numpy(np.concatenate([x, x]))  # a batch of 2 through Reshape [1, ...]
    with torch.no_grad():
        (pair,) = ONNXModule(path)(twice).values()
    torch.testing.assert_close(pair[1:], got)


def test_replay_passes_straight_through_gradients(tmp_path) -> None:
    path = str(tmp_path / "tiny.onnx")
    _tiny_graph(path)
    x = torch.rand(1, 12, 10, 3, generator=torch.Generator().manual_seed(1))
    net = ONNXModule(path)
    with torch.no_grad():
        (exact,) = net(x).values()
    (y,) = net(x.requires_grad_()).values()
    torch.testing.assert_close(y.detach(), exact, atol=1 / 64, rtol=0)  # rare tie flips
    y.sum().backward()
    assert x.grad is not None and bool(x.grad.isfinite().all()) and float(x.grad.abs().sum()) > 0


def test_unsupported_operator_names_the_node(tmp_path) -> None:
    from onnx import TensorProto, helper

    node = helper.make_node("Softmax", ["x"], ["y"], name="soft")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
    )
    path = tmp_path / "soft.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(NotImplementedError, match=r"node #0 \(Softmax 'soft'\)"):
        ONNXModule(path)


@pytest.mark.slow
def test_real_networks_match_onnxruntime(astronaut, starry) -> None:
    """Parity on a real photo and painting at the graphs' own sizes (256 and 384)."""
    predictor, transformer = magenta("cpu")
    style = style_square(starry)
    predict_ref = _reference(weight_path("magenta-style-predict").read_bytes())
    (expected,) = predict_ref.run(None, {"style_image": style.permute(0, 2, 3, 1).numpy()})
    embedding = predictor(style)
    step = 0.0227  # the quantisation step of the embedding
    assert float((embedding - torch.from_numpy(expected).reshape(1, -1)).abs().max()) < 2 * step
    content = resize_long_side(astronaut, 384)
    transform_ref = _reference(weight_path("magenta-style-transform").read_bytes())
    names = [i.name for i in transform_ref.get_inputs()]
    (image,) = transform_ref.run(
        None, {names[0]: content.permute(0, 2, 3, 1).numpy(), names[1]: expected}
    )
    with torch.no_grad():
        got = transformer(content, torch.from_numpy(expected).reshape(1, -1))
    diff = (got - torch.from_numpy(image).permute(0, 3, 1, 2)).abs()
    # One-step flips of int8 activations (float summation order) spread through the
    # quantised instance norms: small on average, larger on few pixels.
    assert float(diff.mean()) < 0.03
    assert float(diff.flatten().quantile(0.99)) < 0.15


@pytest.mark.slow
def test_instant_through_stylize_keeps_the_size_and_records(astronaut, starry) -> None:
    content = astronaut[0, :, 40:340, 60:260]  # 300 x 200: sides not multiples of 4
    result = stylize(content, starry[0], method="instant", size=150)
    assert result.image.shape == resize_long_side(content, 150).shape == (3, 150, 100)
    assert float(result.image.min()) >= 0 and float(result.image.max()) <= 1
    (stage,) = result.record["stages"]
    assert stage["iterations"] == 0 and stage["size"] == [150, 100] and stage["seconds"] > 0
    assert [w["name"] for w in result.record["weights"]] == [
        "magenta-style-predict",
        "magenta-style-transform",
    ]
    assert result.record["stopped"] is None


@pytest.mark.slow
def test_instant_cli_writes_image_and_record(tmp_path) -> None:
    out = tmp_path / "instant.png"
    code = main(
        [
            str(data_file("content", "astronaut.jpg")),
            str(data_file("style", "starry_night.jpg")),
            *("-o", str(out), "--method", "instant", "--size", "96", "-q"),
        ]
    )
    assert code == 0
    assert load_image(out).size == (96, 96)
    record = json.loads(out.with_name("instant.png.json").read_text())
    assert record["method"] == "instant" and len(record["stages"]) == 1


@pytest.mark.slow
def test_strength_moves_between_content_and_style(astronaut, starry, tiny_extractor) -> None:
    from piq import ssim

    from portrait_stylize.metrics import style_distance

    content = resize_long_side(astronaut, 128)
    results = {
        s: stylize(astronaut[0], starry[0], method="instant", size=128, style_strength=s).image
        for s in (0.0, 1.0)
    }
    similarity = {s: float(ssim(r[None], content, data_range=1.0)) for s, r in results.items()}
    assert similarity[0.0] > similarity[1.0]
    style = resize_long_side(starry, 128)
    distance = {s: style_distance(r[None], style, tiny_extractor) for s, r in results.items()}
    assert distance[1.0] < distance[0.0]


@pytest.mark.slow
def test_blend_weights_one_and_zero_equal_the_single_style(astronaut, starry) -> None:
    scream = load_image(data_file("style", "the_scream.jpg")).rgb
    single = stylize(astronaut[0], starry[0], method="instant", size=64).image
    blended = stylize(
        astronaut[0], [starry[0], scream], method="instant", size=64, style_blend_weights=(1, 0)
    ).image
    torch.testing.assert_close(blended, single)
    other = stylize(astronaut[0], scream, method="instant", size=64).image
    assert float((other - single).abs().mean()) > 0.02


@pytest.mark.slow
def test_preserve_colors_keeps_the_content_chroma(astronaut, starry) -> None:
    result = stylize(astronaut[0], starry[0], method="instant", size=64, preserve_colors=True)
    content = resize_long_side(astronaut[0], 64)
    chroma = (rgb_to_yiq(result.image)[1:] - rgb_to_yiq(content)[1:]).abs()
    assert float(chroma.mean()) < 0.02


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"style_strength": 1.5}, "style_strength"), ({"init": "instantly"}, "init")],
)
def test_bad_settings_are_clear_errors(overrides, message) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_settings("instant", overrides)


def test_a_too_small_content_is_a_clear_error(starry) -> None:
    with pytest.raises(ValueError, match="at least 16 px"):
        stylize(torch.rand(3, 8, 200), starry[0], method="instant", size=200)


@pytest.mark.slow
def test_init_instant_starts_crowson_from_the_instant_image(astronaut, starry) -> None:
    instant = stylize(astronaut[0], starry[0], method="instant", size=96).image
    first: list[torch.Tensor] = []

    def keep_first(step) -> bool:
        if not first:
            first.append(step.image[0].detach().cpu())
        return False

    stylize(
        astronaut[0],
        starry[0],
        method="crowson",
        size=96,
        min_size=None,
        initial_iterations=1,
        init="instant",
        callbacks=[keep_first],
    )
    content = resize_long_side(astronaut[0], 96)
    assert float((first[0] - instant).abs().mean()) < 0.02
    assert float((first[0] - content).abs().mean()) > 0.05
