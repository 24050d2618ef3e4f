"""A corpus of hostile and awkward input files, written on demand (none is committed).

Each :class:`Case` writes one thing (a file, a folder, a FIFO, a link) with ``make`` and
says what loading it must give: an image of the upright ``size`` (width, height), or an
InputError whose reason matches ``reason``. Most images are :func:`photo`: a flat
:data:`BASE` colour with a :data:`MARK` block at its top-left corner, so that a wrong
orientation or colour conversion shows. HEIC files are written with pillow-heif
(:func:`heif`), AVIF with Pillow's own encoder.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pillow_heif
import tifffile
from hypothesis import HealthCheck, settings
from PIL import Image, ImageCms

EXAMPLES = settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "80")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
"""Hypothesis' settings of the property tests: 80 examples each, or $PROPERTY_EXAMPLES."""
WIDTH, HEIGHT = 48, 32
BASE = (0.2, 0.4, 0.8)
MARK = (1.0, 0.0, 0.0)
MARK_SIDE = 8
RGB = tuple[float, float, float]


@dataclass(frozen=True)
class Case:
    """One input: its group (a row of docs/reliability.md), how to write it into a folder
    (returns the path to load), and the outcome: ``size`` or ``reason``; ``corner`` and
    ``centre`` (when set) are the colours expected there after loading, ``warning`` (when
    set) a pattern one of the image's ``info["warnings"]`` matches."""

    group: str
    make: Callable[[Path], Path]
    size: tuple[int, int] | None = None
    reason: str = ""
    corner: RGB | None = None
    centre: RGB | None = None
    needs_non_root: bool = False
    warning: str = ""


def photo(width: int = WIDTH, height: int = HEIGHT) -> Image.Image:
    """The upright test photo: BASE with a MARK block in its top-left corner."""
    array = np.empty((height, width, 3), np.uint8)
    array[:] = np.round(np.array(BASE) * 255)
    array[:MARK_SIDE, :MARK_SIDE] = np.round(np.array(MARK) * 255)
    return Image.fromarray(array)


def noise(width: int = 64, height: int = 48) -> Image.Image:
    """Random pixels: a file whose data fills most of its length (for truncation)."""
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    """``image`` saved by Pillow in format ``fmt``."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def heif(image: Image.Image, *more: Image.Image, **params: object) -> bytes:
    """``image`` (and ``more`` images after it) saved as a HEIC by pillow-heif, without
    registering its opener with Pillow (the loader must do that itself). ``quality=-1``
    with ``chroma=444``: as near lossless as HEVC goes."""
    file = pillow_heif.from_pillow(image)
    for other in more:
        file.add_from_pillow(other)
    buffer = io.BytesIO()
    file.save(buffer, **params)
    return buffer.getvalue()


def heif_photo() -> bytes:
    """The test photo as a near-lossless HEIC."""
    return heif(photo(), quality=-1, chroma=444)


def claiming_iso(data: bytes, width: int, height: int) -> bytes:
    """A HEIC or AVIF ``data`` whose image spatial extents (``ispe``: its size in the
    header) claim ``width`` x ``height``."""
    patched = bytearray(data)
    at = patched.find(b"ispe")
    assert at > 0 and b"clap" not in patched, "an image of 64 x 64: no crop box"
    while at > 0:
        patched[at + 8 : at + 16] = struct.pack(">II", width, height)
        at = patched.find(b"ispe", at + 4)
    return bytes(patched)


def gif_claiming(width: int, height: int) -> bytes:
    """The test photo as a GIF whose screen descriptor claims ``width`` x ``height``."""
    data = bytearray(encode(photo(), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def bmp_claiming(width: int, height: int) -> bytes:
    """The test photo as a BMP whose header claims ``width`` x ``height``."""
    data = bytearray(encode(photo(), "BMP"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def tiff(array: np.ndarray, **params: object) -> bytes:
    """``array`` written by tifffile (16-bit, float, CMYK, pages, tags Pillow cannot)."""
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **params)
    return buffer.getvalue()


def _photo_array(dtype: type, scale: float) -> np.ndarray:
    return (np.asarray(photo(), np.float64) / 255 * scale).astype(dtype)


def file(name: str | bytes, data: Callable[[], bytes]) -> Callable[[Path], Path]:
    """A maker writing ``data()`` to ``name`` (bytes: a name that is not UTF-8)."""

    def make(folder: Path) -> Path:
        path = folder / os.fsdecode(name)
        path.write_bytes(data())
        return path

    return make


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def png_claiming(width: int, height: int, *chunks: bytes, mode: int = 2) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (colour type ``mode``), with
    ``chunks`` before a small IDAT."""
    header = struct.pack(">IIBBBBB", width, height, 8, mode, 0, 0, 0)
    pixels = _chunk(b"IDAT", zlib.compress(b"\0" * 1024))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + b"".join(chunks) + pixels + _iend()


