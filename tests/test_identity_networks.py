"""The face-recognition networks beside FaceNet (SFace, MobileFaceNet, dlib): parity with
their reference runtimes, the aligned chips, one embedding API, the ensemble FaceID hinge
and the dlib evaluator.

References: onnxruntime (SFace's ONNX graph), the LiteRT interpreter (MobileFaceNet's
TFLite model, declared for a batch of 2), and for dlib fixed descriptors computed once with
the real dlib (tests/data/dlib_reference.json says how).
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from portrait_stylize.cli import build_parser, main
from portrait_stylize.face_losses import (
    ALIGNED_JITTER,
    BoxJitter,
    FaceIDTerm,
    content_faces_and_landmarks,
    move_points,
    scale_boxes,
    scale_points,
)
from portrait_stylize.face_metrics import (
    DLIB_SAME_PERSON,
    content_faces_found,
    face_scores,
    gallery_embeddings,
    identity_dlib,
)
from portrait_stylize.faces import (
    ARCFACE_TEMPLATE,
    DLIB_TEMPLATE,
    IDENTITY_MODELS,
    Faces,
    align_faces,
    alignment_transforms,
    detect_faces,
    identity_crops,
    identity_embedding,
    square_boxes,
)
from portrait_stylize.images import load_image, save_image
from portrait_stylize.methods import resolve_settings
from portrait_stylize.methods.portrait_stylization import prepare_portrait_stylization
from portrait_stylize.nets.dlib import load_dlib, read_layers, state_dict_from_dat
from portrait_stylize.nets.facerec import load_face_recognizer
from portrait_stylize.nets.onnx import ONNXModule

from .conftest import data_file, weights_or_skip

DATA = Path(__file__).parent / "data"
PHOTOS = ("astronaut.jpg", "grace_hopper.jpg", "closeup_portrait.jpg", "group_six_faces.jpg")


def _needs(*names: str) -> None:
    for name in names:
        weights_or_skip(name)


def _needs_mtcnn() -> None:
    _needs("mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet")


@functools.cache
def _photo(name: str) -> torch.Tensor:
    return load_image(data_file("content", name)).rgb


@functools.cache
def _found(name: str, mirror: bool = False) -> Faces:
    image = _photo(name).flip(-1) if mirror else _photo(name)
    return detect_faces(image)


# --- Parity with the reference runtimes --------------------------------------------------


def _chips(size: int, template: tuple[tuple[float, float], ...]) -> torch.Tensor:
    """Aligned chips (3, 3, size, size) of the faces of the three single portraits."""
    _needs_mtcnn()
    names = PHOTOS[:3]
    return torch.cat(
        [align_faces(_photo(n), _found(n).landmarks[:1], size, template) for n in names]
    )


def test_sface_matches_onnxruntime() -> None:
    ort = pytest.importorskip("onnxruntime")
    path = weights_or_skip("sface")
    chips = _chips(112, ARCFACE_TEMPLATE)
    noise = torch.rand(2, 3, 112, 112, generator=torch.Generator().manual_seed(0))
    inputs = torch.cat([chips, noise])
    options = ort.SessionOptions()
    options.log_severity_level = 3  # its initialisers are also listed as graph inputs
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    pixels = (inputs * 255).numpy()
    reference = np.concatenate([session.run(None, {"data": x[None]})[0] for x in pixels])
    with torch.no_grad():
        ours = load_face_recognizer("sface")(inputs).numpy()
    assert ours.shape == (5, 128)
    # measured 2.2e-6 on outputs of about 1
    assert np.abs(ours - reference).max() <= 1e-4 * np.abs(reference).max()


def test_mobilefacenet_matches_litert() -> None:
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    path = weights_or_skip("mobilefacenet")
    chips = _chips(112, ARCFACE_TEMPLATE)
    noise = torch.rand(1, 3, 112, 112, generator=torch.Generator().manual_seed(1))
    inputs = torch.cat([chips, noise])  # 4: two of the model's batches of 2
    interpreter = litert.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    (source,), (sink,) = interpreter.get_input_details(), interpreter.get_output_details()
    nhwc = ((inputs * 255 - 127.5) / 128).permute(0, 2, 3, 1).numpy()
    reference = []
    for pair in (nhwc[:2], nhwc[2:]):
        interpreter.set_tensor(source["index"], np.ascontiguousarray(pair))
        interpreter.invoke()
        reference.append(interpreter.get_tensor(sink["index"]).copy())
    with torch.no_grad():
        ours = load_face_recognizer("mobilefacenet")(inputs).numpy()
    assert ours.shape == (4, 192)
    expected = np.concatenate(reference)
    # measured 3e-5 on outputs of about 8
    assert np.abs(ours - expected).max() <= 1e-5 * 20 * np.abs(expected).max()


def _dlib_reference() -> tuple[dict, torch.Tensor]:
    reference = json.loads((DATA / "dlib_reference.json").read_text())
    strip = np.asarray(Image.open(DATA / "dlib_chips.png").convert("RGB"), dtype=np.float32)
    chips = torch.from_numpy(strip / 255).permute(2, 0, 1).unflatten(2, (-1, 150))
    return reference, chips.permute(2, 0, 1, 3).contiguous()  # (2, 3, 150, 150)


def test_dlib_matches_the_real_dlib_on_fixed_chips() -> None:
    _needs("dlib")
    reference, chips = _dlib_reference()
    with torch.no_grad():
        ours = load_dlib()(chips)
    expected = torch.tensor(reference["chips"])
    assert ours.shape == (2, 128)
    # float32 against dlib's float32: measured 3.7e-7 on values up to 0.53
    assert float((ours - expected).abs().max()) <= 1e-5


def test_dlib_aligned_by_mtcnn_lands_near_dlibs_own_pipeline() -> None:
    """Our chips (MTCNN landmarks, :data:`DLIB_TEMPLATE`) against dlib's own alignment (its
    shape predictor): measured 0.17 and 0.12, far under the 0.6 between people."""
    _needs("dlib")
    reference, _ = _dlib_reference()
    for name, face, expected in zip(
        reference["images"], reference["mtcnn"], reference["pipeline"], strict=True
    ):
        image = load_image(Path(__file__).parents[1] / "examples" / name).rgb
        landmarks = torch.tensor(face["landmarks"])[None]
        with torch.no_grad():
            ours = identity_embedding(image, landmarks, "dlib", normalize=False)[0]
        assert float((ours - torch.tensor(expected)).norm()) < 0.25, name


def test_dlib_reader_finds_the_network_and_refuses_another_file(tmp_path: Path) -> None:
    layers = read_layers(weights_or_skip("dlib"))
    counts = {name: sum(layer.name == name for layer in layers) for name in ("con_4", "affine_")}
    assert counts == {"con_4": 29, "affine_": 29}
    (fc,) = (layer.fields for layer in layers if layer.name == "fc_2")
    assert (fc["num_inputs"], fc["num_outputs"]) == (256, 128)
    other = tmp_path / "other.dat"
    other.write_bytes(b"\x01\x05con_4" + bytes(64))
    with pytest.raises(ValueError):
        state_dict_from_dat(other)


def test_onnx_replay_of_batchnorm_prelu_dropout_flatten_gemm(tmp_path: Path) -> None:
    """SFace's operators on a tiny graph, against onnxruntime."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def const(name: str, *shape: int, low: float = -1.0) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.uniform(low, 1, shape).astype(np.float32), name)

    nodes = [
        helper.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["n"], epsilon=1e-3),
        helper.make_node("PRelu", ["n", "slope"], ["p"]),
        helper.make_node("Dropout", ["p"], ["d"], ratio=0.4),
        helper.make_node("Flatten", ["d"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "w", "c"], ["y"], transB=1, alpha=0.5, beta=2.0),
    ]
    graph = helper.make_graph(
        nodes,
        "ops",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
        [
            const("g", 3),
            const("b", 3),
            const("m", 3),
            const("v", 3, low=0.1),
            const("slope", 3, 1, 1),
            const("w", 5, 48),
            const("c", 5),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    x = rng.normal(size=(2, 3, 4, 4)).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (reference,) = session.run(None, {"x": x})
    path = tmp_path / "ops.onnx"
    onnx.save(model, str(path))
    replay = ONNXModule(path)
    tensor = torch.from_numpy(x).requires_grad_(True)
    (ours,) = replay(tensor).values()
    assert np.abs(ours.detach().numpy() - reference).max() <= 1e-5
    ours.sum().backward()
    assert tensor.grad is not None and bool(tensor.grad.abs().sum() > 0)


# --- Alignment ---------------------------------------------------------------------------


def _similarity(points: torch.Tensor, angle: float, scale: float, shift: tuple[float, float]):
    c, s = math.cos(angle), math.sin(angle)
    rotation = torch.tensor([[c, -s], [s, c]])
    return points @ rotation.T * scale + torch.tensor(shift)


@pytest.mark.parametrize(("template", "size"), [(ARCFACE_TEMPLATE, 112), (DLIB_TEMPLATE, 150)])
def test_alignment_puts_the_landmarks_where_the_template_says(template, size) -> None:
    """Bright dots at the landmarks of a face rotated by 20° and scaled by 2.1 land, in the
    chip, on the template's points (continuous coordinates: pixel centres + 0.5)."""
    target = torch.tensor(template) + 0.5
    landmarks = _similarity(target, math.radians(20), 2.1, (40.0, 25.0))[None]
    transform = alignment_transforms(landmarks, template)[0]
    mapped = landmarks[0] @ transform[:, :2].T + transform[:, 2]
    torch.testing.assert_close(mapped, target, atol=1e-3, rtol=0)
    # the image: a Gaussian dot (σ 2.5 px) at each landmark
    ys, xs = torch.meshgrid(torch.arange(360.0) + 0.5, torch.arange(400.0) + 0.5, indexing="ij")
    dots = sum(torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 2.5**2)) for x, y in landmarks[0])
    image = torch.stack([dots, dots * 0.5, dots * 0.25])
    chip = align_faces(image, landmarks, size, template)[0, 0]
    centres = torch.arange(size) + 0.5
    for x, y in target.tolist():
        near = (centres[None] - x).abs() < 6
        rows = (centres[:, None] - y).abs() < 6
        window = chip * (near & rows)
        cx = float((window.sum(0) * centres).sum() / window.sum())
        cy = float((window.sum(1) * centres).sum() / window.sum())
        assert abs(cx - x) < 0.25 and abs(cy - y) < 0.25, ((cx, cy), (x, y))


