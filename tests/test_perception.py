"""Person masks, face detection and box utilities, face features and ``inspect``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from portrait_stylize.cli import main
from portrait_stylize.faces import (
    MTCNN_LANDMARKS,
    crop_faces,
    crop_to_image,
    detect_faces,
    face_embedding,
    face_features,
    face_landmarks,
    filter_small,
    match_faces,
    square_boxes,
)
from portrait_stylize.images import load_image
from portrait_stylize.masks import background_mask, load_mask_file, person_mask
from portrait_stylize.weights import WeightsError, weight_path

from .conftest import data_file, needs_photos

NETWORKS = (
    "selfie-segmentation",
    "selfie-segmentation-landscape",
    "blazeface",
    "facemesh",
    "mtcnn-pnet",
    "mtcnn-rnet",
    "mtcnn-onet",
    "facenet-casia",
)


@pytest.fixture(scope="module")
def networks() -> None:
    """Skip (rather than fail) when a perception network's weights cannot be had."""
    try:
        for name in NETWORKS:
            weight_path(name)
    except WeightsError as exc:
        pytest.skip(f"weights unavailable: {exc}")


def photo(name: str) -> torch.Tensor:
    """(3,H,W) RGB in [0,1]."""
    return load_image(data_file("content", name)).rgb


# --- masks ---------------------------------------------------------------------------


def test_person_mask_covers_the_astronaut(networks: None) -> None:
    mask = person_mask(photo("astronaut.jpg"))
    assert mask.shape == (1, 1, 512, 512)
    assert mask[0, 0, 100:160, 200:250].min() > 0.9  # her face
    assert mask[0, 0, :20, :20].max() < 0.1 and mask[0, 0, :20, -20:].max() < 0.1
    assert 0.35 < (mask > 0.5).float().mean() < 0.75


def test_person_mask_batches_is_differentiable_and_picks_by_shape(networks: None) -> None:
    images = torch.rand(2, 3, 48, 96, requires_grad=True)
    mask = person_mask(images)
    assert mask.shape == (2, 1, 48, 96)
    assert ((mask >= 0) & (mask <= 1)).all()
    mask.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    with torch.no_grad():
        wide = person_mask(images, "selfie-segmentation-landscape")
        square = person_mask(images, "selfie-segmentation")
    assert torch.equal(mask.detach(), wide) and not torch.equal(wide, square)
    assert person_mask(images[0].detach().transpose(1, 2), "auto").shape == (1, 1, 96, 48)
    with pytest.raises(ValueError, match="unknown segmentation model"):
        person_mask(images, "u2net")


def test_background_mask_thresholds_and_feathers() -> None:
    person = torch.linspace(0, 1, 41).repeat(41, 1)[None, None]  # 0 left .. 1 right
    hard = background_mask(person, threshold=0.5)
    assert torch.equal(hard[0, 0, 0], (torch.linspace(0, 1, 41) < 0.5).float())
    assert torch.equal(background_mask(person, threshold=0.8).sum(), torch.tensor(41.0 * 32))
    soft = background_mask(person, threshold=0.5, feather=2.0)
    assert soft.shape == person.shape
    assert torch.allclose(soft[..., :10], torch.ones(1)) and torch.allclose(
        soft[..., 31:], torch.zeros(1), atol=1e-6
    )
    edge = soft[0, 0, 20, 17:23]
    assert (edge > 0).all() and (edge < 1).all() and (edge.diff() < 0).all()
    assert soft.sum() == pytest.approx(hard.sum().item(), rel=1e-3)
    with pytest.raises(ValueError, match="feather"):
        background_mask(person, feather=-1.0)
    wide = background_mask(person[..., :8, :], threshold=0.5, feather=40.0)  # kernel > image
    assert wide.shape == (1, 1, 8, 41) and ((wide >= 0) & (wide <= 1)).all()
    assert 0 < float(wide[0, 0, 4, 20]) < 1  # blurred across the edge


