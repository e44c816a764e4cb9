"""Items and item neighbours."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

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


# ------------------------------------------------------------- POST / PATCH /v1/items (admin)
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=512)]
Genre = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Year = Annotated[int, Field(ge=1800, le=2100)]
Description = Annotated[str, StringConstraints(max_length=10_000)]
NEW_ITEM_EXAMPLE: dict[str, Any] = {
    "title": "The Clockmaker's Daughter",
    "year": 2026,
    "genres": ["Comedy", "Romance"],
    "description": "A watch repairer falls for the woman who keeps breaking her clocks.",
}


class ItemCreate(BaseModel):
    """A new film: its metadata is all the content models need to recommend it at once."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [NEW_ITEM_EXAMPLE]})

    id: int | None = Field(default=None, ge=1, le=2**31 - 1, description="Default: next free.")
    title: Title
    year: Year | None = None
    genres: list[Genre] = Field(default_factory=list, max_length=32)
    description: Description | None = None


class ItemUpdate(BaseModel):
    """Metadata fields to change; fields left out stay as they are (null clears year or
    description)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"genres": ["Comedy", "Drama"]}]}
    )

    title: Title | None = None
    year: Year | None = None
    genres: list[Genre] | None = Field(default=None, max_length=32)
    description: Description | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> ItemUpdate:
        if not self.model_fields_set:
            raise ValueError(
                "nothing to change: send at least one of title, year, genres, description"
            )
        for name in ("title", "genres"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        """Only the fields the client sent."""
        return self.model_dump(exclude_unset=True)


class ItemDetail(ItemPublic):
    """An item with its free text, as written."""

    description: str | None = None


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