def test_alignment_of_real_faces_lands_near_the_arcface_template() -> None:
    _needs_mtcnn()
    for name in PHOTOS:
        faces = _found(name)
        transforms = alignment_transforms(faces.landmarks, ARCFACE_TEMPLATE)
        moved = faces.landmarks @ transforms[:, :, :2].transpose(1, 2) + transforms[:, None, :, 2]
        error = (moved - (torch.tensor(ARCFACE_TEMPLATE) + 0.5)).norm(dim=-1).mean(dim=1)
        assert float(error.max()) < 6, name  # measured 1.4-4.9 px of 112


def test_blazeface_landmarks_align_by_eyes_nose_and_mouth_centre() -> None:
    template = torch.tensor(ARCFACE_TEMPLATE) + 0.5
    points = _similarity(template, 0.1, 1.5, (10.0, 20.0))
    blaze = torch.stack([points[0], points[1], points[2], points[3:].mean(0), points[0] - 30])
    names = ("left_eye", "right_eye", "nose", "mouth", "left_ear")
    both = torch.cat(
        [
            alignment_transforms(points[None], ARCFACE_TEMPLATE),
            alignment_transforms(blaze[None], ARCFACE_TEMPLATE, names),
        ]
    )
    torch.testing.assert_close(both[0], both[1], atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="eyes and the nose"):
        alignment_transforms(blaze[None, :2], ARCFACE_TEMPLATE, names[:2])