def test_load_mask_file_reads_white_as_person(tmp_path: Path) -> None:
    drawing = Image.new("RGBA", (40, 20), (0, 0, 0, 255))
    drawing.paste((255, 255, 255, 255), (0, 0, 20, 20))  # left half: person
    drawing.paste((255, 255, 255, 0), (30, 0, 40, 20))  # transparent white: background
    drawing.save(tmp_path / "mask.png")
    mask = load_mask_file(tmp_path / "mask.png", (10, 20))
    assert mask.shape == (1, 1, 10, 20)
    assert torch.allclose(mask[..., :9], torch.ones(1))
    assert torch.allclose(mask[..., 11:], torch.zeros(1))


# --- box utilities -------------------------------------------------------------------


def test_square_boxes_pads_by_the_longer_side() -> None:
    boxes = torch.tensor([[10.0, 20.0, 50.0, 100.0]])  # 40 wide, 80 high, centre (30, 60)
    assert torch.equal(square_boxes(boxes), torch.tensor([[-26.0, 4.0, 86.0, 116.0]]))
    assert torch.equal(square_boxes(boxes, 0.0), torch.tensor([[-10.0, 20.0, 70.0, 100.0]]))


def test_filter_small_keeps_boxes_of_enough_area() -> None:
    boxes = torch.tensor(
        [[0.0, 0.0, 10.0, 20.0], [0.0, 0.0, 10.0, 19.9], [5.0, 5.0, 0.0, 100.0]]
    )  # areas 200, 199, inverted
    keep = filter_small(boxes, (100, 200), min_fraction=0.01)  # 1% of 20000 = 200
    assert keep.tolist() == [True, False, False]


def test_crop_faces_reads_the_box_pixels_and_passes_gradients() -> None:
    image = torch.arange(2 * 3 * 12 * 16, dtype=torch.float32).reshape(2, 3, 12, 16)
    image.requires_grad_(True)
    boxes = torch.tensor([[2.0, 3.0, 6.0, 7.0], [-8.0, -8.0, -4.0, -4.0]])
    crops = crop_faces(image, boxes, 4)
    assert crops.shape == (4, 3, 4, 4)  # image-major: (image 0: box 0, 1), (image 1: ...)
    assert torch.equal(crops[0], image[0, :, 3:7, 2:6])
    assert torch.equal(crops[2], image[1, :, 3:7, 2:6])
    assert torch.equal(crops[1], torch.zeros(3, 4, 4))  # wholly outside: black
    crops[0].sum().backward()
    expected = torch.zeros_like(image)
    expected[0, :, 3:7, 2:6] = 1
    assert image.grad is not None and torch.equal(image.grad, expected)
    assert crop_faces(image[0].detach(), boxes[:1], 4).shape == (1, 3, 4, 4)


def test_crop_to_image_inverts_the_crop() -> None:
    boxes = torch.tensor([[10.0, 20.0, 50.0, 60.0]])  # 40 px square -> 8 px crop
    points = torch.tensor([[[0.0, 0.0, 1.0], [8.0, 4.0, -2.0]]])
    mapped = crop_to_image(points, boxes, 8)
    assert torch.equal(mapped, torch.tensor([[[10.0, 20.0, 5.0], [50.0, 40.0, -10.0]]]))


def test_match_faces_pairs_greedily_by_iou() -> None:
    a = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [200, 200, 210, 210]])
    b = torch.tensor([[21.0, 21, 31, 31], [100, 100, 110, 110], [1, 0, 11, 10]])
    assert match_faces(a, b) == [(0, 2), (1, 0)]
    assert match_faces(a, b, min_iou=0.7) == [(0, 2)]
    assert match_faces(a, b[:0]) == []


# --- networks on real photos ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "count"),
    [
        pytest.param("group_six_faces.jpg", 6, marks=needs_photos),
        ("astronaut.jpg", 1),
        ("grace_hopper.jpg", 1),
    ],
)
def test_detect_faces_counts_faces(networks: None, name: str, count: int) -> None:
    faces = detect_faces(photo(name))
    assert len(faces) == count
    assert faces.landmark_names == MTCNN_LANDMARKS and faces.landmarks.shape == (count, 5, 2)
    inside = (faces.landmarks >= faces.boxes[:, None, :2]) & (
        faces.landmarks <= faces.boxes[:, None, 2:]
    )
    assert inside.all() and (faces.scores > 0.9).all()
    assert (faces.landmarks[:, 0, 0] < faces.landmarks[:, 1, 0]).all()  # left eye on the left


