"""Paper 2's comparison (Portrait Stylization): gatys-plus, crowson and portrait-stylization
(face only, mesh only, both) on portraits, scored on the faces and on the style.

    OMP_NUM_THREADS=1 python eval/paper2.py [--size 256] [--pairs astronaut:starry_night ...]

Every run is saved under ``--runs`` with its run record; a rerun reuses finished runs.
Faces are detected once per content (MTCNN, full resolution, faces under 1 % of the image
left out, as the method does) and scored on the same boxes in every result: identity
cosine with the independent facenet-msceleb model, FaceMesh landmark NME. Writes the
tables to ``docs/results-paper2.md`` and contact sheets of the public-domain pairs to
``docs/images/``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any, cast

import torch
from paper1 import contact_sheet  # the sibling script's sheet layout

from portrait_stylize.api import stylize
from portrait_stylize.face_metrics import identity_cosine, landmark_nme
from portrait_stylize.faces import crop_faces, detect_faces, filter_small, square_boxes
from portrait_stylize.features import FeatureExtractor, build_extractor
from portrait_stylize.io import (
    load_image,
    record_path,
    resize_long_side,
    save_image,
    save_record,
)
from portrait_stylize.metrics import evaluate

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PUBLIC_DOMAIN = {"astronaut", "grace_hopper"}
"""Contents that may appear in images (closeup_portrait and group_six_faces may not)."""
PAIRS = (
    "astronaut:starry_night",
    "grace_hopper:the_scream",
    "closeup_portrait:woman_with_hat_matisse",
    "group_six_faces:the_scream",
)
MESH_WEIGHT = 1e-4
"""Mesh weight of the mesh-only and face+mesh variants (see docs/results-paper2.md)."""
VARIANTS: dict[str, tuple[str, dict[str, float]]] = {
    "gatys-plus": ("gatys-plus", {"iterations": 300}),
    "crowson": ("crowson", {}),
    "ps face": ("portrait-stylization", {}),
    "ps mesh": ("portrait-stylization", {"face_weight": 0.0, "mesh_weight": MESH_WEIGHT}),
    "ps face+mesh": ("portrait-stylization", {"mesh_weight": MESH_WEIGHT}),
}
"""Label -> (method, overrides); the multi-scale ones also get the reduced schedule."""
TILE = 128
"""Side of a contact-sheet tile: four tiles make a 512 px wide sheet."""
SHEET = ("gatys-plus", "crowson", "ps face", "ps mesh", "ps face+mesh")
FACE_ROW = ("crowson", "ps face", "ps face+mesh")
BEGIN, END = "<!-- eval/paper2.py: begin -->", "<!-- eval/paper2.py: end -->"
TITLE = "# Paper 2 (Portrait Stylization): faces kept and picture stylized\n\n"


def run_once(content: Path, style: Path, label: str, out: Path, args: argparse.Namespace) -> Path:
    """The result of one variant, computed unless ``out`` already holds it."""
    if not out.is_file():
        method, overrides = VARIANTS[label]
        settings: dict[str, Any] = {"size": args.size, **overrides}
        if method != "gatys-plus":
            reduced = {"initial_iterations": args.initial, "iterations": args.iterations}
            settings |= {"precision": "bf16", **reduced}
        result = stylize(content, style, method, **settings)
        save_image(result.image, out)
        save_record(result.record, out)
        print(f"{out.name}: {result.record['wall_time_s']:.0f} s", file=sys.stderr, flush=True)
    return out


def face_boxes(original: torch.Tensor) -> torch.Tensor:
    """Detected faces (N, 4) of original (3, H, W) covering at least 1 % of it."""
    faces = detect_faces(original)
    return faces.boxes[filter_small(faces.boxes, (original.shape[1], original.shape[2]))]


def score(
    content: torch.Tensor,
    result: torch.Tensor,
    style: torch.Tensor,
    boxes: torch.Tensor,
    extractor: FeatureExtractor,
    record: dict[str, Any],
) -> dict[str, Any]:
    """Face, portrait and style scores of result (3, h, w) against content (3, H, W) at
    full resolution, its faces ``boxes`` (N, 4) and style (3, H', W')."""
    small = resize_long_side(content, max(result.shape[-2:]))
    identity = identity_cosine(content, result, boxes)
    scores = evaluate(small, result, style, extractor=extractor)
    return {
        "identity": identity.mean,
        "identity_per_face": identity.per_face,
        "nme": landmark_nme(content, result, boxes).mean,
        "fg_ssim": scores["fg_ssim"],
        "style": 1e6 * cast(float, scores["style_distance"]),
        "seconds": record["wall_time_s"],
    }


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


COLUMNS = (
    ("identity", "identity cos ↑", 3),
    ("nme", "landmark NME ↓", 3),
    ("fg_ssim", "fg SSIM ↑", 3),
    ("style", "style dist. ↓", 0),
    ("seconds", "wall s", 0),
)


def markdown(
    scores: dict[tuple[str, str], dict[str, Any]], args: argparse.Namespace, sheets: list[str]
) -> str:
    """The generated part of the results page."""
    pairs = list(dict.fromkeys(pair for pair, _ in scores))
    header = "| " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    lines = [
        f"Generated by `eval/paper2.py --size {args.size} --initial {args.initial} "
        f"--iterations {args.iterations} --pairs {' '.join(args.pairs)}`.",
        "",
        f"Run: {len(pairs)} content/style pairs, end scale {args.size} px. Multi-scale "
        f"methods: scales 128, 181, 256 px with {args.initial} + {args.iterations} + "
        f"{args.iterations} Adam steps (the paper: 1000 + 4 x 500 up to 512 px), bf16 "
        "autocast of the VGG features, seed 0, init content. gatys-plus: L-BFGS from noise, "
        f"{VARIANTS['gatys-plus'][1]['iterations']} iterations at {args.size} px, fp32. "
        f"portrait-stylization with its defaults; mesh variants add mesh_weight {MESH_WEIGHT:g} "
        "(mesh only: face_weight 0). Backbone vgg16-hed (calibrated). One core "
        "(OMP_NUM_THREADS=1) on a 2-core machine shared with other jobs: wall times are "
        "indicative only.",
        "",
        "Scores: identity cos = cosine of facenet-msceleb embeddings (not the loss's "
        "facenet-casia) of each content face and the same box of the result, averaged over "
        "faces (astronaut vs grace_hopper, two different people, score 0.20 on this model; "
        "the resized content itself 1.0); landmark NME = mean FaceMesh landmark distance / "
        "inter-ocular distance; fg SSIM on the person (selfie segmentation) as in "
        "`portrait_stylize.metrics`; style dist. = Gram distance to the style image over "
        "relu1_1..relu5_1 of vgg16-hed (x 1e6, lower = closer to the painting; measured "
        "with the network the methods optimise).",
        "",
        "### Averaged over the pairs",
        "",
        "| method " + header,
        "| --- " * (len(COLUMNS) + 1) + "|",
    ]
    for label in VARIANTS:
        rows = [v for (_, m), v in scores.items() if m == label]
        cells = []
        for key, _, digits in COLUMNS:
            values = [row[key] for row in rows if row[key] is not None]
            cells.append(_fmt(statistics.fmean(values) if values else None, digits))
        lines.append(f"| {label} | {' | '.join(cells)} |")
    lines += ["", "### Per pair", "", "| pair | method " + header + " per face identity |"]
    lines.append("| --- " * (len(COLUMNS) + 3) + "|")
    for pair in pairs:
        for label in VARIANTS:
            row = scores[pair, label]
            cells = [_fmt(row[key], digits) for key, _, digits in COLUMNS]
            faces = ", ".join(f"{v:.2f}" for v in row["identity_per_face"])
            lines.append(f"| {pair} | {label} | {' | '.join(cells)} | {faces} |")
    lines += ["", "### Contact sheets", ""]
    lines += [
        "Public-domain inputs only. Each sheet: content, style, gatys-plus, crowson; "
        "ps face, ps mesh, ps face+mesh; then the face of the content, crowson, ps face and "
        "ps face+mesh, enlarged.",
        "",
    ]
    lines += [f"![{Path(name).stem}](images/{name})" for name in sheets]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--initial", type=int, default=300, help="Adam steps at the first scale")
    parser.add_argument("--iterations", type=int, default=150, help="Adam steps per later scale")
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), metavar="CONTENT:STYLE")
    parser.add_argument("--runs", type=Path, default=ROOT / "out" / "paper2")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not DATA.is_dir():
        print(f"shared data not found at {DATA}", file=sys.stderr)
        return 1
    runs = args.runs / f"{args.size}px-{args.initial}+{args.iterations}it"
    runs.mkdir(parents=True, exist_ok=True)
    extractor = build_extractor()
    scores: dict[tuple[str, str], dict[str, Any]] = {}
    sheets: list[str] = []
    for pair in args.pairs:
        content_name, style_name = pair.split(":")
        content_path = DATA / "content" / f"{content_name}.jpg"
        style_path = DATA / "style" / f"{style_name}.jpg"
        content, style = load_image(content_path).rgb, load_image(style_path).rgb
        boxes = face_boxes(content)
        results = {}
        for label in VARIANTS:
            out = runs / f"{content_name}--{style_name}--{label.replace(' ', '-')}.png"
            run_once(content_path, style_path, label, out, args)
            results[label] = load_image(out).rgb
            record = json.loads(record_path(out).read_text())
            scores[pair, label] = score(content, results[label], style, boxes, extractor, record)
        if content_name in PUBLIC_DOMAIN:
            small = resize_long_side(content, args.size)
            box = square_boxes(boxes[:1], 0.2) * args.size / max(content.shape[-2:])
            faces = [small, *(results[label] for label in FACE_ROW)]
            rows = [
                [small, resize_long_side(style, args.size), *(results[k] for k in SHEET[:2])],
                [results[label] for label in SHEET[2:]],
                [crop_faces(image, box, TILE)[0] for image in faces],
            ]
            name = f"paper2-{content_name}-{style_name}.jpg"
            contact_sheet(rows, TILE, args.docs / "images" / name)
            sheets.append(name)
    page = args.docs / "results-paper2.md"
    before, after = TITLE, "\n"
    if page.is_file() and BEGIN in (text := page.read_text()) and END in text:
        before, after = text.split(BEGIN)[0], text.split(END)[1]
    page.write_text(f"{before}{BEGIN}\n{markdown(scores, args, sheets)}{END}{after}")
    print(f"wrote {page}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
