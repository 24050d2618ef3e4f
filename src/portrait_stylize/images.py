"""Image input and output: any common photo in, an sRGB float tensor out; atomic saves.

Input: JPEG, PNG, WebP, TIFF (16-bit and floating-point TIFF read at full precision with
tifffile), HEIC/HEIF (phones' default; read with the pillow-heif plug-in, registered the
first time such a file is opened), AVIF (Pillow's own decoder), BMP and GIF; grayscale,
palette, CMYK, Lab and alpha modes, EXIF orientation applied (in HEIC the container's
rotation, which libheif applies), embedded ICC profiles converted to sRGB (a HEIF's
colour described otherwise, not as sRGB, is read as sRGB with a warning). Of an
animation (GIF, APNG, animated WebP or AVIF) the first frame is read, of a HEIF holding
several images its primary one, and ``info["warnings"]`` says so. Anything else, damaged
or too large (the pixel limit is checked from the header, before decoding, whatever the
format) is refused with an InputError of one line naming the file and the reason; what
the decoders warn goes to the image's ``info["warnings"]``, not to standard error.
Output: PNG, JPEG (quality 95), WebP or 16-bit TIFF, written to a temporary file and
renamed, so a result is whole or absent.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import torch
import torch.nn.functional as F
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError, features

from .errors import InputError
from .files import atomic_output
from .paths import check_file, check_output_path, os_reason, record_path
from .vocabulary import MIN_SIDE

DEFAULT_MAX_PIXELS = 64_000_000
INPUT_FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "TIFF", "HEIF", "AVIF", "BMP", "GIF"}
"""Pillow's names of the formats read (MPO: a JPEG with more pictures, as cameras write)."""
INPUT_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".heic", ".heif", ".avif")
INPUT_SUFFIXES += (".bmp", ".gif")
"""The file name endings of those formats (what a folder of inputs is searched for)."""
READS = "JPEG, PNG, WebP, TIFF, HEIC/HEIF, AVIF, BMP or GIF"
"""The formats read, as a message lists them."""
MAGIC = {
    "JPEG": (b"\xff\xd8\xff",),
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "WebP": (b"RIFF",),
    "TIFF": (b"II*\0", b"MM\0*"),
    "GIF": (b"GIF87a", b"GIF89a"),
    "BMP": (b"BM",),
}
"""The first bytes of each input format (a WebP also has ``WEBP`` at byte 8; HEIF and
AVIF are told by their brand: :data:`HEIF_BRANDS`, :data:`AVIF_BRANDS`)."""
HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
HEIF_BRANDS |= {b"mif1", b"msf1"}
"""The major brands (bytes 8-12, after ``ftyp``) of a HEIF file: what pillow-heif opens
(``mif1``, ``msf1``: the generic ones, also of some AVIF files)."""
AVIF_BRANDS = {b"avif", b"avis"}
ANIMATED = {"GIF", "PNG", "WEBP", "AVIF"}
"""The formats whose further frames are an animation (of which the first is read)."""
SRGB_NCLX_PRIMARIES = {None, 1, 2}
"""A HEIF's nclx colour primaries read as they are: BT.709 (sRGB's), unspecified."""
HDR_NCLX_TRANSFERS = {16, 18}
"""The nclx transfer functions of HDR (PQ, HLG), which reading as sRGB misrepresents."""
HEAD_BYTES = 512
"""How much of a file is read to tell what it is when it is refused."""
DEEP_TIFF = {("u", 2): 65535.0, ("f", 2): 1.0, ("f", 4): 1.0, ("f", 8): 1.0}
"""(numpy kind, bytes) of the TIFF samples read with tifffile -> their full scale."""
_DEEP_PHOTOMETRIC = (tifffile.PHOTOMETRIC.RGB, tifffile.PHOTOMETRIC.MINISBLACK)
_DEEP_AXES = ("YX", "YXS", "SYX")
_DECODING = threading.Lock()

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
_HEIF_OPENER: list[bool] = []
"""Holds True once pillow-heif's opener is registered with Pillow."""
_REGISTERING = threading.Lock()

ImageSource = str | Path | Image.Image | np.ndarray | torch.Tensor


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


def _brand(head: bytes) -> bytes | None:
    """The major brand of an ISO media file (HEIF, AVIF, MP4, ...), None for another file."""
    return head[8:12] if head[4:8] == b"ftyp" else None


def is_heif(head: bytes) -> bool:
    """Whether a file whose first bytes are ``head`` is one pillow-heif opens."""
    return _brand(head) in HEIF_BRANDS


def enable_heif() -> None:
    """Register pillow-heif's HEIF opener with Pillow (once; importing it is left until a
    HEIF file comes, so that importing this package stays fast). InputError when it is
    not installed."""
    with _REGISTERING:
        if _HEIF_OPENER:
            return
        try:
            from pillow_heif import register_heif_opener
        except ImportError as exc:
            raise InputError(
                f"reading HEIC/HEIF needs pillow-heif ({_reason(exc)}): pip install pillow-heif"
            ) from None
        register_heif_opener()
        _HEIF_OPENER.append(True)


