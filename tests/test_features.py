"""VGG trunks, weight converters and the backbone calibration."""

from __future__ import annotations

import h5py
import pytest
import torch
import torch.nn.functional as F
import torchvision

from portrait_stylize.features import (
    BACKBONES,
    REFERENCE_ACTIVATION,
    build_extractor,
    calibration_images,
    measure_activation_means,
    relu_layers,
)
from portrait_stylize.nets.vgg import VGGTrunk, layer_names, vgg_state_dict_from_torchvision
from portrait_stylize.weights import weight_path


def test_layer_names() -> None:
    names = layer_names("vgg19")
    assert names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert "relu5_4" in names and "relu5_4" not in layer_names("vgg16")
    assert len([n for n in names if n.startswith("conv")]) == 16


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args) -> None:
        self.calls += 1


def test_trunk_stops_at_the_deepest_requested_layer() -> None:
    trunk = VGGTrunk("vgg16")
    counters = {name: Counter() for name in ("relu2_1", "conv3_1", "relu5_1")}
    for name, counter in counters.items():
        trunk.layers[name].register_forward_hook(counter)
    out = trunk(torch.rand(1, 3, 32, 32), ["relu1_1", "relu2_1"])
    assert set(out) == {"relu1_1", "relu2_1"} and out["relu2_1"].shape == (1, 128, 16, 16)
    assert counters["relu2_1"].calls == 1 and counters["conv3_1"].calls == 0
    with pytest.raises(KeyError, match="relu9_9"):
        trunk(torch.rand(1, 3, 32, 32), ["relu9_9"])


def test_pooling_and_first_padding_options() -> None:
    assert isinstance(VGGTrunk("vgg16", pooling="avg").layers["pool1"], torch.nn.AvgPool2d)
    assert (
        VGGTrunk("vgg19", first_padding="replicate").layers["conv1_1"].padding_mode == "replicate"
    )
    with pytest.raises(ValueError):
        VGGTrunk("vgg16", pooling="median")


def test_torchvision_checkpoint_converts_exactly(tmp_path) -> None:
    """The vgg19-imagenet converter, on a state dict of the right shape: same activations."""
    torch.manual_seed(0)
    reference = torchvision.models.vgg19(weights=None).eval()
    path = tmp_path / "vgg19.pth"
    torch.save(reference.state_dict(), path)
    trunk = VGGTrunk("vgg19")
    trunk.load_state_dict(vgg_state_dict_from_torchvision(path))
    image = torch.rand(1, 3, 64, 64)
    ours = trunk(image, ["relu3_4", "relu5_4"])
    with torch.no_grad():
        torch.testing.assert_close(ours["relu3_4"], reference.features[:18](image))
        torch.testing.assert_close(ours["relu5_4"], reference.features[:36](image))


def test_torchvision_converter_rejects_other_networks(tmp_path) -> None:
    path = tmp_path / "alexnet.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    with pytest.raises(ValueError, match="conv layers"):
        vgg_state_dict_from_torchvision(path)


def test_hed_first_conv_takes_rgb_where_the_file_takes_bgr() -> None:
    """Real weights: our RGB conv1_1 equals the file's HWIO kernel applied to BGR input."""
    extractor = build_extractor("vgg16-hed", calibration="none")
    with h5py.File(weight_path("vgg16-hed"), "r") as h5:
        kernel = torch.from_numpy(h5["block1/layers/conv2d/vars/0"][()]).permute(3, 2, 0, 1)
        bias = torch.from_numpy(h5["block1/layers/conv2d/vars/1"][()])
    image = torch.rand(1, 3, 24, 24)
    bgr_input = extractor.normalise(image).flip(1)  # RGB minus mean -> BGR minus mean
    expected = F.relu(F.conv2d(bgr_input, kernel, bias, padding=1))
    ours = extractor(image, ["relu1_1"])["relu1_1"]
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)  # inputs are 0-255
    mean_bgr = torch.tensor([104.00699, 116.66877, 122.67892])
    torch.testing.assert_close(extractor.mean.flatten().flip(0), mean_bgr)