def _iend() -> bytes:
    return _chunk(b"IEND", b"")


def png16(array: np.ndarray) -> bytes:
    """A 16-bit RGB PNG of (H, W, 3) uint16 ``array`` (Pillow writes no such PNG)."""
    height, width, _ = array.shape
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in array)
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows))
        + _iend()
    )


def png_bomb(side: int) -> bytes:
    """A real ``side`` x ``side`` grey PNG of zeros: kilobytes that decode to side² bytes."""
    packer = zlib.compressobj(9)
    row = b"\0" * (side + 1)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _iend()


def png_with_chunk(kind: bytes, data: bytes) -> bytes:
    """The test photo as a PNG with an extra chunk ``kind`` before its image data."""
    png = encode(photo(), "PNG")
    start = png.index(b"IDAT") - 4
    return png[:start] + _chunk(kind, data) + png[start:]


def jpeg_claiming(width: int, height: int) -> bytes:
    """A JPEG start of frame claiming ``width`` x ``height``, no image data."""
    frame = struct.pack(">BHHB", 8, height, width, 3) + b"".join(
        struct.pack(">BBB", i, 0x11, 0) for i in (1, 2, 3)
    )
    return b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", len(frame) + 2) + frame + b"\xff\xd9"


def little_tiff(entries: list[tuple[int, int, int, int]], tail: bytes = b"") -> bytes:
    """A little-endian TIFF: one IFD of ``entries`` (tag, type, count, value or offset; in
    tag order), then ``tail``, which starts at byte ``14 + 12 * len(entries)``."""
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries)
    return b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + tail


def tiff_claiming(width: int, height: int) -> bytes:
    """A TIFF whose one IFD claims ``width`` x ``height`` grey pixels (and holds none)."""
    tags = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1)]
    tags += [(273, 4, 8), (278, 4, height), (279, 4, min(width * height, 2**32 - 1))]
    return little_tiff([(tag, kind, 1, value) for tag, kind, value in tags])


def tiff_packbits16(array: np.ndarray) -> bytes:
    """A 16-bit RGB TIFF of (H, W, 3) uint16 ``array`` in PackBits literal runs: a
    compression tifffile cannot undo without imagecodecs (Lightroom's LZW is another)."""
    height, width, _ = array.shape
    rows = [row.astype("<u2").tobytes() for row in array]
    runs = [row[i : i + 128] for row in rows for i in range(0, len(row), 128)]
    data = b"".join(bytes([len(run) - 1]) + run for run in runs)
    start = 14 + 12 * 10
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 3, start), (259, 3, 1, 32773)]
    entries += [(262, 3, 1, 2), (273, 4, 1, start + 6), (277, 3, 1, 3), (278, 4, 1, height)]
    entries += [(279, 4, 1, len(data)), (284, 3, 1, 1)]
    return little_tiff(entries, struct.pack("<3H", 16, 16, 16) + data)


def random_after(magic: bytes, seed: int, length: int = 4096) -> bytes:
    """``magic`` followed by random bytes."""
    return magic + np.random.default_rng(seed).bytes(length)


