"""The identity knob's frontier: portrait-stylization at several ``--identity`` values beside
the paper's FaceID loss, crowson and the feed-forward network, on portrait x painting pairs.

    OMP_NUM_THREADS=2 python eval/identity.py [--size 256] [--pairs astronaut:starry_night@0,1]

Every run is saved under ``--runs`` with its run record; a rerun reuses finished runs.
Scores: identity cosine (facenet-msceleb, independent of the loss's facenet-casia), face
stylization (face vs rest 1 − SSIM), style distance of the whole image (HED VGG-16
evaluator), wall time. Writes the tables and figures to ``docs/identity.md`` and
``docs/images/identity-*.jpg|png`` (figures of public-domain pairs only).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import torch
from paper1 import DATA, PUBLIC_DOMAIN, contact_sheet, eval_parser, fmt, shared_data_ready
from paper1 import write_generated as write_page
from PIL import Image, ImageDraw

from portrait_stylize.api import save_result, stylize
from portrait_stylize.face_metrics import content_face_boxes, face_scores
from portrait_stylize.images import (
    load_image,
    record_path,
    resize_long_side,
)
from portrait_stylize.methods import resolve_settings
from portrait_stylize.methods.registry import CROWSON_SCHEDULE
from portrait_stylize.methods.settings import job_settings
from portrait_stylize.metrics import evaluate, style_evaluator

PAIRS = ("astronaut:starry_night@0,0.6,0.8,0.9,1", "group_six_faces:the_scream@0.9")
"""content:style@knob values (default values: :data:`VALUES`)."""
VALUES = (0.0, 0.6, 0.8, 0.9, 1.0)
BASELINES: dict[str, tuple[str, dict[str, Any]]] = {
    "paper (activations, 0.015)": ("portrait-stylization", {"paper_exact": True}),
    "previous default (identity 0.9 alone)": (
        "portrait-stylization",
        {"face_weight": 0.05, "face_style_weight": 0.0, "face_views": 1, "face_jitter": 0.0},
    ),
    "instant (feed-forward)": ("instant", {}),
}
TILE = 100
"""Side of a figure tile: rows of five make a 500 px wide sheet."""
BEGIN, END = "<!-- eval/identity.py: begin -->", "<!-- eval/identity.py: end -->"
TITLE = "# The identity knob: painted faces that stay the person\n\n"


def defaults_key() -> str:
    """A short hash of portrait-stylization's defaults: runs made under other defaults
    (whose knob rows meant something else) are not reused."""
    defaults = job_settings(resolve_settings("portrait-stylization"))
    return hashlib.sha256(json.dumps(defaults, sort_keys=True).encode()).hexdigest()[:8]


def runs_dir(args) -> Path:
    """The folder of the runs made with ``args``' size and schedule under today's defaults."""
    runs = args.runs / f"{args.size}px-{args.initial}-{args.iterations}it-{defaults_key()}"
    runs.mkdir(parents=True, exist_ok=True)
    return runs


def variants(values: list[float]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Label -> (method, overrides) of every run of a pair."""
    knob = {f"identity {v:g}": ("portrait-stylization", {"identity": v}) for v in sorted(values)}
    return {**knob, **BASELINES}


def run_once(
    content: Path, style: Path, method: str, overrides: dict[str, Any], out: Path, args
) -> Path:
    """The result of one run, computed unless ``out`` already holds it."""
    if not out.is_file():
        settings = {"size": args.size, **overrides}
        if method != "instant":
            schedule = {"initial_iterations": args.initial, "iterations": args.iterations}
            settings |= {**CROWSON_SCHEDULE, "converge_tol": 0.0, **schedule}
        result = stylize(content, style, method, **settings)
        save_result(result, out)
        print(f"{out.name}: {result.record['wall_time_s']:.0f} s", file=sys.stderr, flush=True)
    return out


def score(
    content: torch.Tensor,
    result: torch.Tensor,
    style: torch.Tensor,
    extractor,
    out,
    boxes,
    gallery: torch.Tensor | None = None,
):
    """Identity, rank-1 identification (among the content's faces and ``gallery`` (G, D)),
    landmark NME, face stylization, style distance (x 1e6) and time of one result
    (3, h, w) against content (3, H, W), its faces ``boxes`` (N, 4) and style (3, H', W')."""
    faces = face_scores(content, result, boxes, gallery)
    small = resize_long_side(content, max(result.shape[-2:]))
    style_distance = evaluate(small, result, style, extractor=extractor)["style_distance"]
    record = json.loads(record_path(out).read_text())
    return {
        "identity": faces["identity_cosine"],
        "identity_per_face": faces["identity_cosine_per_face"],
        "rank1": faces["identity_rank1"],
        "nme": faces["landmark_nme"],
        "stylization": faces["face_stylization"],
        "style": None if style_distance is None else 1e6 * style_distance,
        "seconds": record["wall_time_s"],
    }


