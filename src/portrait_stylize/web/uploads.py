"""Uploaded images, treated as hostile: bytes counted while copied, the type sniffed from
the content, the pixel count read from the header before anything is decoded, then a full
decode. The client's file name and declared type are never used."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

import tifffile
from PIL import Image, UnidentifiedImageError

from ..errors import InputError
from ..images import AVIF_BRANDS, MAGIC, READS, LoadedImage, enable_heif, is_heif, load_image
from .settings import Limits

SIGNATURES = {
    "image/png": MAGIC["PNG"],
    "image/jpeg": MAGIC["JPEG"],
    "image/tiff": MAGIC["TIFF"],
    "image/gif": MAGIC["GIF"],
    "image/bmp": MAGIC["BMP"],
}
FORMATS = {
    "image/png": ("PNG",),
    "image/jpeg": ("JPEG",),
    "image/webp": ("WEBP",),
    "image/tiff": ("TIFF",),
    "image/gif": ("GIF",),
    "image/bmp": ("BMP",),
    "image/heic": ("HEIF",),
    "image/heif": ("AVIF", "HEIF"),  # the generic brands: AV1 (Pillow) or HEVC (pillow-heif)
    "image/avif": ("AVIF",),
}
"""Media type -> the Pillow formats that may read its header."""
MEDIA_TYPES = tuple(FORMATS)
"""The media types of the images taken (what :func:`sniff` gives)."""
HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
"""The brands of a HEIF holding HEVC (an iPhone's photo): image/heic, not image/heif."""


class UploadRejected(Exception):
    """An upload refused before it is decoded: ``status`` 413 (too large) or 415 (type)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def sniff(head: bytes) -> str | None:
    """The media type of an image from its first 12 bytes, None when not one we read."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in AVIF_BRANDS:
            return "image/avif"
        if is_heif(head):
            return "image/heic" if brand in HEIC_BRANDS else "image/heif"
        return None
    for media, signatures in SIGNATURES.items():
        if head.startswith(signatures):
            return media
    return None


def save_upload(source: BinaryIO, dest: Path, field: str, max_bytes: int) -> str:
    """Copy ``source`` to ``dest`` (removed again when refused); returns its sha256.
    Over ``max_bytes``: UploadRejected 413."""
    digest = hashlib.sha256()
    written = 0
    with dest.open("wb") as out:
        for block in iter(lambda: source.read(1 << 20), b""):
            written += len(block)
            if written > max_bytes:
                out.close()
                dest.unlink()
                raise UploadRejected(f"{field}: larger than {max_bytes} bytes", 413)
            digest.update(block)
            out.write(block)
    if written == 0:
        dest.unlink()
        raise InputError(f"{field}: empty file")
    return digest.hexdigest()


def _header_size(path: Path, formats: tuple[str, ...]) -> tuple[int, int]:
    """(width, height) from the file's header: Pillow's (of ``formats`` only), or
    tifffile's for the floating-point RGB TIFFs Pillow cannot open (the loader reads
    those with tifffile)."""
    if "HEIF" in formats:
        enable_heif()
    try:
        with Image.open(path, formats=list(formats)) as image:
            return image.size
    except UnidentifiedImageError:
        if formats != ("TIFF",):
            raise
        try:
            with tifffile.TiffFile(path) as tif:
                return tif.pages.first.imagewidth, tif.pages.first.imagelength
        except Exception:  # a TIFF neither reader takes: Pillow's reason stands
            pass
        raise


def check_image(path: Path, field: str, limits: Limits) -> LoadedImage:
    """Check the saved upload ``path``: a JPEG, PNG, WebP, TIFF, HEIC/HEIF, AVIF, BMP or GIF
    by its bytes (else 415), at most ``limits.max_pixels`` by its header (else 413), and
    decodable (else InputError naming ``field``, never the server's path). Returns the
    decoded image."""
    with path.open("rb") as handle:
        media = sniff(handle.read(12))
    if media is None:
        raise UploadRejected(f"{field}: not a {READS} image", 415)
    try:
        width, height = _header_size(path, FORMATS[media])
    except Image.DecompressionBombError:
        raise UploadRejected(f"{field}: too many pixels", 413) from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        reason = " ".join(str(exc).replace(str(path), "the file").split())
        raise InputError(f"{field}: not a readable image ({reason})") from None
    if width * height > limits.max_pixels:
        raise UploadRejected(
            f"{field}: {width}x{height} is over this server's limit of {limits.max_pixels} pixels",
            413,
        )
    try:
        return load_image(path, max_pixels=limits.max_pixels)
    except InputError as exc:
        raise InputError(str(exc).replace(str(path), field)) from None
    except Exception as exc:  # a hostile file may break a decoder in any way
        raise InputError(f"{field}: cannot decode ({type(exc).__name__})") from None
