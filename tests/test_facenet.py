"""FaceNet Inception-ResNet-v1: parity with OpenCV dnn, taps, gradients, identity, converters."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.functional import gaussian_blur

from portrait_stylize.nets.facenet import (
    InceptionResnetV1,
    load_facenet,
    state_dict_from_facenet_pytorch,
    state_dict_from_graphdef,
)
from portrait_stylize.weights import WeightsError, weight_path

from .conftest import data_file, needs_photos

PAPER_TAPS = ("conv_1a", "conv_2a", "maxpool_3a", "conv_4a", "conv_4b")
# MTCNN face boxes (x1, y1, x2, y2) of the photos.
FACE_BOXES = {
    "astronaut.jpg": (180, 60, 267, 174),
    "grace_hopper.jpg": (177, 114, 347, 334),
    "closeup_portrait.jpg": (115, 134, 665, 900),
}


def _path(name: str) -> Path:
    try:
        return weight_path(name)
    except WeightsError as exc:
        pytest.skip(f"weights {name!r} unavailable: {exc}")


@pytest.fixture(scope="module")
def casia() -> InceptionResnetV1:
    _path("facenet-casia")
    return load_facenet("facenet-casia")


def _face(name: str, shift: tuple[float, float] = (0.0, 0.0), zoom: float = 1.0) -> torch.Tensor:
    """(1,3,160,160) square crop around the face, padded by 0.2 of its longer side."""
    pixels = np.asarray(Image.open(data_file("content", name)).convert("RGB"))
    image = torch.from_numpy(pixels.copy()).permute(2, 0, 1).float() / 255
    x1, y1, x2, y2 = FACE_BOXES[name]
    side = max(x2 - x1, y2 - y1) * 1.4 * zoom
    left = round((x1 + x2) / 2 + shift[0] * side - side / 2)
    top = round((y1 + y2) / 2 + shift[1] * side - side / 2)
    crop = image[:, max(top, 0) : top + round(side), max(left, 0) : left + round(side)]
    resized = F.interpolate(crop[None], size=(160, 160), mode="bilinear", antialias=True)
    return resized.clamp(0, 1)


def _perturbed(name: str) -> torch.Tensor:
    """The same face shifted by 6 % / 4 %, zoomed out 12 % and slightly blurred."""
    return gaussian_blur(_face(name, shift=(0.06, -0.04), zoom=1.12), [5, 5], [1.0, 1.0])


def test_parity_with_opencv_dnn(casia: InceptionResnetV1) -> None:
    cv2 = pytest.importorskip("cv2", reason="OpenCV (the reference) is not installed")
    path = _path("facenet-casia")
    engine = getattr(cv2.dnn, "ENGINE_CLASSIC", None)  # OpenCV 5: needed for inner layers
    net = (
        cv2.dnn.readNetFromTensorflow(str(path))
        if engine is None
        else cv2.dnn.readNetFromTensorflow(str(path), engine=engine)
    )
    if hasattr(net, "enableWinograd"):  # Winograd convolutions differ from exact ones by 1e-4
        net.enableWinograd(False)
    layers = [f"InceptionResnetV1/{n}/Relu" for n in ("Conv2d_1a_3x3", "Conv2d_2a_3x3")]
    layers.append("InceptionResnetV1/MaxPool_3a_3x3/MaxPool")
    layers += [f"InceptionResnetV1/{n}/Relu" for n in ("Conv2d_4a_3x3", "Conv2d_4b_3x3")]
    layers.append("embeddings")
    generator = torch.Generator().manual_seed(0)
    for _ in range(2):  # OpenCV's importer handles batch 1 only
        x = torch.rand(1, 3, 160, 160, generator=generator)
        with torch.no_grad():
            ours = casia.features(x, (*PAPER_TAPS, "embedding"))
        net.setInput(((x.numpy() * 255 - 127.5) / 128).astype(np.float32))
        for name, reference in zip((*PAPER_TAPS, "embedding"), net.forward(layers), strict=True):
            assert ours[name].shape == reference.shape, name
            tolerance = 1e-5 if name == "embedding" else 3e-5  # taps reach ~17: float32 sums
            assert np.abs(ours[name].numpy() - reference).max() <= tolerance, name


def test_taps_have_the_papers_shapes(casia: InceptionResnetV1) -> None:
    x = torch.rand(2, 3, 160, 160)
    expected = {
        "conv_1a": (32, 79, 79),
        "conv_2a": (32, 77, 77),
        "maxpool_3a": (64, 38, 38),
        "conv_4a": (192, 36, 36),
        "conv_4b": (256, 17, 17),
        "embedding": (512,),
    }
    with torch.no_grad():
        features = casia.features(x, tuple(expected))
    assert {k: tuple(v.shape[1:]) for k, v in features.items()} == expected
    assert all((features[k] >= 0).all() for k in PAPER_TAPS)  # post-ReLU
    assert torch.allclose(features["embedding"].norm(dim=1), torch.ones(2))


def test_features_stop_at_the_deepest_tap(casia: InceptionResnetV1) -> None:
    calls = []
    handle = casia.conv_4b.register_forward_hook(lambda *_: calls.append(1))
    try:
        with torch.no_grad():
            out = casia.features(torch.rand(1, 3, 160, 160), ["conv_2a", "conv_1a"])
    finally:
        handle.remove()
    assert set(out) == {"conv_1a", "conv_2a"} and not calls
    with pytest.raises(ValueError, match="unknown taps"):
        casia.features(torch.rand(1, 3, 160, 160), ["relu4_2"])


def test_replicate_padding_shifts_the_first_conv_by_one_pixel(casia: InceptionResnetV1) -> None:
    padded = InceptionResnetV1(replicate_pad=True)
    padded.load_state_dict(casia.state_dict())
    x = torch.rand(1, 3, 160, 160)
    with torch.no_grad():
        features = padded.eval().features(x, ("conv_1a", "conv_2a", "maxpool_3a", "embedding"))
        shifted = casia.features(x[..., 1:, 1:], ("conv_1a",))["conv_1a"]
    assert features["conv_1a"].shape[-2:] == (80, 80)
    assert features["conv_2a"].shape[-2:] == (78, 78)
    assert features["maxpool_3a"].shape[-2:] == (38, 38)
    # Output k of the padded conv reads pixels 2k-1..2k+1: the plain conv one pixel in.
    assert torch.allclose(features["conv_1a"][..., 1:, 1:], shifted, atol=1e-5)
    # The corner output reads rows/columns (0, 0, 1): the border pixel is repeated.
    index = torch.tensor([0, 0, 1])
    patch = casia.standardize(x[:, :, index][:, :, :, index])
    corner = F.relu(F.conv2d(patch, casia.conv_1a.weight, casia.conv_1a.bias))
    assert torch.allclose(features["conv_1a"][..., :1, :1], corner, atol=1e-5)


@pytest.mark.parametrize(
    ("replicate_pad", "taps", "unread"),
    [(False, PAPER_TAPS, 1), (True, PAPER_TAPS, 0), (False, ("embedding",), 3)],
)
def test_gradients_reach_every_input_pixel(
    casia: InceptionResnetV1, replicate_pad: bool, taps: tuple[str, ...], unread: int
) -> None:
    """Every pixel the architecture reads gets a gradient.

    At 160 px the VALID stride-2 layers never read the last rows and columns: conv_1a
    skips 1 (the replicate padding shifts its grid so that it reads all 160), and
    maxpool_3a and conv_4b skip one more each on the way to the embedding.
    """
    model = InceptionResnetV1(replicate_pad=replicate_pad)
    model.load_state_dict(casia.state_dict())
    model.eval().requires_grad_(False)
    x = torch.rand(1, 3, 160, 160, generator=torch.Generator().manual_seed(1), requires_grad=True)
    generator = torch.Generator().manual_seed(2)
    features = model.features(x, taps)
    weights = [torch.randn(v.shape, generator=generator) for v in features.values()]
    torch.stack(
        [(v * w).sum() for v, w in zip(features.values(), weights, strict=True)]
    ).sum().backward()
    assert x.grad is not None
    reached = (x.grad != 0).all(dim=1)[0]
    read = 160 - unread
    assert reached[:read, :read].all()
    assert not reached[read:].any() and not reached[:, read:].any()


def test_gradients_match_finite_differences(casia: InceptionResnetV1) -> None:
    model = copy.deepcopy(casia).double()
    generator = torch.Generator().manual_seed(3)
    x = torch.rand(1, 3, 80, 80, generator=generator, dtype=torch.float64)  # smallest ~ size
    taps = ("conv_2a", "conv_4b", "embedding")
    with torch.no_grad():
        shapes = {k: v.shape for k, v in model.features(x, taps).items()}
    weights = {
        k: torch.randn(s, generator=generator, dtype=torch.float64) for k, s in shapes.items()
    }

    def loss(image: torch.Tensor) -> torch.Tensor:
        features = model.features(image, taps)
        return torch.stack([(features[k] * weights[k]).sum() for k in taps]).sum()

    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(x), x)
    step = 1e-6
    for index in torch.randint(0, x.numel(), (6,), generator=generator).tolist():
        offset = torch.zeros(x.numel(), dtype=torch.float64)
        offset[index] = step
        offset = offset.view_as(x)
        with torch.no_grad():
            numeric = (loss(x + offset) - loss(x - offset)) / (2 * step)
        analytic = grad.flatten()[index]
        assert abs(numeric - analytic) <= 1e-5 * max(1.0, abs(analytic.item())), index


@needs_photos
def test_identity_same_person_close_different_people_far(casia: InceptionResnetV1) -> None:
    names = ("astronaut.jpg", "grace_hopper.jpg", "closeup_portrait.jpg")
    batch = torch.cat([_face(n) for n in names] + [_perturbed(n) for n in names])
    with torch.no_grad():
        embeddings = casia(batch)
    cosine = embeddings @ embeddings.T
    for i in range(3):
        assert cosine[i, i + 3] >= 0.8, names[i]  # same face, shifted/zoomed/blurred
    assert cosine[0, 1] <= 0.4  # astronaut vs grace hopper
    different = [cosine[i, j] for i in range(6) for j in range(6) if i % 3 != j % 3]
    assert max(different) <= 0.4


@needs_photos
def test_keras_msceleb_model_tells_people_apart() -> None:
    _path("facenet-msceleb")
    model = load_facenet("facenet-msceleb")
    names = ("astronaut.jpg", "grace_hopper.jpg", "closeup_portrait.jpg")
    batch = torch.cat([_face(n) for n in names] + [_perturbed(n) for n in names])
    with torch.no_grad():
        embeddings = model(batch)
    assert embeddings.shape == (6, 128)
    cosine = embeddings @ embeddings.T
    same = [cosine[i, i + 3].item() for i in range(3)]
    different = [cosine[i, j].item() for i in range(6) for j in range(6) if i % 3 != j % 3]
    # The 2017 model is weaker than the 2018 one: measured same >= 0.76, different <= 0.23.
    assert min(same) >= 0.7
    assert max(different) <= 0.4


def _facenet_pytorch_conv_names() -> list[tuple[str, bool]]:
    """facenet-pytorch's InceptionResnetV1 conv prefixes in network order (True: with BN)."""
    names = [(f"conv2d_{n}", True) for n in ("1a", "2a", "2b", "3b", "4a", "4b")]

    def block(prefix: str, branch_sizes: tuple[int, ...]) -> None:
        for b, size in enumerate(branch_sizes):
            names.extend(
                (f"{prefix}.branch{b}" + (f".{j}" if size > 1 else ""), True) for j in range(size)
            )
        names.append((f"{prefix}.conv2d", False))

    for i in range(5):
        block(f"repeat_1.{i}", (1, 2, 3))
    names += [("mixed_6a.branch0", True)] + [(f"mixed_6a.branch1.{j}", True) for j in range(3)]
    for i in range(10):
        block(f"repeat_2.{i}", (1, 3))
    for b, size in enumerate((2, 2, 3)):
        names += [(f"mixed_7a.branch{b}.{j}", True) for j in range(size)]
    for i in range(5):
        block(f"repeat_3.{i}", (1, 3))
    block("block8", (1, 3))
    return names


