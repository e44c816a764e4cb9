"""Image reconstructions."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, Field


def pixel_rows(images: np.ndarray) -> list[list[float]]:
    """Images (N, side*side) as JSON answers carry them: 5 decimals, enough for 8-bit pixels."""
    return np.round(images.astype(np.float64), 5).tolist()


class ReconstructionPublic(BaseModel):
    model: str
    model_version: str
    side: int
    noise: float
    kind: Literal["mask", "gaussian"]
    inputs: list[list[float]] = Field(description="What the model saw (corrupted if noise > 0).")
    reconstructions: list[list[float]] = Field(description="One per image, side*side in [0, 1].")
    mse: float = Field(description="Mean squared error of the reconstructions to the originals.")
