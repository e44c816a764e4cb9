"""The schema itself refuses bad rows, whatever code writes them (raw ORM writes, no CRUD)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models import Rating
from tests.factories import make_item, make_model_version, make_rating, make_user


def test_duplicate_rating_is_refused(session: Session) -> None:
    user, item = make_user(session), make_item(session)
    make_rating(session, user=user, item=item, rating=4.0)
    with pytest.raises(IntegrityError):
        make_rating(session, user=user, item=item, rating=2.0)
    session.rollback()
    assert session.query(Rating).count() == 1


@pytest.mark.parametrize("value", [0.0, 0.49, 5.01, 10.0])
def test_rating_out_of_range_is_refused(session: Session, value: float) -> None:
    user, item = make_user(session), make_item(session)
    with pytest.raises(IntegrityError, match="ck_rating_rating_range"):
        make_rating(session, user=user, item=item, rating=value)


@pytest.mark.parametrize("value", [0.5, 5.0])
def test_rating_range_bounds_are_allowed(session: Session, value: float) -> None:
    rating = make_rating(session, user=make_user(session), item=make_item(session), rating=value)
    assert rating.rating == value


def test_rating_of_unknown_item_is_refused(session: Session) -> None:
    user = make_user(session)
    with pytest.raises(IntegrityError):
        session.execute(
            text(
                "INSERT INTO rating (user_id, item_id, rating, rated_at) "
                "VALUES (:u, 999999, 3.0, CURRENT_TIMESTAMP)"
            ),
            {"u": user.id},
        )
        session.flush()


def test_one_active_version_per_model_type(session: Session) -> None:
    make_model_version(session, model_type="rbm", is_active=True)
    make_model_version(session, model_type="rbm", is_active=False)
    make_model_version(session, model_type="ease", is_active=True)  # another type: fine
    with pytest.raises(
        IntegrityError, match=r"uq_model_version_one_active|model_version\.model_type"
    ):
        make_model_version(session, model_type="rbm", is_active=True)


def test_duplicate_version_string_is_refused(session: Session) -> None:
    make_model_version(session, model_type="rbm", version="v1")
    with pytest.raises(IntegrityError):
        make_model_version(session, model_type="rbm", version="v1")


def test_unknown_job_status_is_refused(session: Session) -> None:
    with pytest.raises(IntegrityError, match="ck_training_job_status"):
        session.execute(
            text(
                "INSERT INTO training_job (model_type, status, params, created_at) "
                "VALUES ('rbm', 'exploded', '{}', CURRENT_TIMESTAMP)"
            )
        )
