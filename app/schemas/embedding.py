"""Users' or items' embeddings reduced to 2 or 3 dimensions."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class EmbeddingPoint(BaseModel):
    id: int
    coords: list[float]
    title: str | None = None
    genres: list[str] | None = None


class EmbeddingsPublic(BaseModel):
    model: str
    model_version: str
    kind: Literal["users", "items"]
    method: Literal["pca", "autoencoder"]
    dims: int
    points: list[EmbeddingPoint] = Field(description="One point per user or item.")
