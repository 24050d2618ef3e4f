"""The HTTP API against a real server process on 127.0.0.1, with tiny real runs."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from portrait_stylize import machine, models
from portrait_stylize.features import BACKBONES, FeatureExtractor, relu_layers
from portrait_stylize.methods import DEFAULT_METHOD, resolve_settings
from portrait_stylize.nets.vgg import VGGTrunk
from portrait_stylize.web import estimate
from portrait_stylize.web.app import ServerConfig, create_app
from portrait_stylize.web.settings import Limits, form_schema

from .web_server import EXAMPLES, PAINTING, PHOTO, TINY, Server, stored_files, submit, wait_for


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("web") / "data").start()
    yield running
    running.stop()


def _events(
    client: httpx.Client, job: str, after: int | None = None
) -> list[tuple[int, str, dict]]:
    """The job's server-sent events (its stream ends with the job's final event)."""
    headers = {"Last-Event-ID": str(after)} if after is not None else {}
    events, current = [], {}
    with client.stream("GET", f"/api/jobs/{job}/events", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith(("id", "event", "data")):
                key, _, value = line.partition(": ")
                current[key] = value
            elif not line and current:
                events.append((int(current["id"]), current["event"], json.loads(current["data"])))
                current = {}
    return events


def test_a_job_runs_and_serves_its_result(server: Server) -> None:
    with server.client() as client:
        created = submit(client, TINY)
        assert created.status_code == 201, created.text
        job = created.json()["id"]
        again = submit(client, {**TINY, "seed": 0})  # the same job, spelled out
        assert again.status_code == 200 and again.json() == {"id": job}

        state = wait_for(client, job)
        assert state["id"] == job and state["error"] is None and state["attempts"] == 1
        assert (state["stage"], state["stages"], state["step"], state["steps"]) == (1, 1, 3, 3)
        assert state["settings"] == {"method": "gatys", "seed": 0, **TINY}
        assert state["created"].endswith("+00:00") and state["position"] is None
        assert {"loss", "content", "style"} <= set(state["terms"])

        png = client.get(f"/api/jobs/{job}/result")
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert f"portrait-{job}.png" in png.headers["content-disposition"]
        assert max(Image.open(io.BytesIO(png.content)).size) == 32
        tif = client.get(f"/api/jobs/{job}/result", params={"format": "tif"})
        assert tifffile.imread(io.BytesIO(tif.content)).dtype == np.uint16
        record = client.get(f"/api/jobs/{job}/record").json()
        assert record["method"] == "gatys" and record["settings"]["iterations"] == 3
        assert record["weights"] and "sha256" in record["inputs"]["content"]
        assert client.get(f"/api/jobs/{job}/preview").content == png.content
        photo = client.get(f"/api/jobs/{job}/inputs/0")
        assert photo.content == PHOTO.read_bytes() and photo.headers["content-type"] == "image/jpeg"
        assert client.get(f"/api/jobs/{job}/inputs/1").content == PAINTING.read_bytes()
        assert client.get(f"/api/jobs/{job}/inputs/2").status_code == 404

        events = _events(client, job)
        kinds = [kind for _, kind, _ in events]
        assert kinds[:2] == ["queued", "started"] and kinds[-1] == "done"
        assert {"estimate", "stage", "progress"} <= set(kinds)
        assert kinds.index("estimate") < kinds.index("stage")
        progress = [data for _, kind, data in events if kind == "progress"][-1]
        assert (progress["stage"], progress["step"], progress["steps"]) == (1, 3, 3)
        middle = events[len(events) // 2][0]
        assert _events(client, job, after=middle) == [e for e in events if e[0] > middle]

        assert client.post(f"/api/jobs/{job}/cancel").status_code == 409  # it is done
        newer = submit(client, {**TINY, "seed": 1}).json()["id"]
        listed = [j["id"] for j in client.get("/api/jobs").json()]
        assert listed.index(newer) < listed.index(job)
        wait_for(client, newer)


def test_cancel_and_delete(server: Server) -> None:
    with server.client() as client:
        job = submit(client, {**TINY, "size": 48, "iterations": 2000, "seed": 5}).json()["id"]
        running = wait_for(client, job, ("running",))
        assert running["status"] == "running"
        assert client.delete(f"/api/jobs/{job}").status_code == 409
        cancelled = client.post(f"/api/jobs/{job}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert client.post(f"/api/jobs/{job}/cancel").status_code == 200  # idempotent
        assert client.get(f"/api/jobs/{job}/result").status_code == 404
        assert _events(client, job)[-1][1] == "cancelled"
        follow = submit(client, {**TINY, "seed": 6}).json()["id"]  # the worker is free again
        wait_for(client, follow, timeout=60)
        before = set(stored_files(server.data))
        assert client.delete(f"/api/jobs/{job}").status_code == 204
        assert client.get(f"/api/jobs/{job}").status_code == 404
        assert client.delete(f"/api/jobs/{job}").status_code == 404
        time.sleep(0.5)
        removed = before - set(stored_files(server.data))
        assert all(job in str(path) for path in removed)  # its checkpoint and preview only
        assert set(stored_files(server.data)) >= {
            server.data / "files" / sha[:2] / sha for sha in _input_hashes(client, follow)
        }


def _input_hashes(client: httpx.Client, job: str) -> list[str]:
    record = client.get(f"/api/jobs/{job}/record").json()
    content = record["inputs"]["content"]["sha256"]
    return [content, *(s["sha256"] for s in record["inputs"]["styles"])]


def test_errors_are_json_with_the_right_status(server: Server) -> None:
    with server.client() as client:
        for path in (
            "/api/jobs/nope",
            "/api/jobs/nope/result",
            "/api/jobs/nope/events",
            "/nowhere",
        ):
            response = client.get(path)
            assert response.status_code == 404 and "error" in response.json(), path
        assert client.post("/api/jobs/nope/cancel").status_code == 404
        bad = submit(client, {"size": "large"})
        assert bad.status_code == 400 and bad.json()["field"] == "size"
        assert bad.json()["error"].startswith("size")
        assert submit(client, {"mask": "/etc/passwd"}).status_code == 400
        missing = client.post("/api/jobs", files=[("content", ("a.jpg", PHOTO.read_bytes()))])
        assert missing.status_code == 400 and missing.json()["error"].startswith("style")
        assert client.get("/api/jobs", params={"limit": 0}).status_code == 400
        wrong = client.get("/api/jobs/x/result", params={"format": "gif"})
        assert wrong.status_code in (400, 404) and "Traceback" not in wrong.text
        assert client.get("/openapi.json").json()["paths"]["/api/jobs"]
        assert client.get("/docs").status_code == 200
        page = client.get("/")
        assert page.status_code == 200 and "portrait-stylize" in page.text
        assert client.get("/static/app.js").status_code == 200
        examples = client.get("/api/examples").json()
        assert {"name": "starry_night.jpg", "kind": "painting"}.items() <= examples[2].items()
        assert client.get("/api/examples/..%2Fpyproject.toml").status_code == 404
        assert client.get("/api/examples/starry_night.jpg").content == PAINTING.read_bytes()


def test_a_token_guards_every_request(tmp_path: Path) -> None:
    guarded = Server(tmp_path / "data", "--workers", "1", token="s3cret").start()
    try:
        with httpx.Client(base_url=guarded.url) as anonymous:
            for path in ("/", "/api/jobs", "/docs", "/static/app.js"):
                response = anonymous.get(path)
                assert response.status_code == 401 and "token" in response.json()["error"]
            assert (
                anonymous.get("/api/jobs", headers={"Authorization": "Bearer nope"}).status_code
                == 401
            )
            page = anonymous.get("/", params={"token": "s3cret"})
            assert (
                page.status_code == 200 and "portrait_stylize_token" in page.headers["set-cookie"]
            )
            assert anonymous.get("/api/jobs").status_code == 200  # the page's cookie
        with guarded.client() as client:
            assert client.get("/api/jobs").json() == []
    finally:
        guarded.stop()


def test_other_hosts_need_a_token(tmp_path: Path) -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "portrait_stylize.cli", "serve", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert refused.returncode == 2
    assert "--token" in refused.stderr and "Traceback" not in refused.stderr


def _inspect(client: httpx.Client, photo: Path, settings: str = "{}") -> httpx.Response:
    files = [("content", (photo.name, photo.read_bytes(), "image/jpeg"))]
    return client.post("/api/inspect", files=files, data={"settings": settings})


def _pixels(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(image.convert("RGB").resize(size, Image.Resampling.BICUBIC), np.float32)


def test_inspect_shows_the_faces_and_the_person(server: Server) -> None:
    with server.client() as client:
        response = _inspect(client, PHOTO)
        assert response.status_code == 200, response.text
        found = response.json()
        assert found["size"] == [512, 512] and found["detector"] == "mtcnn"
        assert found["face_count"] >= 1 and 0.2 < found["person_fraction"] < 0.9
        face = found["faces"][0]
        assert face["used"] and face["score"] > 0.9
        x1, y1, x2, y2 = (round(v) for v in face["box"])
        assert 0 <= x1 < x2 <= 512 and 0 <= y1 < y2 <= 512

        header, _, data = found["overlay"].partition(",")
        assert header == "data:image/png;base64"
        overlay = Image.open(io.BytesIO(base64.b64decode(data)))
        assert overlay.format == "PNG" and overlay.size == (512, 512)
        painted = _pixels(overlay, overlay.size)[y1:y2, x1:x2]
        photo = _pixels(Image.open(PHOTO), overlay.size)[y1:y2, x1:x2]
        assert np.abs(painted - photo).mean() > 20  # the face tinted as person, boxed

        nobody = _inspect(client, PAINTING)  # no face is an answer, not an error
        assert nobody.status_code == 200, nobody.text
        assert nobody.json()["face_count"] == 0 and nobody.json()["faces"] == []
        wide = Image.open(io.BytesIO(base64.b64decode(nobody.json()["overlay"].split(",")[1])))
        assert wide.size == (512, 409)  # 752 x 600 at most 512 on its long side

        blaze = _inspect(client, PHOTO, '{"face_detector": "blazeface"}').json()
        assert blaze["detector"] == "blazeface" and blaze["face_count"] >= 1
        bad = _inspect(client, PHOTO, '{"min_face_fraction": 2}')
        assert bad.status_code == 400 and bad.json()["field"] == "min_face_fraction"
        assert list((server.data / "tmp").iterdir()) == []  # uploads checked, then gone


def _instant(client: httpx.Client, photo: Path, **form: str) -> httpx.Response:
    files = [("content", (photo.name, photo.read_bytes(), "image/jpeg"))]
    files += [("style", (PAINTING.name, PAINTING.read_bytes(), "image/jpeg"))]
    return client.post("/api/instant", files=files, data=form)


def test_instant_preview(server: Server) -> None:
    tall = EXAMPLES / "grace_hopper.jpg"  # 512 x 600
    with server.client() as client:
        response = _instant(client, tall)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "image/png"
        preview = Image.open(io.BytesIO(response.content))
        assert preview.format == "PNG" and preview.size == (218, 256)
        photo = _pixels(Image.open(tall), preview.size)
        assert np.abs(_pixels(preview, preview.size) - photo).mean() > 15  # painted
        weaker = _instant(client, tall, style_strength="0.2")
        assert weaker.status_code == 200 and weaker.content != response.content
        assert _instant(client, tall, style_strength="2").status_code == 400
        only_photo = [("content", ("a.jpg", PHOTO.read_bytes(), "image/jpeg"))]
        missing = client.post("/api/instant", files=only_photo)
        assert missing.status_code == 400 and missing.json()["error"].startswith("style")
        assert list((server.data / "tmp").iterdir()) == []


def _estimate(
    client: Any, settings: dict[str, Any], width: int = 512, height: int = 512, faces: int = 1
) -> httpx.Response:
    """POST /api/estimate for ``settings`` and a photo of this size and faces."""
    body = {"settings": settings, "width": width, "height": height, "faces": faces}
    return client.post("/api/estimate", json=body)


def test_estimate_before_and_after_the_machine_is_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process, on an empty cache: no figure until the machine is measured, then the
    library's plan for the photo's size and faces; a feed-forward method is a second."""
    monkeypatch.setenv("PORTRAIT_STYLIZE_HOME", str(tmp_path / "home"))
    assert form_schema(Limits())["default_method"] == DEFAULT_METHOD == "portrait-painting"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Starlette's on the httpx it is built on
        from fastapi.testclient import TestClient
    client = TestClient(create_app(ServerConfig(tmp_path / "data")))
    unmeasured = _estimate(client, {})
    assert unmeasured.status_code == 200, unmeasured.text
    assert unmeasured.json() == {"seconds": None, "stages": [], "measured": False}
    instant = _estimate(client, {"method": "instant", "size": 1024}).json()
    assert instant == {"seconds": 1.0, "stages": [1.0], "measured": False}

    painting = resolve_settings(DEFAULT_METHOD)
    cpu = torch.device("cpu")
    key = machine.machine_key(painting.backbone, cpu, painting.autocast)
    speed = machine.Speed(key, False, {256: 0.1, 512: 0.5})
    machine.save(speed)
    found = _estimate(client, {}, width=600, height=400, faces=2).json()
    plan = speed.plan(painting, 400, 600, 2)
    assert found["measured"] and found["seconds"] == pytest.approx(sum(plan), abs=0.1)
    assert found["stages"] == [round(s, 1) for s in plan] and len(plan) == 5
    assert (
        _estimate(client, {}, faces=0).json()["seconds"] < _estimate(client, {}).json()["seconds"]
    )
    small = _estimate(client, {"size": 256}).json()
    assert small["seconds"] < found["seconds"] and len(small["stages"]) == 3
    gatys = {"method": "gatys", "iterations": 10}  # no face loss: faces do not count
    assert _estimate(client, gatys, faces=0).json() == _estimate(client, gatys, faces=3).json()

    bad = _estimate(client, {"size": 5000})
    assert bad.status_code == 400 and bad.json()["field"] == "size"
    assert _estimate(client, {"mask": "/etc/passwd"}).status_code == 400
    nan = '{"settings": {"identity": NaN}, "width": 5, "height": 5}'
    json_body = {"Content-Type": "application/json"}
    assert client.post("/api/estimate", content=nan, headers=json_body).status_code == 400
    for body in ({"width": 0, "height": 1}, {"width": 5, "height": 5, "x": 1}, {"settings": []}):
        refused = client.post("/api/estimate", json=body)
        assert refused.status_code == 400 and "error" in refused.json(), body
    operation = client.get("/openapi.json").json()["paths"]["/api/estimate"]["post"]
    assert set(operation["responses"]) == {"200", "400", "401", "500"}


def test_a_worker_measures_the_machine_once_before_its_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The default method's network is timed once (here with random weights, at small
    sizes); a machine measured already is not timed again."""
    monkeypatch.setenv("PORTRAIT_STYLIZE_HOME", str(tmp_path))
    monkeypatch.setattr(machine, "PROBE_SIZES", (32, 64))
    settings = resolve_settings(DEFAULT_METHOD)
    spec = BACKBONES[settings.backbone]
    torch.manual_seed(0)
    extractor = FeatureExtractor(
        spec, VGGTrunk(spec.arch), dict.fromkeys(relu_layers(spec.arch), 1.0)
    )
    monkeypatch.setattr(models, "extractor", lambda *args: extractor)
    cpu = torch.device("cpu")
    assert machine.load(settings.backbone, cpu, settings.autocast) is None
    with caplog.at_level("INFO", "portrait_stylize.web"):
        assert estimate.measure_once(DEFAULT_METHOD, "cpu")
    assert machine.load(settings.backbone, cpu, settings.autocast) is not None
    assert "once, for the estimates" in caplog.text
    assert not estimate.measure_once(DEFAULT_METHOD, "cpu")
