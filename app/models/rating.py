"""One user's rating of one item, at most one per (user, item)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base
from app.db.types import UTCDateTime, utcnow

if TYPE_CHECKING:
    from app.models.item import Item
    from app.models.user import User

MIN_RATING = 0.5
MAX_RATING = 5.0


class Rating(Base):
    __tablename__ = "rating"
    __table_args__ = (
        UniqueConstraint("user_id", "item_id"),
        CheckConstraint(f"rating >= {MIN_RATING} AND rating <= {MAX_RATING}", name="rating_range"),
        Index(None, "item_id"),
    )

    # BIGINT on PostgreSQL (ml-25m and beyond); SQLite needs INTEGER for its rowid alias.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"))
    rating: Mapped[float] = mapped_column(Float)
    rated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    user: Mapped[User] = relationship(back_populates="ratings")
    item: Mapped[Item] = relationship(back_populates="ratings")

    def __repr__(self) -> str:
        return f"Rating(user_id={self.user_id}, item_id={self.item_id}, rating={self.rating})"