def curve(rows: dict[str, dict[str, Any]], values: list[float], path: Path) -> None:
    """A 384 x 256 line chart of identity (blue) and face stylization (red) against the knob."""
    width, height, margin = 384, 256, 36
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    top = max(1.2, *(rows[f"identity {v:g}"]["stylization"] or 0 for v in values))

    def point(x: float, y: float) -> tuple[float, float]:
        return (
            margin + x * (width - 2 * margin),
            height - margin - y / top * (height - 2 * margin),
        )

    draw.line([point(0, 0), point(1, 0)], fill="black")
    draw.line([point(0, 0), point(0, top)], fill="black")
    for tick in (0.0, 0.5, 1.0):
        draw.text((point(tick, 0)[0] - 6, height - margin + 4), f"{tick:g}", fill="black")
        draw.text((4, point(0, tick)[1] - 6), f"{tick:g}", fill="black")
    draw.text((width // 2 - 30, height - 14), "--identity", fill="black")
    for key, colour in (("identity", "blue"), ("stylization", "red")):
        points = [point(v, rows[f"identity {v:g}"][key] or 0.0) for v in values]
        draw.line(points, fill=colour, width=2)
        for x, y in points:
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
    draw.text((margin + 8, 6), "identity cosine", fill="blue")
    draw.text((margin + 130, 6), "face stylization", fill="red")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def markdown(scores: dict[str, dict[str, dict[str, Any]]], args, figures: list[str]) -> str:
    """The generated part of docs/identity.md."""
    lines = [
        f"Generated by `eval/identity.py --size {args.size}` (schedule: {args.initial} "
        f"iterations at 128 px, {args.iterations} at each later scale, no early end; "
        "the paper row uses fp32 and the same schedule). Identity: facenet-msceleb cosine, "
        "mean over faces (per face in brackets for several); face stylization: faces' "
        "1 − SSIM over the rest's; style: whole-image Gram distance x 1e6 (HED VGG-16).",
        "",
    ]
    for pair, rows in scores.items():
        instant = rows["instant (feed-forward)"]["style"]
        lines += [
            f"### {pair}",
            "",
            "| run | identity ↑ | face stylization | style ↓ | style / feed-forward | s |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for label, row in rows.items():
            per_face = row["identity_per_face"]
            faces = f" ({', '.join(f'{v:.2f}' for v in per_face)})" if len(per_face) > 1 else ""
            ratio = None if instant is None or row["style"] is None else row["style"] / instant
            lines.append(
                f"| {label} | {fmt(row['identity'])}{faces} | {fmt(row['stylization'], 2)} | "
                f"{fmt(row['style'], 0)} | {fmt(ratio, 2)} | {row['seconds']:.0f} |"
            )
        lines.append("")
    lines += [f"![{Path(name).stem}](images/{name})" for name in figures]
    return "\n".join(lines) + "\n"


def schedule_parser(doc: str, name: str):
    """:func:`eval_parser` plus the reduced schedule (--initial, --iterations)."""
    parser = eval_parser(doc, name)
    parser.add_argument("--initial", type=int, default=150, help="Adam steps at 128 px")
    parser.add_argument("--iterations", type=int, default=100, help="Adam steps per later scale")
    return parser


def main() -> int:
    parser = schedule_parser(__doc__, "identity")
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS))
    args = parser.parse_args()
    if not shared_data_ready():
        return 1
    runs = runs_dir(args)
    extractor = style_evaluator()
    scores: dict[str, dict[str, dict[str, Any]]] = {}
    figures: list[str] = []
    for spec in args.pairs:
        pair, _, knob = spec.partition("@")
        values = sorted(float(v) for v in knob.split(",")) if knob else list(VALUES)
        content_name, style_name = pair.split(":")
        content_path = DATA / "content" / f"{content_name}.jpg"
        style_path = DATA / "style" / f"{style_name}.jpg"
        content, style = load_image(content_path).rgb, load_image(style_path).rgb
        rows, images = {}, {}
        boxes = content_face_boxes(content)  # once per pair, the same in every score
        for label, (method, overrides) in variants(values).items():
            slug = label.split(" (")[0].replace(" ", "-")
            out = runs / f"{content_name}--{style_name}--{slug}.png"
            run_once(content_path, style_path, method, overrides, out, args)
            images[label] = load_image(out).rgb
            rows[label] = score(content, images[label], style, extractor, out, boxes)
        scores[pair] = rows
        if len(values) > 2:
            chart = f"identity-{content_name}--{style_name}-curve.png"
            curve(rows, values, args.docs / "images" / chart)
            figures.append(chart)
        if {content_name, style_name} <= PUBLIC_DOMAIN:  # only these are committed
            knob = [images[f"identity {v:g}"] for v in values]
            others = [content, style] + [images[label] for label in BASELINES]
            sheet = f"identity-{content_name}--{style_name}.jpg"
            contact_sheet([knob, others], TILE, args.docs / "images" / sheet)
            figures.append(sheet)
    page = args.docs / "identity.md"
    write_page(page, TITLE, BEGIN, END, markdown(scores, args, figures))
    (runs / "scores.json").write_text(json.dumps(scores, indent=1))
    print(f"wrote {page}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
