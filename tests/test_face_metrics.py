"""face_stylization and rank1_identification on real photos with synthetic edits, and in
``evaluate``'s output.

face_stylization's edits: the face painted (a painting stretched onto the frame shows
through the face boxes), the face pasted back into the painting, and the whole photo
replaced by the painting. A uniform blur or noise is no "uniform change" for SSIM: it
changes smooth and textured regions by different amounts, so only replacing the structure
everywhere gives a ratio of 1.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import NamedTuple

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur

from portrait_stylize.cli import main
from portrait_stylize.commands.evaluate import _shown
from portrait_stylize.face_metrics import (
    content_face_boxes,
    face_stylization,
    gallery_embeddings,
    rank1_identification,
)
from portrait_stylize.images import load_image, save_image
from portrait_stylize.weights import WeightsError, weight_path

from .conftest import data_file


class Photo(NamedTuple):
    """content (3, H, W), its MTCNN face boxes (N, 4), the pixels those boxes cover
    (H, W) bool, and The Starry Night stretched onto the frame (3, H, W)."""

    content: torch.Tensor
    boxes: torch.Tensor
    faces: torch.Tensor
    painting: torch.Tensor


def _covered(boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(H, W) bool: every pixel that boxes (N, 4) touch."""
    covered = torch.zeros(size, dtype=torch.bool)
    for x1, y1, x2, y2 in boxes.tolist():
        covered[max(math.floor(y1), 0) : math.ceil(y2), max(math.floor(x1), 0) : math.ceil(x2)] = 1
    return covered


@functools.cache
def _photo(name: str) -> Photo:
    for stage in ("pnet", "rnet", "onet"):
        try:
            weight_path(f"mtcnn-{stage}")
        except WeightsError as exc:
            pytest.skip(f"weights mtcnn-{stage} unavailable: {exc}")
    content = load_image(data_file("content", name)).rgb
    size = (content.shape[-2], content.shape[-1])
    painting = load_image(data_file("style", "starry_night.jpg")).rgb
    painting = F.interpolate(painting[None], size, mode="area")[0]
    boxes = content_face_boxes(content)
    assert len(boxes) == 1
    return Photo(content, boxes, _covered(boxes, size), painting)


@pytest.fixture(params=["astronaut.jpg", "grace_hopper.jpg"])
def photo(request: pytest.FixtureRequest) -> Photo:
    return _photo(request.param)


def test_painted_face_in_a_lightly_touched_photo_scores_high(photo: Photo) -> None:
    touched = gaussian_blur(photo.content, [5, 5], [1.0, 1.0])
    scores = face_stylization(
        photo.content, torch.where(photo.faces, photo.painting, touched), photo.boxes
    )
    assert scores.reason is None and scores.per_face == [scores.mean]
    assert scores.mean is not None and scores.mean > 4  # measured 15 and 7


def test_face_pasted_back_into_the_painting_scores_zero(photo: Photo) -> None:
    pasted = torch.where(photo.faces, photo.content, photo.painting)
    assert face_stylization(photo.content, pasted, photo.boxes).per_face == [0.0]


def test_photo_replaced_by_the_painting_scores_about_one(photo: Photo) -> None:
    scores = face_stylization(photo.content, photo.painting, photo.boxes)
    assert scores.mean == pytest.approx(1.0, abs=0.1)  # measured 1.007 and 1.026
    # A result of another size: the content is resized to it, the boxes scaled.
    half = F.interpolate(photo.painting[None], scale_factor=0.5, mode="area")[0]
    assert face_stylization(photo.content, half, photo.boxes).mean == pytest.approx(1.0, abs=0.15)


def test_each_face_scores_its_own_change(photo: Photo) -> None:
    """A second box away from the face painted, then everything lightly blurred: the
    painted box scores far above the face."""
    height, width = photo.faces.shape
    other = torch.tensor([[width - 64.0, height - 64.0, width - 8.0, height - 8.0]])
    assert not _covered(other, (height, width))[photo.faces].any()
    boxes = torch.cat([photo.boxes, other])
    result = torch.where(_covered(other, (height, width)), photo.painting, photo.content)
    result = gaussian_blur(result, [5, 5], [1.0, 1.0])
    scores = face_stylization(photo.content, result, boxes)
    face, painted = scores.per_face
    assert painted > 4 and face < 0.6 * painted


