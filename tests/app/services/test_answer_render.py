"""The cached answer's bytes are what the response schema would have serialised."""

from __future__ import annotations

from app.schemas.item import ScoredItem
from app.schemas.recommendation import RecommendationsPublic
from app.services.catalog import ItemInfo
from app.services.recommendations import Recommendations, ScoredItemInfo, render


def test_render_matches_the_schema() -> None:
    scores = [0.9731234567, 1e-7, 12345.678, -3.5, 0.0, 2.0 / 3.0]
    items = [
        ScoredItemInfo(ItemInfo(i + 1, f"Film {i} \u00e9\"quoted\"", 1990 + i if i else None,
                                ("Comedy", "Drama")[: i % 3]), score)
        for i, score in enumerate(scores)
    ]  # fmt: skip
    for genre in (None, "Comedy", ""):
        result = Recommendations(7, "ease", "v1", "model", items)
        body = render(result, 6, genre)
        schema = RecommendationsPublic(
            user_id=7,
            model="ease",
            model_version="v1",
            strategy="model",
            k=6,
            genre=genre or None,
            items=[ScoredItem.of(s.item, s.score) for s in items],
        )
        assert body == schema.model_dump_json().encode()  # byte for byte
        assert RecommendationsPublic.model_validate_json(body) == schema