def with_exif(image: Image.Image, fmt: str, orientation: int, **params: object) -> bytes:
    """``image`` stored for EXIF ``orientation``: the pixels as a camera in that pose
    writes them, which that orientation turns upright again. A HEIC (``fmt`` "HEIF")
    also gets the container's rotation and mirroring for it, as a phone writes them."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = image.transpose(STORED[orientation]) if orientation in STORED else image
    if fmt == "HEIF":
        return heif(stored, exif=exif.tobytes(), **params)
    return encode(stored, fmt, exif=exif, **params)


STORED = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
"""EXIF orientation -> how the upright image is stored (the inverse of what shows it):
6 says "turn 90° clockwise to view", so the file holds the photo turned 90° anticlockwise."""


def _srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _profile_claiming(space: bytes) -> bytes:
    """An sRGB profile whose header says its colour space is ``space`` (e.g. b"CMYK")."""
    profile = bytearray(_srgb_profile())
    profile[16:20] = space
    return bytes(profile)


def _lab_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()


def _cut(data: Callable[[], bytes], at: Callable[[int], int]) -> Callable[[], bytes]:
    def cut() -> bytes:
        whole = data()
        return whole[: at(len(whole))]

    return cut


def _folder(folder: Path) -> Path:
    path = folder / "album.jpg"
    path.mkdir()
    return path


def _fifo(folder: Path) -> Path:
    path = folder / "pipe.png"
    os.mkfifo(path)
    return path


def _unreadable(folder: Path) -> Path:
    path = file("secret.png", lambda: encode(photo(), "PNG"))(folder)
    path.chmod(0)
    return path


def _dangling(folder: Path) -> Path:
    path = folder / "gone.jpg"
    path.symlink_to(folder / "deleted.jpg")
    return path


def _loop(folder: Path) -> Path:
    path = folder / "loop.jpg"
    path.symlink_to(path)
    return path


def _under_a_file(folder: Path) -> Path:
    (folder / "photo.png").write_bytes(encode(photo(), "PNG"))
    return folder / "photo.png" / "inside.png"


def _apng() -> bytes:
    frames = [photo(), photo().rotate(180), photo().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    return encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)


def _animated_webp() -> bytes:
    frames = [photo(), photo().rotate(180)]
    return encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)


def _animated_gif() -> bytes:
    frames = [photo(), photo().rotate(180)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def _animated_avif() -> bytes:
    frames = [photo(), photo().rotate(180)]
    return encode(frames[0], "AVIF", save_all=True, append_images=frames[1:], quality=100)


def _two_image_heic() -> bytes:
    """A HEIC of two images whose second is the primary one (the one a viewer shows)."""
    return heif(photo().rotate(180), photo(), quality=-1, chroma=444, primary_index=1)


def _pages(dtype: type, scale: float) -> bytes:
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer) as writer:
        writer.write(_photo_array(dtype, scale), photometric="rgb")
        writer.write(np.zeros((80, 100, 3), dtype), photometric="rgb")
    return buffer.getvalue()


def _palette_transparent() -> bytes:
    image = photo().convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    corner = image.getpixel((0, 0))
    return encode(image, "PNG", transparency=corner)


def _cmyk_jpeg() -> bytes:
    return encode(Image.new("CMYK", (WIDTH, HEIGHT), (0, 255, 255, 0)), "JPEG", quality=95)


def _cmyk16_tiff() -> bytes:
    array = np.zeros((HEIGHT, WIDTH, 4), np.uint16)
    array[..., 1:3] = 65535  # magenta + yellow: red
    return tiff(array, photometric="separated")


def _lab_tiff() -> bytes:
    return encode(Image.new("LAB", (WIDTH, HEIGHT), (136, 208, 195)), "TIFF")


def _float_rgb(values: np.ndarray) -> Callable[[], bytes]:
    return lambda: tiff(values.astype(np.float32), photometric="rgb")


def _exif_tiff16(orientation: int) -> bytes:
    stored = photo().transpose(STORED[orientation])
    array = (np.asarray(stored, np.uint32) * 257).astype(np.uint16)
    return tiff(array, photometric="rgb", extratags=[(274, "H", 1, orientation, False)])


def _broken_exif_jpeg() -> bytes:
    jpeg = encode(photo(), "JPEG", quality=95)
    junk = b"Exif\0\0MM\0*\0\0\0\x08\xff\xff" + b"\x01" * 64
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(junk) + 2) + junk + jpeg[2:]


HEIC_FTYP = struct.pack(">I", 24) + b"ftypheic" + b"\0\0\0\0" + b"mif1heic"
AVIF_FTYP = struct.pack(">I", 28) + b"ftypavif" + b"\0\0\0\0" + b"avifmif1miaf"


def _heic() -> bytes:
    """A HEIC's file type box and an empty ``meta`` box: no image."""
    return HEIC_FTYP + struct.pack(">I", 16) + b"meta" + b"\0" * 8


def _mp4() -> bytes:
    """The start of an MP4 video: an ISO media file, like HEIC, of another brand."""
    ftyp = struct.pack(">I", 24) + b"ftypisom" + b"\0\0\2\0" + b"isomiso2"
    return ftyp + struct.pack(">I", 8) + b"free" + struct.pack(">I", 16) + b"mdat" + b"\0" * 8


def _pdf() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )


SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="48" height="32">'
SVG += b'<rect width="48" height="32" fill="#3366cc"/></svg>\n'
LONG_NAME = "p" * 250 + ".png"
"""254 bytes: one under the usual file-name limit, so it is valid."""
TOO_LONG_NAME = "p" * 300 + ".png"
NOT_UTF8 = b"portr\xe4t.jpg"
"""A Latin-1 name, as old cameras and archives write them."""


def _photo_png() -> bytes:
    return encode(photo(), "PNG")


def _photo_jpeg() -> bytes:
    return encode(photo(), "JPEG", quality=95)


def _noise_files() -> dict[str, Callable[[], bytes]]:
    return {
        "jpg": lambda: encode(noise(), "JPEG", quality=90),
        "png": lambda: encode(noise(), "PNG"),
        "webp": lambda: encode(noise(), "WEBP", quality=90),
        "tif": lambda: encode(noise(), "TIFF"),
        "heic": lambda: heif(noise(), quality=90),
        "avif": lambda: encode(noise(), "AVIF", quality=90),
        "bmp": lambda: encode(noise(), "BMP"),
        "gif": lambda: encode(noise(), "GIF"),
    }