def test_real_calibration_brings_every_layer_to_the_reference_mean() -> None:
    extractor = build_extractor("vgg16-hed", calibration="layer-mean")
    assert set(extractor.scales) == set(relu_layers("vgg16"))
    calibrated = {}
    for image in calibration_images()[:2]:
        small = F.interpolate(image[None], size=(128, 128), mode="bilinear", antialias=True)
        for name, act in extractor(small, ["relu1_1", "relu4_2", "relu5_1"]).items():
            calibrated.setdefault(name, []).append(act.mean().item())
    for name, means in calibrated.items():
        # measured at 256 px on five images; here two at 128 px: same order of magnitude
        assert REFERENCE_ACTIVATION / 3 < sum(means) / len(means) < REFERENCE_ACTIVATION * 3, name


def _scaled_state_dict(state: dict[str, torch.Tensor], factor: float) -> dict[str, torch.Tensor]:
    """Scale conv1_1 and every bias by ``factor``: all ReLU activations scale by ``factor``."""
    return {
        k: v * factor if (k.endswith("bias") or k.startswith("layers.conv1_1.")) else v.clone()
        for k, v in state.items()
    }


def test_calibration_makes_backbones_of_different_scale_agree() -> None:
    """Two networks differing only in activation scale (50x) give the same calibrated features,
    so a preset's weights keep their balance on both (docs/backbones.md, Calibration)."""
    torch.manual_seed(0)
    state = VGGTrunk("vgg16").state_dict()
    small = build_extractor("vgg16-hed", state_dict=state, calibration="layer-mean")
    large = build_extractor(
        "vgg16-hed", state_dict=_scaled_state_dict(state, 50.0), calibration="layer-mean"
    )
    raw_small = build_extractor("vgg16-hed", state_dict=state, calibration="none")
    raw_large = build_extractor(
        "vgg16-hed", state_dict=_scaled_state_dict(state, 50.0), calibration="none"
    )
    image = torch.rand(1, 3, 48, 48)
    raw_small, raw_large = raw_small(image, ["relu3_1"]), raw_large(image, ["relu3_1"])
    torch.testing.assert_close(
        raw_large["relu3_1"], 50 * raw_small["relu3_1"], rtol=1e-4, atol=1e-3
    )
    out_small, out_large = small(image, ["relu3_1"]), large(image, ["relu3_1"])
    torch.testing.assert_close(out_small["relu3_1"], out_large["relu3_1"], rtol=1e-4, atol=1e-5)


def test_measured_means_are_positive_for_every_layer() -> None:
    torch.manual_seed(0)
    extractor = build_extractor(
        "vgg16-hed", state_dict=VGGTrunk("vgg16").state_dict(), calibration="none"
    )
    means = measure_activation_means(extractor)
    assert set(means) == set(relu_layers("vgg16")) and min(means.values()) > 0


def test_unknown_backbone() -> None:
    assert "vgg16-hed" in BACKBONES
    with pytest.raises(ValueError, match="unknown backbone"):
        build_extractor("resnet50")


def test_folded_calibration_equals_scaling_each_layer() -> None:
    torch.manual_seed(0)
    state = VGGTrunk("vgg16").state_dict()
    raw = build_extractor("vgg16-hed", state_dict=state, calibration="none")
    calibrated = build_extractor("vgg16-hed", state_dict=state, calibration="layer-mean")
    assert set(calibrated.scales) == set(relu_layers("vgg16")) and not raw.scales
    assert len(set(calibrated.scales.values())) > 5  # the layers really differ
    image = torch.rand(1, 3, 40, 40)
    layers = ["relu1_1", "relu2_2", "relu4_2", "relu5_1"]
    expected, folded = raw(image, layers), calibrated(image, layers)
    for name in layers:
        torch.testing.assert_close(
            folded[name], expected[name] * calibrated.scales[name], rtol=1e-4, atol=1e-5
        )
