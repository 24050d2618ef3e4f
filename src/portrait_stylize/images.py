"""Image input and output: any common photo in, an sRGB float tensor out; atomic saves.

Input: JPEG, PNG, WebP and TIFF (16-bit TIFF read at full precision with tifffile),
grayscale, palette, CMYK and alpha modes, EXIF orientation applied, embedded ICC
profiles converted to sRGB. Output: PNG, JPEG (quality 95), WebP or 16-bit TIFF,
written to a temporary file and renamed, so a result is whole or absent.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import torch
import torch.nn.functional as F
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .errors import InputError
from .files import atomic_output

DEFAULT_MAX_PIXELS = 64_000_000
INPUT_FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "TIFF"}
OUTPUT_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"}

# EXIF orientation -> the numpy transform that undoes it on an (H, W, C) array.
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}
_SRGB = ImageCms.createProfile("sRGB")

ImageSource = str | Path | Image.Image | np.ndarray | torch.Tensor


ImageError = InputError
"""The former name of :class:`~portrait_stylize.errors.InputError`, kept for importers."""


@dataclass
class LoadedImage:
    """A decoded image: ``rgb`` (3, H, W) float32 sRGB in [0, 1], ``alpha`` (1, H, W) or None."""

    rgb: torch.Tensor
    alpha: torch.Tensor | None = None
    name: str = "<array>"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.rgb.shape[2], self.rgb.shape[1]


def _open(path: Path, max_pixels: int) -> Image.Image:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        image = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise InputError(f"{path}: refused as a decompression bomb ({exc})") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"{path}: not a readable image ({exc})") from None
    if image.format not in INPUT_FORMATS:
        raise InputError(f"{path}: format {image.format} is not supported (JPEG, PNG, WebP, TIFF)")
    width, height = image.size
    if width * height > max_pixels:
        raise InputError(
            f"{path}: {width}x{height} is {width * height / 1e6:.3g} MP, over the limit of "
            f"{max_pixels / 1e6:.3g} MP (raise it with --max-pixels)"
        )
    return image


def _to_srgb(image: Image.Image, info: dict[str, Any]) -> Image.Image:
    """Convert a Pillow image with an embedded ICC profile to sRGB (alpha kept)."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA", "CMYK", "L", "LA"):
        return image
    alpha = image.getchannel("A") if image.mode in ("RGBA", "LA") else None
    base = image.convert(image.mode[:-1]) if alpha is not None else image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(base, source, _SRGB, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError) as exc:
        info["warnings"].append(f"embedded ICC profile ignored: {exc}")
        return image
    info["icc_converted"] = True
    if converted is None:
        return image
    if alpha is not None:
        converted.putalpha(alpha)
    return converted


def _pillow_pixels(image: Image.Image, info: dict[str, Any]) -> np.ndarray:
    """(H, W, 3 or 4) float32 in [0, 1] from any Pillow mode."""
    image = _to_srgb(image, info)
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        scale = 1.0 if image.mode == "F" else 65535.0
        gray = np.asarray(image, dtype=np.float32) / scale
        info["bit_depth"] = 16
        return np.repeat(np.clip(gray, 0, 1)[..., None], 3, axis=2)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode == "P" and "transparency" in image.info
    )
    rgba = image.convert("RGBA" if has_alpha else "RGB")
    return np.asarray(rgba, dtype=np.float32) / 255.0


def _tiff16_pixels(path: Path, image: Image.Image, info: dict[str, Any]) -> np.ndarray | None:
    """Full-precision pixels of a 16-bit TIFF, or None when Pillow's 8 bits are exact."""
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        if page.dtype != np.uint16 or page.samplesperpixel not in (3, 4):
            return None
        array = page.asarray().astype(np.float32) / 65535.0
    info["bit_depth"] = 16
    if image.info.get("icc_profile"):
        info["warnings"].append("ICC profile of a 16-bit TIFF ignored (read as sRGB)")
    orientation = image.getexif().get(0x0112, 1)
    if orientation in _ORIENT:
        array = np.ascontiguousarray(_ORIENT[orientation](array))
        info["exif_rotated"] = True
    return array


