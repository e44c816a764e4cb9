"""Items and item neighbours."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

ITEM_EXAMPLE: dict[str, Any] = {
    "id": 50,
    "title": "Star Wars",
    "year": 1977,
    "genres": ["Action", "Adventure", "Romance", "Sci-Fi", "War"],
}


class ItemPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [ITEM_EXAMPLE]})

    id: int
    title: str
    year: int | None = None
    genres: list[str] = Field(default_factory=list)


class ScoredItem(ItemPublic):
    score: float

    @classmethod
    def of(cls, item: Any, score: float) -> ScoredItem:
        """From anything with id, title, year and genres (a catalogue entry) and a score."""
        return cls(
            id=item.id, title=item.title, year=item.year, genres=list(item.genres), score=score
        )


class SimilarItemsPublic(BaseModel):
    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "item": ITEM_EXAMPLE,
                    "model": "rbm",
                    "model_version": "20261127T110000Z",
                    "similar": [
                        {
                            **ITEM_EXAMPLE,
                            "id": 172,
                            "title": "Empire Strikes Back, The",
                            "year": 1980,
                            "score": 0.93,
                        }
                    ],
                }
            ]
        },
    )

    item: ItemPublic
    model: str
    model_version: str
    similar: list[ScoredItem] = Field(description="Cosine neighbours in embedding space.")


class ItemsPage(BaseModel):
    """One page of a catalogue search."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [ITEM_EXAMPLE],
                    "total": 1,
                    "limit": 20,
                    "offset": 0,
                    "q": "star wars",
                    "genre": None,
                    "genres": ["Action", "Adventure", "Comedy"],
                }
            ]
        }
    )

    items: list[ItemPublic]
    total: int = Field(description="Matches in all (every page).")
    limit: int
    offset: int
    q: str | None = None
    genre: str | None = None
    genres: list[str] = Field(description="Every genre in the catalogue (for a filter).")
