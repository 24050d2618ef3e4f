"""The page in headless Chromium (Debian's, driven by Playwright), at a desktop width
(1280 px) and a phone's (390 px, by touch): the knobs of each method, the methods in
plain words, upload a photo and see the faces and person found, pick a bundled painting
and see an instant preview, see how long it will take beside Start (the server's worker
measured this machine first: the server runs on an empty machine cache), start, see
progress, a preview and the estimate, compare the result with the photograph, download
it, find it in the history. Screenshots of each step go to ``out/tests/web-browser/``,
with the two of the docs (``web-page-desktop.png``, ``web-page-phone.png``, at most 512
px on their long side)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from portrait_stylize.methods import METHODS
from portrait_stylize.weights import cache_root

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
SIZE = int(os.environ.get("PORTRAIT_STYLIZE_BROWSER_SIZE", "128"))
"""The desktop run's result size (the default method, one short scale)."""
DOCS_SIDE = 512
"""The long side of the docs' screenshots."""
RUN_S = 300_000
"""Milliseconds a tiny run may take on a busy 2-core CPU."""
LOOK_MS = 120_000
"""Milliseconds the faces found or the instant preview may take (the networks' first
load included) on a busy CPU."""
MEASURE_MS = 300_000
"""Milliseconds the worker may take to measure the machine when it starts."""
ESTIMATE = re.compile(r"^about (a|\d+(\.\d)?) (second|seconds|minute|min|hours) on this computer")
PLAIN_TEXT = """() => {
  const page = document.body.cloneNode(true);
  page.querySelector("#advanced").remove();
  return page.textContent;
}"""
"""The page's text outside the advanced settings."""
SHOW_START_AND_JOB = "document.querySelector('.start-row').scrollIntoView({block: 'start'})"
"""The docs' screenshots: Start with its estimate, then the job's result below."""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.is_file(), reason="Chromium is not installed (apt-get install chromium)"
    ),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for both widths, on a cache with the weights but no measurement of
    this machine: its worker measures it when it starts."""
    root = tmp_path_factory.mktemp("browser")
    home = root / "home"
    home.mkdir()
    for entry in cache_root().iterdir():
        if entry.name != "machine":
            (home / entry.name).symlink_to(entry)
    running = Server(root / "data", env={"PORTRAIT_STYLIZE_HOME": str(home)}).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield chromium
        chromium.close()


def _tab(browser: Any, width: int, height: int, phone: bool = False) -> Any:
    context = browser.new_context(
        viewport={"width": width, "height": height},
        accept_downloads=True,
        has_touch=phone,
        is_mobile=phone,
    )
    return context.new_page()


def _docs_shot(tab: Any, name: str) -> None:
    """The viewport as it is, and scaled to at most :data:`DOCS_SIDE` px for the docs."""
    full = SHOTS / f"{name}-full.png"
    tab.screenshot(path=full)
    image = Image.open(full).convert("RGB")
    image.thumbnail((DOCS_SIDE, DOCS_SIDE), Image.Resampling.LANCZOS)
    image.save(SHOTS / f"{name}.png", optimize=True)


def _knobs_follow_the_method(tab: Any) -> None:
    """Only the knobs the chosen method reads are shown (style strength: instant's); the
    method's technical notes are under Advanced settings, its plain words above."""
    expect = sync_api.expect
    expect(tab.locator("#identity")).to_be_visible()
    expect(tab.locator("#style_weight")).to_be_visible()
    expect(tab.locator("#style_strength")).to_be_hidden()
    tab.select_option("#method", "instant")
    expect(tab.locator("#style_strength")).to_be_visible()
    expect(tab.locator("#style_weight")).to_be_hidden()
    expect(tab.locator("#identity")).to_be_hidden()
    expect(tab.locator("[data-field=iterations]")).to_be_hidden()
    expect(tab.locator("#method-help")).to_contain_text("Instant preview: a painted look")
    tab.select_option("#method", "gatys")
    expect(tab.locator("#style_strength")).to_be_hidden()
    tab.click("#advanced summary")
    tab.select_option("[data-field=init]", "instant")  # gatys from the instant result
    expect(tab.locator("#style_strength")).to_be_visible()
    tab.select_option("[data-field=init]", "")
    tab.click("#advanced summary")
    tab.select_option("#method", "portrait-painting")  # its notes under Advanced settings
    notes = tab.locator("#advanced #method-notes li")
    expect(notes).to_have_count(len(METHODS["portrait-painting"].notes))
    expect(tab.locator("#method-notes")).to_contain_text("--group-content-weight 0.06")
    expect(tab.locator("#method-notes")).to_be_hidden()  # folded
    tab.select_option("#method", "portrait-stylization")
    expect(tab.locator("#style_strength")).to_be_hidden()
    tab.select_option("#method", "portrait-painting")


def _no_flags(tab: Any) -> None:
    """No CLI option names in the page's text (only under Advanced settings)."""
    text = tab.evaluate(PLAIN_TEXT)
    assert "--" not in text, text
    for option in tab.locator("#method option").all_inner_texts():
        assert "--" not in option, option


def _split(tab: Any) -> float:
    value = tab.eval_on_selector("#compare-view", "v => v.style.getPropertyValue('--split')")
    return float(value.rstrip("%"))


def test_desktop_paint_watch_compare_download_history(server: Server, browser: Any) -> None:
    tab = _tab(browser, 1280, 900)
    expect = sync_api.expect
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.goto(server.url)
    expect(tab.locator("#method")).to_have_value("portrait-painting")
    expect(tab.locator("#method option:checked")).to_have_text(
        re.compile(r"^Painted portrait \(recommended\)")
    )
    expect(tab.locator("#example-painting option")).to_have_count(4)
    _knobs_follow_the_method(tab)

    # the worker measured this machine once before any job: the estimate beside Start
    expect(tab.locator("#estimate")).to_have_text(ESTIMATE, timeout=MEASURE_MS)
    assert "once, for the estimates" in server.log.read_text()
    plain = re.compile(
        r"^Painted portrait \(recommended\): the whole picture painted like the artwork, "
        r"each person kept recognisable — about .+ on this computer\.$"
    )
    expect(tab.locator("#method-help")).to_have_text(plain)
    expect(tab.locator("#method option[value=gatys]")).to_contain_text("Paper 1")
    expect(tab.locator("#method option[value=gatys]")).to_contain_text("· about")
    _no_flags(tab)

    tab.set_input_files("#photo-file", PHOTO)  # the faces and person found, at once
    summary = re.compile(r"^1 face found, person covers \d+ % of the picture$")
    expect(tab.locator("#inspect-summary")).to_have_text(summary, timeout=LOOK_MS)
    expect(tab.locator("#inspect-overlay")).to_be_visible()
    tab.wait_for_function("document.getElementById('inspect-overlay').naturalWidth === 512")
    expect(tab.locator("#estimate")).to_have_text(ESTIMATE)  # for this photo's size
    expect(tab.locator("#estimate")).not_to_contain_text("for a photo of one person")
    expect(tab.locator("#instant")).to_be_hidden()  # no painting yet
    tab.select_option("#example-painting", "starry_night.jpg")
    expect(tab.locator("#painting-thumbs img")).to_have_count(1)
    expect(tab.locator("#instant-preview")).to_be_visible(timeout=LOOK_MS)
    tab.wait_for_function("document.getElementById('instant-preview').naturalWidth === 256")
    expect(tab.locator("#instant-caption")).to_contain_text("instant preview")
    expect(tab.locator("#job")).to_be_hidden()  # all before Start
    tab.locator("#new").screenshot(path=SHOTS / "0-before-start.png")

    before = tab.locator("#estimate").inner_text()  # a small run: the estimate follows
    expect(tab.locator("#method")).to_have_value("portrait-painting")  # the default
    tab.fill("#size", str(SIZE))
    tab.click("#advanced summary")
    tab.fill("[data-field=iterations]", "60")  # one scale at 128 px
    expect(tab.locator("#estimate")).not_to_have_text(before)
    expect(tab.locator("#estimate")).to_have_text(ESTIMATE)
    tab.screenshot(path=SHOTS / "1-form.png", full_page=True)
    tab.click("#advanced summary")  # folded again: the job and history come into view
    _no_flags(tab)

    tab.click("#start")
    expect(tab.locator("#status")).to_contain_text("scale", timeout=RUN_S)
    expect(tab.locator("#job-estimate")).to_have_text(
        re.compile(r"^Painting will take about .+ on this computer\.$")
    )
    tab.screenshot(path=SHOTS / "2-progress.png", full_page=True)
    expect(tab.locator("#status")).to_have_text("done", timeout=RUN_S)
    expect(tab.locator("#downloads")).to_be_visible()
    expect(tab.locator("#preview-figure")).to_be_hidden()
    expect(tab.locator("#job-estimate")).to_contain_text("Estimated beforehand: about")

    # before/after: the painting over the photograph, dragged apart with the mouse
    view = tab.locator("#compare-view")
    expect(view).to_be_visible()
    tab.wait_for_function(
        "['compare-after', 'compare-photo'].every(id => document.getElementById(id).complete"
        " && document.getElementById(id).naturalWidth > 0)"
    )
    view.scroll_into_view_if_needed()
    box = view.bounding_box()
    assert box["width"] >= 500  # large enough to see the face, not a thumbnail
    assert _split(tab) == 50
    tab.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    tab.mouse.down()
    tab.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] / 2, steps=5)
    tab.mouse.up()
    assert _split(tab) == pytest.approx(80, abs=1.5)
    expect(tab.locator("#compare-slider")).to_have_value("80")
    tab.locator("#compare-zoom").click()  # the face the quick look found, enlarged
    expect(view).to_have_attribute("data-zoom", "face")
    tab.wait_for_timeout(400)  # the zoom's transition
    tab.locator("#job").screenshot(path=SHOTS / "3-compare-face.png")
    tab.locator("#compare-zoom").click()
    expect(view).to_have_attribute("data-zoom", "")
    tab.wait_for_timeout(400)
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
    expect(entry).to_contain_text("Painted portrait")
    tab.locator("#history-section").screenshot(path=SHOTS / "5-history.png")
    _no_flags(tab)
    tab.fill("#compare-slider", "50")
    tab.evaluate(SHOW_START_AND_JOB)
    _docs_shot(tab, "web-page-desktop")
    tab.context.close()