# --- One embedding API -------------------------------------------------------------------


def test_identity_embedding_reads_every_network_the_same_way() -> None:
    _needs_mtcnn()
    image = _photo("group_six_faces.jpg")
    faces = _found("group_six_faces.jpg")[:3]
    batch = torch.stack([image, image.flip(-2)])  # two images: image-major output
    for model, spec in IDENTITY_MODELS.items():
        if model == "facenet-vggface2":
            continue  # online only
        _needs(model)
        embeddings = identity_embedding(batch, faces, model)
        assert embeddings.shape[0] == 6, model
        torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(6), atol=1e-4, rtol=0)
        given = faces.landmarks if spec.template else square_boxes(faces.boxes, 0.1)
        torch.testing.assert_close(identity_embedding(image, given, model), embeddings[:3])
    with pytest.raises(ValueError, match="landmarks"):
        identity_crops(image, faces.boxes, "sface")
    with pytest.raises(ValueError, match="boxes"):
        identity_crops(image, faces.landmarks, "facenet-casia")
    with pytest.raises(ValueError, match="unknown identity model"):
        identity_embedding(image, faces, "arcface")


def _people() -> list[tuple[str, torch.Tensor, Faces]]:
    """(person, image, one face) of every face of the shared photos and, as the same
    people, of their mirror images (each face detected again there)."""
    _needs_mtcnn()
    people = []
    for name in PHOTOS:
        image, faces, mirrored = _photo(name), _found(name), _found(name, mirror=True)
        width = image.shape[-1]
        for index in range(len(faces)):
            centre = width - (faces.boxes[index, 0] + faces.boxes[index, 2]) / 2
            twin = int(((mirrored.boxes[:, 0] + mirrored.boxes[:, 2]) / 2 - centre).abs().argmin())
            people.append((f"{name}{index}", image, faces[[index]]))
            people.append((f"{name}{index}", image.flip(-1), mirrored[[twin]]))
    return people


