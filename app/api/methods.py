"""A true ``Allow`` header on 405 answers.

Starlette answers a method no route of the path takes with the methods of the FIRST route that
matches the path only: ``/v1/users/{id}/ratings`` has a GET and a POST route, so OPTIONS got
``Allow: POST``. This collects the methods of every operation of the path (from the app's OpenAPI
document, which is what clients and schemathesis check the header against).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _allow_table(app: Any) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    """(path regex, methods) of every path the OpenAPI document lists, built once per app."""
    table = getattr(app.state, "allow_table", None)
    if table is None:
        table = []
        for template, operations in app.openapi().get("paths", {}).items():
            regex, _, _ = compile_path(template)
            methods = {m.upper() for m in operations if m in _HTTP_METHODS}
            if "GET" in methods:
                methods.add("HEAD")  # Starlette answers HEAD wherever it answers GET
            table.append((regex, frozenset(methods)))
        app.state.allow_table = table
    return table


def allowed_methods(request: Request) -> list[str]:
    """Every method the API answers on this path (as its OpenAPI document says)."""
    path = request.scope["path"]
    methods: set[str] = set()
    for regex, allowed in _allow_table(request.app):
        if regex.match(path):
            methods.update(allowed)
    return sorted(methods)


async def http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's own HTTP error answer, with the full ``Allow`` list on a 405."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        methods = allowed_methods(request)
        if methods:
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(methods)}
    return await http_exception_handler(request, exc)
