"""A person who rates items. The table is ``app_user``: ``user`` is reserved in PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base
from app.db.types import UTCDateTime, utcnow

if TYPE_CHECKING:
    from app.models.rating import Rating


class User(Base):
    __tablename__ = "app_user"

    # The raw user id of the data set (MovieLens ids), so ratings files map onto rows directly.
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    age: Mapped[int | None] = mapped_column(Integer)
    gender: Mapped[str | None] = mapped_column(String(16))
    occupation: Mapped[str | None] = mapped_column(String(64))
    zip_code: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Bumped in the same transaction as every write to this user's ratings: cached answers are
    # keyed by it, so none can outlive a rating change.
    ratings_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    ratings: Mapped[list[Rating]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"User(id={self.id})"
