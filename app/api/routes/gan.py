"""The GAN: generated digits (PNG grid or JSON arrays), optionally of one label, and the
discriminator's probability that an image is real.

Sampling is a plain ``def`` (FastAPI's threadpool); discrimination reads its body on the event
loop (bounded by the app's byte limit) and decodes it (JSON or PNG, the pixel count checked from
the header first) and runs the network in the threadpool: neither blocks the event loop.
A sample is reproducible from its seed; a request without a seed gets a fresh one, reported
back (JSON field ``seed``, header ``X-Seed``) so the same images can be asked for again.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from app.api.body import BodyError, check_media_type, parse_json
from app.api.deps import MetricsDep, RegistryDep
from app.schemas.common import ERROR_RESPONSES, MEDIA_ERROR_RESPONSES, ErrorPublic
from app.schemas.gan import (
    DiscriminatePublic,
    DiscriminateRequest,
    GANInterpolationPublic,
    GANSamplesPublic,
)
from app.schemas.image import pixel_rows
from app.services.errors import InvalidRequestError
from app.services.registry import ModelRegistry
from ml.inference.gan import GANSampler, grid_png
from ml.inference.images import ImageTooLargeError, check_images, png_to_images

router = APIRouter(prefix="/v1/gan", tags=["gan"], responses=ERROR_RESPONSES)

MODEL_TYPE = "gan"
MAX_SAMPLES = 256
MAX_SEED = 2**31 - 1


def _sampler(registry: ModelRegistry) -> tuple[GANSampler, str]:
    entry = registry.get(MODEL_TYPE)
    if not isinstance(entry.model, GANSampler):  # what a GAN checkpoint loads into
        raise InvalidRequestError(f"model {MODEL_TYPE!r} does not sample images")
    return entry.model, entry.version


@router.get(
    "/samples",
    response_model=GANSamplesPublic,
    responses={200: {"content": {"image/png": {}}, "description": "JSON arrays or a PNG grid."}},
)
def samples(
    registry: RegistryDep,
    metrics: MetricsDep,
    n: Annotated[int, Query(ge=1, le=MAX_SAMPLES, description="How many images.")] = 16,
    seed: Annotated[
        int | None, Query(ge=0, le=MAX_SEED, description="Sampling seed; default: a new one.")
    ] = None,
    label: Annotated[
        int | None, Query(ge=0, le=99, description="Digit to draw (conditional GAN only).")
    ] = None,
    format: Annotated[Literal["json", "png"], Query(description="json or png.")] = "json",
    columns: Annotated[int | None, Query(ge=1, le=64, description="PNG grid width.")] = None,
    scale: Annotated[int, Query(ge=1, le=16, description="PNG pixels per image pixel.")] = 4,
) -> Any:
    """n generated digits from the active GAN, as JSON arrays or one PNG grid."""
    sampler, version = _sampler(registry)
    seed = secrets.randbelow(MAX_SEED + 1) if seed is None else seed
    try:
        with metrics.time_inference(MODEL_TYPE, "sample"):
            images = sampler.sample(n, seed, label=label)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from exc
    headers = {"X-Seed": str(seed), "X-Model-Version": version}
    if format == "png":
        png = grid_png(images, sampler.side, columns=columns, scale=scale)
        return Response(png, media_type="image/png", headers=headers)
    labels = None
    if sampler.conditional:
        n_classes = sampler.config.n_classes
        labels = [label] * n if label is not None else [i % n_classes for i in range(n)]
    body = GANSamplesPublic(
        model=MODEL_TYPE,
        model_version=version,
        seed=seed,
        label=label,
        labels=labels,
        side=sampler.side,
        images=pixel_rows(images),
    )
    return Response(body.model_dump_json(), media_type="application/json", headers=headers)


@router.get("/interpolate", response_model=GANInterpolationPublic)
def interpolate(
    registry: RegistryDep,
    metrics: MetricsDep,
    seed_a: Annotated[int, Query(ge=0, le=MAX_SEED, description="Seed of the first code.")],
    seed_b: Annotated[int, Query(ge=0, le=MAX_SEED, description="Seed of the last code.")],
    steps: Annotated[int, Query(ge=2, le=64, description="Images along the path.")] = 8,
    label: Annotated[
        int | None, Query(ge=0, le=99, description="Digit to draw (conditional GAN only).")
    ] = None,
) -> GANInterpolationPublic:
    """Images along the spherical path between the latent codes of two seeds (the codes that
    ``/v1/gan/samples?n=1&seed=...`` draws its first image from)."""
    sampler, version = _sampler(registry)
    if label is None and sampler.conditional:
        label = 0  # the sampler's own default for a conditional path, reported back
    try:
        with metrics.time_inference(MODEL_TYPE, "interpolate"):
            images = sampler.interpolate(seed_a, seed_b, steps, label=label)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from exc
    return GANInterpolationPublic(
        model=MODEL_TYPE,
        model_version=version,
        seed_a=seed_a,
        seed_b=seed_b,
        label=label,
        side=sampler.side,
        images=pixel_rows(images),
    )


def discriminate_input(
    body: bytes, content_type: str, side: int
) -> tuple[np.ndarray, list[int] | None]:
    """The images (and labels) of a request body. CPU-bound (JSON and PNG decoding): called in
    the threadpool. A PNG's pixel count is checked from its header before it is decoded."""
    if content_type == "image/png" or body[:8] == b"\x89PNG\r\n\x1a\n":
        try:
            return png_to_images(body, side), None
        except ImageTooLargeError as exc:
            raise BodyError(status.HTTP_413_CONTENT_TOO_LARGE, str(exc)) from exc
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from exc
    try:
        parsed = DiscriminateRequest.model_validate(parse_json(body))
    except ValidationError as exc:  # answered like FastAPI's own body validation
        raise RequestValidationError(exc.errors()) from exc
    try:
        images = check_images(parsed.images, side)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from exc
    return images, parsed.labels


@router.post(
    "/discriminate",
    response_model=DiscriminatePublic,
    responses={
        **MEDIA_ERROR_RESPONSES,
        413: {"model": ErrorPublic, "description": "Too large a body or image."},
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": DiscriminateRequest.model_json_schema()},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
            },
            "required": True,
        }
    },
)
async def discriminate(
    request: Request, registry: RegistryDep, metrics: MetricsDep
) -> DiscriminatePublic:
    """The discriminator's probability that each image is a real digit (1) rather than generated.

    Send JSON ``{"images": [[...], ...], "labels": [...]}`` or one PNG image (``image/png``).
    """
    sampler, version = _sampler(registry)
    content_type = check_media_type(request.headers.get("content-type"))
    body = await request.body()  # within the app's byte limit (RequestBodyGuard)

    def run() -> np.ndarray:
        images, labels = discriminate_input(body, content_type, sampler.side)
        if labels is not None and not sampler.conditional:
            raise InvalidRequestError("this GAN is unconditional: it takes no labels")
        with metrics.time_inference(MODEL_TYPE, "discriminate"):
            return sampler.discriminate(images, None if labels is None else np.asarray(labels))

    try:
        probabilities = await run_in_threadpool(run)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from exc
    return DiscriminatePublic(
        model=MODEL_TYPE, model_version=version, probabilities=probabilities.tolist()
    )
