"""A result's scores from files: what ``portrait-stylize evaluate`` prints and batch
reports tabulate (the measures are :mod:`~portrait_stylize.metrics` and
:mod:`~portrait_stylize.face_metrics`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
    "identity_dlib": "face identity distance, dlib (lower: kept; one person under 0.6)",
    "identity_dlib_same": "faces still the same person by dlib (distance < 0.6)",
    "identity_rank1": "rank-1 identification among the faces (+ --gallery) (1: all kept)",
    "identity_dlib_rank1": "rank-1 identification by dlib distance (1: all kept)",
    "landmark_nme": "face landmark NME (lower: kept)",
    "face_stylization": "face stylization, face/rest 1-SSIM (0: as photo, 1: as rest)",
}
"""Every score and its label, in the order shown."""


def scores(
    content_path: str | Path,
    result_path: str | Path,
    style_path: str | Path | None = None,
    mask_path: str | Path | None = None,
    gallery_paths: Sequence[str | Path] = (),
) -> dict[str, Any]:
    """Every score of :data:`LABELS` (and their per-face values and reasons) of a result,
    rank-1 identification against the content's other faces and those of ``gallery_paths``."""
    from .face_metrics import face_scores, gallery_embeddings  # with PyTorch: not for --help
    from .images import load_image
    from .masks import load_mask_file
    from .metrics import evaluate

    content = load_image(content_path).rgb
    result = load_image(result_path).rgb
    style = load_image(style_path).rgb if style_path else None
    size = (result.shape[-2], result.shape[-1])
    mask = load_mask_file(mask_path, size) if mask_path else None
    others = [load_image(path).rgb for path in gallery_paths]
    gallery, dlib_gallery = gallery_embeddings(others), gallery_embeddings(others, "dlib")
    values: dict[str, Any] = {**evaluate(content, result, style=style, mask=mask)}
    return values | face_scores(content, result, gallery=gallery, dlib_gallery=dlib_gallery)
