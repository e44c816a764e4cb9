"""Model versions: register trained checkpoints, list them, and switch the active one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.crud._tx import write
from app.crud.errors import ConflictError, NotFoundError
from app.models import ModelVersion


def register_model_version(
    *,
    session: Session,
    model_type: str,
    checkpoint_path: str,
    sha256: str | None = None,
    metrics: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    version: str | None = None,
    activate: bool = False,
) -> ModelVersion:
    """Record a checkpoint; ``version=None`` numbers it ``v1``, ``v2``, ... per model type.
    With ``activate=True`` it becomes the served version in the same transaction."""
    with write(session):
        if version is None:
            count = len(
                session.scalars(select(ModelVersion.id).filter_by(model_type=model_type)).all()
            )
            version = f"v{count + 1}"
        row = ModelVersion(
            model_type=model_type,
            version=version,
            checkpoint_path=str(checkpoint_path),
            sha256=sha256,
            metrics=dict(metrics or {}),
            params=dict(params or {}),
            is_active=False,
        )
        session.add(row)
        try:
            session.flush()
        except IntegrityError as exc:
            raise ConflictError(f"{model_type} version {version!r} already exists") from exc
        if activate:
            _activate(session, row)
    return row


def list_model_versions(*, session: Session, model_type: str | None = None) -> list[ModelVersion]:
    """Versions, newest first, optionally of one model type."""
    query = select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
    if model_type is not None:
        query = query.filter(ModelVersion.model_type == model_type)
    return list(session.scalars(query))


def get_model_version(*, session: Session, version_id: int) -> ModelVersion | None:
    return session.get(ModelVersion, version_id)


def get_active_model_version(*, session: Session, model_type: str) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion).filter(
            ModelVersion.model_type == model_type, ModelVersion.is_active.is_(True)
        )
    )


def list_active_model_versions(*, session: Session) -> list[ModelVersion]:
    """The active version of every model type (what the service loads at start-up)."""
    return list(
        session.scalars(
            select(ModelVersion)
            .filter(ModelVersion.is_active.is_(True))
            .order_by(ModelVersion.model_type)
        )
    )


def activate_model_version(*, session: Session, version_id: int) -> ModelVersion:
    """Make ``version_id`` the active version of its type and deactivate the others, in ONE
    transaction (also the way to roll back to an older version)."""
    with write(session):
        row = session.get(ModelVersion, version_id)
        if row is None:
            raise NotFoundError(f"unknown model version {version_id}")
        _activate(session, row)
    return row


def _activate(session: Session, row: ModelVersion) -> None:
    # Deactivate first: the partial unique index allows one active row per type at any time.
    session.execute(
        update(ModelVersion)
        .where(ModelVersion.model_type == row.model_type, ModelVersion.id != row.id)
        .where(ModelVersion.is_active.is_(True))
        .values(is_active=False)
        .execution_options(synchronize_session="fetch")
    )
    session.flush()
    row.is_active = True
    session.flush()
