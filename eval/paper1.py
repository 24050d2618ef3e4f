"""Paper 1's comparison (Xing et al., ICIP 2018, Table 1): gatys, gatys-plus and
portrait-aware on the shared portraits, scored per region.

    python eval/paper1.py [--size 256] [--iterations 300] [--contents ...] [--styles ...]

Every run (same seed, same start) is saved under ``--runs`` with its run record; a rerun
reuses finished runs made with the same settings. The person mask of each content (selfie
segmentation at the run size, threshold 0.5) is saved there too and given to
portrait-aware as ``--mask``, so the method and the metrics use the same mask. Writes
the tables to ``docs/results-paper1.md`` and contact sheets of the public-domain pairs
to ``docs/images/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from portrait_stylize.api import save_result, stylize
from portrait_stylize.faces import crop_faces, detect_faces, square_boxes
from portrait_stylize.images import (
    load_image,
    record_path,
    resize_long_side,
    save_image,
)
from portrait_stylize.masks import person_mask
from portrait_stylize.methods import paper_exact_settings, resolve_settings
from portrait_stylize.metrics import evaluate, style_evaluator

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CONTENTS = ("astronaut", "grace_hopper", "closeup_portrait")
PUBLIC_DOMAIN = {"astronaut", "grace_hopper", "starry_night", "the_scream", "shipwreck_turner"}
"""Inputs that may appear in committed images (the shared data's README: closeup_portrait and
group_six_faces are licensed for testing only, Matisse is public domain in the US only)."""
STYLES = ("starry_night", "the_scream", "woman_with_hat_matisse", "shipwreck_turner")
METHODS = ("gatys", "gatys-plus", "portrait-aware")
PAPER = {
    "gatys": (0.878, 0.930, 0.196),
    "gatys-plus": (0.908, 0.952, 0.157),
    "portrait-aware": (0.932, 0.966, 0.123),
}
"""Xing et al. Table 1: foreground SSIM, FSIMc, GMSD."""
KEYS = ("fg_ssim", "fg_fsimc", "fg_gmsd", "bg_ssim", "bg_fsimc", "bg_gmsd")
START = {None: "the ImageNet mean colour", "content": "the photograph", "noise": "noise"}
"""What ``--init`` starts the runs from (None: the papers' start under ``--paper-exact``,
neural-style's mean colour)."""
TILE = 170
"""Side of a contact-sheet tile: three tiles make a 510 px wide sheet."""
FACE_TILE = 128
BEGIN, END = "<!-- eval/paper1.py: begin -->", "<!-- eval/paper1.py: end -->"
"""The generated part of the page lies between these; text around them is kept."""
TITLE = "# Paper 1 (Xing et al., ICIP 2018): portrait kept and background stylized\n\n"


def person_file(content: torch.Tensor, path: Path) -> Path:
    """Save the thresholded person mask (white = person) of content (3, H, W) once."""
    if not path.is_file():
        with torch.no_grad():
            person = (person_mask(content) >= 0.5).float()[0]
        save_image(person.expand(3, -1, -1), path)
    return path


def run_once(content: Path, style: Path, method: str, out: Path, args, mask: Path) -> Path:
    """The result of one run, computed unless ``out`` holds one made with the same settings."""
    record = record_path(out)
    overrides: dict[str, Any] = {
        "size": args.size,
        "iterations": args.iterations,
        **paper_exact_settings(method),  # fp32 and the papers' start, as the papers
        **({"init": args.init} if args.init else {}),
        "mask": str(mask) if method == "portrait-aware" else None,
    }
    wanted = dataclasses.asdict(resolve_settings(method, overrides))
    if not (
        out.is_file()
        and record.is_file()
        and json.loads(record.read_text()).get("settings") == json.loads(json.dumps(wanted))
    ):
        result = stylize(content, style, method, **overrides)
        save_result(result, out)
        print(f"{out.name}: {result.record['wall_time_s']:.0f} s", file=sys.stderr, flush=True)
    return out


def _tile(image: torch.Tensor, side: int = TILE) -> Image.Image:
    """(3, H, W) in [0, 1] -> a side x side PIL tile, letterboxed on white."""
    fitted = resize_long_side(image, side)
    canvas = torch.ones(3, side, side)
    h, w = fitted.shape[-2:]
    canvas[:, (side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = fitted
    array = (canvas.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    return Image.fromarray(array)


def contact_sheet(rows: list[list[torch.Tensor]], side: int, path: Path) -> None:
    """Tiles in rows (each (3, H, W) in [0, 1]) pasted into one JPEG."""
    sheet = Image.new("RGB", (side * len(rows[0]), side * len(rows)), "white")
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            sheet.paste(_tile(image, side), (c * side, r * side))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, quality=90)


def face_box(original: torch.Tensor, size: int) -> torch.Tensor | None:
    """Padded square box (1, 4) of the best face of original (3, H, W), at the run size."""
    faces = detect_faces(original)
    if len(faces) == 0:
        return None
    return square_boxes(faces.boxes[:1], 0.2) * size / max(original.shape[-2:])


def fmt(value: float | None, digits: int = 3) -> str:
    """A table cell: the value to ``digits`` decimals, or a dash for None."""
    return "–" if value is None else f"{value:.{digits}f}"


def write_generated(page: Path, title: str, begin: str, end: str, body: str) -> None:
    """Write ``body`` between the ``begin`` and ``end`` markers of ``page``, keeping the
    hand-written text around them (a new page starts with ``title``)."""
    before, after = title, "\n"
    if page.is_file() and begin in (text := page.read_text()) and end in text:
        before, after = text.split(begin)[0], text.split(end)[1]
    page.write_text(f"{before}{begin}\n{body}{end}{after}")


def _mean(rows: list[dict], key: str) -> float | None:
    values = [row[key] for row in rows if row[key] is not None]
    return statistics.fmean(values) if values else None


def markdown(scores: dict[tuple[str, str, str], dict], args, sheets: list[str]) -> str:
    """The generated part of the results page: settings, tables, contact sheets."""
    pairs = sorted({(c, s) for c, s, _ in scores}, key=lambda p: (CONTENTS.index(p[0]), p[1]))
    lines = [
        f"Generated by `eval/paper1.py` (`--size {args.size} --iterations {args.iterations} "
        f"{f'--init {args.init} ' if args.init else ''}"
        f"--contents {' '.join(args.contents)} --styles {' '.join(args.styles)}`).",
        "",
        f"Setting: {len(pairs)} content/style pairs ({', '.join(args.contents)} x "
        f"{', '.join(args.styles)}), {args.size} px long side, {args.iterations} L-BFGS "
        f"iterations (the paper: 1000, full size) from {START[args.init]} (seed 0), "
        "fp32 (`--paper-exact`), the default backbone (the original VGG-19, raw features, "
        "neural-style's loss normalisation), each method's own defaults; person mask "
        "from selfie segmentation of the content at the run size, threshold 0.5, shared by "
        "portrait-aware (`--mask`) and the metrics.",
        "",
        "Metrics (`portrait_stylize.metrics`): SSIM / FSIMc / GMSD (piq) between content and "
        "result on the bounding box of the region, the other region filled with content "
        "pixels in both images (so absolute values are pulled towards a perfect match and "
        "are not comparable with the paper's, whose region method is not stated; the "
        "ranking is). Style distance: Gram distance over relu1_1..relu5_1 of vgg16-hed "
        "(calibrated, x 1e6; lower = closer to the painting), whole image and background "
        "only (masked Gram), a network the methods do not optimise.",
        "",
        "## Averaged over all pairs",
        "",
        "| method | fg SSIM ↑ | fg FSIMc ↑ | fg GMSD ↓ | paper SSIM / FSIMc / GMSD | "
        "bg SSIM | bg FSIMc | bg GMSD | style dist. ↓ | bg style dist. ↓ |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for method in METHODS:
        rows = [v for (_, _, m), v in scores.items() if m == method]
        paper = " / ".join(f"{v:.3f}" for v in PAPER[method])
        cells = [fmt(_mean(rows, k)) for k in KEYS]
        cells += [fmt(_scaled(_mean(rows, k)), 2) for k in ("style_distance", "bg_style_distance")]
        lines.append(f"| {method} | {' | '.join(cells[:3])} | {paper} | {' | '.join(cells[3:])} |")
    lines += [
        "",
        "## Per pair",
        "",
        "| content | style | method | fg SSIM | fg FSIMc | fg GMSD | bg SSIM | bg FSIMc | "
        "bg GMSD | style dist. | bg style dist. |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for content, style in pairs:
        for method in METHODS:
            row = scores[content, style, method]
            cells = [fmt(row[k]) for k in KEYS]
            cells += [fmt(_scaled(row[k]), 2) for k in ("style_distance", "bg_style_distance")]
            lines.append(f"| {content} | {style} | {method} | {' | '.join(cells)} |")
    lines += sheets_section(
        "## Contact sheets",
        "content, style, person mask (white = person); gatys, gatys-plus, portrait-aware; "
        "then the face of the content and of the three results, enlarged.",
        sheets,
    )
    return "\n".join(lines) + "\n"


def sheets_section(heading: str, layout: str, sheets: list[str]) -> list[str]:
    """Markdown lines of a results page's contact sheets (file names under images/),
    ``layout`` saying what each sheet shows."""
    lines = ["", heading, "", f"Public-domain inputs only. Each sheet: {layout}", ""]
    return lines + [f"![{Path(name).stem}](images/{name})" for name in sheets]


def _scaled(value: float | None) -> float | None:
    return None if value is None else value * 1e6


def eval_parser(doc: str, name: str) -> argparse.ArgumentParser:
    """An eval script's parser with --size, --runs (default out/NAME) and --docs."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--runs", type=Path, default=ROOT / "out" / name)
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    return parser


def shared_data_ready() -> bool:
    """False, saying so, without ../shared/data."""
    if not DATA.is_dir():
        print(f"shared data not found at {DATA}", file=sys.stderr)
    return DATA.is_dir()


def main() -> int:
    parser = eval_parser(__doc__, "paper1")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--contents", nargs="+", default=list(CONTENTS), choices=CONTENTS)
    parser.add_argument("--styles", nargs="+", default=list(STYLES), choices=STYLES)
    parser.add_argument(
        "--init", choices=[k for k in START if k], help="start image (default: the mean colour)"
    )
    args = parser.parse_args()
    if not shared_data_ready():
        return 1
    runs = args.runs / f"{args.size}px-{args.iterations}it{f'-{args.init}' if args.init else ''}"
    runs.mkdir(parents=True, exist_ok=True)
    extractor = style_evaluator()
    scores: dict[tuple[str, str, str], dict] = {}
    sheets: list[str] = []
    for content_name in args.contents:
        content_path = DATA / "content" / f"{content_name}.jpg"
        original = load_image(content_path).rgb
        content = resize_long_side(original, args.size)
        mask_path = person_file(content, runs / f"{content_name}.mask.png")
        mask = load_image(mask_path).rgb[:1]
        for style_name in args.styles:
            style_path = DATA / "style" / f"{style_name}.jpg"
            style = load_image(style_path).rgb
            results = {}
            for method in METHODS:
                out = runs / f"{content_name}--{style_name}--{method}.png"
                run_once(content_path, style_path, method, out, args, mask_path)
                results[method] = load_image(out).rgb
                scores[content_name, style_name, method] = evaluate(
                    content, results[method], style, mask, extractor=extractor
                )
            if {content_name, style_name} <= PUBLIC_DOMAIN:
                box = face_box(original, args.size)
                rows = [
                    [content, resize_long_side(style, args.size), mask.expand(3, -1, -1)],
                    [results[m] for m in METHODS],
                ]
                faces = []
                if box is not None:
                    faces = [crop_faces(im, box, FACE_TILE)[0] for im in (content, *rows[1])]
                name = f"paper1-{content_name}-{style_name}.jpg"
                contact_sheet(rows, TILE, args.docs / "images" / name)
                if faces:
                    face_name = f"paper1-{content_name}-{style_name}-faces.jpg"
                    contact_sheet([faces], FACE_TILE, args.docs / "images" / face_name)
                    sheets += [name, face_name]
                else:
                    sheets.append(name)
    page = args.docs / "results-paper1.md"
    write_generated(page, TITLE, BEGIN, END, markdown(scores, args, sheets))
    print(f"wrote {page}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