CUTS: dict[str, Callable[[int], int]] = {
    "magic only": lambda n: 8,
    "header": lambda n: 40,
    "a quarter": lambda n: n // 4,
    "half": lambda n: n // 2,
    "all but 1 byte": lambda n: n - 1,
}
TRUNCATED = r"damaged or truncated|cannot decode|not a readable image"
"""What a file cut short is refused with (which one depends on where the cut falls)."""
READS = r"JPEG, PNG, WebP, TIFF, HEIC/HEIF, AVIF, BMP and GIF"
"""What a refusal of a file of another kind says this tool reads."""
NOT_IMAGE = (
    r"not a readable image \(not a JPEG, PNG, WebP, TIFF, HEIC/HEIF, AVIF, BMP or GIF file\)"
)
ALL_OK = {"corner": MARK, "centre": BASE}
"""What a lossless conversion of :func:`photo` gives back."""


def _truncation_cases() -> dict[str, Case]:
    cases: dict[str, Case] = {}
    for ext, data in _noise_files().items():
        cases[f"empty .{ext}"] = Case(
            "empty and truncated", file(f"empty.{ext}", bytes), reason=r"empty file \(0 bytes\)"
        )
        for cut, at in CUTS.items():
            size = (64, 48) if (ext, cut) in LOADS_WHOLE else None
            reason = "" if size else TRUNCATED
            cases[f"{ext} cut: {cut}"] = Case(
                "empty and truncated", file(f"cut.{ext}", _cut(data, at)), size, reason
            )
    return cases


LOADS_WHOLE = {("png", "all but 1 byte"), ("gif", "all but 1 byte")}
"""Cuts that leave an image whole: a PNG's last byte is the end chunk's checksum, a GIF's
its trailer."""


RANDOM_HEADER = r"not a readable image|cannot decode|truncated|decompression bomb|over the limit"
"""What random bytes after a magic number are refused with (random sizes in a GIF's or a
BMP's header may claim billions of pixels)."""


def _magic_cases() -> dict[str, Case]:
    magics = {
        "jpg": b"\xff\xd8\xff\xe0",
        "png": b"\x89PNG\r\n\x1a\n",
        "webp": b"RIFF\0\x10\0\0WEBPVP8 ",
        "tif": b"II*\0",
        "tiff": b"MM\0*",
        "heic": HEIC_FTYP,
        "avif": AVIF_FTYP,
        "bmp": b"BM",
        "gif": b"GIF89a",
    }
    return {
        f"random bytes after {ext} magic #{seed}": Case(
            "random bytes with a valid magic number",
            file(f"random.{ext}", lambda magic=magic, seed=seed: random_after(magic, seed)),
            reason=RANDOM_HEADER,
        )
        for ext, magic in magics.items()
        for seed in range(3)
    }


def _size_cases() -> dict[str, Case]:
    group = "size claims and decompression bombs"
    bomb = r"decompression bomb"
    over = r"over the limit of 64 MP"
    return {
        "png claiming 100000 x 100000": Case(
            group, file("huge.png", lambda: png_claiming(100_000, 100_000)), reason=bomb
        ),
        "jpeg claiming 65000 x 65000": Case(
            group, file("huge.jpg", lambda: jpeg_claiming(65_000, 65_000)), reason=bomb
        ),
        "tiff claiming 100000 x 100000": Case(
            group, file("huge.tif", lambda: tiff_claiming(100_000, 100_000)), reason=bomb
        ),
        "png claiming 10000 x 10000 (Pillow warns)": Case(
            group, file("big.png", lambda: png_claiming(10_000, 10_000)), reason=over
        ),
        "heic claiming 100000 x 100000": Case(
            group, file("huge.heic", lambda: claiming_iso(_heic64(), 100_000, 100_000)), reason=bomb
        ),
        "heic claiming 10000 x 10000": Case(
            group, file("big.heic", lambda: claiming_iso(_heic64(), 10_000, 10_000)), reason=over
        ),
        "avif claiming 10000 x 10000": Case(
            group, file("big.avif", lambda: claiming_iso(_avif64(), 10_000, 10_000)), reason=over
        ),
        "gif claiming 65535 x 65535": Case(
            group, file("huge.gif", lambda: gif_claiming(65_535, 65_535)), reason=bomb
        ),
        "bmp claiming 100000 x 100000": Case(
            group, file("huge.bmp", lambda: bmp_claiming(100_000, 100_000)), reason=bomb
        ),
        "png bomb: 9000 x 9000 of zeros in 80 kB": Case(
            group, file("bomb.png", lambda: png_bomb(9000)), reason=over
        ),
        "png with a 100 MB zTXt bomb": Case(
            group,
            file("ztxt.png", lambda: png_with_chunk(b"zTXt", b"k\0\0" + _zeros(100))),
            reason=CHUNK_BOMB,
        ),
        "png with a 100 MB iCCP bomb": Case(
            group,
            file("iccp.png", lambda: png_with_chunk(b"iCCP", b"p\0\0" + _zeros(100))),
            reason=CHUNK_BOMB,
        ),
    }


