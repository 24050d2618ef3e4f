"""The HTTP API under a fuzzer: requests generated from the server's own OpenAPI schema
(schemathesis, on hypothesis), against a real ``portrait-stylize serve --token`` on
127.0.0.1, with the token and without it.

Every answer must be one the schema promises (a documented status, its media type, a
body that fits its model), never a 5xx, and every error a JSON ``{"error": message}``;
the server's log must hold no traceback. Besides schemathesis's own values, cases take
the ids of real jobs (done, running, cancelled, the fuzzer's own) and real or hostile
images and settings, so that requests reach past the first 404 or 415. The default run
sends a few hundred requests; the ``slow`` one a few thousand (``FUZZ_EXAMPLES`` sets
the examples per operation and mode). Figures: ``out/tests/web-fuzz-*.json``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import CHECKS, load_all_checks  # noqa: E402

from portrait_stylize.web.settings import Limits, form_schema  # noqa: E402

from .hostile import encode, jpeg_claiming, photo, png_claiming  # noqa: E402
from .web_server import PHOTO, Server, save_figures, submit, wait_for  # noqa: E402

pytestmark = pytest.mark.slow

TOKEN = "fuzz-0123456789abcdef"
LIMITS = ("--max-upload-bytes", "300000", "--max-pixels", "1000000")
SMALL = ("--max-size", "48", "--max-iterations", "3")
"""Jobs a fuzzer may queue stay small."""
CHECK_NAMES = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "unsupported_method",
    "ignored_auth",
)
JOB = {"method": "instant", "size": 32}
"""A real job of well under a second."""
GOOD = (encode(photo(), "PNG"), encode(photo(), "WEBP"), PHOTO.read_bytes())
IMAGES = (
    *GOOD,
    PHOTO.read_bytes()[:2000],  # truncated
    png_claiming(5000, 5000),  # over the pixel limit by its header
    jpeg_claiming(65000, 65000),
    b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
    b"",
)
"""Uploads a case may carry instead of schemathesis's text: good, broken, hostile."""
FIELDS = [entry["name"] for entry in form_schema(Limits())["fields"]]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
VALID = st.integers(0, 3).map(lambda seed: json.dumps({**JOB, "seed": seed}))
SETTINGS = st.one_of(
    VALID,
    st.dictionaries(
        st.sampled_from([*FIELDS, "method", "mask", "device", "background"]),
        JSON_VALUES,
        max_size=4,
    ).map(json.dumps),
    st.text(max_size=30),
)
"""A job's ``settings`` field: small real jobs, named settings with any JSON, any text."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("fuzz") / "data"
    running = Server(data, *LIMITS, *SMALL, token=TOKEN).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def jobs(server: Server) -> list[str]:
    """The ids of a done, a queued or running, and a cancelled job."""
    with server.client() as client:
        done = submit(client, {**JOB, "seed": 100}).json()["id"]
        wait_for(client, done)
        other = submit(
            client, {"method": "gatys", "size": 48, "iterations": 3, "seed": 101}
        ).json()["id"]
        cancelled = submit(client, {**JOB, "seed": 102}).json()["id"]
        client.post(f"/api/jobs/{cancelled}/cancel")
    return [done, other, cancelled]


def _examples(default: int) -> int:
    return int(os.environ.get("FUZZ_EXAMPLES", default))


def _cases(operation: Any, mode: GenerationMode, ids: list[str]) -> st.SearchStrategy[Any]:
    """schemathesis's cases for ``operation``, half of them given a real job id for a
    ``job_ref`` and (positive cases) real or hostile files and settings for a form."""

    @st.composite
    def cases(draw: st.DrawFn) -> Any:
        case = draw(operation.as_strategy(generation_mode=mode))
        if "job_ref" in (case.path_parameters or {}) and draw(st.booleans()):
            case.path_parameters["job_ref"] = ids[draw(st.integers(0, 10**6)) % len(ids)]
        body = case.body
        form = case.media_type == "multipart/form-data" and isinstance(body, dict)
        if form and mode == GenerationMode.POSITIVE:  # a negative case stays invalid
            files = draw(st.sampled_from(["good", "any", "generated"]))
            if files != "generated":
                images = st.sampled_from(GOOD if files == "good" else IMAGES)
                body["content"] = draw(images)
                body["style"] = draw(st.lists(images, min_size=1, max_size=3))
            if files == "good" and draw(st.sampled_from([True, False])):  # a real job
                body["settings"] = draw(VALID)
            elif "settings" in body and draw(st.booleans()):
                body["settings"] = draw(SETTINGS)
        return case

    return cases()


def _assert_error_body(response: Any) -> None:
    """An error is JSON with a one-line message (and no traceback)."""
    if response.status_code < 400:
        return
    media = response.headers.get("content-type", [""])[0]
    assert media.startswith("application/json"), (response.status_code, media)
    body = json.loads(response.content)
    assert isinstance(body.get("error"), str) and body["error"].strip(), body
    assert "Traceback" not in body["error"] and "\n" not in body["error"], body


def fuzz(
    server: Server, jobs: list[str], examples: int, headers: dict[str, str], seeded: bool
) -> tuple[Counter[int], list[str]]:
    """Every operation of the server's schema, positive and negative cases, ``examples``
    of each (``jobs`` the job ids to use besides generated ones), sent with ``headers``:
    the statuses seen and the failures."""
    load_all_checks()
    checks = [CHECKS.get_one(name) for name in CHECK_NAMES]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", headers=auth)
    ids = list(jobs)
    statuses: Counter[int] = Counter()
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=_cases(operation, mode, ids))
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=seeded,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def send(case: Any) -> None:
                response = case.call_and_validate(
                    base_url=server.url, headers=headers, checks=checks, timeout=120
                )
                statuses[response.status_code] += 1
                _assert_error_body(response)
                if response.status_code == 201:
                    ids.append(json.loads(response.content)["id"])

            try:
                send()
            except Unsatisfiable:  # no parameter to make invalid
                continue
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    return statuses, failures


def _log_has_no_traceback(server: Server) -> None:
    assert "Traceback" not in server.log.read_text(errors="replace"), server.tail()


@pytest.mark.parametrize(
    "examples",
    [
        pytest.param(12, id="default"),
        pytest.param(150, id="long", marks=[pytest.mark.slow, pytest.mark.soak]),
    ],
)
def test_fuzz_with_the_token(
    server: Server, jobs: list[str], examples: int, request: pytest.FixtureRequest
) -> None:
    count = _examples(examples)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    statuses, failures = fuzz(server, jobs, count, auth, seeded=count == 12)
    sent = sum(statuses.values())
    save_figures(
        f"web-fuzz-token-{request.node.callspec.id}",
        {"requests": sent, "statuses": dict(sorted(statuses.items())), "failures": len(failures)},
    )
    assert not failures, "\n\n".join(failures)
    assert not any(status >= 500 for status in statuses)
    assert statuses[200] and statuses[201] and statuses[404] and statuses[415]
    _log_has_no_traceback(server)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}], ids=["none", "wrong"])
def test_fuzz_without_the_token(server: Server, jobs: list[str], headers: dict[str, str]) -> None:
    statuses, failures = fuzz(server, jobs, _examples(4), headers, seeded=True)
    assert not failures, "\n\n".join(failures)
    assert set(statuses) == {401}, statuses
    _log_has_no_traceback(server)


def test_stored_files_are_whole(server: Server) -> None:
    """After the fuzzing: nothing left in ``tmp/``; every stored file named by its hash."""
    from portrait_stylize.jobdb import file_sha256

    assert not any((server.data / "tmp").iterdir())
    for path in (server.data / "files").glob("*/*"):
        assert file_sha256(path) == path.name
