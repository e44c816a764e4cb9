"""Model versions: registration, one active version per type, activation and rollback."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from app import crud


def _register(session: Session, model_type: str = "rbm", **kwargs) -> object:
    return crud.register_model_version(
        session=session,
        model_type=model_type,
        checkpoint_path=f"/ckpt/{model_type}",
        sha256="a" * 64,
        metrics={"ndcg@10_all": 0.4},
        params={"hidden": 100},
        **kwargs,
    )


def test_register_numbers_versions_per_type(session: Session) -> None:
    v1, v2, other = _register(session), _register(session), _register(session, "ease")
    assert (v1.version, v2.version, other.version) == ("v1", "v2", "v1")
    assert not v1.is_active and v1.metrics == {"ndcg@10_all": 0.4} and v1.params == {"hidden": 100}
    assert [v.id for v in crud.list_model_versions(session=session, model_type="rbm")] == [
        v2.id,
        v1.id,
    ]
    assert len(crud.list_model_versions(session=session)) == 3
    assert crud.get_model_version(session=session, version_id=v1.id) is v1
    assert crud.get_active_model_version(session=session, model_type="rbm") is None


def test_duplicate_version_conflicts(session: Session) -> None:
    _register(session, version="2024-01-01")
    with pytest.raises(crud.ConflictError):
        _register(session, version="2024-01-01")
    assert len(crud.list_model_versions(session=session)) == 1


def test_activate_switches_and_rolls_back(session: Session) -> None:
    v1 = _register(session, activate=True)
    ease = _register(session, "ease", activate=True)
    v2 = _register(session, activate=True)
    assert crud.get_active_model_version(session=session, model_type="rbm").id == v2.id
    session.expire_all()
    assert not crud.get_model_version(session=session, version_id=v1.id).is_active

    crud.activate_model_version(session=session, version_id=v1.id)  # roll back
    session.expire_all()
    assert crud.get_active_model_version(session=session, model_type="rbm").id == v1.id
    assert not crud.get_model_version(session=session, version_id=v2.id).is_active
    active = crud.list_active_model_versions(session=session)
    assert [(v.model_type, v.id) for v in active] == [("ease", ease.id), ("rbm", v1.id)]


def test_activating_an_unknown_version_changes_nothing(session: Session) -> None:
    v1 = _register(session, activate=True)
    with pytest.raises(crud.NotFoundError):
        crud.activate_model_version(session=session, version_id=v1.id + 100)
    assert crud.get_active_model_version(session=session, model_type="rbm").id == v1.id
