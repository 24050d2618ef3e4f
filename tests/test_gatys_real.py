"""Real runs of the gatys presets with the offline weights on the example images."""

from __future__ import annotations

import pytest

from portrait_stylize import stylize
from portrait_stylize.callbacks import Recorder

from .conftest import data_file


@pytest.mark.slow
def test_gatys_lowers_style_tenfold_with_content_bounded() -> None:
    content = data_file("content", "astronaut.jpg")
    style = data_file("style", "starry_night.jpg")
    recorder = Recorder()
    result = stylize(  # from the papers' start: content must fall as well
        content, style, "gatys", size=128, iterations=200, init="mean", callbacks=[recorder]
    )
    first, last = recorder.steps[0][3], recorder.steps[-1][3]
    assert result.stopped is None
    assert last["style"] <= first["style"] / 10, (first, last)
    assert last["content"] <= first["content"], (first, last)
    assert result.image.shape == (3, 128, 128)
