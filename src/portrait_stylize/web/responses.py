"""What the HTTP API answers, as pydantic models and OpenAPI response tables.

The app's routes name these (``response_model``, ``responses``), so ``/openapi.json``
describes every answer a route may give: its success body (JSON by a model, or a file by
its media types) and each error status with the one error body, ``{"error", "field"?}``.
A fuzzer (``tests/test_web_fuzz.py``) holds the server to it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]
MAX_SIDE = 100_000
"""The largest photograph side an estimate is asked for (px)."""
MAX_FACES = 1000


class ErrorBody(BaseModel):
    """Every error: a one-line message; a settings error adds the field at fault."""

    model_config = ConfigDict(extra="forbid")

    error: str = Field(min_length=1)
    field: str | None = None


class JobCreated(BaseModel):
    """A submitted job's id (the same inputs and settings: the same id)."""

    id: str


class JobLinks(BaseModel):
    """Where a job's parts are: events and inputs always; the rest once there."""

    events: str
    inputs: list[str]
    preview: str | None = None
    result: str | None = None
    tif: str | None = None
    record: str | None = None


class JobView(BaseModel):
    """A job as the API shows it: status, progress, settings and links."""

    id: str
    status: JobStatus
    stage: int | None
    stages: int | None
    step: int | None
    steps: int | None
    eta_s: float | None
    error: str | None
    created: str
    settings: dict[str, Any]
    attempts: int
    position: int | None
    terms: dict[str, float] | None
    links: JobLinks


EventKind = Literal[
    "queued",
    "started",
    "loading",
    "faces",
    "estimate",
    "stage",
    "progress",
    "preview",
    "done",
    "failed",
    "cancelled",
]


class Event(BaseModel):
    """One server-sent event of a job: its sequence number, kind and JSON data."""

    id: str = Field(pattern=r"^[0-9]+$")
    event: EventKind
    data: str = Field(json_schema_extra={"contentMediaType": "application/json"})


class Face(BaseModel):
    """One face found: its box in the photograph's pixels, score, whether it is used."""

    box: list[float] = Field(min_length=4, max_length=4)
    score: float
    used: bool


class Inspection(BaseModel):
    """What the methods would find in a photograph (``POST /api/inspect``)."""

    size: list[int] = Field(min_length=2, max_length=2)
    detector: str
    faces: list[Face]
    face_count: int
    person_fraction: float = Field(ge=0, le=1)
    overlay: str


class EstimateRequest(BaseModel):
    """What ``POST /api/estimate`` is asked: a job's settings (as ``POST /api/jobs`` takes
    them) and the photograph's size and usable faces (from ``POST /api/inspect``)."""

    model_config = ConfigDict(extra="forbid")

    settings: dict[str, Any] = Field(
        default_factory=dict, description="JSON object of settings, as a job's"
    )
    width: int = Field(ge=1, le=MAX_SIDE, description="the photograph's width (px)")
    height: int = Field(ge=1, le=MAX_SIDE, description="the photograph's height (px)")
    faces: int = Field(
        default=0, ge=0, le=MAX_FACES, description="faces the method would use (face_count)"
    )


class Estimate(BaseModel):
    """How long a job would take on this server's workers: ``seconds`` in all, ``stages``
    each scale's; null (and no stages) until the machine's speed has been measured.
    ``measured``: the figure comes from that measurement (a feed-forward method's second
    does not)."""

    seconds: float | None = Field(ge=0)
    stages: list[float]
    measured: bool


class Example(BaseModel):
    """A bundled public-domain image."""

    name: str
    kind: Literal["photograph", "painting"]
    title: str


class MethodInfo(BaseModel):
    description: str
    notes: list[str]
    groups: list[str]


class SettingsSchema(BaseModel):
    """The settings a job may send, per method, and this server's limits."""

    groups: dict[str, str]
    methods: dict[str, MethodInfo]
    default_method: str
    fields: list[dict[str, Any]]
    limits: dict[str, int]


ERRORS: dict[int, str] = {
    400: "a bad request: an upload, a setting or a parameter (the message names it)",
    401: "no token, or a wrong one (only with --token)",
    404: "no such job, file or page",
    405: "a method the path does not take (Allow lists those it does)",
    409: "a conflict with the job's state",
    413: "an upload or request over this server's limits",
    415: "an upload that is not a JPEG, PNG, WebP or TIFF by its bytes",
    500: "a server fault (the traceback goes to the server's log only)",
    503: "busy: the job database locked by another process, or the server's networks",
    507: "the server's disk is full (Retry-After says when to try again)",
}
"""Every error status the API gives, and what it means."""
ALWAYS = (401, 500)
"""Errors any route may give: the token, and a fault."""


STORE = (503, 507)
"""Errors of a route that reads or writes the job store: locked, or its disk full."""


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` entry of a route that may fail with ``statuses`` (and
    :data:`ALWAYS`): each with :class:`ErrorBody`; 503 brings 507 (:data:`STORE`)."""
    if 503 in statuses:
        statuses = (*statuses, *STORE)
    return {
        status: {"model": ErrorBody, "description": ERRORS[status]}
        for status in sorted({*statuses, *ALWAYS})
    }


def file_response(*media: str, description: str) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` entry of a route answering 200 with a file of these media types."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {200: {"description": description, "content": dict.fromkeys(media, binary)}}


def event_stream(description: str) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` entry of a route answering 200 with server-sent :class:`Event`."""
    schema = Event.model_json_schema()
    return {200: {"description": description, "content": {"text/event-stream": {"schema": schema}}}}


TOKEN_COOKIE = "portrait_stylize_token"
"""The cookie the page sets from ``/?token=T``."""
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer"},
    "query": {"type": "apiKey", "in": "query", "name": "token"},
    "cookie": {"type": "apiKey", "in": "cookie", "name": TOKEN_COOKIE},
}
"""The three ways a request may carry the token (the cookie is the page's)."""


def finish_schema(schema: dict[str, Any], token: bool) -> dict[str, Any]:
    """``schema`` (FastAPI's OpenAPI document) as this app answers: no 422 (a request that
    fails validation gets 400 and :class:`ErrorBody`), and with a ``token`` the ways to
    carry it, required on every operation."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            operation.get("responses", {}).pop("422", None)
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    if token:
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        schema["security"] = [{name: []} for name in SECURITY_SCHEMES]
    return schema
