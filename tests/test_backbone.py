"""The papers' network (the original VGG-19) and neural-style's conventions of the Gatys
family: decoding, checksums, calibration, Gram and TV normalisation, pixel units, start."""

from __future__ import annotations

import hashlib

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from portrait_stylize import stylize
from portrait_stylize.api import initial_image
from portrait_stylize.engine import optimise
from portrait_stylize.features import BACKBONES, build_extractor, torchvision_factor
from portrait_stylize.images import load_image, resize_long_side
from portrait_stylize.losses import (
    CONVENTIONS,
    Objective,
    Term,
    TVTerm,
    gram_matrix,
    total_variation,
)
from portrait_stylize.methods import resolve_settings
from portrait_stylize.metrics import style_distance, style_evaluator
from portrait_stylize.nets.vgg import (
    VGG_BLOCKS,
    VGGTrunk,
    vgg19_state_dict_from_codebook,
    vgg19_state_dict_from_keras_h5,
)
from portrait_stylize.weights import (
    REGISTRY,
    WeightsError,
    WeightSpec,
    get_spec,
    register,
    weight_path,
)

from .conftest import data_file


def _conv_keys() -> list[str]:
    return [
        f"block{b}_conv{i}"
        for b, widths in enumerate(VGG_BLOCKS["vgg19"], start=1)
        for i in range(1, len(widths) + 1)
    ]


def test_real_vgg19_codebook_decodes_to_its_tables() -> None:
    """The offline file holds 16 convolutions of 8-bit codebooks; decoding gives every
    weight from its layer's 256-entry table, with the first conv turned from BGR to RGB."""
    path = weight_path("vgg19-caffe")
    packed = torch.load(path, map_location="cpu", weights_only=True)
    state = vgg19_state_dict_from_codebook(path)
    VGGTrunk("vgg19").load_state_dict(state)  # strict: every conv filled, shapes right
    assert len(_conv_keys()) == 16
    for key in _conv_keys():
        table, indices = packed[f"{key}_W_table"], packed[f"{key}_W_q"]
        assert table.shape == (256,) and indices.dtype == torch.uint8
        name = key.replace("block", "conv").replace("_conv", "_")
        weight = state[f"layers.{name}.weight"]
        assert weight.shape == indices.shape
        assert torch.isin(weight, table).all()
    first = state["layers.conv1_1.weight"]
    torch.testing.assert_close(
        first, packed["block1_conv1_W_table"][packed["block1_conv1_W_q"].long()].flip(1)
    )


@pytest.mark.parametrize("layout", ["legacy", "keras2"])
def test_keras_h5_of_vgg19_reads_both_layouts(tmp_path, layout) -> None:
    """The full-precision online file: kernels HWIO, BGR, named by either Keras version."""
    generator = np.random.default_rng(0)
    path = tmp_path / "vgg19.h5"
    expected = {}
    with h5py.File(path, "w") as h5:
        in_channels = 3
        for key, width in zip(
            _conv_keys(), [w for ws in VGG_BLOCKS["vgg19"] for w in ws], strict=True
        ):
            kernel = generator.standard_normal((3, 3, in_channels, width)).astype(np.float32)
            bias = generator.standard_normal(width).astype(np.float32)
            group = h5.create_group(key)
            if layout == "legacy":
                group[f"{key}_W_1:0"], group[f"{key}_b_1:0"] = kernel, bias
            else:
                group[f"{key}/kernel:0"], group[f"{key}/bias:0"] = kernel, bias
            expected[key] = (kernel, bias)
            in_channels = width
    state = vgg19_state_dict_from_keras_h5(path)
    kernel, bias = expected["block3_conv2"]
    torch.testing.assert_close(
        state["layers.conv3_2.weight"], torch.from_numpy(kernel.transpose(3, 2, 0, 1))
    )
    torch.testing.assert_close(state["layers.conv3_2.bias"], torch.from_numpy(bias))
    first = torch.from_numpy(expected["block1_conv1"][0].transpose(3, 2, 0, 1)).flip(1)
    torch.testing.assert_close(state["layers.conv1_1.weight"], first)