CHUNK_BOMB = r"not a readable image \(Decompressed data too large"
"""Pillow refuses a PNG whose metadata would decompress to over 1 MB."""


def _heic64() -> bytes:
    return heif(photo(64, 64), quality=90)


def _avif64() -> bytes:
    return encode(photo(64, 64), "AVIF", quality=90)


def _zeros(megabytes: int) -> bytes:
    packer = zlib.compressobj(9)
    block = b"\0" * 1_000_000
    return b"".join(packer.compress(block) for _ in range(megabytes)) + packer.flush()


def _frames_cases() -> dict[str, Case]:
    group = "animations and pages"
    return {
        "animated gif (first frame)": Case(
            group,
            file("anim.gif", _animated_gif),
            (WIDTH, HEIGHT),
            warning=ANIMATION.format(2),
            **ALL_OK,
        ),
        "animated png (first frame)": Case(
            group, file("anim.png", _apng), (WIDTH, HEIGHT), warning=ANIMATION.format(3), **ALL_OK
        ),
        "animated webp (first frame)": Case(
            group,
            file("anim.webp", _animated_webp),
            (WIDTH, HEIGHT),
            warning=ANIMATION.format(2),
            **ALL_OK,
        ),
        "animated avif (first frame)": Case(
            group,
            file("anim.avif", _animated_avif),
            (WIDTH, HEIGHT),
            warning=ANIMATION.format(2),
            **ALL_OK,
        ),
        "heic of two images (the primary one)": Case(
            group,
            file("two.heic", _two_image_heic),
            (WIDTH, HEIGHT),
            warning="holds 2 images; its primary one was read",
            **ALL_OK,
        ),
        "multi-page tiff (first page)": Case(
            group, file("pages.tif", lambda: _pages(np.uint8, 255)), (WIDTH, HEIGHT), **ALL_OK
        ),
        "multi-page 16-bit tiff (first page)": Case(
            group, file("pages16.tif", lambda: _pages(np.uint16, 65535)), (WIDTH, HEIGHT), **ALL_OK
        ),
    }


ANIMATION = "an animation of {} frames; its first frame was read"


