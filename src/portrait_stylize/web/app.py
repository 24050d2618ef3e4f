"""The HTTP API and the page: ``create_app(ServerConfig(data=...))``.

Every error is JSON ``{"error": message}`` with the status of the error table
(:mod:`portrait_stylize.errors`): bad uploads or settings 400/413/415, unknown jobs 404,
the job database locked by another process 503 (with Retry-After), anything unexpected
500, never a traceback. With a token, every request must carry it
(``Authorization: Bearer T``, ``?token=T``, or the cookie the page sets; :mod:`.guard`).
Every answer is described in ``/openapi.json`` (:mod:`.responses`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, File, Form, Header, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from .. import __version__
from ..errors import PortraitStylizeError, SettingsError, outcome
from ..images import LoadedImage
from ..jobdb import StoreFull, StoreUnavailable, job_id
from ..methods import job_settings
from .estimate import estimate
from .guard import Guard, error
from .quicklook import bounded, inspect_photo, instant_preview
from .responses import (
    TOKEN_COOKIE,
    Estimate,
    EstimateRequest,
    Example,
    Inspection,
    JobCreated,
    JobView,
    SettingsSchema,
    errors,
    event_stream,
    file_response,
    finish_schema,
)
from .settings import Limits, form_schema, parse_job_settings
from .store import ACTIVE, FINISHED, NO_SPACE, Job, JobStore, busy_message
from .uploads import MEDIA_TYPES, UploadRejected, check_image, save_upload, sniff

log = logging.getLogger("portrait_stylize.web")

STATIC = Path(__file__).parent / "static"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
"""The bundled public-domain images of a source checkout."""
EVENT_POLL_S = 0.5
KEEPALIVE_S = 15.0
FORM_OVERHEAD = 1_000_000
"""Bytes a request may carry besides its images (settings, multipart framing)."""
NETWORK_WAIT_S = 60.0
"""How long a look before a job (faces, instant preview) waits for the one running."""
BUSY_RETRY_AFTER_S = 5
"""The Retry-After of a 503 for a job database locked by another process."""
JOB_VIEW: dict[str, Any] = {"response_model": JobView, "response_model_exclude_unset": True}
"""A route answering with jobs: only the links a job has."""


@dataclass(frozen=True)
class ServerConfig:
    """The app's data folder, its token (None: open, loopback only), its limits and the
    workers' device (what estimates are for)."""

    data: Path
    token: str | None = None
    limits: Limits = field(default_factory=Limits)
    examples: Path = EXAMPLES
    device: str = "cpu"


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")


