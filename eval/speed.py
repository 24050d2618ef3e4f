"""The fast default against the slow schedule it replaced: the same painting?

    python eval/speed.py [--pairs astronaut:starry_night ...] [--seeds 0] [--runs out/speed]
                         [--variant LABEL JSON ...]

For each photo x painting pair, ``portrait-painting`` at 512 px three ways, same seed:
the fast default, the previous default schedule (:data:`SLOW`: Crowson's 1000 + 4 x 500
Adam steps at a constant step size with the early end, the moving average at 0.99; the
reference) and the feed-forward network (``instant``). Every run is saved under
``--runs`` with its record and reused when there. Scores: identity cosine (facenet-msceleb,
in no loss), dlib's descriptor distance (a second judge of another family, in no loss;
one person under 0.6), face stylization, style distance (x 1e4, HED VGG-16) and the background's
FSIMc against the photograph (the scene kept), each fast row's difference from the slow
one, and the stylizing seconds from the records. Writes the table and contact sheets of
the public-domain pairs (photograph, slow, fast, feed-forward) into
``docs/performance.md`` and ``docs/images/speed-*.jpg``, and the README's figure.
``--variant LABEL JSON`` adds a row of ``portrait-painting`` with the JSON's settings over
its defaults (a lever of the schedule, e.g.
``--variant "constant step size" '{"lr_end": 1.0}'``), compared with the slow schedule
like the fast default.
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from typing import Any

from paper1 import DATA, PUBLIC_DOMAIN, contact_sheet, eval_parser, fmt, shared_data_ready
from paper1 import write_generated as write_page

from portrait_stylize.api import save_result, stylize
from portrait_stylize.face_metrics import face_scores
from portrait_stylize.images import load_image, record_path
from portrait_stylize.methods.registry import CROWSON_SCHEDULE
from portrait_stylize.metrics import evaluate

PAIRS = (
    "astronaut:starry_night",
    "grace_hopper:the_scream",
    "closeup_portrait:woman_with_hat_matisse",
    "astronaut:shipwreck_turner",
    "closeup_portrait:the_scream",
    "grace_hopper:starry_night",
)
"""Single portraits: the public-domain ones and two close-up pairs the schedule was not
tuned on (it was tuned on the first two)."""
SLOW: dict[str, Any] = {**CROWSON_SCHEDULE, "converge_tol": 5e-3}
"""The previous default schedule of portrait-painting (Crowson's, with the early end)."""
REFERENCE, FEED_FORWARD = "slow schedule (reference)", "feed-forward (instant)"
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    REFERENCE: ("portrait-painting", SLOW),
    "fast default": ("portrait-painting", {}),
    FEED_FORWARD: ("instant", {}),
}
TAGS = {REFERENCE: "slow", "fast default": "fast", FEED_FORWARD: "feed-forward"}
"""File-name tags of the fixed rows; a ``--variant``'s is its label, slugged."""
KEYS = ("identity", "dlib", "face_stylization", "style", "bg_fsimc")
BEGIN, END = "<!-- eval/speed.py: begin -->", "<!-- eval/speed.py: end -->"
TITLE = "# Performance\n\n"
README_FIGURE = "readme-portrait.jpg"
"""The README's figure: the first pair's photograph and painting above, the feed-forward
network's picture and the fast default's below."""
TILE = 256
"""Side of a contact-sheet tile: a 2 x 2 sheet is 512 px."""


def run_once(content: Path, style: Path, method: str, overrides: dict, out: Path) -> Path:
    """The result of one run at 512 px, computed unless ``out`` already holds it."""
    if not out.is_file():
        save_result(stylize(content, style, method, size=512, **overrides), out)
    return out


def score(content: Path, style: Path, result: Path) -> dict[str, float | None]:
    """The table's scores of one result."""
    photo, painting, image = (load_image(p).rgb for p in (content, style, result))
    faces = face_scores(photo, image)
    regions = evaluate(photo, image, style=painting)
    return {
        "identity": faces["identity_cosine"],
        "dlib": faces["identity_dlib"],
        "face_stylization": faces["face_stylization"],
        "style": regions["style_distance"] * 1e4 if regions["style_distance"] else None,
        "bg_fsimc": regions["bg_fsimc"],
        "seconds": sum(s["seconds"] for s in json.loads(record_path(result).read_text())["stages"]),
    }


