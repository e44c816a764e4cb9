"""DeepRec Studio: the web front end, plain static files (HTML, CSS, ES modules) served by the app.

``GET /`` is the page; its assets live under ``/studio/``. Nothing is built and nothing is fetched
from another host: the page talks only to this server's API under ``/v1`` and the health routes.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent / "static"
ASSETS_PATH = "/studio"
# The page and its modules change with the code, never while a server runs: browsers may keep
# them briefly but must ask again after a deploy.
CACHE_CONTROL = "no-cache"


class _StudioFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.setdefault("Cache-Control", CACHE_CONTROL)
        return response


def install_studio(app: FastAPI) -> None:
    """Serve the Studio at ``/`` (the API's own routes are untouched)."""
    app.mount(ASSETS_PATH, _StudioFiles(directory=STATIC_DIR), name="studio")

    @app.get("/", include_in_schema=False)
    async def studio_index() -> FileResponse:
        return FileResponse(
            STATIC_DIR / "index.html",
            media_type="text/html",
            headers={"Cache-Control": CACHE_CONTROL},
        )
