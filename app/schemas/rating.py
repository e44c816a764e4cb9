"""Ratings: one or many per request, upserted per (user, item)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MIN_RATING = 0.5
MAX_RATING = 5.0
MAX_RATINGS_PER_REQUEST = 10_000


class RatingBase(BaseModel):
    item_id: int = Field(ge=1, le=2**31 - 1, description="Raw item id (MovieLens movie id).")
    rating: float = Field(ge=MIN_RATING, le=MAX_RATING, description="0.5 to 5 stars.")


class RatingCreate(RatingBase):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"item_id": 50, "rating": 5}]}
    )


class RatingsCreate(BaseModel):
    """Several ratings in one request (an item rated twice keeps the last value)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"ratings": [{"item_id": 50, "rating": 5}, {"item_id": 181, "rating": 4.5}]}
            ]
        },
    )

    ratings: list[RatingCreate] = Field(min_length=1, max_length=MAX_RATINGS_PER_REQUEST)


class RatingPublic(RatingBase):
    model_config = ConfigDict(from_attributes=True)


class RatingsWritten(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": 944,
                    "written": 2,
                    "n_ratings": 2,
                    "ratings": [{"item_id": 50, "rating": 5.0}, {"item_id": 181, "rating": 4.5}],
                }
            ]
        }
    )

    user_id: int
    written: int = Field(description="Ratings created or updated by this request.")
    n_ratings: int = Field(description="The user's ratings in total after this request.")
    ratings: list[RatingPublic]
