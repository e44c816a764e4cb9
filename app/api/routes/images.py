"""Image reconstruction by any image model (autoencoder, Bernoulli RBM, DBN): optionally corrupt
the input first (``noise``), then reconstruct; JSON arrays or a PNG grid back.

The body is one PNG image (``image/png``), a JSON array of images, or ``{"images": [...]}``;
images are (N, side*side) or (N, side, side) with values in [0, 1]. Oversized bodies get 413 (the
app's body limit, and ``MAX_IMAGES`` images here); wrong shapes or values get 422. The networks
run in the threadpool, never on the event loop.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from app.api.deps import MetricsDep, RegistryDep, loaded_model
from app.schemas.common import ERROR_RESPONSES
from ml.inference.images import check_images, corrupt, images_to_png, png_to_images

router = APIRouter(prefix="/v1/images", tags=["images"], responses=ERROR_RESPONSES)

MODEL_TYPES = {"autoencoder": "autoencoder-images", "rbm": "rbm-images", "dbn": "dbn"}
MAX_IMAGES = 1024
MAX_SEED = 2**31 - 1


class ReconstructionPublic(BaseModel):
    model: str
    model_version: str
    side: int
    noise: float
    kind: Literal["mask", "gaussian"]
    inputs: list[list[float]] = Field(description="What the model saw (corrupted if noise > 0).")
    reconstructions: list[list[float]] = Field(description="One per image, side*side in [0, 1].")
    mse: float = Field(description="Mean squared error of the reconstructions to the originals.")


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message)


async def _read_images(request: Request, side: int) -> np.ndarray:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if not body:
        raise _unprocessable("send one PNG image or a JSON array of images")
    if content_type == "image/png" or body[:8] == b"\x89PNG\r\n\x1a\n":
        try:
            return png_to_images(body, side)
        except ValueError as exc:
            raise _unprocessable(str(exc)) from exc
    try:
        parsed = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _unprocessable(f"the body must be JSON or a PNG image ({exc})") from exc
    if isinstance(parsed, dict):
        parsed = parsed.get("images")
    if not isinstance(parsed, list) or not parsed:
        raise _unprocessable('expected a non-empty JSON array of images or {"images": [...]}')
    if len(parsed) > MAX_IMAGES and isinstance(parsed[0], list):
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, f"at most {MAX_IMAGES} images per request"
        )
    try:
        return check_images(parsed, side)
    except ValueError as exc:
        raise _unprocessable(str(exc)) from exc


@router.post(
    "/reconstruct",
    response_model=ReconstructionPublic,
    responses={
        200: {"content": {"image/png": {}}, "description": "JSON arrays or a PNG grid."},
        413: {"description": "Too large a body or too many images."},
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
    model: Annotated[
        Literal["autoencoder", "rbm", "dbn"], Query(description="Which image model.")
    ] = "autoencoder",
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
    entry = loaded_model(registry, MODEL_TYPES[model])
    image_model = entry.model
    side = int(image_model.side)
    images = await _read_images(request, side)
    if len(images) > MAX_IMAGES:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, f"at most {MAX_IMAGES} images per request"
        )

    def run() -> tuple[np.ndarray, np.ndarray]:
        with metrics.time_inference(entry.model_type, "reconstruct"):
            inputs = corrupt(images, noise, kind, seed=seed)
            return inputs, np.asarray(image_model.reconstruct(inputs), dtype=np.float32)

    try:
        inputs, out = await run_in_threadpool(run)
    except ValueError as exc:
        raise _unprocessable(str(exc)) from exc
    headers = {"X-Model-Version": entry.version}
    if format == "png":
        grid = np.concatenate([images, inputs, np.clip(out, 0.0, 1.0)])
        png = images_to_png(grid, side, columns=len(images))
        return Response(png, media_type="image/png", headers=headers)
    body = ReconstructionPublic(
        model=entry.model_type,
        model_version=entry.version,
        side=side,
        noise=noise,
        kind=kind,
        inputs=np.round(inputs.astype(np.float64), 5).tolist(),
        reconstructions=np.round(out.astype(np.float64), 5).tolist(),
        mse=float(((out - images) ** 2).mean()),
    )
    return Response(body.model_dump_json(), media_type="application/json", headers=headers)