def _what_it_is(head: bytes) -> str:
    """Why a file whose first bytes are ``head`` is not an image this tool reads."""
    for name, magics in MAGIC.items():
        if head.startswith(magics) and (name != "WebP" or head[8:12] == b"WEBP"):
            return f"a damaged or truncated {name} file"
    if is_heif(head):
        return "a damaged or truncated HEIC/HEIF file"
    if _brand(head) in AVIF_BRANDS:
        if "avif" not in features.modules or not features.check_module("avif"):
            return "an AVIF image, and this Pillow was built without AVIF support"
        return "a damaged or truncated AVIF file"
    if head.startswith(b"%PDF-"):
        kind = "a PDF document"
    elif b"<svg" in head.lower():
        kind = "an SVG drawing"
    else:
        return f"not a {READS} file"
    return f"{kind}; this tool reads {READS.replace(' or ', ' and ')}"


def _reason(exc: BaseException) -> str:
    """A decoder's error as one line."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _check_pixels(path: Path, width: int, height: int, max_pixels: int) -> None:
    """Refuse an image of more than ``max_pixels`` before it is decoded."""
    if width * height > max_pixels:
        raise InputError(
            f"{path}: {width}x{height} is {width * height / 1e6:.3g} MP, over the limit of "
            f"{max_pixels / 1e6:.3g} MP (raise it with --max-pixels)"
        )


@contextmanager
def _open(path: Path, head: bytes, max_pixels: int) -> Iterator[Image.Image]:
    """The file opened by Pillow (closed afterwards), refused unless it is in one of
    :data:`INPUT_FORMATS` and of at most ``max_pixels``."""
    if is_heif(head):
        try:
            enable_heif()
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None
    try:
        image = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise InputError(f"{path}: refused as a decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        raise InputError(f"{path}: not a readable image ({_what_it_is(head)})") from None
    except Exception as exc:  # a hostile file may break a decoder in any way
        raise InputError(f"{path}: not a readable image ({_reason(exc)})") from None
    with image:
        if image.format not in INPUT_FORMATS:
            raise InputError(f"{path}: format {image.format} is not supported ({READS})")
        _check_pixels(path, *image.size, max_pixels)
        yield image


def _frames_read(image: Image.Image) -> str | None:
    """What is left out of an image of several frames (an animation, the images of a
    HEIF), as a warning; None for an image of one."""
    if not getattr(image, "is_animated", False):
        return None
    count = image.n_frames
    if image.format == "HEIF":
        return f"the file holds {count} images; its primary one was read"
    if image.format in ANIMATED:
        return f"an animation of {count} frames; its first frame was read"
    return None


def _unconverted_colour(image: Image.Image) -> str | None:
    """A warning for a HEIF whose colour is described by an nclx profile (no ICC) other than
    sRGB's: Display P3 or BT.2020 primaries, or HDR transfer (PQ, HLG), are read as sRGB."""
    nclx = image.info.get("nclx_profile")
    if image.format != "HEIF" or "icc_profile" in image.info or not isinstance(nclx, dict):
        return None
    primaries, transfer = nclx.get("color_primaries"), nclx.get("transfer_characteristics")
    if primaries in SRGB_NCLX_PRIMARIES and transfer not in HDR_NCLX_TRANSFERS:
        return None
    return f"colour of nclx primaries {primaries}, transfer {transfer} read as sRGB (not converted)"


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation of an opened image; for HEIF that of the file, which libheif
    has applied already (as the container's rotation and mirroring) and pillow-heif
    reset to 1 in the EXIF, so that it is not applied twice."""
    if image.format == "HEIF":
        return image.info.get("original_orientation") or 1
    return image.getexif().get(0x0112, 1)


@contextmanager
def _decoder_messages(into: list[str]) -> Iterator[None]:
    """Collect what the decoders warn (Python warnings, tifffile's log) into ``into``
    instead of standard error, where it would break a front end's one-line errors.
    Serialised: the warning machinery is process-wide."""
    logger = tifffile.logger()
    handler = logging.Handler()
    handler.emit = lambda record: into.append(record.getMessage())  # type: ignore[method-assign]
    with _DECODING, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logger.addHandler(handler)
        propagate, logger.propagate = logger.propagate, False
        try:
            yield
        finally:
            logger.removeHandler(handler)
            logger.propagate = propagate
            into.extend(str(warning.message) for warning in caught)
    into[:] = list(dict.fromkeys(into))


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


def _deep_tiff_pixels(path: Path, max_pixels: int, info: dict[str, Any]) -> np.ndarray | None:
    """Full-precision pixels of a 16-bit or floating-point grey or RGB(A) TIFF (Pillow reads
    16 bits as 8 and floating-point RGB not at all), upright; None for any other file, and
    for one tifffile cannot read (damaged, or compressed with LZW or JPEG, which tifffile
    needs imagecodecs for): Pillow reads that or says what is wrong."""
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            dtype, photometric = page.dtype, page.photometric
            scale = None if dtype is None else DEEP_TIFF.get((dtype.kind, dtype.itemsize))
            readable = photometric in _DEEP_PHOTOMETRIC and page.samplesperpixel <= 4
            if scale is None or not readable or page.axes not in _DEEP_AXES:
                return None
            width, height = page.imagewidth, page.imagelength
            _check_pixels(path, width, height, max_pixels)
            array = page.asarray().astype(np.float32) / scale
            orientation = page.tags.valueof(0x0112, 1)
            has_icc = 34675 in page.tags
            axes, bits = page.axes, page.bitspersample
    except InputError:
        raise
    except Exception as exc:  # a hostile file may break a decoder in any way
        info["warnings"].append(f"tifffile could not read it ({_reason(exc)})")
        return None
    info.update(
        format="TIFF",
        mode=f"{photometric.name} {dtype}",
        original_size=[width, height],
        bit_depth=bits,
    )
    if has_icc:
        info["warnings"].append(f"ICC profile of a {dtype} TIFF ignored (read as sRGB)")
    pixels = _array_pixels(np.moveaxis(array, 0, -1) if axes == "SYX" else array)
    info["exif_rotated"] = orientation in _ORIENT
    if orientation in _ORIENT:
        pixels = np.ascontiguousarray(_ORIENT[orientation](pixels))
    return pixels


def _file_pixels(path: Path, max_pixels: int, info: dict[str, Any]) -> np.ndarray:
    """(H, W, 3|4) float32 pixels of the image file ``path``, upright and sRGB."""
    check_file(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
    except OSError as exc:
        raise InputError(f"{path}: cannot be opened ({os_reason(exc)})") from None
    with _decoder_messages(info["warnings"]):
        try:
            is_tiff = head.startswith(MAGIC["TIFF"])
            pixels = _deep_tiff_pixels(path, max_pixels, info) if is_tiff else None
            if pixels is None:
                with _open(path, head, max_pixels) as image:
                    info.update(
                        format=image.format, mode=image.mode, original_size=list(image.size)
                    )
                    info["exif_rotated"] = _orientation(image) in _ORIENT
                    if frames := _frames_read(image):
                        info["warnings"].append(frames)
                    if colour := _unconverted_colour(image):
                        info["warnings"].append(colour)
                    pixels = _pillow_pixels(ImageOps.exif_transpose(image), info)
        except InputError:
            raise
        except Exception as exc:  # a hostile file may break a decoder in any way
            raise InputError(f"{path}: cannot decode ({_reason(exc)})") from None
    return pixels


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
    Arrays are (H, W[, 1|2|3|4]) uint8/uint16/float in [0, 1] (grey, grey + alpha, RGB,
    RGBA); tensors (1|3|4, H, W) in [0, 1]. Files: see the module's description.
    """
    if alpha not in ("composite", "keep"):
        raise ValueError(f"alpha must be 'composite' or 'keep', not {alpha!r}")
    info: dict[str, Any] = {"warnings": [], "bit_depth": 8}
    if isinstance(source, str | Path):
        name = str(source)
        pixels = _file_pixels(Path(source), max_pixels, info)
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
    """(H, W, 3|4) float32 in [0, 1] from an in-memory image (grey, grey + alpha, RGB or
    RGBA)."""
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
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise InputError(f"<array>: expected an image array, got shape {array.shape}")
    if array.shape[2] <= 2:  # grey, grey + alpha
        array = np.concatenate([np.repeat(array[..., :1], 3, axis=2), array[..., 1:]], axis=2)
    return array.astype(np.float32)


def long_side_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(height, width) of an image resized to ``long_side`` on its long side, aspect kept."""
    scale = long_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_long_side(image: torch.Tensor, long_side: int) -> torch.Tensor:
    """Resize (..., C, H, W) so that max(H, W) == long_side (antialiased bicubic, clamped)."""
    h, w = image.shape[-2:]
    size = long_side_shape(h, w, long_side)
    if size == (h, w):
        return image
    batch = image if image.dim() == 4 else image[None]
    out = F.interpolate(batch, size=size, mode="bicubic", align_corners=False, antialias=True)
    out = out.clamp(0, 1)
    return out if image.dim() == 4 else out[0]


def check_fits(image: LoadedImage, long_side: int) -> None:
    """Refuse (InputError naming it) an image whose short side falls under
    :data:`MIN_SIDE` once it is resized to ``long_side`` on its long side."""
    width, height = image.size
    short = min(long_side_shape(height, width, long_side))
    if short < MIN_SIDE:
        raise InputError(
            f"{image.name}: {width}x{height} is too narrow: at {long_side} px on its long side "
            f"its short side is {short} px, and the networks need at least {MIN_SIDE} px (crop "
            "it, or choose a larger size)"
        )


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
