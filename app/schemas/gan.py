"""GAN samples, interpolations and discriminator answers."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

MAX_DISCRIMINATE = 1024  # images per discrimination request


class GANSamplesPublic(BaseModel):
    model: str
    model_version: str
    seed: int
    label: int | None = Field(description="The label asked for (conditional GAN), if any.")
    labels: list[int] | None = Field(description="The label of each image (conditional GAN).")
    side: int
    images: list[list[float]] = Field(description="n images, side*side pixels each, in [0, 1].")


class GANInterpolationPublic(BaseModel):
    model: str
    model_version: str
    seed_a: int
    seed_b: int
    label: int | None = Field(description="The label of every image (conditional GAN), if any.")
    side: int
    images: list[list[float]] = Field(description="steps images from seed_a's code to seed_b's.")


class DiscriminateRequest(BaseModel):
    images: list[Any] = Field(
        description="Images as (N, side*side) or (N, side, side) nested lists, values in [0, 1].",
        min_length=1,
        max_length=MAX_DISCRIMINATE,
    )
    labels: list[Annotated[int, Field(ge=0, le=99)]] | None = Field(
        default=None,
        max_length=MAX_DISCRIMINATE,
        description="One label per image (conditional GAN; default: best label).",
    )


class DiscriminatePublic(BaseModel):
    model: str
    model_version: str
    probabilities: list[float] = Field(description="P(real) for each image, in [0, 1].")
