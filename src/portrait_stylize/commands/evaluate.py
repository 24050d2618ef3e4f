"""``portrait-stylize evaluate CONTENT RESULT``: portrait kept and stylization, per region."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..face_metrics import face_scores, gallery_embeddings
from ..images import load_image
from ..masks import load_mask_file
from ..metrics import evaluate

LABELS = {
    "fg_ssim": "portrait SSIM (higher: kept)",
    "fg_fsimc": "portrait FSIMc (higher: kept)",
    "fg_gmsd": "portrait GMSD (lower: kept)",
    "bg_ssim": "background SSIM",
    "bg_fsimc": "background FSIMc",
    "bg_gmsd": "background GMSD",
    "style_distance": "style distance, whole (lower: more stylized)",
    "bg_style_distance": "style distance, background",
    "identity_cosine": "face identity cosine, facenet-msceleb (higher: kept)",
    "identity_rank1": "rank-1 identification among the faces (+ --gallery) (1: all kept)",
    "landmark_nme": "face landmark NME (lower: kept)",
    "face_stylization": "face stylization, face/rest 1-SSIM (0: as photo, 1: as rest)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Compare a result with its content over the portrait and the background (SSIM, "
        "FSIMc, GMSD) and on the content's faces (identity cosine, landmark NME, face "
        "stylization: the faces' 1 - SSIM over that of the rest of the image; rank-1 "
        "identification: each face still nearest its own among the others) and, with "
        "--style, measure its Gram distance to the style image."
    )
    parser.add_argument("content", help="the photograph that was stylized")
    parser.add_argument("result", help="the stylized image")
    parser.add_argument("--style", help="style image: also report style distances")
    parser.add_argument(
        "--mask", metavar="FILE", help="person mask (white = person); default: segment CONTENT"
    )
    parser.add_argument(
        "--gallery",
        nargs="+",
        default=[],
        metavar="IMAGE",
        help="photos of other people: rank-1 identification also counts a face mistaken "
        "for one of theirs",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def scores(
    content_path: str | Path,
    result_path: str | Path,
    style_path: str | Path | None = None,
    mask_path: str | Path | None = None,
    gallery_paths: Sequence[str | Path] = (),
) -> dict[str, Any]:
    """Every score of :data:`LABELS` (and their per-face values and reasons) of a result,
    rank-1 identification against the content's other faces and those of ``gallery_paths``."""
    content = load_image(content_path).rgb
    result = load_image(result_path).rgb
    style = load_image(style_path).rgb if style_path else None
    size = (result.shape[-2], result.shape[-1])
    mask = load_mask_file(mask_path, size) if mask_path else None
    gallery = gallery_embeddings([load_image(path).rgb for path in gallery_paths])
    values: dict[str, Any] = {**evaluate(content, result, style=style, mask=mask)}
    return values | face_scores(content, result, gallery=gallery)


def run(args: argparse.Namespace) -> int:
    values = scores(args.content, args.result, args.style, args.mask, args.gallery)
    if args.json:
        print(json.dumps(values, indent=2))
        return 0
    width = max(len(label) for label in LABELS.values())
    for key, label in LABELS.items():
        print(f"{label:<{width}}  {_shown(values, key)}")
    return 0


def _shown(scores: dict[str, Any], key: str) -> str:
    """A table cell: the value to 4 digits, followed by the values per face when there are
    several; "-" when None, followed by the reason when the scores give one."""
    value = scores[key]
    if value is None:
        reason = scores.get(f"{key}_reason")
        return f"- ({reason})" if reason else "-"
    per_face = scores.get(f"{key}_per_face", [])
    if len(per_face) < 2:
        return f"{value:.4g}"
    return f"{value:.4g} (per face: {', '.join(f'{v:.4g}' for v in per_face)})"
