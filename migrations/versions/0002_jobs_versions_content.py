"""Job owners, heartbeats and progress; per-user ratings versions; item descriptions; title index.

- ``training_job.owner_host`` / ``owner_pid`` / ``heartbeat_at``: a start-up reaps jobs whose owner
  is gone; ``progress`` carries epoch of n, the current figure, elapsed and estimate.
- ``app_user.ratings_version``: bumped in the same transaction as any rating write, so cached answers
  keyed by it are never stale.
- ``item.description``: free text for content-based recommendations; ``ix_item_title`` for search.

Revision ID: 0002_jobs_versions_content
Revises: 0001_initial
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.db.types

revision: str = "0002_jobs_versions_content"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_DATETIME = app.db.types.UTCDateTime()


def upgrade() -> None:
    with op.batch_alter_table("training_job") as batch:
        batch.add_column(sa.Column("owner_host", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("owner_pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", UTC_DATETIME, nullable=True))
        batch.add_column(sa.Column("progress", JSON, nullable=True))
    with op.batch_alter_table("app_user") as batch:
        batch.add_column(
            sa.Column("ratings_version", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("item") as batch:
        batch.add_column(sa.Column("description", sa.Text(), nullable=True))
    op.create_index(op.f("ix_item_title"), "item", ["title"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_item_title"), table_name="item")
    with op.batch_alter_table("item") as batch:
        batch.drop_column("description")
    with op.batch_alter_table("app_user") as batch:
        batch.drop_column("ratings_version")
    with op.batch_alter_table("training_job") as batch:
        batch.drop_column("progress")
        batch.drop_column("heartbeat_at")
        batch.drop_column("owner_pid")
        batch.drop_column("owner_host")
