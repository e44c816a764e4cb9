"""Shapes shared by every route: the error body."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ErrorPublic(BaseModel):
    """Every error answer: ``{"detail": "what was wrong"}`` (422s carry a list of field errors)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": "unknown user 4242"}]})

    detail: str | list[dict[str, object]]


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorPublic, "description": "Unknown user, item or model version."},
    422: {"model": ErrorPublic, "description": "Invalid parameters."},
    503: {"model": ErrorPublic, "description": "The model needed is not loaded."},
}

# Routes that take a request body can also answer these (app/api/body.py).
BODY_ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorPublic, "description": "The body is not text in a JSON encoding."},
    413: {"model": ErrorPublic, "description": "The body is larger than the limit."},
}
# Routes that read their body themselves also refuse media types they do not take.
MEDIA_ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    **BODY_ERROR_RESPONSES,
    415: {"model": ErrorPublic, "description": "The body's media type is not accepted."},
}