def test_md5_only_weights_are_checked_by_md5(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PORTRAIT_STYLIZE_HOME", str(tmp_path / "cache"))
    payload = b"keras weights\n" * 50
    right, wrong = tmp_path / "right.h5", tmp_path / "wrong.h5"
    right.write_bytes(payload)
    wrong.write_bytes(payload + b"!")
    spec = WeightSpec(
        name="t-md5",
        filename="t-md5.h5",
        sha256="",
        md5=hashlib.md5(payload).hexdigest(),
        license="test",
        size_bytes=None,
        description="md5-only test file",
        sources=(),
        converter="json:loads",
    )
    register(spec)
    try:
        assert spec.checksum == ("md5", spec.md5)
        with pytest.raises(WeightsError, match=r"checksum mismatch.*md5"):
            weight_path("t-md5", wrong)
        assert weight_path("t-md5", right).read_bytes() == payload
    finally:
        del REGISTRY["t-md5"]
    assert get_spec("vgg19-caffe-full").checksum[0] == "md5"


def test_torchvision_calibration_scales_every_layer_by_the_input_unit_ratio() -> None:
    torch.manual_seed(0)
    state = VGGTrunk("vgg19").state_dict()
    raw = build_extractor("vgg19-caffe", state_dict=state, calibration="none")
    scaled = build_extractor("vgg19-caffe", state_dict=state, calibration="torchvision")
    factor = torchvision_factor(BACKBONES["vgg19-caffe"])
    assert factor == pytest.approx(1 / (255 * 0.226), rel=1e-3)
    assert torchvision_factor(BACKBONES["vgg19-imagenet"]) == pytest.approx(1.0)
    image = torch.rand(1, 3, 40, 40)
    layers = ["relu1_1", "relu4_2"]
    for layer in layers:
        torch.testing.assert_close(
            scaled(image, layers)[layer], raw(image, layers)[layer] * factor, rtol=1e-4, atol=1e-6
        )
    with pytest.raises(ValueError, match="calibration"):
        build_extractor("vgg19-caffe", state_dict=state, calibration="bogus")


def test_neural_style_gram_and_tv_normalisation() -> None:
    features = torch.rand(2, 8, 5, 6)
    torch.testing.assert_close(gram_matrix(features, by_channels=True), gram_matrix(features) / 8)
    image = torch.zeros(1, 1, 4, 4)
    image[..., 2:] = 1.0  # one vertical edge, 4 rows
    assert total_variation(image, "half-sum").item() == pytest.approx(0.5 * 4)
    assert total_variation(image).item() == pytest.approx(4 / 16)
    with pytest.raises(ValueError, match="reduction"):
        TVTerm(1.0, reduction="max")


def test_gatys_family_uses_neural_style_and_crowson_its_own() -> None:
    for method in ("gatys", "gatys-plus", "portrait-aware"):
        settings = resolve_settings(method)
        assert (settings.convention, settings.calibration, settings.init) == (
            "neural-style",
            "none",
            "content",
        )
        assert resolve_settings(method, {"paper_exact": True}).init == "mean"  # the papers'
        assert settings.backbone == "vgg19-caffe" and settings.tv_weight == 1e-3
    assert (
        resolve_settings("gatys-plus").style_weight == 20 * resolve_settings("gatys").style_weight
    )
    for method in ("crowson", "portrait-stylization"):
        settings = resolve_settings(method)
        assert (settings.convention, settings.backbone, settings.calibration) == (
            "crowson",
            "vgg16-hed",
            "layer-mean",
        )
    assert CONVENTIONS["neural-style"].pixel_scale == 255.0


def test_mean_start_is_the_backbones_zero_input() -> None:
    settings = resolve_settings("gatys", {"init": "mean"})
    content = torch.rand(1, 3, 20, 30)
    start = initial_image(settings, content, [content])
    assert start.shape == content.shape
    neural_style_mean = torch.tensor([123.68, 116.779, 103.939]) / 255  # its Caffe VGG-19's
    torch.testing.assert_close(start.mean(dim=(0, 2, 3)), neural_style_mean, atol=1e-4, rtol=0)
    assert float(start.std(dim=(2, 3)).max()) < 1e-4


class _Quadratic(Term):
    """A loss of neural-style's size: 1e6 · mean((x − target)²) over 0-255 pixels."""

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__("quad", 1.0)
        self.register_buffer("target", target)

    def forward(self, features, image):
        return 1e6 * ((image - self.target) * 255).pow(2).mean()


@pytest.mark.parametrize("pixel_scale", [1.0, 255.0])
def test_pixel_scale_changes_units_not_the_problem(pixel_scale) -> None:
    """L-BFGS reaches the minimiser with the pixels in either unit; the result comes back in
    [0, 1] units."""
    torch.manual_seed(0)
    target = torch.rand(1, 3, 8, 8)
    objective = Objective(None, [_Quadratic(target)])  # type: ignore[arg-type]
    start = torch.full_like(target, 0.5)
    result = optimise(start, objective, iterations=30, pixel_scale=pixel_scale)
    torch.testing.assert_close(result.image, target, atol=1e-3, rtol=0)


@pytest.mark.slow
def test_real_gatys_paints_and_keeps_the_portrait() -> None:
    """The papers' network and settings, 128 px, 60 L-BFGS steps: the result is much closer
    to the painting's style than the photograph is, and keeps the portrait's layout: on an
    independent network (HED VGG-16, relu4_2) its features are clearly closer to the
    photograph's than those of the painting resized onto the frame. (At 128 px the painted
    face is about 25 px wide and MTCNN finds it or not by chance of the start.)"""
    content = load_image(data_file("content", "astronaut.jpg")).rgb
    style = load_image(data_file("style", "starry_night.jpg")).rgb
    result = stylize(content, style, "gatys", size=128, iterations=60)
    evaluator = style_evaluator()
    small = resize_long_side(content, 128)[None]
    target = resize_long_side(style, 128)[None]
    painted = style_distance(result.image[None], target, evaluator)
    photo = style_distance(small, target, evaluator)
    assert painted is not None and photo is not None
    assert painted < 0.5 * photo, (painted, photo)
    texture = F.interpolate(target, size=small.shape[-2:], mode="area")

    def layout_distance(image: torch.Tensor) -> float:
        with torch.no_grad():
            ours, photo_features = (evaluator(x, ["relu4_2"])["relu4_2"] for x in (image, small))
        return float((ours - photo_features).pow(2).mean() / photo_features.pow(2).mean())

    kept, lost = layout_distance(result.image[None]), layout_distance(texture)
    assert kept < 0.8 * lost, (kept, lost)
