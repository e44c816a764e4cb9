"""Users: what a client sends to create one, what the API returns."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class UserBase(BaseModel):
    age: int | None = Field(default=None, ge=0, le=150)
    gender: str | None = Field(default=None, max_length=16)
    occupation: str | None = Field(default=None, max_length=64)
    zip_code: str | None = Field(default=None, max_length=16)


class UserCreate(UserBase):
    """A new user; leave ``id`` out to let the service pick the next free one."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"age": 31, "occupation": "engineer"}, {}]},
    )

    id: int | None = Field(default=None, ge=1, le=2**31 - 1)


class UserPublic(UserBase):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 944,
                    "age": 31,
                    "gender": None,
                    "occupation": "engineer",
                    "zip_code": None,
                    "created_at": "2026-11-27T11:00:00Z",
                    "n_ratings": 0,
                }
            ]
        },
    )

    id: int
    created_at: datetime | None = None
    n_ratings: int = 0