@pytest.mark.parametrize(
    "model", ["facenet-casia", "facenet-msceleb", "sface", "mobilefacenet", "dlib"]
)
def test_the_same_person_is_nearer_than_any_other(model: str) -> None:
    """On the shared photos (one face each, or six): a face and its mirror image re-detected
    are nearer than any two people. Measured (cosine: same min / different max; dlib
    distance: same max / different min): casia 0.83/0.57, msceleb 0.84/0.47, sface
    0.87/0.35, mobilefacenet 0.86/0.37, dlib 0.45/0.57 (with the street photo's small
    faces)."""
    _needs(model)
    people = _people()
    raw = IDENTITY_MODELS[model].metric == "euclidean"
    with torch.no_grad():
        embeddings = torch.cat(
            [identity_embedding(image, face, model, normalize=not raw) for _, image, face in people]
        )
    same, different = [], []
    for (i, a), (j, b) in itertools.combinations(enumerate(people), 2):
        value = float(
            (embeddings[i] - embeddings[j]).norm() if raw else embeddings[i] @ embeddings[j]
        )
        (same if a[0] == b[0] else different).append(value)
    if raw:
        assert max(same) < min(different) and max(same) < DLIB_SAME_PERSON
    else:
        assert min(same) > max(different) + 0.1


