"""Request bodies, bounded before anything parses them.

One limit for every form of a body (a JSON object, a bare JSON list, a PNG upload, a multipart
form): :class:`RequestBodyGuard` refuses a body over ``max_bytes`` with 413 (declared in
``Content-Length`` or counted while it streams in), and a JSON body nested deeper than
``MAX_JSON_DEPTH`` with 422, before FastAPI or a route decodes it. Deep nesting would otherwise
reach Python's recursion limit inside ``json.loads`` (a 500), and every level costs memory.

Routes that read the raw body themselves (images, GAN, ratings) parse it with :func:`parse_json`
in the threadpool: the same depth guard, and the decoding never runs on the event loop.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from anyio import to_thread
from fastapi import status
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The deepest JSON any route takes is 4 levels ({"images": [[[...]]]}); 32 leaves room for
# clients that wrap bodies, and keeps the parser far from Python's recursion limit.
MAX_JSON_DEPTH = 32
# Bodies above this size are scanned for depth in the threadpool, not on the event loop.
_INLINE_SCAN_BYTES = 64 * 1024
# Every byte but the four brackets and the quote, deleted by bytes.translate before the scan.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')


class BodyError(Exception):
    """A refused body: an HTTP status and the reason, answered as ``{"detail": ...}``."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


def json_depth(body: bytes) -> int:
    """How deeply the JSON text nests arrays and objects (0 for a scalar), without parsing it.

    Brackets inside strings do not count. Linear in the size, vectorised: a 5 MB body takes
    milliseconds. Text that does not start with ``[`` or ``{`` (a scalar, or not JSON at all,
    e.g. a PNG sent without a content type) counts 0: its parser or its route refuses it.
    """
    if body.lstrip()[:1] not in (b"[", b"{"):
        return 0
    if b"\\" in body:  # an escaped quote is string content: drop escapes (backslashes first)
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    codes = np.frombuffer(body.translate(None, _NOT_STRUCTURE), dtype=np.uint8)
    if codes.size == 0:
        return 0
    quotes = codes == ord('"')
    outside = (np.cumsum(quotes, dtype=np.int64) & 1) == 0  # brackets in strings do not count
    opens = ((codes == ord("[")) | (codes == ord("{"))) & outside
    closes = ((codes == ord("]")) | (codes == ord("}"))) & outside
    step = opens.astype(np.int32) - closes.astype(np.int32)
    return int(np.cumsum(step).max(initial=0))


def parse_json(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode a JSON body: :class:`BodyError` 422 for too deep or malformed JSON, 400 for bytes
    that are not text. CPU work: call it from the threadpool for bodies of any size."""
    depth = json_depth(body)
    if depth > max_depth:
        raise BodyError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"JSON nested {depth} levels deep; at most {max_depth} are accepted",
        )
    try:
        return json.loads(body)
    except UnicodeDecodeError as exc:
        raise BodyError(status.HTTP_400_BAD_REQUEST, f"the body is not UTF-8 text ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise BodyError(status.HTTP_422_UNPROCESSABLE_CONTENT, f"invalid JSON ({exc})") from exc
    except RecursionError as exc:  # unreachable below the depth guard; never a 500
        raise BodyError(status.HTTP_422_UNPROCESSABLE_CONTENT, "JSON nested too deeply") from exc


def media_type(content_type: str | None) -> str:
    """``image/png`` of ``image/png; q=1``: the lower-case type without parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_media_type(content_type: str | None, *, png: bool = True) -> str:
    """The body's media type if a route that takes JSON (and PNG, with ``png``) accepts it:
    none given, ``application/json``, ``application/*+json`` or ``image/png``; else 415."""
    kind = media_type(content_type)
    if kind in ("", "application/json") or (
        kind.startswith("application/") and kind.endswith("+json")
    ):
        return kind
    if png and kind == "image/png":
        return kind
    accepted = "application/json or image/png" if png else "application/json"
    raise BodyError(
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"unsupported media type {kind!r}: send {accepted}"
    )


def _parsed_as_json(scope: Scope) -> bool:
    """Whether FastAPI would decode this body as JSON: no content type, ``application/json``
    or ``application/*+json``."""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            main = value.split(b";", 1)[0].strip().lower()
            return main == b"application/json" or (
                main.startswith(b"application/") and main.endswith(b"+json")
            )
    return True


def _error(code: int, detail: object) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=code)


async def _empty_receive() -> Message:
    return {"type": "http.disconnect"}


class RequestBodyGuard:
    """413 for bodies over ``max_bytes`` (declared or streamed), 422 for JSON bodies nested
    deeper than ``max_json_depth``; both as JSON ``{"detail": ...}``, before the app reads them.

    JSON bodies are buffered here (at most ``max_bytes``) so their depth is known before
    FastAPI's parser sees them; other bodies stream through with a running byte count.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_json_depth: int = MAX_JSON_DEPTH) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_json_depth = max_json_depth

    def _too_large(self) -> JSONResponse:
        return _error(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"request body too large: the limit is {self.max_bytes} bytes",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._too_large()(scope, _empty_receive, send)
                    return
        if _parsed_as_json(scope):
            await self._guard_json(scope, receive, send)
        else:
            await self._guard_stream(scope, receive, send)

    async def _guard_json(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large()(scope, _empty_receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body:
            if len(body) > _INLINE_SCAN_BYTES:
                depth = await to_thread.run_sync(json_depth, body)
            else:
                depth = json_depth(body)
            if depth > self.max_json_depth:
                # The same shape as FastAPI's own body validation errors.
                detail = [
                    {
                        "loc": ["body"],
                        "msg": f"JSON nested {depth} levels deep; "
                        f"at most {self.max_json_depth} are accepted",
                        "type": "json_too_deep",
                    }
                ]
                await _error(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)(
                    scope, _empty_receive, send
                )
                return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _guard_stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = rejected = False

        async def limited_receive() -> Message:
            nonlocal received, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes and not started:
                    rejected = True  # answer 413 now; the app sees the client go away
                    await self._too_large()(scope, _empty_receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if rejected:
                return  # the 413 is the answer
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not rejected:
                raise
