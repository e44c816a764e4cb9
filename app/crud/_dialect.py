"""``INSERT ... ON CONFLICT`` for the two supported dialects."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db.base import Base


def table_of(model: type[Base]) -> Table:
    """The Core table of an ORM model (typed as ``Table``, unlike ``Model.__table__``)."""
    return Base.metadata.tables[model.__tablename__]


def insert_for(session: Session, table: Table) -> Any:
    """The dialect's own ``insert`` (it has ``on_conflict_do_nothing`` / ``..._do_update``)."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"database dialect {name!r} is not supported (sqlite, postgresql)")