def load_image(
    source: ImageSource,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    alpha: str = "composite",
    matte: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> LoadedImage:
    """Load an image as sRGB floats.

    ``alpha``: "composite" blends transparent pixels onto ``matte`` (RGB in [0, 1]);
    "keep" also returns the alpha channel so it can be re-applied to the result.
    Arrays are (H, W, 3|4) uint8/uint16/float in [0, 1]; tensors (3|4, H, W) in [0, 1].
    """
    if alpha not in ("composite", "keep"):
        raise ValueError(f"alpha must be 'composite' or 'keep', not {alpha!r}")
    info: dict[str, Any] = {"warnings": [], "bit_depth": 8}
    if isinstance(source, str | Path):
        path = Path(source)
        name = str(path)
        image = _open(path, max_pixels)
        info.update(format=image.format, mode=image.mode, original_size=list(image.size))
        try:
            pixels = _tiff16_pixels(path, image, info) if image.format == "TIFF" else None
            if pixels is None:
                info["exif_rotated"] = image.getexif().get(0x0112, 1) in _ORIENT
                pixels = _pillow_pixels(ImageOps.exif_transpose(image), info)
        except (OSError, ValueError, SyntaxError) as exc:
            raise InputError(f"{path}: cannot decode ({exc})") from None
    else:
        name = "<array>"
        pixels = _array_pixels(source)
    if not np.isfinite(pixels).all():
        raise InputError(f"{name}: contains non-finite values")
    tensor = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).permute(2, 0, 1)
    rgb, alpha_channel = tensor[:3].clamp(0, 1), None
    if tensor.shape[0] == 4:
        alpha_channel = tensor[3:].clamp(0, 1)
        matte_color = torch.tensor(matte, dtype=rgb.dtype).view(3, 1, 1)
        rgb = rgb * alpha_channel + matte_color * (1 - alpha_channel)
        if alpha == "composite":
            alpha_channel = None
    return LoadedImage(rgb.contiguous(), alpha_channel, name, info)


def _array_pixels(source: Image.Image | np.ndarray | torch.Tensor) -> np.ndarray:
    """(H, W, 3|4) float32 in [0, 1] from an in-memory image."""
    if isinstance(source, Image.Image):
        return _pillow_pixels(source, {"warnings": []})
    if isinstance(source, torch.Tensor):
        array = source.detach().cpu().float().numpy()
        if array.ndim == 3 and array.shape[0] in (1, 3, 4):
            array = array.transpose(1, 2, 0)
    else:
        array = np.asarray(source)
        if array.dtype == np.uint8:
            array = array.astype(np.float32) / 255.0
        elif array.dtype == np.uint16:
            array = array.astype(np.float32) / 65535.0
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise InputError(f"<array>: expected an image array, got shape {array.shape}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return array.astype(np.float32)


def resize_long_side(image: torch.Tensor, long_side: int) -> torch.Tensor:
    """Resize (..., C, H, W) so that max(H, W) == long_side (antialiased bicubic, clamped)."""
    h, w = image.shape[-2:]
    scale = long_side / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    if size == (h, w):
        return image
    batch = image if image.dim() == 4 else image[None]
    out = F.interpolate(batch, size=size, mode="bicubic", align_corners=False, antialias=True)
    out = out.clamp(0, 1)
    return out if image.dim() == 4 else out[0]


def check_output_path(path: str | Path) -> Path:
    """Validate an output path before any work is done; returns it as a Path."""
    out = Path(path)
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(f"{out}: output must end in one of {', '.join(sorted(OUTPUT_SUFFIXES))}")
    if out.parent != Path() and not out.parent.is_dir():
        raise InputError(f"{out}: folder {out.parent} does not exist")
    return out


def save_image(rgb: torch.Tensor, path: str | Path, alpha: torch.Tensor | None = None) -> Path:
    """Save (3, H, W) in [0, 1] (and optional (1, h, w) alpha, resized to fit) atomically."""
    out = check_output_path(path)
    rgb = rgb.detach().float().cpu().clamp(0, 1)
    channels = rgb
    if alpha is not None:
        alpha = alpha.detach().float().cpu()
        if alpha.shape[-2:] != rgb.shape[-2:]:
            alpha = F.interpolate(alpha[None], size=rgb.shape[-2:], mode="bilinear")[0]
        channels = torch.cat([rgb, alpha.clamp(0, 1)])
    array = channels.permute(1, 2, 0).numpy()
    suffix = out.suffix.lower()
    with atomic_output(out) as tmp:
        if suffix in (".tif", ".tiff"):
            data = np.round(array * 65535).astype(np.uint16)
            extra = ("unassalpha",) if data.shape[2] == 4 else None
            tifffile.imwrite(tmp, data, photometric="rgb", extrasamples=extra, compression="zlib")
        else:
            data8 = np.round(array * 255).astype(np.uint8)
            mode = "RGBA" if data8.shape[2] == 4 else "RGB"
            image = Image.fromarray(data8, mode)
            if suffix in (".jpg", ".jpeg"):
                image.convert("RGB").save(tmp, format="JPEG", quality=95)
            elif suffix == ".webp":
                image.save(tmp, format="WEBP", quality=95)
            else:
                image.save(tmp, format="PNG")
    return out


def record_path(result: str | Path) -> Path:
    """The run record beside a result: ``OUT`` -> ``OUT.json``."""
    result = Path(result)
    return result.with_name(result.name + ".json")


def save_record(record: dict[str, Any], result: str | Path) -> Path:
    """Write the run record beside ``result`` atomically."""
    target = record_path(result)
    with atomic_output(target) as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=_json_default) + "\n")
    return target


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.Tensor | np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