def test_undefined_when_the_rest_is_unchanged_or_there_is_no_face(photo: Photo) -> None:
    painted = torch.where(photo.faces, photo.painting, photo.content)
    scores = face_stylization(photo.content, painted, photo.boxes)
    assert scores.mean is None and scores.per_face == []
    assert scores.reason is not None and "rest of the image is unchanged" in scores.reason
    no_face = face_stylization(photo.content, painted, photo.boxes[:0])
    assert no_face == (None, [], "no face found in the content")


def test_evaluate_prints_face_stylization(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = _photo("astronaut.jpg")
    content, result = tmp_path / "content.png", tmp_path / "result.png"
    save_image(photo.content, content)
    save_image(torch.where(photo.faces, photo.content, photo.painting), result)
    assert main(["evaluate", str(content), str(result)]) == 0
    (line,) = [row for row in capsys.readouterr().out.splitlines() if "face stylization" in row]
    assert line.endswith("  0")


def test_table_cells_show_faces_and_reasons() -> None:
    scores = {
        "identity_cosine": 0.5,
        "identity_cosine_per_face": [0.25, 0.75],
        "landmark_nme": 0.125,
        "face_stylization": None,
        "face_stylization_reason": "the rest of the image is unchanged (1 − SSIM 0)",
        "style_distance": None,
    }
    assert _shown(scores, "identity_cosine") == "0.5 (per face: 0.25, 0.75)"
    assert _shown(scores, "landmark_nme") == "0.125"
    assert _shown(scores, "face_stylization") == f"- ({scores['face_stylization_reason']})"
    assert _shown(scores, "style_distance") == "-"


def _swap_in(
    image: torch.Tensor, boxes: torch.Tensor, into: int, source: torch.Tensor
) -> torch.Tensor:
    """image (3, H, W) with box ``into`` of boxes (N, 4) covered by source (3, h, w), resized."""
    x1, y1, x2, y2 = (round(v) for v in boxes[into].tolist())
    result = image.clone()
    result[:, y1:y2, x1:x2] = F.interpolate(source[None], (y2 - y1, x2 - x1), mode="area")[0]
    return result


def _face(image: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    x1, y1, x2, y2 = (round(v) for v in box.tolist())
    return image[:, y1:y2, x1:x2]


def test_rank1_counts_a_face_mistaken_for_another_of_the_group() -> None:
    group = load_image(data_file("content", "group_six_faces.jpg")).rgb
    boxes = content_face_boxes(group)
    assert len(boxes) == 6
    assert rank1_identification(group, group, boxes) == (1.0, [1.0] * 6, None)
    swapped = _swap_in(group, boxes, 0, _face(group, boxes[3]))
    scores = rank1_identification(group, swapped, boxes)
    assert scores.per_face == [0.0] + [1.0] * 5 and scores.mean == pytest.approx(5 / 6)


def test_rank1_of_one_face_needs_a_gallery(tmp_path: Path, capsys) -> None:
    photo = _photo("astronaut.jpg")
    group = load_image(data_file("content", "group_six_faces.jpg")).rgb
    alone = rank1_identification(photo.content, photo.content, photo.boxes)
    assert alone.mean is None and alone.reason is not None and "gallery" in alone.reason
    gallery = gallery_embeddings([group])
    assert len(gallery) == 6
    kept = rank1_identification(photo.content, photo.content, photo.boxes, gallery)
    assert kept.per_face == [1.0]
    stranger = _swap_in(photo.content, photo.boxes, 0, _face(group, content_face_boxes(group)[3]))
    assert rank1_identification(photo.content, stranger, photo.boxes, gallery).per_face == [0.0]
    content, result, other = tmp_path / "c.png", tmp_path / "r.png", tmp_path / "g.png"
    save_image(photo.content, content)
    save_image(stranger, result)
    save_image(group, other)
    assert main(["evaluate", str(content), str(result), "--gallery", str(other), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["identity_rank1"] == 0.0
