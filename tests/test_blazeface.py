"""BlazeFace anchors, weighted NMS and whole-image face detection."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from portrait_stylize.nets.mediapipe import (
    BlazeFace,
    blazeface_anchors,
    load_mediapipe,
    weighted_nms,
)
from portrait_stylize.weights import WeightsError

from .conftest import data_file

# Face centre (x, y) and box side in pixels, checked by eye on the photos.
FACES = {"astronaut.jpg": (225.0, 128.0, 95.0), "grace_hopper.jpg": (266.0, 243.0, 196.0)}


@pytest.fixture(scope="module")
def detector() -> BlazeFace:
    try:
        model = load_mediapipe("blazeface")
    except WeightsError as exc:
        pytest.skip(f"BlazeFace weights unavailable: {exc}")
    assert isinstance(model, BlazeFace)
    return model


def _photo(name: str) -> torch.Tensor:
    """(3,H,W) RGB in [0,1]."""
    array = np.array(Image.open(data_file("content", name)).convert("RGB"), dtype=np.float32)
    array /= 255.0
    return torch.from_numpy(array).permute(2, 0, 1)


def test_anchors_follow_the_short_range_layout() -> None:
    anchors = blazeface_anchors()
    assert anchors.shape == (896, 2)
    # 16x16 cells x 2 anchors, row-major (x varies fastest), then 8x8 cells x 6 anchors.
    assert torch.equal(anchors[0], anchors[1])
    assert torch.allclose(anchors[0], torch.tensor([0.5, 0.5]) / 16)
    assert torch.allclose(anchors[2], torch.tensor([1.5, 0.5]) / 16)
    assert torch.allclose(anchors[32], torch.tensor([0.5, 1.5]) / 16)
    assert torch.allclose(anchors[512:518], torch.tensor([0.5, 0.5]) / 8)
    assert torch.allclose(anchors[518], torch.tensor([1.5, 0.5]) / 8)
    assert torch.allclose(anchors[-1], torch.tensor([7.5, 7.5]) / 8)


def test_weighted_nms_merges_overlaps_by_score() -> None:
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60.0]])
    scores = torch.tensor([0.6, 0.9, 0.7])
    keypoints = boxes[:, None, :2].expand(3, 6, 2).clone()
    found = weighted_nms(boxes, scores, keypoints, iou_threshold=0.3)
    assert torch.allclose(found.scores, torch.tensor([0.9, 0.7]))
    merged = (0.9 * boxes[1] + 0.6 * boxes[0]) / 1.5
    assert torch.allclose(found.boxes, torch.stack([merged, boxes[2]]))
    assert torch.allclose(found.keypoints[0], merged[:2].expand(6, 2))


@pytest.mark.parametrize("name", sorted(FACES))
def test_detects_the_one_face(detector: BlazeFace, name: str) -> None:
    found = detector.detect(_photo(name))
    assert found.boxes.shape == (1, 4) and found.keypoints.shape == (1, 6, 2)
    assert found.scores[0] > 0.75
    (x1, y1, x2, y2), eyes = found.boxes[0], found.keypoints[0, :2]
    assert ((eyes[:, 0] > x1) & (eyes[:, 0] < x2) & (eyes[:, 1] > y1) & (eyes[:, 1] < y2)).all()
    assert eyes[0, 0] < eyes[1, 0], "the subject's right eye is on the image's left"
    centre_x, centre_y, side = FACES[name]
    assert abs((x1 + x2) / 2 - centre_x) < 0.15 * side
    assert abs((y1 + y2) / 2 - centre_y) < 0.15 * side
    assert 0.75 * side < x2 - x1 < 1.25 * side


def test_detections_follow_the_image_geometry(detector: BlazeFace) -> None:
    """Letterbox mapping: a half-size copy halves the box, a mirror mirrors it."""
    image = _photo("grace_hopper.jpg")  # 512 wide, 600 high: letterboxed on the sides
    box = detector.detect(image).boxes[0]
    tolerance = 0.03 * float(box[2] - box[0])  # 3 % of the face width
    half = F.interpolate(image[None], scale_factor=0.5, mode="bilinear", antialias=True)[0]
    assert torch.allclose(detector.detect(half).boxes[0] * 2, box, atol=tolerance)
    mirrored = detector.detect(image.flip(-1)).boxes[0]
    width = image.shape[-1]
    expected = torch.stack([width - box[2], box[1], width - box[0], box[3]])
    assert torch.allclose(mirrored, expected, atol=tolerance)


def _assert_empty(found: tuple[torch.Tensor, ...]) -> None:
    boxes, scores, keypoints = found
    assert boxes.shape == (0, 4) and scores.shape == (0,) and keypoints.shape == (0, 6, 2)


def test_flat_image_gives_empty_detections(detector: BlazeFace) -> None:
    _assert_empty(detector.detect(torch.full((3, 240, 320), 0.5)))


def test_background_gives_empty_detections(detector: BlazeFace) -> None:
    _assert_empty(detector.detect(_photo("astronaut.jpg")[:, :256, 352:]))  # the shuttle