def create_app(config: ServerConfig) -> FastAPI:
    """The FastAPI app over the store in ``config.data``."""
    store = JobStore(config.data)
    limits = config.limits
    app = FastAPI(
        title="portrait-stylize",
        version=__version__,
        description="Paint a photograph of people in the style of a painting: jobs, "
        "progress, previews and results.",
    )
    max_body = limits.max_bytes * (1 + limits.max_styles) + FORM_OVERHEAD
    app.add_middleware(Guard, token=config.token, max_body=max_body, max_part=limits.max_bytes)
    describe = app.openapi

    def openapi() -> dict[str, Any]:
        return finish_schema(describe(), config.token is not None)

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(HTTPException)
    async def httperror(request: Request, exc: HTTPException) -> Response:
        return error(exc.status_code, str(exc.detail), exc.headers)  # e.g. a 405's Allow

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"] if part not in ("body", "query"))
        return error(400, f"{where}: {first['msg']}")

    @app.exception_handler(UploadRejected)
    async def rejected(request: Request, exc: UploadRejected) -> Response:
        return error(exc.status, str(exc))

    @app.exception_handler(StoreUnavailable)
    async def busy(request: Request, exc: StoreUnavailable) -> Response:
        message = busy_message(exc)
        log.warning("%s %s: %s", request.method, request.url.path, message)
        status = 507 if isinstance(exc, StoreFull) else 503
        return error(status, message, {"Retry-After": str(BUSY_RETRY_AFTER_S)})

    @app.exception_handler(OSError)
    async def no_space(request: Request, exc: OSError) -> Response:
        """A full disk (an upload being saved): 507; any other OSError is a fault."""
        if exc.errno not in NO_SPACE:
            return await internal(request, exc)
        message = "the server's disk is full; try again later"
        log.warning("%s %s: %s", request.method, request.url.path, message)
        return error(507, message, {"Retry-After": str(BUSY_RETRY_AFTER_S)})

    @app.exception_handler(PortraitStylizeError)
    async def libraryerror(request: Request, exc: PortraitStylizeError) -> Response:
        extra = {}
        if isinstance(exc, SettingsError) and exc.field:  # for a form to mark the field
            extra["field"] = exc.field
        return error(outcome(exc).http_status, str(exc), **extra)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> Response:
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return error(500, f"internal error ({type(exc).__name__}); see the server's log")

    networks = threading.Lock()

    @contextmanager
    def one_at_a_time() -> Iterator[None]:
        """The server's own networks (faces, mask, instant), one request at a time: the
        memory of one decoded upload and one forward pass, whatever comes in."""
        if not networks.acquire(timeout=NETWORK_WAIT_S):
            raise HTTPException(503, "busy with other previews; try again")
        try:
            yield
        finally:
            networks.release()

    @contextmanager
    def temp_files() -> Iterator[list[Path]]:
        """A list to note temporary upload paths in; they are removed on leaving."""
        paths: list[Path] = []
        try:
            yield paths
        finally:
            for path in paths:
                path.unlink(missing_ok=True)

    def receive(upload: UploadFile, name: str, paths: list[Path]) -> tuple[Path, str, LoadedImage]:
        """Save and check one upload field ``name`` (:mod:`.uploads`) to a temporary path
        noted in ``paths``: (path, sha256, decoded image)."""
        path = store.temp_path()
        paths.append(path)
        sha = save_upload(upload.file, path, name, limits.max_bytes)
        return path, sha, check_image(path, name, limits)

    def check_styles(style: list[UploadFile]) -> list[tuple[str, UploadFile]]:
        if len(style) > limits.max_styles:
            raise SettingsError(f"style: at most {limits.max_styles} style images", "style")
        return [(f"style[{i}]", s) for i, s in enumerate(style)]

    def found(job_ref: str) -> Job:
        job = store.get(job_ref)
        if job is None:
            raise HTTPException(404, f"no job {job_ref}")
        return job

    def view(job: Job) -> dict[str, Any]:
        """A job as the API shows it."""
        base = f"/api/jobs/{job.id}"
        count = 1 + len(job.inputs["styles"])
        links: dict[str, Any] = {
            "events": f"{base}/events",
            "inputs": [f"{base}/inputs/{i}" for i in range(count)],
        }
        if job.status == "done":
            links |= {"result": f"{base}/result", "tif": f"{base}/result?format=tif"}
            links |= {"record": f"{base}/record", "preview": f"{base}/preview"}
        elif (store.work_dir(job.id) / "preview.png").is_file():
            links["preview"] = f"{base}/preview"
        return {
            "id": job.id,
            "status": job.status,
            "stage": job.stage,
            "stages": job.stages,
            "step": job.step,
            "steps": job.steps,
            "eta_s": job.eta_s,
            "error": job.error,
            "created": _iso(job.created),
            "settings": job.settings,
            "attempts": job.attempts,
            "position": store.position(job),
            "terms": job.terms,
            "links": links,
        }

    @app.get("/", include_in_schema=False)
    def index(token: str | None = None) -> Response:
        response = FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})
        if config.token is not None and token is not None:  # the Guard checked it: keep it
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/settings", response_model=SettingsSchema, responses=errors())
    def settings_schema() -> dict[str, Any]:
        """Methods, every accepted setting (type, help, default per method) and limits."""
        return form_schema(limits)

    @app.get("/api/examples", response_model=list[Example], responses=errors())
    def examples() -> list[dict[str, str]]:
        """The bundled public-domain images: name, kind (photograph, painting), title."""
        return _examples(config.examples)

    @app.get(
        "/api/examples/{name}",
        response_class=FileResponse,
        responses={**file_response(*MEDIA_TYPES, description="the image"), **errors(404)},
    )
    def example(name: str) -> Response:
        """One bundled image."""
        known = {entry["name"] for entry in _examples(config.examples)}
        if name not in known:
            raise HTTPException(404, f"no example {name}")
        return FileResponse(config.examples / name)

    @app.post(
        "/api/jobs",
        status_code=201,
        response_model=JobCreated,
        responses={
            200: {"model": JobCreated, "description": "the identical job, which exists"},
            **errors(400, 413, 415, 503),
        },
    )
    def create_job(
        content: Annotated[UploadFile, File(description="the photograph")],
        style: Annotated[list[UploadFile], File(description="one or more paintings")],
        settings: Annotated[str, Form(description="JSON object of CLI long options")] = "{}",
    ) -> JSONResponse:
        """Queue a job; 201 {"id"}, or 200 {"id"} for an identical job that exists."""
        given, resolved = parse_job_settings(settings, limits)
        uploads = [("content", content), *check_styles(style)]
        with temp_files() as paths:
            saved = [receive(upload, name, paths)[:2] for name, upload in uploads]
            shas = [sha for _, sha in saved]
            job = job_id(shas[0], shas[1:], job_settings(resolved))
            _, created = store.submit(job, given, saved)
        return JSONResponse({"id": job}, status_code=201 if created else 200)

    @app.post("/api/inspect", response_model=Inspection, responses=errors(400, 413, 415, 503))
    def inspect(
        content: Annotated[UploadFile, File(description="the photograph")],
        settings: Annotated[str, Form(description="JSON object, as a job's")] = "{}",
    ) -> dict[str, Any]:
        """The faces and person mask the methods would find, before anything runs: the
        photograph's size, the faces (box, score, used), how many are used, the share of
        the picture on the person and an overlay (a PNG data URL). The settings that
        matter: face_detector, min_face_fraction, mask_threshold, mask_feather."""
        _, resolved = parse_job_settings(settings, limits)
        with one_at_a_time(), temp_files() as paths:
            _, _, photo = receive(content, "content", paths)
            return inspect_photo(photo, resolved)

    @app.post("/api/estimate", response_model=Estimate, responses=errors(400))
    def estimate_job(request: EstimateRequest) -> dict[str, Any]:
        """How long a job would take on this server's workers: its settings (checked as a
        job's) for a photograph of ``width`` x ``height`` px with ``faces`` usable faces.
        ``seconds`` is null until the machine's speed has been measured (a worker does it
        when it starts, or the first run)."""
        _, resolved = parse_job_settings(json.dumps(request.settings), limits)
        return estimate(resolved, config.device, request.width, request.height, request.faces)

    @app.post(
        "/api/instant",
        response_class=Response,
        responses={
            **file_response("image/png", description="the preview"),
            **errors(400, 413, 415, 503),
        },
    )
    def instant(
        content: Annotated[UploadFile, File(description="the photograph")],
        style: Annotated[list[UploadFile], File(description="one or more paintings")],
        style_strength: Annotated[float, Form(ge=0, le=1)] = 1.0,
    ) -> Response:
        """A small preview by the feed-forward ``instant`` method (under a second): PNG,
        256 px on its long side, the paintings blended equally."""
        uploads = [("content", content), *check_styles(style)]
        with one_at_a_time(), temp_files() as paths:
            images = [bounded(receive(upload, name, paths)[2]) for name, upload in uploads]
            photo, *paintings = images
            png = instant_preview(photo, paintings, style_strength)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get(
        "/api/jobs",
        response_model=list[JobView],
        response_model_exclude_unset=True,
        responses=errors(400, 503),
    )
    def list_jobs(limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
        """Jobs, newest first."""
        return [view(job) for job in store.list(limit)]

    @app.get("/api/jobs/{job_ref}", responses=errors(404, 503), **JOB_VIEW)
    def get_job(job_ref: str) -> dict[str, Any]:
        """A job's status, progress and settings."""
        return view(found(job_ref))

    @app.get(
        "/api/jobs/{job_ref}/events",
        response_class=StreamingResponse,
        responses={
            **event_stream("the job's events, then new ones until it ends"),
            **errors(404, 503),
        },
    )
    async def events(
        job_ref: str,
        request: Request,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> StreamingResponse:
        """Server-sent events: queued, started, loading, faces, stage, progress, preview
        and the final done, failed or cancelled; resumes after ``Last-Event-ID``."""
        await run_in_threadpool(found, job_ref)
        after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
        stream = _event_stream(store, job_ref, after, request)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream, media_type="text/event-stream", headers=headers)

    @app.get(
        "/api/jobs/{job_ref}/preview",
        response_class=FileResponse,
        responses={**file_response("image/png", description="the preview"), **errors(404, 503)},
    )
    def preview(job_ref: str) -> Response:
        """The latest preview while it runs, the result once done; 404 before the first."""
        job = found(job_ref)
        if job.status == "done" and job.outputs:
            return _file(store.file_path(job.outputs["png"]), "image/png")
        path = store.work_dir(job.id) / "preview.png"
        if not path.is_file():
            raise HTTPException(404, "no preview yet")
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get(
        "/api/jobs/{job_ref}/result",
        response_class=FileResponse,
        responses={
            **file_response("image/png", "image/tiff", description="the result"),
            **errors(400, 404, 503),
        },
    )
    def result(job_ref: str, format: Literal["png", "tif"] = "png") -> Response:
        """The result as PNG or 16-bit TIFF; 404 until done."""
        job = found(job_ref)
        if job.status != "done" or not job.outputs:
            raise HTTPException(404, f"job {job.id} is {job.status}, no result")
        media = "image/png" if format == "png" else "image/tiff"
        return _file(store.file_path(job.outputs[format]), media, f"portrait-{job.id}.{format}")

    @app.get(
        "/api/jobs/{job_ref}/record",
        response_class=FileResponse,
        responses={
            200: {
                "description": "the run record",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            **errors(404, 503),
        },
    )
    def record(job_ref: str) -> Response:
        """The run record (settings, inputs, weights, stages, versions); 404 until done."""
        job = found(job_ref)
        if job.status != "done" or not job.outputs:
            raise HTTPException(404, f"job {job.id} is {job.status}, no record")
        return _file(store.file_path(job.outputs["record"]), "application/json")

    @app.get(
        "/api/jobs/{job_ref}/inputs/{index}",
        response_class=FileResponse,
        responses={**file_response(*MEDIA_TYPES, description="the input"), **errors(400, 404, 503)},
    )
    def job_input(job_ref: str, index: int) -> Response:
        """Input ``index`` of a job: 0 the photograph, 1.. the paintings."""
        job = found(job_ref)
        hashes = [job.inputs["content"], *job.inputs["styles"]]
        if not 0 <= index < len(hashes):
            raise HTTPException(404, f"job {job.id} has no input {index}")
        path = store.file_path(hashes[index])
        with path.open("rb") as handle:
            media = sniff(handle.read(12)) or "application/octet-stream"
        return _file(path, media)

    @app.post("/api/jobs/{job_ref}/cancel", responses=errors(404, 409, 503), **JOB_VIEW)
    def cancel(job_ref: str) -> dict[str, Any]:
        """Cancel a queued or running job; a finished one is left as it is (409)."""
        job = store.cancel(job_ref)
        if job is None:
            raise HTTPException(404, f"no job {job_ref}")
        if job.status != "cancelled":
            raise HTTPException(409, f"job {job.id} is {job.status}; nothing to cancel")
        return view(job)

    @app.delete(
        "/api/jobs/{job_ref}",
        status_code=204,
        response_class=Response,
        responses={204: {"description": "removed"}, **errors(404, 409, 503)},
    )
    def delete(job_ref: str) -> Response:
        """Remove a finished job and its files (those no other job uses); 409 while active."""
        job = found(job_ref)
        if job.status in ACTIVE or not store.delete(job.id):
            raise HTTPException(409, f"job {job.id} is {job.status}; cancel it first")
        return Response(status_code=204)

    return app


def _file(path: Path, media: str, filename: str | None = None) -> FileResponse:
    """A stored file: immutable (named by its hash), downloaded as ``filename`` if given."""
    headers = {"Cache-Control": "private, max-age=31536000, immutable"}
    return FileResponse(path, media_type=media, filename=filename, headers=headers)


async def _event_stream(
    store: JobStore, job: str, after: int, request: Request
) -> AsyncIterator[str]:
    """A job's events after ``after`` as SSE frames, then new ones as they come, until the
    job has ended (its final event sent), is deleted or the client leaves."""
    quiet = 0.0
    while not await request.is_disconnected():
        try:
            state = await run_in_threadpool(store.get, job)  # before the events: none missed
            rows = await run_in_threadpool(store.events, job, after)
        except StoreUnavailable:  # locked, or the disk full: say so (a keepalive), try again
            yield ": the job database is busy\n\n"
            await asyncio.sleep(EVENT_POLL_S)
            continue
        for seq, kind, data in rows:
            after = seq
            if kind == "preview":
                data["url"] = f"/api/jobs/{job}/preview?n={data['n']}"
            yield f"id: {seq}\nevent: {kind}\ndata: {json.dumps(data)}\n\n"
        if state is None or state.status in FINISHED:
            return
        quiet = 0.0 if rows else quiet + EVENT_POLL_S
        if quiet >= KEEPALIVE_S:
            quiet = 0.0
            yield ": keepalive\n\n"
        await asyncio.sleep(EVENT_POLL_S)


_EXAMPLE_ROW = re.compile(
    r"^\| `([\w.-]+\.(?:jpg|png))` \| [^|]* \| (photograph|painting)[^:]*: ([^|]*)"
)


def _examples(folder: Path) -> list[dict[str, str]]:
    """The images listed in ``folder/README.md``'s table that exist, with kind and title."""
    readme = folder / "README.md"
    if not readme.is_file():
        return []
    entries = []
    for line in readme.read_text().splitlines():
        match = _EXAMPLE_ROW.match(line)
        if match and (folder / match[1]).is_file():
            entries.append({"name": match[1], "kind": match[2], "title": match[3].strip()})
    return entries
