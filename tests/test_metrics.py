"""Region metrics against piq, style distances, and the ``evaluate`` subcommand."""

from __future__ import annotations

import json

import piq
import pytest
import torch
import torch.nn.functional as F

from portrait_stylize.cli import main
from portrait_stylize.features import FeatureExtractor
from portrait_stylize.images import save_image
from portrait_stylize.metrics import evaluate, region_box, region_scores, style_distance


def _smooth(seed: int, size: tuple[int, int] = (64, 48)) -> torch.Tensor:
    """A smooth random image (1, 3, H, W) in [0, 1]: upsampled noise."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, size[0] // 8, size[1] // 8, generator=generator)
    return F.interpolate(coarse, size, mode="bicubic", align_corners=False).clamp(0, 1)


def test_full_mask_matches_piq() -> None:
    content, result = _smooth(0), _smooth(1)
    scores = evaluate(content, result, mask=torch.ones(64, 48))
    assert scores["fg_ssim"] == pytest.approx(float(piq.ssim(result, content, data_range=1.0)))
    assert scores["fg_fsimc"] == pytest.approx(float(piq.fsim(result, content, data_range=1.0)))
    assert scores["fg_gmsd"] == pytest.approx(float(piq.gmsd(result, content, data_range=1.0)))
    assert scores["bg_ssim"] is None and scores["bg_gmsd"] is None
    assert scores["style_distance"] is None and scores["bg_style_distance"] is None
    swapped = evaluate(content, result, mask=torch.zeros(1, 64, 48))
    assert swapped["bg_ssim"] == scores["fg_ssim"] and swapped["fg_fsimc"] is None


def test_region_scores_ignore_the_other_region() -> None:
    content = _smooth(2)
    noise = torch.randn(content.shape, generator=torch.Generator().manual_seed(0))
    result = (content + 0.05 * noise).clamp(0, 1)
    region = torch.zeros(64, 48, dtype=torch.bool)
    region[8:40, 10:30] = True
    before = region_scores(content, result, region)
    changed = torch.where(region, result, torch.rand_like(result))
    assert region_scores(content, changed, region) == before
    assert region_scores(content, content, region) == {"ssim": 1.0, "fsimc": 1.0, "gmsd": 0.0}
    spoiled = torch.where(region, (content + 0.3 * noise).clamp(0, 1), result)
    worse = region_scores(content, spoiled, region)
    assert worse["ssim"] < before["ssim"] and worse["gmsd"] > before["gmsd"]


def test_region_box_grows_to_the_minimum_and_stays_inside() -> None:
    region = torch.zeros(100, 60, dtype=torch.bool)
    assert region_box(region) is None
    region[10:12, 50:55] = True
    assert region_box(region, min_side=32) == (slice(0, 32), slice(28, 60))
    region[:, :] = True
    assert region_box(region, min_side=32) == (slice(0, 100), slice(0, 60))


def test_style_distance_and_background(tiny_extractor: FeatureExtractor) -> None:
    style, other = _smooth(4), _smooth(5)
    assert style_distance(style, style, tiny_extractor) == pytest.approx(0.0, abs=1e-12)
    whole = style_distance(other, style, tiny_extractor)
    assert whole > 0
    everywhere = torch.ones(1, 1, 64, 48)
    assert style_distance(other, style, tiny_extractor, everywhere) == pytest.approx(whole)
    assert style_distance(other, style, tiny_extractor, torch.zeros(1, 1, 64, 48)) is None
    # The background's distance ignores what the person region looks like.
    left = torch.zeros(1, 1, 64, 48)
    left[..., :24] = 1
    mixed = torch.where(left.bool(), other, torch.rand_like(other))
    inside = style_distance(mixed, style, tiny_extractor, left)
    assert inside == pytest.approx(style_distance(other, style, tiny_extractor, left), rel=0.05)
    assert style_distance(mixed, style, tiny_extractor) > 2 * whole


def test_evaluate_resizes_the_content_to_the_result(tiny_extractor: FeatureExtractor) -> None:
    content, result = _smooth(6, (128, 96)), _smooth(7)
    mask = torch.zeros(64, 48)
    mask[16:56, 8:40] = 1
    scores = evaluate(content, result, style=_smooth(8), mask=mask, extractor=tiny_extractor)
    small = F.interpolate(content, (64, 48), mode="bicubic", antialias=True).clamp(0, 1)
    assert scores == evaluate(small, result, style=_smooth(8), mask=mask, extractor=tiny_extractor)
    assert all(value is not None for value in scores.values())


def test_evaluate_command(tmp_path, capsys) -> None:
    content, result, mask = tmp_path / "c.png", tmp_path / "r.png", tmp_path / "m.png"
    save_image(_smooth(9)[0], content)
    save_image(_smooth(10)[0], result)
    person = torch.zeros(3, 64, 48)
    person[:, 20:64, 12:36] = 1
    save_image(person, mask)
    assert main(["evaluate", str(content), str(result), "--mask", str(mask), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert set(scores) == {
        "fg_ssim",
        "fg_fsimc",
        "fg_gmsd",
        "bg_ssim",
        "bg_fsimc",
        "bg_gmsd",
        "style_distance",
        "bg_style_distance",
        "identity_cosine",
        "identity_cosine_per_face",
        "identity_rank1",
        "identity_rank1_per_face",
        "identity_rank1_reason",
        "identity_dlib",
        "identity_dlib_per_face",
        "identity_dlib_reason",
        "identity_dlib_same",
        "identity_dlib_same_per_face",
        "identity_dlib_same_reason",
        "identity_dlib_rank1",
        "identity_dlib_rank1_per_face",
        "identity_dlib_rank1_reason",
        "landmark_nme",
        "face_stylization",
        "face_stylization_per_face",
        "face_stylization_reason",
    }
    assert 0 < scores["fg_ssim"] < 1 and scores["style_distance"] is None
    assert scores["face_stylization_reason"] == "no face found in the content"
    assert scores["identity_rank1_reason"] == "no face found in the content"
    assert main(["evaluate", str(content), str(result), "--mask", str(mask)]) == 0
    assert "portrait SSIM" in capsys.readouterr().out
