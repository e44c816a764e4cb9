"""An item that can be rated and recommended (a movie, for MovieLens)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base
from app.db.types import JSONType

if TYPE_CHECKING:
    from app.models.rating import Rating


class Item(Base):
    __tablename__ = "item"

    # The raw item id of the data set.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(String(512), index=True)
    year: Mapped[int | None] = mapped_column(Integer)
    genres: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Free text (plot, tags) for content-based recommendations.
    description: Mapped[str | None] = mapped_column(Text)

    ratings: Mapped[list[Rating]] = relationship(
        back_populates="item", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"Item(id={self.id}, title={self.title!r})"
