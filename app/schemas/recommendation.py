"""Recommendations for one user."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.item import ITEM_EXAMPLE, ScoredItem


class RecommendationsPublic(BaseModel):
    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "user_id": 1,
                    "model": "rbm",
                    "model_version": "20261127T110000Z",
                    "strategy": "model",
                    "k": 1,
                    "genre": None,
                    "items": [{**ITEM_EXAMPLE, "score": 0.97}],
                }
            ]
        },
    )

    user_id: int
    model: str = Field(description="Model type that answered ('popularity' for cold users).")
    model_version: str | None = Field(description="Version of that model; null for popularity.")
    strategy: Literal["model", "popularity"] = Field(
        description="'popularity' when the user has no ratings the model can fold in."
    )
    k: int
    genre: str | None = None
    items: list[ScoredItem]