@pytest.mark.parametrize("model", ["sface", "mobilefacenet", "dlib"])
def test_gradients_reach_every_pixel_under_the_chip(model: str) -> None:
    _needs_mtcnn()
    _needs(model)
    image = _photo("astronaut.jpg")
    faces = _found("astronaut.jpg")
    pixels = image[None].clone().requires_grad_(True)
    embedding = identity_embedding(pixels, faces.landmarks, model)
    (grad,) = torch.autograd.grad(embedding[0, :8].sum(), pixels)
    grad = grad[0].abs().sum(0)
    assert bool(torch.isfinite(grad).all())
    x1, y1, x2, y2 = (int(v) for v in faces.boxes[0])
    inner = grad[
        y1 + (y2 - y1) // 4 : y2 - (y2 - y1) // 4, x1 + (x2 - x1) // 4 : x2 - (x2 - x1) // 4
    ]
    assert float(inner.min()) > 0  # every pixel of the face's middle
    assert float(grad[:, : max(x1 - 60, 1)].max()) == 0  # nothing far to the left


# --- The loss: face_models ---------------------------------------------------------------


def _astronaut_faces() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """content (1, 3, H, W), its face boxes (1, 4) as the loss pads them and landmarks."""
    _needs_mtcnn()
    image = _photo("astronaut.jpg")
    boxes, landmarks = content_faces_and_landmarks(image)
    size = (image.shape[-2], image.shape[-1])
    return image[None], scale_boxes(boxes, size), scale_points(landmarks, size)


def test_ensemble_hinge_is_the_mean_of_the_single_network_hinges() -> None:
    _needs("facenet-casia", "sface", "mobilefacenet")
    content, boxes, landmarks = _astronaut_faces()
    noise = torch.randn(content.shape, generator=torch.Generator().manual_seed(0))
    image = (content + 0.1 * noise).clamp(0, 1)
    networks = ("facenet-casia", "sface", "mobilefacenet")

    def term(model: str | tuple[str, ...]) -> FaceIDTerm:
        built = FaceIDTerm(
            boxes,
            content,
            1.0,
            model,
            loss="embedding",
            identity=1.0,
            jitter=BoxJitter(0.15, 7),
            views=4,
            landmarks=landmarks,
        )
        built.jitter.at_step(3)
        return built

    singles = [float(term(model)({}, image)) for model in networks]
    ensemble = term(networks)
    assert float(ensemble({}, content)) == pytest.approx(0.0, abs=0.15)  # jittered views
    ensemble.jitter.at_step(3)
    assert float(ensemble({}, image)) == pytest.approx(sum(singles) / 3, abs=1e-5)
    assert min(singles) > 0  # each network pulls
    ensemble.jitter.at_step(3)
    pixels = image.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(ensemble({}, pixels), pixels)
    assert bool(torch.isfinite(grad).all()) and float(grad.abs().sum()) > 0


def test_aligned_views_follow_a_fraction_of_the_box_jitter() -> None:
    boxes = torch.tensor([[10.0, 20.0, 50.0, 60.0]])
    points = torch.tensor([[[20.0, 30.0], [40.0, 30.0], [30.0, 45.0]]])
    jitter = BoxJitter(0.2, 1)
    jitter.at_step(0)
    moved = jitter(boxes, 3)
    full = move_points(points, boxes, moved)
    # relative to its box, each point keeps its place under the full move
    relative = (full - moved[:, None, :2]) / (moved[:, None, 2:] - moved[:, None, :2])
    torch.testing.assert_close(relative, ((points - boxes[:, None, :2]) / 40).repeat(3, 1, 1))
    part = move_points(points, boxes, moved, ALIGNED_JITTER)
    offset, part_offset = full - points, part - points
    assert float(part_offset.abs().max()) < float(offset.abs().max()) * 0.3


