"""Every awkward file a phone, a camera or a web form produces (written by
``tests/hostile.py``): the loader reads each upright at its size, or refuses it with one
line naming the file and the reason; the CLI exits 2 with that line, no traceback and no
output; a readable odd image gives a result of the right size and orientation."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from portrait_stylize import stylize
from portrait_stylize.cli import main, one_line
from portrait_stylize.errors import InputError
from portrait_stylize.images import load_image

from .hostile import (
    CASES,
    EXAMPLES,
    HEIGHT,
    RGB,
    WIDTH,
    encode,
    heif,
    photo,
    tiff,
    with_exif,
    write_corpus,
)

TOLERANCE = 0.1
"""How far a loaded colour may be from the expected one (JPEG's chroma subsampling)."""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def _colour_at(rgb: torch.Tensor, row: int, column: int) -> RGB:
    height, width = rgb.shape[-2:]
    red, green, blue = rgb[:, min(row, height - 1), min(column, width - 1)].tolist()
    return red, green, blue


@pytest.mark.parametrize("name", list(CASES))
def test_loader(corpus: dict[str, Path], name: str) -> None:
    case = CASES[name]
    if case.needs_non_root and os.geteuid() == 0:
        pytest.skip("root reads a file of mode 000: nothing to refuse")
    path = corpus[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would reach standard error
        if case.size is None:
            with pytest.raises(InputError) as caught:
                load_image(path)
            message = str(caught.value)
            assert message.startswith(f"{path}: ") and "\n" not in message
            assert re.search(case.reason, message.removeprefix(f"{path}: ")), message
            return
        image = load_image(path)
    assert image.size == case.size
    if case.warning:
        assert any(re.search(case.warning, w) for w in image.info["warnings"]), image.info
    rgb = image.rgb
    assert torch.isfinite(rgb).all() and rgb.min() >= 0 and rgb.max() <= 1
    for expected, (row, column) in ((case.corner, (2, 2)), (case.centre, (16, 24))):
        if expected is not None:
            got = _colour_at(rgb, row, column)
            assert max(abs(a - b) for a, b in zip(got, expected, strict=True)) < TOLERANCE, got


DAMAGEABLE = {
    "jpg": lambda: encode(photo(), "JPEG", quality=90),
    "png": lambda: encode(photo(), "PNG"),
    "webp": lambda: encode(photo(), "WEBP"),
    "tif": lambda: encode(photo(), "TIFF"),
    "deflate.tif": lambda: encode(photo(), "TIFF", compression="tiff_deflate"),
    "16-bit.tif": lambda: tiff(np.asarray(photo(), np.uint16) * 257, photometric="rgb"),
    "float.tif": lambda: tiff(np.asarray(photo(), np.float32) / 255, photometric="rgb"),
    "heic": lambda: heif(photo(), quality=90),
    "avif": lambda: encode(photo(), "AVIF", quality=90),
    "bmp": lambda: encode(photo(), "BMP"),
    "gif": lambda: encode(photo(), "GIF"),
}
"""Good files of each kind the loader reads (and each way it reads TIFF), to damage."""


@EXAMPLES
@given(
    kind=st.sampled_from(list(DAMAGEABLE)),
    damage=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8
    ),
)
def test_damaged_files_load_or_are_refused(
    tmp_path_factory: pytest.TempPathFactory, kind: str, damage: list[tuple[float, int]]
) -> None:
    """A few bytes of a good file overwritten: an image, or one line naming the file."""
    data = bytearray(DAMAGEABLE[kind]())
    for where, byte in damage:
        data[int(where * len(data))] = byte
    path = tmp_path_factory.mktemp("damaged") / f"damaged.{kind}"
    path.write_bytes(bytes(data))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            image = load_image(path)
        except InputError as error:
            assert str(error).startswith(f"{path}: ") and "\n" not in str(error)
            return
    assert min(image.size) > 0 and torch.isfinite(image.rgb).all()
    assert image.rgb.min() >= 0 and image.rgb.max() <= 1


REFUSED = [name for name, case in CASES.items() if case.size is None]


@pytest.mark.parametrize("name", REFUSED)
def test_cli_refuses_each_unreadable_file(
    corpus: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture, name: str
) -> None:
    """In-process (fast): exit 2, one line naming the file and the reason, no output."""
    if CASES[name].needs_non_root and os.geteuid() == 0:
        pytest.skip("root reads a file of mode 000: nothing to refuse")
    style = tmp_path / "style.png"
    style.write_bytes(encode(photo(), "PNG"))
    out = tmp_path / "out.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main([str(corpus[name]), str(style), "-o", str(out), "--size", "32"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("portrait-stylize: error: ")
    assert f"{one_line(str(corpus[name]))}: " in err and re.search(CASES[name].reason, err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["style.png"]


CLI_SAMPLE = [
    "jpg cut: half",
    "heic cut: half",
    "non-UTF-8 name, not an image",
    "304-byte name",
    "png claiming 10000 x 10000 (Pillow warns)",
]
"""Cases also run through the real command, as the content (the style is a good image):
what only a separate process shows (bytes of a name, what reaches standard error)."""


def _cli(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "portrait_stylize.cli", *map(os.fsencode, args)]
    return subprocess.run(command, capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def cli_runs(
    corpus: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[subprocess.CompletedProcess[bytes], Path, Path]]:
    """Each CLI sample case run at once (a few at a time: each process imports PyTorch):
    (the run, its content, its output path)."""
    folder = tmp_path_factory.mktemp("cli")
    style = folder / "style.png"
    style.write_bytes(encode(photo(), "PNG"))
    named = folder / "line\nbreak \x1b[31mred.png"  # a newline and a terminal escape
    named.write_bytes(b"not an image")
    contents = {name: corpus[name] for name in CLI_SAMPLE} | {"control characters": named}

    def run(index: int, name: str) -> tuple[subprocess.CompletedProcess[bytes], Path, Path]:
        out = folder / f"out{index}.png"
        return _cli(contents[name], style, "-o", out, "--size", "32"), contents[name], out

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(contents, pool.map(run, range(len(contents)), contents), strict=True))


@pytest.mark.parametrize("name", [*CLI_SAMPLE, "control characters"])
def test_cli_refuses_with_one_line(cli_runs, name: str) -> None:
    run, content, out = cli_runs[name]
    err = run.stderr.decode("utf-8", "backslashreplace")
    assert run.returncode == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    shown = one_line(str(content))
    assert err.startswith(f"portrait-stylize: error: {shown}: "), (shown, err)
    if name in CASES:
        assert re.search(CASES[name].reason, err), err
    assert "\x1b" not in err
    assert not out.exists() and not list(out.parent.glob(f"{out.name}*"))
    assert not list(out.parent.glob(".*.part"))


def test_output_never_replaces_an_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    content = tmp_path / "photo.png"
    content.write_bytes(encode(photo(), "PNG"))
    before = content.read_bytes()
    long_output = tmp_path / ("r" * 250 + ".png")  # OUT.ckpt.pt would not fit
    cases = {
        str(content): "is also an input",
        str(tmp_path): "output must end in",
        str(tmp_path / "folder.png"): "a folder, not a file name",
        str(long_output): r"name too long \(254 bytes; this folder takes 255, 8 fewer",
        str(tmp_path / ("r" * 300 + ".png")): r"cannot be written \(file name too long\)",
    }
    (tmp_path / "folder.png").mkdir()
    for output, reason in cases.items():
        assert main([str(content), str(content), "-o", output]) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and re.search(reason, err), err
    assert content.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.png", "photo.png"]


def test_cli_stylizes_a_rotated_photo_upright(tmp_path: Path) -> None:
    """EXIF orientation 5 (transposed) as the content, a palette PNG with transparency as
    the style: the result is upright, and the feed-forward method paints it as it paints
    the upright photo."""
    content = tmp_path / "phone.jpg"
    content.write_bytes(with_exif(photo(), "JPEG", 5, quality=95))
    assert Image.open(content).size == (HEIGHT, WIDTH)  # stored on its side
    style = tmp_path / "style.png"
    style.write_bytes(encode(photo().convert("P"), "PNG", transparency=0))
    out = tmp_path / "result.png"
    run = _cli(content, style, "-o", out, "--method", "instant", "--size", "32", "-q")
    assert run.returncode == 0, run.stderr.decode()
    result = load_image(out).rgb
    assert result.shape == (3, 21, 32)  # 48 x 32 upright, at 32 on its long side
    expected = stylize(photo(), style, "instant", size=32).image
    difference = (result - expected).abs().mean()
    mirrored = (result - expected.flip(-1)).abs().mean()
    flipped = (result - expected.flip(-2)).abs().mean()
    assert difference < 0.05 and difference < min(mirrored, flipped) / 2, (
        difference,
        mirrored,
        flipped,
    )
    assert (tmp_path / "result.png.json").is_file() and not list(tmp_path.glob(".*.part"))
