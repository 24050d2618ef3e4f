"""MTCNN cascade on real photos: counts, landmarks, borders, small and gray faces."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.ops import box_iou

from portrait_stylize.nets.mtcnn import MTCNN, load_mtcnn
from portrait_stylize.weights import WeightsError, weight_path

from .conftest import data_file, needs_photos

# Face boxes (x1, y1, x2, y2) checked by eye on the photos.
ASTRONAUT_FACE = (180.0, 60.0, 267.0, 174.0)


@pytest.fixture(scope="module")
def mtcnn() -> MTCNN:
    for stage in ("pnet", "rnet", "onet"):
        try:
            weight_path(f"mtcnn-{stage}")
        except WeightsError as exc:
            pytest.skip(f"weights mtcnn-{stage} unavailable: {exc}")
    return load_mtcnn()


def _photo(name: str) -> torch.Tensor:
    """(3,H,W) RGB in [0,1]."""
    pixels = np.asarray(Image.open(data_file("content", name)).convert("RGB"))
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).float() / 255


def _check_landmarks(boxes: torch.Tensor, landmarks: torch.Tensor) -> None:
    """Five points inside their box, eyes left-to-right and above the mouth corners."""
    inside = (landmarks >= boxes[:, None, :2]) & (landmarks <= boxes[:, None, 2:])
    assert inside.all()
    assert (landmarks[:, 0, 0] < landmarks[:, 1, 0]).all()  # left eye left of right eye
    assert (landmarks[:, 3, 0] < landmarks[:, 4, 0]).all()  # mouth corners too
    eyes, nose, mouth = landmarks[:, :2, 1].amax(1), landmarks[:, 2, 1], landmarks[:, 3:, 1]
    assert (eyes < nose).all() and (nose < mouth.amin(1)).all()


@pytest.mark.parametrize(
    ("name", "count"),
    [
        pytest.param("group_six_faces.jpg", 6, marks=needs_photos),
        ("astronaut.jpg", 1),
        ("grace_hopper.jpg", 1),
        pytest.param("closeup_portrait.jpg", 1, marks=needs_photos),
    ],
)
def test_finds_every_face_and_nothing_else(mtcnn: MTCNN, name: str, count: int) -> None:
    image = _photo(name)
    boxes, scores, landmarks = mtcnn.detect(image)
    assert boxes.shape == (count, 4) and scores.shape == (count,)
    assert landmarks.shape == (count, 5, 2)
    assert (scores >= 0.7).all() and (scores[:-1] >= scores[1:]).all()
    _check_landmarks(boxes, landmarks)
    height, width = image.shape[1:]
    sides = boxes[:, 2:] - boxes[:, :2]
    assert (sides >= 20).all() and (sides[:, 0] <= width).all() and (sides[:, 1] <= height).all()
    if count > 1:  # distinct faces: no two boxes overlap
        overlap = box_iou(boxes, boxes) - torch.eye(count)
        assert overlap.max() < 0.05


def test_box_is_on_the_face(mtcnn: MTCNN) -> None:
    boxes, _, _ = mtcnn.detect(_photo("astronaut.jpg"))
    assert box_iou(boxes, torch.tensor([ASTRONAUT_FACE])).item() > 0.8


@pytest.mark.parametrize("kind", ["flat", "noise", "tiny"])
def test_no_face_gives_empty_results(mtcnn: MTCNN, kind: str) -> None:
    generator = torch.Generator().manual_seed(0)
    image = {
        "flat": torch.full((3, 240, 320), 0.5),
        "noise": torch.rand(3, 240, 320, generator=generator),
        "tiny": torch.rand(3, 15, 15, generator=generator),  # below the smallest face
    }[kind]
    boxes, scores, landmarks = mtcnn.detect(image)
    assert boxes.shape == (0, 4) and scores.shape == (0,) and landmarks.shape == (0, 5, 2)


@pytest.mark.parametrize("side", ["left", "top"])
def test_face_cut_by_the_border(mtcnn: MTCNN, side: str) -> None:
    """A quarter of the face lies outside the image: found, box reaching past the edge."""
    image = _photo("astronaut.jpg")
    x1, y1, x2, y2 = ASTRONAUT_FACE
    if side == "left":
        cut = int(x1 + 0.25 * (x2 - x1))
        image, expected = image[:, :, cut:], torch.tensor([[x1 - cut, y1, x2 - cut, y2]])
    else:
        cut = int(y1 + 0.25 * (y2 - y1))
        image, expected = image[:, cut:], torch.tensor([[x1, y1 - cut, x2, y2 - cut]])
    boxes, _, _ = mtcnn.detect(image)
    assert len(boxes) == 1
    assert box_iou(boxes, expected).item() > 0.6
    assert boxes[0, 0 if side == "left" else 1] < 0  # the box extends beyond the image


def test_face_of_about_twenty_pixels(mtcnn: MTCNN) -> None:
    factor = 0.23  # the 87 px wide face becomes 20 px wide
    image = F.interpolate(
        _photo("astronaut.jpg")[None], scale_factor=factor, antialias=True, mode="bilinear"
    )[0].clamp(0, 1)
    boxes, _, _ = mtcnn.detect(image)
    assert len(boxes) == 1
    assert box_iou(boxes, torch.tensor([ASTRONAUT_FACE]) * factor).item() > 0.5
    assert 14 <= (boxes[0, 2] - boxes[0, 0]).item() <= 30


def test_grayscale_image(mtcnn: MTCNN) -> None:
    gray = _photo("grace_hopper.jpg").mean(0, keepdim=True)
    for image in (gray.expand(3, -1, -1), gray):
        boxes, _, landmarks = mtcnn.detect(image)
        assert len(boxes) == 1
        _check_landmarks(boxes, landmarks)


def test_rejects_batches_and_bad_channels(mtcnn: MTCNN) -> None:
    with pytest.raises(ValueError, match="expected an image"):
        mtcnn.detect(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="expected an image"):
        mtcnn.detect(torch.rand(4, 64, 64))


def test_pyramid_scales() -> None:
    detector = MTCNN()
    scales = detector.scales(100, 200)
    assert scales[0] == pytest.approx(12 / 20)
    assert all(b / a == pytest.approx(0.709) for a, b in itertools.pairwise(scales))
    assert 100 * scales[-1] >= 12 > 100 * scales[-1] * 0.709