@needs_photos
def test_blazeface_agrees_with_mtcnn_on_a_portrait(networks: None) -> None:
    image = photo("closeup_portrait.jpg")
    mtcnn, blaze = detect_faces(image), detect_faces(image, "blazeface")
    assert len(blaze) == 1 and blaze.landmarks.shape == (1, 6, 2)
    assert match_faces(mtcnn.boxes, blaze.boxes, min_iou=0.5) == [(0, 0)]
    # Eyes and nose share the order and land within 8% of the face width.
    width = float(mtcnn.boxes[0, 2] - mtcnn.boxes[0, 0])
    assert (blaze.landmarks[0, :3] - mtcnn.landmarks[0, :3]).norm(dim=1).max() < 0.08 * width
    large = mtcnn[filter_small(mtcnn.boxes, (image.shape[1], image.shape[2]))].to("cpu")
    assert len(large) == 1 and large.boxes.shape == (1, 4)


def test_face_landmarks_fall_on_the_face(networks: None) -> None:
    image = photo("astronaut.jpg")
    boxes = square_boxes(detect_faces(image).boxes, 0.25)
    landmarks, presence = face_landmarks(crop_faces(image, boxes, 192))
    assert landmarks.shape == (1, 468, 3) and presence.item() > 0.9
    assert ((landmarks[..., :2] > 0) & (landmarks[..., :2] < 192)).all()
    eyes_y, mouth_y = landmarks[0, [33, 263], 1], landmarks[0, [13, 14], 1]
    assert eyes_y.max() < mouth_y.min()
    # FaceMesh's eye corners bracket MTCNN's eye centres in image coordinates.
    corners = crop_to_image(landmarks[:, [33, 263], :2], boxes, 192)[0]
    eyes = detect_faces(image).landmarks[0, :2]
    assert corners[0, 0] < eyes[0, 0] < eyes[1, 0] < corners[1, 0]


def test_face_embedding_tells_people_apart(networks: None) -> None:
    astronaut, hopper = photo("astronaut.jpg"), photo("grace_hopper.jpg")
    box_a = square_boxes(detect_faces(astronaut).boxes, 0.0)
    box_h = square_boxes(detect_faces(hopper).boxes, 0.0)
    crops = torch.cat(
        [
            crop_faces(astronaut, box_a, 160),
            crop_faces(astronaut, box_a + 3.0, 160),  # the same face, shifted
            crop_faces(hopper, box_h, 160),
        ]
    )
    embeddings = face_embedding(crops)
    assert embeddings.shape == (3, 512)
    assert torch.allclose(embeddings.norm(dim=1), torch.ones(3), atol=1e-4)
    same, other = embeddings[0] @ embeddings[1], embeddings[0] @ embeddings[2]
    assert same > 0.8 and other < 0.5
    features = face_features(crops[:1], ["conv_2a", "maxpool_3a"])
    assert features["conv_2a"].shape == (1, 32, 77, 77)
    assert features["maxpool_3a"].shape == (1, 64, 38, 38)


# --- inspect -------------------------------------------------------------------------


def test_inspect_prints_json_and_draws_an_overlay(
    networks: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(data_file("content", "astronaut.jpg"))
    assert main(["inspect", path, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (face,) = report["faces"]
    assert len(face["box"]) == 4 and face["score"] > 0.9 and len(face["landmarks"]) == 5
    assert 0.35 < report["person_fraction"] < 0.75
    overlay = tmp_path / "overlay.png"
    assert main(["inspect", path, "-o", str(overlay)]) == 0
    assert "face 0: box" in capsys.readouterr().out
    with Image.open(overlay) as drawn:
        assert drawn.format == "PNG" and drawn.size == (512, 512)


def test_inspect_without_a_face_reports_an_empty_list(
    networks: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gray = tmp_path / "gray.png"
    Image.new("RGB", (120, 80), (128, 128, 128)).save(gray)
    assert main(["inspect", str(gray), "--json", "-o", str(tmp_path / "out.png")]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["faces"] == []
    assert "no face found" in captured.err
    assert (tmp_path / "out.png").is_file()
