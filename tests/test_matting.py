"""MODNet portrait matting: the ONNX replay's operators for it against onnxruntime, the
network against onnxruntime on a real photo, its matte against the selfie mask, and its
use by ``--background`` and portrait-aware.

Reference runtime: ``onnxruntime`` (test-only), graph optimisations off.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from portrait_stylize import masks
from portrait_stylize.errors import SettingsError
from portrait_stylize.images import load_image, resize_long_side
from portrait_stylize.methods import resolve_settings
from portrait_stylize.methods.portrait_aware import background_of
from portrait_stylize.models import modnet
from portrait_stylize.nets.modnet import network_size
from portrait_stylize.nets.onnx import ONNXModule, UnsupportedOperatorError
from portrait_stylize.weights import get_spec

from .conftest import EXAMPLES, weights_or_skip

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _reference(model: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    """examples/astronaut.jpg (1, 3, 512, 512) in [0, 1]."""
    return resize_long_side(load_image(EXAMPLES / "astronaut.jpg").rgb, 512).reshape(1, 3, 512, 512)


def _save(path, nodes, inits, channels: int = 4) -> None:
    """A float graph of ``nodes`` from input x (B, C, H, W), dynamic sizes, to output y."""
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", channels, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(value, name) for name, value in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    onnx.save(model, str(path))


def _squeeze_excite_graph(path) -> None:
    """MODNet's channel attention as PyTorch exports it: sizes read from the tensor
    (Shape, Gather, Unsqueeze, Concat) for a Reshape and an Expand, MatMul, Constant."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node(
            "Constant", [], ["zero"], value=numpy_helper.from_array(np.array(0, np.int64))
        ),
        helper.make_node(
            "Constant", [], ["one"], value=numpy_helper.from_array(np.array(1, np.int64))
        ),
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
        helper.make_node("Gather", ["shape", "one"], ["c"], axis=0),
        helper.make_node("GlobalAveragePool", ["x"], ["pooled"]),
        helper.make_node("Unsqueeze", ["n"], ["n1"], axes=[0]),
        helper.make_node("Unsqueeze", ["c"], ["c1"], axes=[0]),
        helper.make_node("Concat", ["n1", "c1"], ["flat_shape"], axis=0),
        helper.make_node("Reshape", ["pooled", "flat_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w1"], ["hidden"]),
        helper.make_node("Relu", ["hidden"], ["hidden_r"]),
        helper.make_node("MatMul", ["hidden_r", "w2"], ["gate_flat"]),
        helper.make_node("Sigmoid", ["gate_flat"], ["gate_s"]),
        helper.make_node("Concat", ["n1", "c1", "ones", "ones"], ["gate_shape"], axis=0),
        helper.make_node("Reshape", ["gate_s", "gate_shape"], ["gate"]),
        helper.make_node("Expand", ["gate", "shape"], ["gate_full"]),
        helper.make_node("Mul", ["x", "gate_full"], ["y"]),
    ]
    inits = {
        "w1": rng.normal(size=(4, 2)).astype(np.float32),
        "w2": rng.normal(size=(2, 4)).astype(np.float32),
        "ones": np.array([1], np.int64),
    }
    _save(path, nodes, inits)


