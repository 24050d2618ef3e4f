"""The portrait-aware method (Xing et al. 2018): masked Gram, background loss, no-person
content, and a short real run against gatys."""

from __future__ import annotations

import pytest
import torch

from portrait_stylize.api import stylize
from portrait_stylize.features import FeatureExtractor
from portrait_stylize.images import load_image, save_image
from portrait_stylize.losses import (
    ContentTerm,
    MaskedStyleTerm,
    Objective,
    StyleTerm,
    TVTerm,
    masked_gram,
)
from portrait_stylize.methods import build_portrait_aware, resolve_settings
from portrait_stylize.metrics import evaluate

from .conftest import data_file


def test_masked_gram_is_the_gram_of_the_region() -> None:
    torch.manual_seed(0)
    features = torch.randn(1, 5, 6, 8)
    mask = torch.zeros(1, 1, 6, 8)
    mask[..., 1:4, 2:7] = 1
    inside = features[0][:, mask[0, 0].bool()]  # (C, n) features of the region
    by_hand = inside @ inside.T
    region = masked_gram(features, mask, "background")[0]
    torch.testing.assert_close(region, by_hand / inside.shape[1])
    torch.testing.assert_close(masked_gram(features, mask, "full")[0], by_hand / (6 * 8))
    # A mask at twice the feature resolution is area-resized to the same region.
    fine = mask.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    torch.testing.assert_close(masked_gram(features, fine, "background")[0], region)
    with pytest.raises(ValueError, match="masked_gram_norm"):
        masked_gram(features, mask, "person")


def _person_file(tmp_path, size: tuple[int, int]) -> tuple[str, torch.Tensor]:
    """A mask file with a person rectangle (white) and its (H, W) boolean person region."""
    person = torch.zeros(size, dtype=torch.bool)
    person[size[0] // 4 :, size[1] // 4 : 3 * size[1] // 4] = True
    path = tmp_path / "person.png"
    save_image(person.float().expand(3, -1, -1), path)
    return str(path), person


def test_terms_layers_and_weights(tmp_path, tiny_extractor: FeatureExtractor) -> None:
    path, person = _person_file(tmp_path, (64, 48))
    settings = resolve_settings("portrait-aware", {"mask": path})
    content, style = torch.rand(1, 3, 64, 48), torch.rand(1, 3, 40, 40)
    built = build_portrait_aware(settings, tiny_extractor, content, [style])
    by_name = {term.name: term for term in built.terms}
    assert isinstance(by_name["content"], ContentTerm) and by_name["content"].weight == 5
    assert by_name["content"].layers == ("relu4_2",)
    assert type(by_name["style"]) is StyleTerm and by_name["style"].weight == 2e2
    assert by_name["style"].layers == ("relu3_1", "relu4_1", "relu5_1")
    background = by_name["background_style"]
    assert isinstance(background, MaskedStyleTerm) and background.weight == 2e4
    assert background.layers == ("relu1_1", "relu2_1", "relu3_1")
    assert isinstance(by_name["tv"], TVTerm)
    torch.testing.assert_close(built.artifacts["mask"], person[None].float())


def test_background_loss_has_no_gradient_on_the_person(
    tmp_path, tiny_extractor: FeatureExtractor
) -> None:
    path, person = _person_file(tmp_path, (64, 48))
    settings = resolve_settings("portrait-aware", {"mask": path})
    content, style = torch.rand(1, 3, 64, 48), torch.rand(1, 3, 40, 40)
    built = build_portrait_aware(settings, tiny_extractor, content, [style])
    term = next(t for t in built.terms if t.name == "background_style")
    image = torch.rand(1, 3, 64, 48, requires_grad=True)
    loss, _ = Objective(tiny_extractor, [term])(image)
    loss.backward()
    grad = image.grad[0].abs().sum(0)
    assert float(grad[person].max()) == 0.0
    assert float(grad[~person].mean()) > 0.0


def test_no_person_warns_and_runs() -> None:
    """A landscape-like picture without anyone: a warning, an empty foreground, a result."""
    rows = torch.linspace(0, 1, 48).view(48, 1).expand(48, 64)
    content = torch.stack([0.3 * rows, 0.5 + 0.2 * rows, 1 - 0.5 * rows])  # sky to field
    style = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    with pytest.warns(UserWarning, match="no person"):
        result = stylize(content, style, "portrait-aware", size=48, iterations=3)
    assert result.image.shape == (3, 36, 48) and torch.isfinite(result.image).all()
    assert float(result.artifacts["mask"].max()) == 0.0


@pytest.mark.slow
def test_background_stylized_more_and_portrait_kept_as_well_as_gatys() -> None:
    """Real weights, 128 px, 150 L-BFGS steps from the same start, astronaut x Starry Night.

    The background must be clearly more stylized than gatys's (its fine strokes get γ =
    100 β) and the portrait kept nearly as well. The paper's stronger claim, a higher
    portrait SSIM than gatys, does not hold at this budget: measured 0.406 against 0.438
    here, and 0.446 against 0.457 at 256 px (docs/results-paper1.md discusses why).
    """
    content = load_image(data_file("content", "astronaut.jpg")).rgb
    style = load_image(data_file("style", "starry_night.jpg")).rgb
    runs = {
        method: stylize(content, style, method, size=128, iterations=150)
        for method in ("portrait-aware", "gatys")
    }
    mask = runs["portrait-aware"].artifacts["mask"]
    assert 0.3 < float(mask.mean()) < 0.8
    aware, gatys = (evaluate(content, runs[m].image, style, mask) for m in runs)
    assert aware["bg_style_distance"] < 0.8 * gatys["bg_style_distance"], (aware, gatys)
    assert aware["fg_ssim"] > gatys["fg_ssim"] - 0.05, (aware, gatys)