def test_face_models_setting_and_single_face_model() -> None:
    default = resolve_settings("portrait-stylization")
    assert default.face_models is None and default.identity_models == ("facenet-casia",)
    single = resolve_settings("portrait-stylization", {"face_model": "sface"})
    assert single.identity_models == ("sface",)
    ensemble = resolve_settings(
        "portrait-stylization", {"face_models": ["facenet-casia", "sface", "mobilefacenet"]}
    )
    assert ensemble.identity_models == ("facenet-casia", "sface", "mobilefacenet")
    for bad in (
        {"face_models": ["dlib"]},  # the evaluator is in no loss
        {"face_models": ["facenet-msceleb"]},
        {"face_models": []},
        {"face_loss": "activations", "face_model": "sface"},
        {"face_loss": "activations", "face_models": ["facenet-casia", "sface"]},
    ):
        with pytest.raises(ValueError, match="face_model"):
            resolve_settings("portrait-stylization", bad)
    args = build_parser().parse_args(
        ["c.jpg", "s.jpg", "-o", "o.png", "--face-models", "facenet-casia", "sface"]
    )
    assert args.face_models == ["facenet-casia", "sface"]
    args = build_parser().parse_args(["c.jpg", "s.jpg", "-o", "o.png", "--face-model", "sface"])
    assert args.face_model == "sface"


def test_prepare_keeps_the_landmarks_of_the_faces_it_keeps() -> None:
    _needs_mtcnn()
    settings = resolve_settings("portrait-stylization")
    image = _photo("group_six_faces.jpg")
    prepared = prepare_portrait_stylization(settings, image)
    faces, landmarks = prepared["faces"], prepared["landmarks"]
    assert landmarks.shape == (len(faces), 5, 2)
    pixels = scale_points(landmarks, (image.shape[-2], image.shape[-1]))
    boxes = scale_boxes(faces, (image.shape[-2], image.shape[-1]))
    inside = (pixels >= boxes[:, None, :2]) & (pixels <= boxes[:, None, 2:])
    assert bool(inside.all())


# --- The evaluator: dlib -----------------------------------------------------------------


def test_identity_dlib_is_zero_at_the_photo_and_far_for_another_face() -> None:
    _needs_mtcnn()
    _needs("dlib")
    group = _photo("group_six_faces.jpg")
    faces = content_faces_found(group)
    assert len(faces) == 6
    kept = identity_dlib(group, group, faces.landmarks)
    assert kept.mean == pytest.approx(0.0, abs=1e-5) and len(kept.per_face) == 6
    # face 0 replaced by face 3, resized into its box
    x1, y1, x2, y2 = (round(v) for v in faces.boxes[0].tolist())
    a1, b1, a2, b2 = (round(v) for v in faces.boxes[3].tolist())
    swapped = group.clone()
    source = group[:, b1:b2, a1:a2][None]
    swapped[:, y1:y2, x1:x2] = torch.nn.functional.interpolate(source, (y2 - y1, x2 - x1))[0]
    scores = face_scores(group, swapped)
    assert scores["identity_dlib_per_face"][0] > DLIB_SAME_PERSON
    assert max(scores["identity_dlib_per_face"][1:]) < 1e-4
    assert scores["identity_dlib_same"] == pytest.approx(5 / 6)
    assert scores["identity_dlib_rank1_per_face"] == [0.0] + [1.0] * 5
    # boxes alone (eval scripts): their landmarks are found again
    again = face_scores(group, swapped, faces.boxes)
    assert again["identity_dlib_per_face"] == pytest.approx(scores["identity_dlib_per_face"])


def test_evaluate_reports_dlib_beside_facenet(tmp_path: Path, capsys) -> None:
    _needs_mtcnn()
    _needs("dlib", "facenet-msceleb")
    photo, group = _photo("astronaut.jpg"), _photo("group_six_faces.jpg")
    content, result, other = tmp_path / "c.png", tmp_path / "r.png", tmp_path / "g.png"
    save_image(photo, content)
    save_image(photo, result)
    save_image(group, other)
    assert len(gallery_embeddings([group], "dlib")) == 6
    assert main(["evaluate", str(content), str(result), "--gallery", str(other), "--json"]) == 0
    values = json.loads(capsys.readouterr().out)
    assert values["identity_dlib"] < 0.05 and values["identity_dlib_same"] == 1.0
    assert values["identity_dlib_rank1"] == 1.0 and values["identity_cosine"] > 0.95
    assert main(["evaluate", str(content), str(result)]) == 0
    table = capsys.readouterr().out
    assert "face identity distance, dlib" in table and "same person by dlib" in table