def _mode_cases() -> dict[str, Case]:
    group = "modes, depths and colour spaces"
    gray16 = np.full((HEIGHT, WIDTH), 40000, np.uint16)
    gray = (40000 / 65535,) * 3
    red = (1.0, 0.0, 0.0)
    hdr = np.full((HEIGHT, WIDTH, 3), 4.0)
    nan = _photo_array(np.float32, 1.0)
    nan[5, 5, 1] = np.nan
    cases = {
        "palette with transparency": Case(
            group,
            file("palette.png", _palette_transparent),
            (WIDTH, HEIGHT),
            corner=(1.0, 1.0, 1.0),
            centre=BASE,
        ),
        "grey + alpha": Case(
            group, file("la.png", lambda: encode(photo().convert("LA"), "PNG")), (WIDTH, HEIGHT)
        ),
        "rgba": Case(
            group,
            file("rgba.png", lambda: encode(photo().convert("RGBA"), "PNG")),
            (WIDTH, HEIGHT),
            **ALL_OK,
        ),
        "1-bit png": Case(
            group, file("bw.png", lambda: encode(photo().convert("1"), "PNG")), (WIDTH, HEIGHT)
        ),
        "1-bit tiff (group 4 fax)": Case(
            group,
            file("bw.tif", lambda: encode(photo().convert("1"), "TIFF", compression="group4")),
            (WIDTH, HEIGHT),
        ),
        "16-bit grey png": Case(
            group,
            file("g16.png", lambda: encode(Image.fromarray(gray16), "PNG")),
            (WIDTH, HEIGHT),
            corner=gray,
            centre=gray,
        ),
        "16-bit grey tiff": Case(
            group, file("g16.tif", lambda: tiff(gray16)), (WIDTH, HEIGHT), corner=gray
        ),
        "16-bit grey big-endian tiff": Case(
            group,
            file("g16be.tif", lambda: tiff(gray16, byteorder=">")),
            (WIDTH, HEIGHT),
            corner=gray,
        ),
        "16-bit rgb png": Case(
            group,
            file("rgb16.png", lambda: png16(_photo_array(np.uint16, 65535))),
            (WIDTH, HEIGHT),
            **ALL_OK,
        ),
        "16-bit rgb tiff": Case(
            group,
            file("rgb16.tif", lambda: tiff(_photo_array(np.uint16, 65535), photometric="rgb")),
            (WIDTH, HEIGHT),
            **ALL_OK,
        ),
        "16-bit rgb big-endian tiff": Case(
            group,
            file(
                "rgb16be.tif",
                lambda: tiff(_photo_array(np.uint16, 65535), photometric="rgb", byteorder=">"),
            ),
            (WIDTH, HEIGHT),
            **ALL_OK,
        ),
        "float grey tiff": Case(
            group,
            file("f32.tif", lambda: tiff(np.full((HEIGHT, WIDTH), 0.25, np.float32))),
            (WIDTH, HEIGHT),
            corner=(0.25,) * 3,
        ),
        "float rgb tiff": Case(
            group,
            file("rgbf.tif", _float_rgb(_photo_array(np.float32, 1.0))),
            (WIDTH, HEIGHT),
            **ALL_OK,
        ),
        "half-float rgb tiff": Case(
            group,
            file("rgbf16.tif", lambda: tiff(_photo_array(np.float16, 1.0), photometric="rgb")),
            (WIDTH, HEIGHT),
            **ALL_OK,
        ),
        "float rgb tiff over 1 (HDR)": Case(
            group, file("hdr.tif", _float_rgb(hdr)), (WIDTH, HEIGHT), corner=(1.0, 1.0, 1.0)
        ),
        "float rgb tiff with a NaN": Case(
            group, file("nan.tif", _float_rgb(nan)), reason="non-finite"
        ),
        "cmyk jpeg": Case(
            group, file("cmyk.jpg", _cmyk_jpeg), (WIDTH, HEIGHT), corner=red, centre=red
        ),
        "cmyk tiff": Case(
            group,
            file(
                "cmyk.tif",
                lambda: encode(Image.new("CMYK", (WIDTH, HEIGHT), (0, 255, 255, 0)), "TIFF"),
            ),
            (WIDTH, HEIGHT),
            corner=red,
        ),
        "16-bit rgb tiff, PackBits": Case(
            group,
            file("rgb16-packbits.tif", lambda: tiff_packbits16(_photo_array(np.uint16, 65535))),
            (WIDTH, HEIGHT),
            **ALL_OK,
        ),
        "16-bit rgb tiff, planes apart": Case(
            group,
            file(
                "rgb16-planar.tif",
                lambda: tiff(
                    np.moveaxis(_photo_array(np.uint16, 65535), -1, 0),
                    photometric="rgb",
                    planarconfig="separate",
                ),
            ),
            (WIDTH, HEIGHT),
            **ALL_OK,
        ),
        "16-bit grey + alpha tiff": Case(
            group,
            file(
                "la16.tif",
                lambda: tiff(
                    np.full((HEIGHT, WIDTH, 2), 40000, np.uint16),
                    photometric="minisblack",
                    extrasamples=["unassalpha"],
                ),
            ),
            (WIDTH, HEIGHT),
        ),
        "16-bit grey tiff, LZW (tifffile needs imagecodecs)": Case(
            group,
            file(
                "g16-lzw.tif",
                lambda: encode(Image.fromarray(gray16), "TIFF", compression="tiff_lzw"),
            ),
            (WIDTH, HEIGHT),
            corner=gray,
        ),
        "32-bit integer grey tiff": Case(
            group,
            file("i32.tif", lambda: tiff(np.full((HEIGHT, WIDTH), 40000, np.int32))),
            (WIDTH, HEIGHT),
        ),
        "16-bit cmyk tiff": Case(
            group, file("cmyk16.tif", _cmyk16_tiff), (WIDTH, HEIGHT), corner=red
        ),
        "lab tiff": Case(
            group, file("lab.tif", _lab_tiff), (WIDTH, HEIGHT), corner=(0.98, 0.0, 0.05)
        ),
        "grey jpeg": Case(
            group, file("grey.jpg", lambda: encode(photo().convert("L"), "JPEG")), (WIDTH, HEIGHT)
        ),
        "heic": Case(group, file("phone.heic", heif_photo), (WIDTH, HEIGHT), **ALL_OK),
        "heic named .jpg": Case(group, file("phone.jpg", heif_photo), (WIDTH, HEIGHT), **ALL_OK),
        "rgba heic": Case(
            group,
            file("rgba.heic", lambda: heif(photo().convert("RGBA"), quality=-1, chroma=444)),
            (WIDTH, HEIGHT),
            **ALL_OK,
        ),
        "avif": Case(
            group,
            file("photo.avif", lambda: encode(photo(), "AVIF", quality=100)),
            (WIDTH, HEIGHT),
            **ALL_OK,
        ),
        "bmp": Case(
            group, file("old.bmp", lambda: encode(photo(), "BMP")), (WIDTH, HEIGHT), **ALL_OK
        ),
        "grey bmp": Case(
            group, file("grey.bmp", lambda: encode(photo().convert("L"), "BMP")), (WIDTH, HEIGHT)
        ),
        "static gif": Case(
            group, file("still.gif", lambda: encode(photo(), "GIF")), (WIDTH, HEIGHT), **ALL_OK
        ),
        "gif with transparency": Case(
            group,
            file("clear.gif", lambda: encode(photo().convert("P"), "GIF", transparency=0)),
            (WIDTH, HEIGHT),
        ),
    }
    return cases