def markdown(rows: dict[tuple[str, int, str], dict], seeds: list[int], sheets: list[str]) -> str:
    """The generated part of docs/performance.md."""
    lines = [
        "| pair | seed | run | identity ↑ | dlib distance ↓ | face stylization | style (x 1e4) ↓ "
        "| background FSIMc | stylizing s |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    deltas: dict[str, dict[str, list[float]]] = {}
    for (pair, seed, label), row in rows.items():
        cells = [fmt(row[key]) for key in KEYS]
        slow = rows.get((pair, seed, REFERENCE))
        if label not in (REFERENCE, FEED_FORWARD) and slow:
            changes = deltas.setdefault(label, {key: [] for key in KEYS})
            for i, key in enumerate(KEYS):
                if row[key] is not None and slow[key] is not None:
                    change = row[key] - slow[key]
                    if key == "style":
                        change = row[key] / slow[key] - 1
                        cells[i] += f" ({change:+.0%})"
                    else:
                        cells[i] += f" ({change:+.3f})"
                    changes[key].append(change)
        lines.append(f"| {pair} | {seed} | {label} | {' | '.join(cells)} | {row['seconds']:.0f} |")
    for label, changes in deltas.items():
        lines += ["", f"{label} minus the slow schedule, mean over the pairs:", ""]
        for key, values in changes.items():
            if values:
                mean = statistics.fmean(values)
                shown = f"{mean:+.0%}" if key == "style" else f"{mean:+.3f}"
                lines.append(f"- {key.replace('_', ' ')}: {shown} (n = {len(values)})")
    lines += [
        "",
        "Contact sheets (public-domain pairs): the photograph and the slow schedule above, "
        "the fast default and the feed-forward network below.",
        "",
    ]
    lines += [f"![{Path(name).stem}](images/{name})" for name in sheets]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = eval_parser(__doc__, "speed")
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--variant",
        nargs=2,
        action="append",
        default=[],
        metavar=("LABEL", "JSON"),
        help="a further row: portrait-painting with these settings over its defaults",
    )
    args = parser.parse_args()
    variants = dict(VARIANTS)
    for label, settings in args.variant:
        variants[label] = ("portrait-painting", json.loads(settings))
    if not shared_data_ready():
        return 1
    args.runs.mkdir(parents=True, exist_ok=True)
    rows: dict[tuple[str, int, str], dict] = {}
    sheets: list[str] = []
    for pair in args.pairs:
        name, painting = pair.split(":")
        content = DATA / "content" / f"{name}.jpg"
        style = DATA / "style" / f"{painting}.jpg"
        for seed in args.seeds:
            images = [load_image(content).rgb]
            for label, (method, overrides) in variants.items():
                tag = TAGS.get(label) or re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
                out = args.runs / f"{name}-{painting}-{tag}-seed{seed}.png"
                run_once(content, style, method, {"seed": seed, **overrides}, out)
                rows[(pair, seed, label)] = score(content, style, out)
                if label in VARIANTS:
                    images.append(load_image(out).rgb)
            if {name, painting} <= PUBLIC_DOMAIN and seed == args.seeds[0]:
                sheet = f"speed-{name}-{painting}.jpg"
                contact_sheet([images[:2], images[2:]], TILE, args.docs / "images" / sheet)
                sheets.append(sheet)
                if pair == PAIRS[0]:  # the README's figure
                    painting_image = load_image(style).rgb
                    tiles = [[images[0], painting_image], [images[3], images[2]]]
                    contact_sheet(tiles, TILE, args.docs / "images" / README_FIGURE)
    write_page(args.docs / "performance.md", TITLE, BEGIN, END, markdown(rows, args.seeds, sheets))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