def _split_norm_resize_graph(path) -> None:
    """MODNet's decoder pieces: Slice into halves, InstanceNormalization of one, Concat,
    bilinear Resize (pytorch_half_pixel) up and down, a Clip by Constant bounds."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(1)

    def constant(name: str, value: np.ndarray):
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value))

    linear = {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"}
    nodes = [
        constant("s0", np.array([0], np.int64)),
        constant("s2", np.array([2], np.int64)),
        constant("end", np.array([np.iinfo(np.int64).max], np.int64)),
        constant("axis1", np.array([1], np.int64)),
        constant("step1", np.array([1], np.int64)),
        constant("lo", np.array(0, np.float32)),
        constant("hi", np.array(6, np.float32)),
        constant("roi", np.zeros(0, np.float32)),
        helper.make_node("Slice", ["x", "s0", "s2", "axis1", "step1"], ["a"]),
        helper.make_node("Slice", ["x", "s2", "end", "axis1", "step1"], ["b"]),
        helper.make_node("InstanceNormalization", ["b", "gamma", "beta"], ["bn"], epsilon=1e-5),
        helper.make_node("Concat", ["a", "bn"], ["ab"], axis=1),
        helper.make_node("Resize", ["ab", "roi", "up"], ["big"], **linear),
        helper.make_node("Resize", ["big", "roi", "down"], ["small"], **linear),
        helper.make_node("Clip", ["small", "lo", "hi"], ["y"]),
    ]
    inits = {
        "gamma": rng.uniform(0.5, 2, 2).astype(np.float32),
        "beta": rng.normal(size=2).astype(np.float32),
        "up": np.array([1, 1, 2, 2], np.float32),
        "down": np.array([1, 1, 0.25, 0.25], np.float32),
    }
    _save(path, nodes, inits)


@pytest.mark.parametrize("build", [_squeeze_excite_graph, _split_norm_resize_graph])
def test_modnet_operators_match_onnxruntime(tmp_path, build) -> None:
    path = tmp_path / "g.onnx"
    build(path)
    net = ONNXModule(path)
    reference = _reference(path.read_bytes())
    for shape in [(1, 4, 8, 12), (2, 4, 16, 8)]:  # any batch and size
        x = np.random.default_rng(2).normal(size=shape).astype(np.float32) * 3
        (expected,) = reference.run(None, {"x": x})
        with torch.no_grad():
            (got,) = net(torch.from_numpy(x.copy())).values()
        assert got.shape == expected.shape
        np.testing.assert_allclose(got.numpy(), expected, atol=2e-5, rtol=1e-5)


def test_modnet_operators_pass_gradients(tmp_path) -> None:
    path = tmp_path / "g.onnx"
    _split_norm_resize_graph(path)
    x = torch.randn(1, 4, 8, 8, requires_grad=True)
    (y,) = ONNXModule(path)(x).values()
    y.sum().backward()
    assert x.grad is not None and bool(x.grad.isfinite().all())


@pytest.mark.parametrize(
    ("node", "message"),
    [
        (("Slice", ["x", "s", "e", "a", "neg"]), "step below 1"),
        (("Resize", ["x", "roi", "up"], {"mode": "linear"}), "Resize other than"),
        (("Gather", ["x", "idx"]), "one constant index"),
    ],
)
def test_unsupported_variants_name_the_node(tmp_path, node, message) -> None:
    from onnx import helper

    op, inputs, *attrs = node
    inits = {
        "s": np.array([0], np.int64),
        "e": np.array([2], np.int64),
        "a": np.array([1], np.int64),
        "neg": np.array([-1], np.int64),
        "roi": np.zeros(0, np.float32),
        "up": np.array([1, 1, 2, 2], np.float32),
        "idx": np.array([0, 1], np.int64),
    }
    _save(tmp_path / "g.onnx", [helper.make_node(op, inputs, ["y"], **(attrs or [{}])[0])], inits)
    with pytest.raises(UnsupportedOperatorError, match=rf"node #0 \({op} ''\): .*{message}"):
        ONNXModule(tmp_path / "g.onnx")


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((512, 512), (512, 512)),
        ((437, 512), (416, 512)),  # straddles 512: kept, rounded down to 32
        ((256, 384), (512, 768)),  # all below: short side to 512
        ((1024, 2048), (512, 1024)),  # all above: short side to 512
        ((600, 700), (512, 597 - 597 % 32)),
        ((20, 1000), (32, 992)),
    ],
)
def test_network_size_is_a_multiple_of_32_near_the_reference(size, expected) -> None:
    assert network_size(*size) == expected


def test_modnet_is_registered_with_its_checksum() -> None:
    spec = get_spec("modnet")
    assert spec.size_bytes == 25_888_640
    assert spec.sha256 == "07c308cf0fc7e6e8b2065a12ed7fc07e1de8febb7dc7839d7b7f15dd66584df9"
    assert spec.sources[0].member == "photobooth/utils/rembg/models/modnet.onnx"


def test_modnet_replay_matches_onnxruntime_on_a_photo(astronaut) -> None:
    """The graph itself, on the real photo at 320 px (the matte of both within 1e-4)."""
    path = weights_or_skip("modnet")
    x = resize_long_side(astronaut, 320) * 2 - 1
    (expected,) = _reference(path.read_bytes()).run(None, {"input": x.numpy()})
    with torch.no_grad():
        got = modnet("cpu").net(x)["output"]
    assert got.shape == (1, 1, 320, 320)
    assert float((got - torch.from_numpy(expected)).abs().max()) < 1e-4


def test_the_matte_covers_the_person_and_not_the_sky(astronaut) -> None:
    """Measured on astronaut.jpg at 512 px: IoU of the two masks at 0.5 is 0.961 (the
    selfie mask also takes in patches of the flag); 96.1 % of the selfie mask's person
    has alpha > 0.9; the top corners' alpha is below 1e-3 (the bottom ones are on the
    suit and the helmet)."""
    weights_or_skip("modnet")
    with torch.no_grad():
        alpha = masks.person_mask(astronaut, "modnet")[0, 0]
        selfie = masks.person_mask(astronaut, "auto")[0, 0]
    assert alpha.shape == (512, 512) and 0 <= float(alpha.min()) <= float(alpha.max()) <= 1
    person, matte = selfie >= 0.5, alpha >= 0.5
    assert float((person & matte).sum() / (person | matte).sum()) > 0.93
    assert float((alpha[person] > 0.9).float().mean()) > 0.94
    for corner in (alpha[:48, :48], alpha[:48, -48:]):
        assert float(corner.max()) < 0.01


def test_background_composites_with_the_soft_alpha(astronaut) -> None:
    weights_or_skip("modnet")
    image = astronaut[0]
    with torch.no_grad():
        alpha = masks.person_mask(image, "modnet")[0]
    out = masks.replace_background(image, "color:#00ff00")  # auto: MODNet
    green = torch.tensor([0.0, 1.0, 0.0]).view(3, 1, 1)
    torch.testing.assert_close(out, image * alpha + green * (1 - alpha))
    torch.testing.assert_close(out[:, :48, :48], green.expand(3, 48, 48), atol=0.01, rtol=0)
    selfie = masks.replace_background(image, "color:#00ff00", person_model="selfie")
    assert not torch.equal(selfie, out)


def test_portrait_aware_reads_the_person_model(astronaut) -> None:
    weights_or_skip("modnet")
    auto = resolve_settings("portrait-aware")
    chosen = resolve_settings("portrait-aware", {"person_model": "modnet"})
    with torch.no_grad():
        expected = masks.background_mask(masks.person_mask(astronaut, "modnet"))
        torch.testing.assert_close(background_of(chosen, astronaut), expected)
        selfie = masks.background_mask(masks.person_mask(astronaut, "auto"))
        torch.testing.assert_close(background_of(auto, astronaut), selfie)


def test_a_bad_person_model_is_a_clear_error() -> None:
    with pytest.raises(SettingsError, match="person_model must be one of auto, selfie, modnet"):
        resolve_settings("gatys", {"person_model": "fcn"})
    with pytest.raises(ValueError, match="unknown person model 'fcn'; known: auto, selfie"):
        masks.replace_background(torch.zeros(3, 32, 32), "color:#000000", person_model="fcn")