def _profile_cases() -> dict[str, Case]:
    group = "colour profiles"
    jpeg = lambda icc: lambda: encode(photo(), "JPEG", quality=95, icc_profile=icc())  # noqa: E731
    return {
        "icc: random bytes": Case(
            group,
            file("icc-junk.jpg", jpeg(lambda: np.random.default_rng(1).bytes(3000))),
            (WIDTH, HEIGHT),
            **ALL_OK,
        ),
        "icc: truncated sRGB": Case(
            group,
            file("icc-cut.jpg", jpeg(lambda: _srgb_profile()[:200])),
            (WIDTH, HEIGHT),
            **ALL_OK,
        ),
        "icc: claims CMYK on an RGB jpeg": Case(
            group,
            file("icc-cmyk.jpg", jpeg(lambda: _profile_claiming(b"CMYK"))),
            (WIDTH, HEIGHT),
            **ALL_OK,
        ),
        "icc: claims grey on an RGB jpeg": Case(
            group,
            file("icc-grey.jpg", jpeg(lambda: _profile_claiming(b"GRAY"))),
            (WIDTH, HEIGHT),
            **ALL_OK,
        ),
        "icc: a Lab profile on an RGB jpeg": Case(
            group, file("icc-lab.jpg", jpeg(_lab_profile)), (WIDTH, HEIGHT)
        ),
        "icc: 1 MB of junk over many segments": Case(
            group, file("icc-big.jpg", jpeg(lambda: b"\0" * 1_000_000)), (WIDTH, HEIGHT), **ALL_OK
        ),
        "icc: sRGB on a CMYK jpeg": Case(
            group,
            file(
                "icc-cmyk-srgb.jpg",
                lambda: encode(
                    Image.new("CMYK", (WIDTH, HEIGHT), (0, 255, 255, 0)),
                    "JPEG",
                    icc_profile=_srgb_profile(),
                ),
            ),
            (WIDTH, HEIGHT),
        ),
    }


def _orientation_cases() -> dict[str, Case]:
    group = "EXIF orientation"
    cases = {
        f"jpeg orientation {o}": Case(
            group,
            file(f"o{o}.jpg", lambda o=o: with_exif(photo(), "JPEG", o, quality=95)),
            (WIDTH, HEIGHT),
            **ALL_OK,
        )
        for o in range(1, 9)
    }
    cases |= {
        f"jpeg orientation {o} (invalid: ignored)": Case(
            group,
            file(f"o{o}.jpg", lambda o=o: with_exif(photo(), "JPEG", o, quality=95)),
            (WIDTH, HEIGHT),
            **ALL_OK,
        )
        for o in (0, 9, 65535)
    }
    cases |= {
        "png orientation 5": Case(
            group, file("o5.png", lambda: with_exif(photo(), "PNG", 5)), (WIDTH, HEIGHT), **ALL_OK
        ),
        "webp orientation 3": Case(
            group,
            file("o3.webp", lambda: with_exif(photo(), "WEBP", 3, lossless=True)),
            (WIDTH, HEIGHT),
            **ALL_OK,
        ),
        "8-bit tiff orientation 8": Case(
            group, file("o8.tif", lambda: with_exif(photo(), "TIFF", 8)), (WIDTH, HEIGHT), **ALL_OK
        ),
        "16-bit tiff orientation 6": Case(
            group, file("o6-16.tif", lambda: _exif_tiff16(6)), (WIDTH, HEIGHT), **ALL_OK
        ),
        "16-bit tiff orientation 7": Case(
            group, file("o7-16.tif", lambda: _exif_tiff16(7)), (WIDTH, HEIGHT), **ALL_OK
        ),
        "broken EXIF block": Case(
            group, file("bad-exif.jpg", _broken_exif_jpeg), (WIDTH, HEIGHT), **ALL_OK
        ),
        "avif orientation 8": Case(
            group,
            file("o8.avif", lambda: with_exif(photo(), "AVIF", 8, quality=100)),
            (WIDTH, HEIGHT),
            **ALL_OK,
        ),
    }
    cases |= {
        f"heic orientation {o}": Case(
            group,
            file(f"o{o}.heic", lambda o=o: with_exif(photo(), "HEIF", o, quality=-1, chroma=444)),
            (WIDTH, HEIGHT),
            **ALL_OK,
        )
        for o in (3, 5, 6, 8)
    }
    return cases