def test_phone_instant_by_touch(server: Server, browser: Any) -> None:
    tab = _tab(browser, 390, 844, phone=True)
    expect = sync_api.expect
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.goto(server.url)
    expect(tab.locator("#method")).to_have_value("portrait-painting")
    tab.select_option("#example-photo", PHOTO.name)
    expect(tab.locator("#inspect-summary")).to_contain_text("1 face found", timeout=LOOK_MS)
    tab.select_option("#example-painting", "starry_night.jpg")
    expect(tab.locator("#instant-preview")).to_be_visible(timeout=LOOK_MS)
    tab.select_option("#method", "instant")
    expect(tab.locator("#estimate")).to_have_text("about a second on this computer")
    expect(tab.locator("#method-help")).to_contain_text("about a second on this computer")
    tab.fill("#size", "256")
    _no_flags(tab)
    width = tab.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing wider than the phone
    tab.screenshot(path=SHOTS / "phone-0-form.png", full_page=True)

    tab.locator("#start").tap()
    expect(tab.locator("#status")).to_have_text("done", timeout=RUN_S)
    view = tab.locator("#compare-view")
    expect(view).to_be_visible()
    tab.wait_for_function("document.getElementById('compare-after').naturalWidth === 256")
    view.scroll_into_view_if_needed()
    box = view.bounding_box()
    assert box["width"] >= 300 and box["x"] >= 0 and box["x"] + box["width"] <= 390
    for fraction in (0.2, 0.85):  # a finger on the picture moves the divide there
        tab.touchscreen.tap(box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2)
        assert _split(tab) == pytest.approx(fraction * 100, abs=1.5)
    tab.locator("#compare-zoom").tap()  # the quick look's face
    expect(view).to_have_attribute("data-zoom", "face")
    tab.locator("#compare-zoom").tap()
    tab.touchscreen.tap(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    expect(tab.locator("#downloads")).to_be_visible()
    expect(tab.locator("#download-png")).to_have_attribute("href", re.compile("/result$"))
    tab.wait_for_timeout(400)
    tab.screenshot(path=SHOTS / "phone-1-done.png", full_page=True)
    tab.fill("#compare-slider", "50")
    tab.evaluate(SHOW_START_AND_JOB)
    _docs_shot(tab, "web-page-phone")
    tab.context.close()
