"""Image input and output: every awkward kind of file, clear errors, atomic saves."""

from __future__ import annotations

import io
import json
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image, ImageCms

from portrait_stylize.errors import InputError
from portrait_stylize.images import (
    INPUT_SUFFIXES,
    check_output_path,
    load_image,
    record_path,
    resize_long_side,
    save_image,
    save_record,
)

from .hostile import heif


def _gradient(h: int = 12, w: int = 16) -> np.ndarray:
    """(h, w, 3) uint8 with distinct rows, columns and channels."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 15, y * 20, (x + y) * 5], axis=2).astype(np.uint8)


def test_rgb_jpeg_png_webp_tiff(tmp_path) -> None:
    array = _gradient()
    for ext in ("png", "webp", "tiff"):
        path = tmp_path / f"a.{ext}"
        Image.fromarray(array).save(path, lossless=True) if ext == "webp" else Image.fromarray(
            array
        ).save(path)
        image = load_image(path)
        assert image.rgb.shape == (3, 12, 16) and image.size == (16, 12)
        np.testing.assert_allclose(image.rgb.permute(1, 2, 0).numpy(), array / 255, atol=1e-6)
    Image.fromarray(array).save(tmp_path / "a.jpg", quality=95)
    assert load_image(tmp_path / "a.jpg").info["format"] == "JPEG"


def _saved(array: np.ndarray, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **params)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "fmt", "write", "tolerance"),
    [
        ("a.heic", "HEIF", lambda a: heif(Image.fromarray(a), quality=-1, chroma=444), 1.5),
        ("a.avif", "AVIF", lambda a: _saved(a, "AVIF", quality=100, subsampling="4:4:4"), 3),
        ("a.bmp", "BMP", lambda a: _saved(a, "BMP"), 0),
        ("a.gif", "GIF", lambda a: _saved(a, "GIF"), 0),  # 192 colours: the palette holds all
    ],
)
def test_heic_avif_bmp_gif(tmp_path, name, fmt, write, tolerance) -> None:
    array = _gradient()
    (tmp_path / name).write_bytes(write(array))
    image = load_image(tmp_path / name)
    assert image.info["format"] == fmt and image.size == (16, 12) and image.alpha is None
    assert image.info["warnings"] == []
    np.testing.assert_allclose(
        image.rgb.permute(1, 2, 0).numpy(), array / 255, atol=(tolerance + 0.01) / 255
    )
    assert Path(name).suffix in INPUT_SUFFIXES


def test_animated_gif_reads_its_first_frame_and_says_so(tmp_path) -> None:
    first = _gradient()
    second = 255 - first  # every pixel differs
    frames = [Image.fromarray(first), Image.fromarray(second)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=80)
    with Image.open(tmp_path / "anim.gif") as check:
        assert check.n_frames == 2  # Pillow kept both frames
    image = load_image(tmp_path / "anim.gif")
    np.testing.assert_array_equal(
        np.round(image.rgb.permute(1, 2, 0).numpy() * 255).astype(np.uint8), first
    )
    assert image.info["warnings"] == ["an animation of 2 frames; its first frame was read"]


def test_heic_orientation_alpha_and_icc(tmp_path) -> None:
    array = np.zeros((10, 20, 3), np.uint8)
    array[:3, :3] = 255  # mark the top-left corner of the stored image
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs 90° clockwise
    data = heif(Image.fromarray(array), quality=-1, chroma=444, exif=exif.tobytes())
    (tmp_path / "r.heic").write_bytes(data)
    image = load_image(tmp_path / "r.heic")
    assert image.size == (10, 20) and image.info["exif_rotated"]
    assert image.rgb[:, 1, -2].mean() > 0.9 and image.rgb[:, 1, 1].mean() < 0.1  # now top right

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :4, 3] = 255  # left half opaque red, right half transparent
    (tmp_path / "a.heic").write_bytes(heif(Image.fromarray(rgba), quality=-1, chroma=444))
    kept = load_image(tmp_path / "a.heic", alpha="keep")
    assert kept.alpha is not None and kept.alpha[0, 0, 0] > 0.99 and kept.alpha[0, 0, -1] < 0.01

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = heif(Image.fromarray(_gradient()), quality=-1, chroma=444, icc_profile=profile)
    (tmp_path / "icc.heic").write_bytes(data)
    assert load_image(tmp_path / "icc.heic").info["icc_converted"]

    p3 = {"color_primaries": 12, "transfer_characteristics": 13}  # Display P3, no ICC
    p3 |= {"matrix_coefficients": 6, "full_range_flag": 1}
    (tmp_path / "p3.heic").write_bytes(heif(Image.fromarray(_gradient()), nclx_profile=p3))
    assert load_image(tmp_path / "p3.heic").info["warnings"] == [
        "colour of nclx primaries 12, transfer 13 read as sRGB (not converted)"
    ]


def test_heic_opener_is_registered_only_when_a_heic_comes(tmp_path) -> None:
    """Importing the package leaves pillow-heif alone; the first HEIC registers it."""
    (tmp_path / "a.heic").write_bytes(heif(Image.fromarray(_gradient()), quality=90))
    script = (
        "import sys; from portrait_stylize.images import load_image; "
        "before = 'pillow_heif' in sys.modules; "
        f"image = load_image({str(tmp_path / 'a.heic')!r}); "
        "print(before, image.info['format'], image.size)"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "HEIF", "(16,", "12)"]


@pytest.mark.parametrize(
    ("name", "header_cut"),
    [
        ("cut.heic", "a damaged or truncated HEIC/HEIF file"),
        ("cut.gif", "a damaged or truncated GIF file"),
        ("cut.avif", "a damaged or truncated AVIF file"),
        ("cut.bmp", r"not a readable image \(Truncated File Read\)"),
    ],
)
def test_truncated_new_formats_are_refused_with_one_line(tmp_path, name, header_cut) -> None:
    """Cut after 40 bytes (in the header) and in half (in the image data)."""
    noise = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    writers = {
        ".heic": lambda: heif(Image.fromarray(noise), quality=90),
        ".gif": lambda: _saved(noise, "GIF"),
        ".avif": lambda: _saved(noise, "AVIF", quality=90),
        ".bmp": lambda: _saved(noise, "BMP"),
    }
    whole = writers[Path(name).suffix]()
    for cut, expected in ((40, header_cut), (len(whole) // 2, "cannot decode|truncated")):
        (tmp_path / name).write_bytes(whole[:cut])
        with pytest.raises(InputError) as caught:
            load_image(tmp_path / name)
        message = str(caught.value)
        assert message.startswith(f"{tmp_path / name}: ") and "\n" not in message
        assert re.search(expected, message.removeprefix(f"{tmp_path / name}: ")), message


def test_grayscale_palette_and_16bit_gray(tmp_path) -> None:
    Image.fromarray(np.full((5, 6), 128, np.uint8), "L").save(tmp_path / "g.png")
    gray = load_image(tmp_path / "g.png").rgb
    assert gray.shape == (3, 5, 6) and torch.allclose(gray, torch.full_like(gray, 128 / 255))
    Image.fromarray(_gradient()).convert("P", palette=Image.Palette.ADAPTIVE).save(
        tmp_path / "p.png"
    )
    assert load_image(tmp_path / "p.png").rgb.shape == (3, 12, 16)
    Image.fromarray(np.full((4, 4), 40000, np.uint16)).save(tmp_path / "g16.png")
    deep = load_image(tmp_path / "g16.png")
    assert deep.info["bit_depth"] == 16
    assert deep.rgb[0, 0, 0].item() == pytest.approx(40000 / 65535, abs=1e-6)


def test_16bit_rgb_tiff_keeps_full_precision(tmp_path) -> None:
    array = np.zeros((4, 5, 3), np.uint16)
    array[..., 0] = 1000  # 1000/65535 is not a multiple of 1/255
    array[..., 2] = 65535
    tifffile.imwrite(tmp_path / "d.tif", array, photometric="rgb")
    image = load_image(tmp_path / "d.tif")
    assert image.info["bit_depth"] == 16
    assert image.rgb[0, 0, 0].item() == pytest.approx(1000 / 65535, abs=1e-7)
    assert image.rgb[2].min().item() == 1.0


def test_cmyk_jpeg(tmp_path) -> None:
    Image.new("CMYK", (8, 6), (0, 255, 255, 0)).save(tmp_path / "c.jpg")  # pure red in CMYK
    rgb = load_image(tmp_path / "c.jpg").rgb
    assert rgb.shape == (3, 6, 8)
    assert rgb[0].mean() > 0.9 and rgb[1].mean() < 0.1 and rgb[2].mean() < 0.1


def test_alpha_composited_or_kept(tmp_path) -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :2, 3] = 255  # left half opaque red, right half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    flat = load_image(tmp_path / "a.png", matte=(0.0, 0.0, 1.0))
    assert flat.alpha is None
    assert flat.rgb[:, 0, 0].tolist() == [1.0, 0.0, 0.0]
    assert flat.rgb[:, 0, 3].tolist() == [0.0, 0.0, 1.0]
    kept = load_image(tmp_path / "a.png", alpha="keep")
    assert kept.alpha is not None and kept.alpha[0, 0, 0] == 1 and kept.alpha[0, 0, 3] == 0
    out = save_image(kept.rgb, tmp_path / "out.png", kept.alpha)
    assert Image.open(out).mode == "RGBA"


def test_exif_orientation_is_applied(tmp_path) -> None:
    array = np.zeros((10, 20, 3), np.uint8)
    array[0, 0] = 255  # mark the top-left pixel of the stored image
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs 90° clockwise
    Image.fromarray(array).save(tmp_path / "r.jpg", exif=exif, quality=100)
    image = load_image(tmp_path / "r.jpg")
    assert image.size == (10, 20) and image.info["exif_rotated"]
    assert image.rgb[:, 0, -1].mean() > 0.5  # stored top-left is now top-right


def test_icc_profile_converted_to_srgb(tmp_path) -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(_gradient()).save(tmp_path / "icc.png", icc_profile=profile)
    image = load_image(tmp_path / "icc.png")
    assert image.info["icc_converted"]
    np.testing.assert_allclose(image.rgb.permute(1, 2, 0).numpy(), _gradient() / 255, atol=2 / 255)


def test_unreadable_unsupported_and_missing_files(tmp_path) -> None:
    (tmp_path / "text.jpg").write_text("this is not an image")
    with pytest.raises(InputError, match=r"text\.jpg: not a readable image"):
        load_image(tmp_path / "text.jpg")
    Image.fromarray(_gradient()).save(tmp_path / "a.ico")
    with pytest.raises(InputError, match="format ICO is not supported"):
        load_image(tmp_path / "a.ico")
    with pytest.raises(InputError, match="no such file"):
        load_image(tmp_path / "missing.png")
    good = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(good, format="PNG")
    (tmp_path / "truncated.png").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    with pytest.raises(InputError, match=r"truncated\.png"):
        load_image(tmp_path / "truncated.png")


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (no pixel data needed to refuse it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_huge_images_are_refused_before_decoding(tmp_path) -> None:
    (tmp_path / "huge.png").write_bytes(_png_header_only(30000, 30000))
    with pytest.raises(InputError, match=r"huge.png: refused as a decompression bomb \(Image size"):
        load_image(tmp_path / "huge.png")
    Image.fromarray(_gradient(100, 100)).save(tmp_path / "ok.png")
    expected = r"ok\.png: 100x100 is 0\.01 MP, over the limit of 0\.005 MP"
    with pytest.raises(InputError, match=expected):
        load_image(tmp_path / "ok.png", max_pixels=5000)


def test_arrays_and_tensors() -> None:
    assert load_image(_gradient()).rgb.shape == (3, 12, 16)
    assert load_image(torch.rand(3, 8, 9)).rgb.shape == (3, 8, 9)
    assert load_image(np.zeros((5, 5), np.uint16)).rgb.shape == (3, 5, 5)
    with pytest.raises(InputError):
        load_image(np.zeros((2, 3, 4, 5)))
    with pytest.raises(InputError, match="non-finite"):
        load_image(torch.full((3, 4, 4), float("nan")))


def test_save_formats_roundtrip(tmp_path) -> None:
    rgb = torch.rand(3, 10, 12)
    png = load_image(save_image(rgb, tmp_path / "r.png")).rgb
    assert (png - rgb).abs().max() <= 0.5 / 255 + 1e-6
    jpg = load_image(save_image(rgb, tmp_path / "r.jpg")).rgb
    assert jpg.shape == rgb.shape
    tif = tmp_path / "r.tif"
    save_image(rgb, tif)
    data = tifffile.imread(tif)
    assert data.dtype == np.uint16 and data.shape == (10, 12, 3)
    assert (load_image(tif).rgb - rgb).abs().max() <= 0.5 / 65535 + 1e-6
    assert not list(tmp_path.glob("*.part"))


def test_output_path_is_checked_first(tmp_path) -> None:
    with pytest.raises(InputError, match="output must end in"):
        check_output_path(tmp_path / "result.gif")
    with pytest.raises(InputError, match="does not exist"):
        check_output_path(tmp_path / "nope" / "result.png")


def test_record_beside_result(tmp_path) -> None:
    out = tmp_path / "result.png"
    path = save_record({"seed": 3, "where": tmp_path}, out)
    assert path == record_path(out) == tmp_path / "result.png.json"
    assert json.loads(path.read_text())["seed"] == 3


def test_resize_long_side() -> None:
    assert resize_long_side(torch.rand(3, 100, 50), 40).shape == (3, 40, 20)
    assert resize_long_side(torch.rand(1, 3, 30, 60), 90).shape == (1, 3, 45, 90)
