"""The ASGI middleware in front of every route: the token, and the size of what comes in.

A request without the token gets 401 before anything else runs (the page, the API, its
event streams, files, the OpenAPI document and docs alike). A request body over the
overall limit is refused with 413 from its Content-Length, or as soon as a streamed body
passes it; a multipart form is also read as it arrives, and a part over the per-upload
limit is refused once its bytes pass it, so an oversized upload is never received, let
alone stored, in full.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request
from starlette.responses import JSONResponse

from ..errors import printable
from .responses import TOKEN_COOKIE

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


def error(
    status: int, message: str, headers: dict[str, str] | None = None, **extra: str
) -> JSONResponse:
    """The one error body: a one-line message (what a client sent, such as a job id,
    has its control characters escaped), and ``extra`` fields."""
    body = {"error": printable(message), **extra}
    return JSONResponse(body, status_code=status, headers=headers)


class PartSizes:
    """Counts the bytes of each part of a multipart body as it is fed; ``over`` names the
    first part past ``limit`` (``content``, ``style[0]``, ...), None while all are in."""

    def __init__(self, boundary: bytes, limit: int) -> None:
        self.limit = limit
        self.over: str | None = None
        self.broken = False
        self.seen: dict[str, int] = {}
        self.size = 0
        self.name = ""
        self.header = b""
        self.value = b""
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_part_data": self._data,
            },
        )

    def _begin(self) -> None:
        self.size, self.name, self.header, self.value = 0, "", b"", b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self.header += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def _header_end(self) -> None:
        if self.header.lower() == b"content-disposition":
            _, options = parse_options_header(self.value)
            field = options.get(b"name", b"").decode(errors="replace")
            index = self.seen[field] = self.seen.get(field, -1) + 1
            self.name = f"style[{index}]" if field == "style" else field
        self.header, self.value = b"", b""

    def _data(self, data: bytes, start: int, end: int) -> None:
        self.size += end - start
        if self.size > self.limit and self.over is None:
            self.over = self.name or "a form field"

    def feed(self, chunk: bytes) -> str | None:
        """Read ``chunk``; returns the part now over the limit, if any. A body the parser
        cannot follow is left to the app's own parser (which answers 400)."""
        if not self.broken and self.over is None:
            try:
                self.parser.write(chunk)
            except Exception:
                self.broken = True
        return self.over


def _part_sizes(request: Request, limit: int) -> PartSizes | None:
    """A :class:`PartSizes` for a multipart request, None for any other."""
    media, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if media != b"multipart/form-data" or not boundary:
        return None
    return PartSizes(boundary, limit)


class Guard:
    """ASGI middleware: the token (401), then the size of the body (413): over
    ``max_body`` in all, or a multipart part over ``max_part``."""

    def __init__(self, app: ASGIApp, token: str | None, max_body: int, max_part: int) -> None:
        self.app = app
        self.token = token
        self.max_body = max_body
        self.max_part = max_part

    def _authorised(self, request: Request) -> bool:
        if self.token is None:
            return True
        bearer = request.headers.get("authorization", "")
        offered = [
            bearer.removeprefix("Bearer ") if bearer.startswith("Bearer ") else "",
            request.query_params.get("token", ""),
            request.cookies.get(TOKEN_COOKIE, ""),
        ]
        return any(hmac.compare_digest(o.encode(), self.token.encode()) for o in offered if o)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if not self._authorised(request):
            await error(401, "a valid token is needed (Authorization: Bearer TOKEN)")(
                scope, receive, send
            )
            return
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            await error(413, f"request larger than {self.max_body} bytes")(scope, receive, send)
            return
        parts = _part_sizes(request, self.max_part)
        received = 0
        refused = False

        async def counted() -> Message:
            nonlocal received, refused
            message = await receive()
            body = message.get("body", b"")
            received += len(body)
            reason = None
            if received > self.max_body:
                reason = f"request larger than {self.max_body} bytes"
            elif parts is not None and (over := parts.feed(body)):
                reason = f"{over}: larger than {self.max_part} bytes"
            if reason is not None and not refused:
                refused = True
                await error(413, reason)(scope, receive, send)
            return {"type": "http.disconnect"} if refused else message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, counted, guarded_send)
        except Exception:
            if not refused:
                raise
