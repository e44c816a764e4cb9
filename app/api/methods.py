"""A true ``Allow`` header on 405 answers.

Starlette answers a method no route of the path takes with the methods of the FIRST route that
matches the path only: ``/v1/users/{id}/ratings`` has a GET and a POST route, so OPTIONS got
``Allow: POST``. This collects the methods of every route of the path.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of this path answers (HEAD comes with GET)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        route_methods = getattr(route, "methods", None)
        if not route_methods:
            continue
        match, _ = route.matches(request.scope)
        if match in (Match.FULL, Match.PARTIAL):
            methods.update(route_methods)
    return sorted(methods)


async def http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's own HTTP error answer, with the full ``Allow`` list on a 405."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        methods = allowed_methods(request)
        if methods:
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(methods)}
    return await http_exception_handler(request, exc)