def test_facenet_pytorch_converter_maps_every_key() -> None:
    torch.manual_seed(0)
    model = InceptionResnetV1()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    names = _facenet_pytorch_conv_names()
    assert len(convs) == len(names)
    eps = 1e-3
    source: dict[str, torch.Tensor] = {}
    for ident, ((prefix, has_bn), conv) in enumerate(zip(names, convs, strict=True)):
        weight = torch.full_like(conv.weight, float(ident))  # marks where each layer lands
        channels = conv.out_channels
        if has_bn:  # an identity batch norm with a recognisable offset
            source[f"{prefix}.conv.weight"] = weight
            source[f"{prefix}.bn.weight"] = torch.ones(channels)
            source[f"{prefix}.bn.bias"] = torch.full((channels,), ident + 0.5)
            source[f"{prefix}.bn.running_mean"] = torch.zeros(channels)
            source[f"{prefix}.bn.running_var"] = torch.full((channels,), 1 - eps)
            source[f"{prefix}.bn.num_batches_tracked"] = torch.tensor(0)
        else:
            source[f"{prefix}.weight"] = weight
            source[f"{prefix}.bias"] = torch.full((channels,), ident + 0.5)
    source["last_linear.weight"] = torch.randn(512, 1792)
    bn = {"weight": torch.rand(512) + 0.5, "bias": torch.randn(512)}
    bn |= {"running_mean": torch.randn(512), "running_var": torch.rand(512) + 0.1}
    source |= {f"last_bn.{k}": v for k, v in bn.items()}
    source["last_bn.num_batches_tracked"] = torch.tensor(0)
    source["logits.weight"], source["logits.bias"] = torch.randn(8631, 512), torch.randn(8631)

    converted = state_dict_from_facenet_pytorch(source)
    missing, unexpected = model.load_state_dict(converted, strict=False)
    assert not missing and not unexpected
    for ident, conv in enumerate(convs):
        assert conv.bias is not None and (conv.weight == ident).all()
        assert torch.allclose(conv.bias, torch.tensor(ident + 0.5))
    features = torch.randn(4, 1792)
    expected = F.batch_norm(
        features @ source["last_linear.weight"].T,
        bn["running_mean"],
        bn["running_var"],
        bn["weight"],
        bn["bias"],
        eps=eps,
    )
    # outputs of order 100 from a 1792-term sum: compare relative to their size
    torch.testing.assert_close(model.bottleneck(features), expected, rtol=1e-4, atol=1e-3)


def test_graphdef_converter_covers_the_module() -> None:
    converted = state_dict_from_graphdef(_path("facenet-casia"))
    reference = InceptionResnetV1().state_dict()
    assert converted.keys() == reference.keys()
    assert all(converted[k].shape == v.shape for k, v in reference.items())