def _shape_cases() -> dict[str, Case]:
    group = "extreme shapes"
    return {
        "1 x 1 png": Case(group, file("dot.png", lambda: encode(photo(1, 1), "PNG")), (1, 1)),
        "1 x 1 jpeg": Case(group, file("dot.jpg", lambda: encode(photo(1, 1), "JPEG")), (1, 1)),
        "1 x 10000 png": Case(
            group, file("column.png", lambda: encode(photo(1, 10000), "PNG")), (1, 10000)
        ),
        "10000 x 1 png": Case(
            group, file("row.png", lambda: encode(photo(10000, 1), "PNG")), (10000, 1)
        ),
    }


def _foreign_cases() -> dict[str, Case]:
    group = "not an image this tool reads"
    return {
        "svg": Case(
            group,
            file("drawing.svg", lambda: SVG),
            reason=rf"an SVG drawing; this tool reads {READS}",
        ),
        "svg named .png": Case(
            group,
            file("drawing.png", lambda: SVG),
            reason=rf"an SVG drawing; this tool reads {READS}",
        ),
        "heic without an image": Case(
            group, file("empty.heic", _heic), reason=r"a damaged or truncated HEIC/HEIF file"
        ),
        "heic without an image, named .jpg": Case(
            group, file("empty.jpg", _heic), reason=r"a damaged or truncated HEIC/HEIF file"
        ),
        "mp4 named .heic": Case(group, file("video.heic", _mp4), reason=NOT_IMAGE),
        "pdf": Case(group, file("scan.pdf", _pdf), reason=r"a PDF document; this tool reads"),
        "pdf named .jpg": Case(
            group, file("scan.jpg", _pdf), reason=r"a PDF document; this tool reads"
        ),
        "text named .jpg": Case(
            group, file("notes.jpg", lambda: b"hello, not a photo\n"), reason=NOT_IMAGE
        ),
        "html named .png": Case(
            group, file("page.png", lambda: b"<html><body>x</body></html>"), reason=NOT_IMAGE
        ),
        "icon": Case(
            group,
            file("favicon.ico", lambda: encode(photo(), "ICO")),
            reason=rf"format ICO is not supported \({READS.replace(' and ', ' or ')}\)",
        ),
    }


def _place_cases() -> dict[str, Case]:
    group = "files, folders and names"
    return {
        "missing file": Case(group, lambda folder: folder / "missing.jpg", reason="no such file"),
        "a folder": Case(group, _folder, reason="a folder, not an image file"),
        "a FIFO": Case(group, _fifo, reason="not a regular file"),
        "unreadable (mode 000)": Case(
            group,
            _unreadable,
            reason=r"cannot be opened \(permission denied\)",
            needs_non_root=True,
        ),
        "dangling symlink": Case(group, _dangling, reason=r"no such file \(a broken link\)"),
        "symlink loop": Case(
            group, _loop, reason=r"cannot be opened \(too many levels of symbolic links\)"
        ),
        "path through a file": Case(
            group, _under_a_file, reason=r"cannot be opened \(not a directory\)"
        ),
        "non-UTF-8 name": Case(group, file(NOT_UTF8, _photo_jpeg), (WIDTH, HEIGHT), **ALL_OK),
        "non-UTF-8 name, not an image": Case(
            group, file(b"not-utf8-\xe4.jpg", lambda: b"text"), reason=NOT_IMAGE
        ),
        "254-byte name": Case(group, file(LONG_NAME, _photo_png), (WIDTH, HEIGHT), **ALL_OK),
        "304-byte name": Case(
            group,
            lambda folder: folder / TOO_LONG_NAME,
            reason=r"cannot be opened \(file name too long\)",
        ),
    }


CASES: dict[str, Case] = {
    **_truncation_cases(),
    **_magic_cases(),
    **_size_cases(),
    **_frames_cases(),
    **_mode_cases(),
    **_profile_cases(),
    **_orientation_cases(),
    **_shape_cases(),
    **_foreign_cases(),
    **_place_cases(),
}
"""Every case by name."""


def write_corpus(root: Path) -> dict[str, Path]:
    """Write every case into its own folder under ``root``; its path by case name."""
    paths = {}
    for index, (name, case) in enumerate(CASES.items()):
        folder = root / f"{index:03d}"
        folder.mkdir()
        paths[name] = case.make(folder)
    return paths
