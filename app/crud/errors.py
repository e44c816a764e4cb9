"""Errors the CRUD layer raises; the API maps them to 404 / 409 / 422."""

from __future__ import annotations

from collections.abc import Iterable


class CrudError(Exception):
    """Base class: a request the database cannot honour. Nothing was written."""


class NotFoundError(CrudError, LookupError):
    """A row the request refers to does not exist."""


class UnknownUserError(NotFoundError):
    def __init__(self, user_id: int) -> None:
        super().__init__(f"unknown user {user_id}")
        self.user_id = user_id


class UnknownItemError(NotFoundError):
    def __init__(self, item_ids: Iterable[int]) -> None:
        self.item_ids = sorted(set(item_ids))
        shown = ", ".join(map(str, self.item_ids[:10]))
        more = f" and {len(self.item_ids) - 10} more" if len(self.item_ids) > 10 else ""
        super().__init__(f"unknown item id(s): {shown}{more}")


class ConflictError(CrudError):
    """The write would break a uniqueness rule (an existing user id, a duplicate version)."""


class InvalidValueError(CrudError, ValueError):
    """A value outside what the schema accepts (e.g. a rating outside 0.5..5)."""


class InvalidTransitionError(CrudError):
    """A training job cannot move to the requested status from its current one."""
