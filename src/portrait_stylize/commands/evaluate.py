"""``portrait-stylize evaluate CONTENT RESULT``: portrait kept and stylization, per region."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..evaluation import LABELS, scores


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Compare a result with its content over the portrait and the background (SSIM, "
        "FSIMc, GMSD) and on the content's faces (identity cosine of FaceNet MS-Celeb, "
        "identity distance of dlib's descriptor, a network in no loss, landmark NME, face "
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
