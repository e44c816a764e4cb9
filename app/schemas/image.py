"""Image reconstructions."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ReconstructionPublic(BaseModel):
    model: str
    model_version: str
    side: int
    noise: float
    kind: Literal["mask", "gaussian"]
    inputs: list[list[float]] = Field(description="What the model saw (corrupted if noise > 0).")
    reconstructions: list[list[float]] = Field(description="One per image, side*side in [0, 1].")
    mse: float = Field(description="Mean squared error of the reconstructions to the originals.")
