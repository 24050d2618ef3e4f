"""The page in headless Chromium (Debian's, driven by Playwright): the knobs of each
method, upload a photo and see the faces and person found, pick a bundled painting and
see an instant preview, start, see progress and a preview, download the result, find it
in the history. Screenshots of each step go to ``out/tests/web-browser/``."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from portrait_stylize.methods import METHODS

from .web_server import PHOTO, ROOT, Server

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",  # as root
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
SHOTS = ROOT / "out" / "tests" / "web-browser"
SIZE = int(os.environ.get("PORTRAIT_STYLIZE_BROWSER_SIZE", "96"))
"""The result's size (the README's screenshot is this test's at 96)."""
RUN_S = 600_000
"""Milliseconds a tiny portrait-stylization run may take on a busy 2-core CPU."""
LOOK_MS = 120_000
"""Milliseconds the faces found or the instant preview may take (the networks' first
load included) on a busy CPU."""

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(), reason="Chromium is not installed (apt-get install chromium)"
)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[tuple[object, Server]]:
    server = Server(tmp_path / "data").start()
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
            context = browser.new_context(
                viewport={"width": 1000, "height": 900}, accept_downloads=True
            )
            yield context.new_page(), server
            browser.close()
    finally:
        server.stop()


def _knobs_follow_the_method(tab: object) -> None:
    """Only the knobs the chosen method reads are shown (style strength: instant's)."""
    expect = sync_api.expect
    expect(tab.locator("#identity")).to_be_visible()
    expect(tab.locator("#style_weight")).to_be_visible()
    expect(tab.locator("#style_strength")).to_be_hidden()
    tab.select_option("#method", "instant")
    expect(tab.locator("#style_strength")).to_be_visible()
    expect(tab.locator("#style_weight")).to_be_hidden()
    expect(tab.locator("#identity")).to_be_hidden()
    expect(tab.locator("[data-field=iterations]")).to_be_hidden()
    tab.select_option("#method", "gatys")
    expect(tab.locator("#style_strength")).to_be_hidden()
    tab.click("#advanced summary")
    tab.select_option("[data-field=init]", "instant")  # gatys from the instant result
    expect(tab.locator("#style_strength")).to_be_visible()
    tab.select_option("[data-field=init]", "")
    tab.click("#advanced summary")
    tab.select_option("#method", "portrait-painting")  # its notes under the menu
    expect(tab.locator("#method-notes li")).to_have_count(len(METHODS["portrait-painting"].notes))
    expect(tab.locator("#method-notes")).to_contain_text("--content-weight 0.06")
    tab.select_option("#method", "portrait-stylization")
    expect(tab.locator("#style_strength")).to_be_hidden()


def test_paint_watch_download_history(page: tuple[object, Server]) -> None:
    tab, server = page
    expect = sync_api.expect
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.goto(server.url)
    expect(tab.locator("#method")).to_have_value("portrait-stylization")
    expect(tab.locator("#example-painting option")).to_have_count(4)
    _knobs_follow_the_method(tab)

    tab.set_input_files("#photo-file", PHOTO)  # the faces and person found, at once
    summary = re.compile(r"^1 face found, person covers \d+ % of the picture$")
    expect(tab.locator("#inspect-summary")).to_have_text(summary, timeout=LOOK_MS)
    expect(tab.locator("#inspect-overlay")).to_be_visible()
    tab.wait_for_function("document.getElementById('inspect-overlay').naturalWidth === 512")
    expect(tab.locator("#instant")).to_be_hidden()  # no painting yet
    tab.select_option("#example-painting", "starry_night.jpg")
    expect(tab.locator("#painting-thumbs img")).to_have_count(1)
    expect(tab.locator("#instant-preview")).to_be_visible(timeout=LOOK_MS)
    tab.wait_for_function("document.getElementById('instant-preview').naturalWidth === 256")
    expect(tab.locator("#instant-caption")).to_contain_text("instant preview")
    expect(tab.locator("#job")).to_be_hidden()  # all before Start
    tab.locator("#new").screenshot(path=SHOTS / "0-before-start.png")
    tab.fill("#size", str(SIZE))
    tab.click("#advanced summary")
    schedule = {"min_size": SIZE // 2, "initial_iterations": 10, "iterations": 15}  # 3 scales
    for name, value in schedule.items():
        tab.fill(f"[data-field={name}]", str(value))
    tab.screenshot(path=SHOTS / "1-form.png", full_page=True)
    tab.click("#advanced summary")  # folded again: the job and history come into view

    tab.click("#start")
    expect(tab.locator("#status")).to_contain_text("scale", timeout=RUN_S)
    tab.screenshot(path=SHOTS / "2-progress.png", full_page=True)
    tab.wait_for_function("document.getElementById('preview').naturalWidth > 0", timeout=RUN_S)
    tab.locator("#job").screenshot(path=SHOTS / "3-preview.png")
    expect(tab.locator("#status")).to_have_text("done", timeout=RUN_S)
    expect(tab.locator("#downloads")).to_be_visible()
    tab.wait_for_function("document.getElementById('preview').src.endsWith('/preview')")
    tab.wait_for_function("document.getElementById('preview').complete")
    tab.screenshot(path=SHOTS / "4-done.png", full_page=True)

    with tab.expect_download() as download:
        tab.click("#download-png")
    saved = SHOTS / "result.png"
    download.value.save_as(saved)
    assert max(Image.open(saved).size) == SIZE
    job = tab.locator("#job-id").inner_text()
    assert download.value.suggested_filename == f"portrait-{job}.png"
    entry = tab.locator(f"#history li[data-id='{job}']")
    expect(entry).to_have_attribute("data-status", "done")
    expect(entry).to_contain_text("portrait-stylization")
    tab.locator("#history-section").screenshot(path=SHOTS / "5-history.png")
