"""Image reconstruction by any image model (autoencoder, Bernoulli RBM, DBN): optionally corrupt
the input first (``noise``), then reconstruct; JSON arrays or a PNG grid back.

The body is one PNG image (``image/png``), a JSON array of images, or ``{"images": [...]}``;
images are (N, side*side) or (N, side, side) with values in [0, 1]. Oversized bodies get 413 (the
app's body limit, a PNG of more than ``MAX_IMAGE_PIXELS`` pixels, and ``MAX_IMAGES`` images here);
wrong shapes or values get 422. Decoding (JSON and PNG) and the networks run in the threadpool,
never on the event loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from app.api.body import BodyError, check_media_type, parse_json
from app.api.deps import MetricsDep, RegistryDep
from app.schemas.common import ERROR_RESPONSES, MEDIA_ERROR_RESPONSES, ErrorPublic
from app.schemas.image import ReconstructionPublic, pixel_rows
from app.services.errors import InvalidRequestError
from ml.inference.images import (
    ImageModel,
    ImageTooLargeError,
    check_images,
    corrupt,
    images_to_png,
    png_to_images,
)
from ml.registry import reconstructors

router = APIRouter(prefix="/v1/images", tags=["images"], responses=ERROR_RESPONSES)

MODEL_TYPES = reconstructors()  # `model=` word -> the family (ml.registry)
if TYPE_CHECKING:
    ImageModelWord = str
else:  # the words the OpenAPI schema lists and FastAPI checks (422 for any other)
    ImageModelWord = Literal[tuple(MODEL_TYPES)]
MAX_IMAGES = 1024
MAX_SEED = 2**31 - 1


def images_from_body(body: bytes, content_type: str, side: int) -> np.ndarray:
    """The images of a request body: one PNG, a JSON array, or ``{"images": [...]}``.

    CPU-bound (JSON decoding, PNG decoding): called in the threadpool, never on the event loop.
    The body is already within the app's byte limit; a PNG's pixel count is checked from its
    header before it is decoded (413 above ``MAX_IMAGE_PIXELS``).
    """
    if not body:
        raise InvalidRequestError("send one PNG image or a JSON array of images")
    if content_type == "image/png" or body[:8] == b"\x89PNG\r\n\x1a\n":
        try:
            return png_to_images(body, side)
        except ImageTooLargeError as exc:
            raise BodyError(status.HTTP_413_CONTENT_TOO_LARGE, str(exc)) from exc
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from exc
    parsed = parse_json(body)
    if isinstance(parsed, dict):
        parsed = parsed.get("images")
    if not isinstance(parsed, list) or not parsed:
        raise InvalidRequestError('expected a non-empty JSON array of images or {"images": [...]}')
    if len(parsed) > MAX_IMAGES and isinstance(parsed[0], list):
        raise BodyError(
            status.HTTP_413_CONTENT_TOO_LARGE, f"at most {MAX_IMAGES} images per request"
        )
    try:
        return check_images(parsed, side)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from exc


@router.post(
    "/reconstruct",
    response_model=ReconstructionPublic,
    responses={
        200: {"content": {"image/png": {}}, "description": "JSON arrays or a PNG grid."},
        **MEDIA_ERROR_RESPONSES,
        413: {"model": ErrorPublic, "description": "Too large a body, image or number of images."},
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": {"type": "array", "items": {"type": "array"}}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
            },
            "required": True,
        }
    },
)
async def reconstruct(
    request: Request,
    registry: RegistryDep,
    metrics: MetricsDep,
    model: Annotated[ImageModelWord, Query(description="Which image model.")] = "autoencoder",
    noise: Annotated[float, Query(ge=0.0, le=1.0, description="Corruption level.")] = 0.0,
    kind: Annotated[
        Literal["mask", "gaussian"], Query(description="mask: drop pixels; gaussian: add noise.")
    ] = "mask",
    seed: Annotated[int, Query(ge=0, le=MAX_SEED, description="Seed of the corruption.")] = 0,
    format: Annotated[Literal["json", "png"], Query(description="json or png.")] = "json",
) -> Any:
    """Reconstruct images (after corrupting them by ``noise``, if given) with an image model.

    PNG answers hold three rows per request: originals, inputs (corrupted), reconstructions.
    """
    entry = registry.get(MODEL_TYPES[model])
    image_model = entry.model
    if not isinstance(image_model, ImageModel):  # what an image checkpoint loads into
        raise InvalidRequestError(f"model {entry.model_type!r} does not reconstruct images")
    side = int(image_model.side)
    content_type = check_media_type(request.headers.get("content-type"))
    body = await request.body()  # within the app's byte limit (RequestBodyGuard)

    def run() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        images = images_from_body(body, content_type, side)
        if len(images) > MAX_IMAGES:
            raise BodyError(
                status.HTTP_413_CONTENT_TOO_LARGE, f"at most {MAX_IMAGES} images per request"
            )
        with metrics.time_inference(entry.model_type, "reconstruct"):
            inputs = corrupt(images, noise, kind, seed=seed)
            return images, inputs, np.asarray(image_model.reconstruct(inputs), dtype=np.float32)

    try:
        images, inputs, out = await run_in_threadpool(run)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from exc
    headers = {"X-Model-Version": entry.version}
    if format == "png":
        grid = np.concatenate([images, inputs, np.clip(out, 0.0, 1.0)])
        png = images_to_png(grid, side, columns=len(images))
        return Response(png, media_type="image/png", headers=headers)
    answer = ReconstructionPublic(
        model=entry.model_type,
        model_version=entry.version,
        side=side,
        noise=noise,
        kind=kind,
        inputs=pixel_rows(inputs),
        reconstructions=pixel_rows(out),
        mse=float(((out - images) ** 2).mean()),
    )
    return Response(answer.model_dump_json(), media_type="application/json", headers=headers)
