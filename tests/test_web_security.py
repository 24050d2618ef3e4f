"""The threat model of docs/web.md against a real ``portrait-stylize serve --token``: every
route (from the app's own route table, so a new route is covered by itself) answers 401
without the token; no path or job id reaches a file outside the data folder's store;
uploads over the limits are refused while they arrive, before they are stored in full."""

from __future__ import annotations

import http.client
import json
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route

from portrait_stylize.web.app import ServerConfig, create_app

from .web_server import PHOTO, Server, submit, wait_for

TOKEN = "security-0123456789"
MAX_BYTES = 300_000
CANARY = "canary-7d1f0c-outside-the-data-folder"
"""The text of a file beside the data folder that no request may read."""


def _routes() -> list[tuple[str, str]]:
    """(method, path template) of every route the app serves: its API, its pages, the
    OpenAPI document and docs, and the static folder."""
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(ServerConfig(Path(folder)))
    found = []
    for route in app.routes:
        if isinstance(route, Mount):
            found.append(("GET", f"{route.path}/app.js"))
        elif isinstance(route, APIRoute | Route):
            found += [(method, route.path) for method in sorted(route.methods or ())]
    return found


ROUTES = _routes()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("security")
    (root / "secret.txt").write_text(CANARY)
    limits = ("--max-upload-bytes", str(MAX_BYTES), "--max-pixels", "1000000")
    running = Server(root / "data", *limits, token=TOKEN).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def job(server: Server) -> str:
    """A done job (its inputs, result, record and preview are there to be asked for)."""
    with server.client() as client:
        done = submit(client, {"method": "instant", "size": 32}).json()["id"]
        wait_for(client, done)
    return done


def _concrete(path: str, job: str) -> str:
    values = {"job_ref": job, "index": "0", "name": PHOTO.name}
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda match: values[match[1]], path)


def test_the_route_table_is_all_there() -> None:
    paths = {path for _, path in ROUTES}
    assert {"/", "/openapi.json", "/docs", "/static/app.js", "/api/jobs"} <= paths
    assert "/api/jobs/{job_ref}/events" in paths and len(ROUTES) >= 20


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_every_route_needs_the_token(server: Server, job: str, method: str, path: str) -> None:
    url = _concrete(path, job)
    wrong = {"Authorization": f"Bearer {TOKEN}x", "Cookie": "portrait_stylize_token=nope"}
    with httpx.Client(base_url=server.url, timeout=60) as anonymous:
        for headers in ({}, wrong):
            refused = anonymous.request(method, url, headers=headers, params={"token": "no"})
            assert refused.status_code == 401, (method, url, refused.text)
            if method != "HEAD":
                assert "token" in refused.json()["error"]
            assert job not in refused.text and "portrait_stylize_token" not in str(
                refused.headers.get("set-cookie")
            )
    with server.client() as client:  # the path is right: with the token it gets further
        if method not in ("GET", "HEAD"):  # and changes nothing
            url = _concrete(path, "no-such-job")
        allowed = client.request(method, url)
        assert allowed.status_code != 401 and allowed.status_code < 500, (method, url)


TRAVERSALS = [
    "/static/../../secret.txt",
    "/static/%2e%2e/%2e%2e/secret.txt",
    "/static/..%2f..%2fsecret.txt",
    "/static/%252e%252e%252f%252e%252e%252fsecret.txt",
    "/static/....//....//secret.txt",
    "/static/..\\..\\secret.txt",
    "/static//etc/passwd",
    "/static/%00../secret.txt",
    "/api/examples/..%2f..%2fpyproject.toml",
    "/api/examples/%2e%2e%2fREADME.md",
    "/api/examples/..%5c..%5cpyproject.toml",
    "/api/examples/%2fetc%2fpasswd",
    "/api/jobs/..%2f..%2fsecret.txt",
    "/api/jobs/..%2fjobs.sqlite3/result",
    "/api/jobs/%2e%2e/record",
    "/api/jobs/../../secret.txt/inputs/0",
    "/api/jobs/%2fetc%2fpasswd/preview",
    "/api/jobs/JOB/inputs/-1",
    "/api/jobs/JOB/inputs/99999999999999999999",
    "/api/jobs/JOB/inputs/0%2f..%2f..%2fsecret.txt",
    "/api/jobs/JOB/result?format=../../secret.txt",
    "/api/jobs/JOB%00/result",
    "/api/jobs/JOB/../../../secret.txt",
    "/api/jobs/FILE/result",
    "/api/jobs/FILE/inputs/0",
]
"""Paths and job ids that try to leave the store, plain and encoded. JOB is a real job,
FILE the name of a stored file (a job id is never a file name)."""


@pytest.mark.parametrize("path", TRAVERSALS)
def test_no_path_or_job_id_reaches_another_file(server: Server, job: str, path: str) -> None:
    stored = next((server.data / "files").glob("*/*")).name
    raw = path.replace("JOB", job).replace("FILE", stored)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:  # http.client sends the path as it is: no normalising of dots or escapes
        connection.request("GET", raw, headers={"Authorization": f"Bearer {TOKEN}"})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status in (400, 404), (raw, response.status, body[:200])
    assert CANARY.encode() not in body and b"SQLite format" not in body and b"root:" not in body
    assert "error" in json.loads(body)


def _multipart_head(port: int, length: int) -> bytes:
    return (
        f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {TOKEN}\r\n"
        "Content-Type: multipart/form-data; boundary=limit-boundary\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


@pytest.mark.parametrize("field", ["content", "style"])
def test_an_upload_over_the_byte_limit_is_refused_while_it_arrives(
    server: Server, field: str
) -> None:
    """A part over the limit (within the request's overall limit) gets 413 as soon as its
    bytes pass the limit: the rest is never read, and nothing reaches ``tmp/``."""
    part = (
        f'--limit-boundary\r\nContent-Disposition: form-data; name="{field}"; '
        'filename="big.png"\r\nContent-Type: image/png\r\n\r\n'
    ).encode()
    total = len(part) + 6 * MAX_BYTES  # the whole body the request announces
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(_multipart_head(server.port, total) + part)
        sent = 0
        chunk = b"\x89PNG\r\n\x1a\n" + bytes(64 * 1024 - 8)
        while sent < 2 * MAX_BYTES:  # twice the limit, a third of the announced body
            sock.sendall(chunk)
            sent += len(chunk)
        sock.settimeout(10)
        began = time.monotonic()
        answer = b""
        while b'"}' not in answer and (chunk := sock.recv(65536)):
            answer += chunk
    text = answer.decode(errors="replace")
    assert text.startswith("HTTP/1.1 413"), text[:300]
    name = "style[0]" if field == "style" else field
    assert f'"{name}: larger than {MAX_BYTES} bytes"' in text
    assert time.monotonic() - began < 10
    assert not any((server.data / "tmp").iterdir())


def test_errors_stay_one_line_and_a_405_says_what_is_allowed(server: Server) -> None:
    """Found by the fuzzer: a job id with a newline made a two-line error message (now
    escaped, as the CLI's); a 405 lost its Allow header in the JSON error handler."""
    with server.client() as client:
        missing = client.get("/api/jobs/a%0Ab%1B%5B31m")
        assert missing.status_code == 404
        assert missing.json()["error"] == "no job a\\x0ab\\x1b[31m"
        wrong = client.put("/api/jobs")
        assert wrong.status_code == 405 and "error" in wrong.json()
        allowed = set(wrong.headers["allow"].replace(" ", "").split(","))
        assert allowed and allowed <= {"GET", "POST"}  # (Starlette names one route's)
