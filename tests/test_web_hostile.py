"""Hostile uploads against a real server: each gets its status, a JSON error and no
traceback, and leaves nothing behind (no job, no file)."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from .web_server import PAINTING, PHOTO, Server, stored_files, submit, wait_for

MAX_BYTES = 300_000
MAX_PIXELS = 1_000_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    limits = ["--max-upload-bytes", str(MAX_BYTES), "--max-pixels", str(MAX_PIXELS)]
    running = Server(tmp_path_factory.mktemp("hostile") / "data", *limits).start()
    yield running
    running.stop()


def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 4096)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def _broken_png() -> bytes:
    data = bytearray(_png(64, 64))
    data[-30:-12] = b"\xff" * 18  # the image data and its checksum
    return bytes(data)


PHOTO_BYTES = PHOTO.read_bytes()
CASES = {
    "text named .png": (b"hello, I am not an image", 415),
    "html": (b"<html><script>alert(1)</script></html>", 415),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg"/>', 415),
    "pdf": (b"%PDF-1.4\n%%EOF\n", 415),
    "mp4 (an ISO media file, like HEIC)": (b"\0\0\0\x18ftypisom\0\0\2\0isomiso2", 415),
    "gif without an image": (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", 400),
    "heic without an image": (b"\0\0\0\x18ftypheic\0\0\0\0mif1heic\0\0\0\x10meta" + bytes(8), 400),
    "empty": (b"", 400),
    "over the byte limit": (b"\x89PNG\r\n\x1a\n" + b"\0" * MAX_BYTES, 413),
    "over the pixel limit": (_png(1200, 1000), 413),
    "decompression bomb header": (_png_claiming(5000, 5000), 413),
    "absurd header": (_png_claiming(100_000, 100_000), 413),
    "truncated jpeg": (PHOTO_BYTES[:3000], 400),
    "corrupt png": (_broken_png(), 400),
}


def _post(
    client: httpx.Client, content: bytes, styles: int = 1, settings: str = "{}"
) -> httpx.Response:
    files = [("content", ("../../../etc/passwd.png", content, "image/png"))]
    files += [("style", ("style.jpg", PAINTING.read_bytes(), "image/jpeg"))] * styles
    return client.post("/api/jobs", files=files, data={"settings": settings})


def _assert_nothing_left(server: Server, client: httpx.Client) -> None:
    assert client.get("/api/jobs").json() == []
    assert stored_files(server.data) == []


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_content(server: Server, case: str) -> None:
    content, status = CASES[case]
    with server.client() as client:
        response = _post(client, content)
        assert response.status_code == status, response.text
        assert set(response.json()) == {"error"} and "Traceback" not in response.text
        assert response.json()["error"].startswith("content")
        assert str(server.data) not in response.text
        _assert_nothing_left(server, client)


@pytest.mark.parametrize("endpoint", ["/api/inspect", "/api/instant"])
@pytest.mark.parametrize("case", list(CASES))
def test_hostile_photo_before_a_job(server: Server, case: str, endpoint: str) -> None:
    content, status = CASES[case]
    with server.client() as client:
        files = [("content", ("../../../etc/passwd.png", content, "image/png"))]
        files += [("style", ("style.jpg", PAINTING.read_bytes(), "image/jpeg"))]
        response = client.post(endpoint, files=files)
        assert response.status_code == status, response.text
        assert set(response.json()) == {"error"} and "Traceback" not in response.text
        assert response.json()["error"].startswith("content")
        assert str(server.data) not in response.text
        _assert_nothing_left(server, client)


def test_hostile_style(server: Server) -> None:
    with server.client() as client:
        files = [("content", ("a.jpg", PHOTO_BYTES, "image/jpeg"))]
        files += [("style", ("b.jpg", PAINTING.read_bytes(), "image/jpeg"))]
        files += [("style", ("c.png", b"<?php system($_GET[1]); ?>", "image/png"))]
        for endpoint in ("/api/jobs", "/api/instant"):
            response = client.post(endpoint, files=files)
            assert response.status_code == 415, endpoint
            assert response.json()["error"].startswith("style[1]")
        _assert_nothing_left(server, client)


@pytest.mark.parametrize(
    ("settings", "status"),
    [
        ('{"mask": "/etc/passwd"}', 400),
        ('{"background": "texture:/etc/passwd"}', 400),
        ('{"size": 100000}', 400),
        ("not json", 400),
        ('{"size": 1e999}', 400),
    ],
)
def test_hostile_settings(server: Server, settings: str, status: int) -> None:
    with server.client() as client:
        response = _post(client, PHOTO_BYTES, settings=settings)
        assert response.status_code == status and "error" in response.json()
        _assert_nothing_left(server, client)


def test_too_many_styles_and_missing_parts(server: Server) -> None:
    with server.client() as client:
        assert _post(client, PHOTO_BYTES, styles=9).status_code == 400
        assert client.post("/api/jobs", data={"settings": "{}"}).status_code == 400
        assert client.post("/api/jobs", content=b"\0" * 100).status_code == 400
        _assert_nothing_left(server, client)


def test_oversized_requests(server: Server) -> None:
    with server.client() as client:
        multipart = {"Content-Type": "multipart/form-data; boundary=x"}
        huge = b"\0" * (MAX_BYTES * 9 + 1_100_000)
        declared = client.post("/api/jobs", content=huge, headers=multipart)
        assert declared.status_code == 413 and "error" in declared.json()

        def chunks() -> Iterator[bytes]:  # one endless file part, no Content-Length
            yield b'--x\r\nContent-Disposition: form-data; name="content"; filename="a"\r\n\r\n'
            for _ in range(40):
                yield b"\0" * 100_000

        streamed = client.post("/api/jobs", content=chunks(), headers=multipart)
        assert streamed.status_code == 413
        _assert_nothing_left(server, client)


def test_user_file_names_never_become_paths(server: Server, tmp_path: Path) -> None:
    with server.client() as client:
        response = submit(client, {"method": "gatys", "size": 32, "iterations": 1}, content=PHOTO)
        assert response.status_code == 201
        job = response.json()["id"]
        named = _post(
            client, PHOTO_BYTES, settings='{"method": "gatys", "size": 32, "iterations": 1}'
        )
        assert named.json()["id"] == job  # the same bytes and settings: the same job
        wait_for(client, job)
        names = [p.name for p in server.data.rglob("*")]
        assert not any("passwd" in name or name.endswith((".jpg", ".png")) for name in names)
        assert client.delete(f"/api/jobs/{job}").status_code == 204
        _assert_nothing_left(server, client)
