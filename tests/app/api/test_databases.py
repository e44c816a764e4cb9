"""The API's core flow on each supported database: SQLite and PostgreSQL (CI's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.db.session import create_db_engine, create_session_factory
from ml.data.schema import RatingsDataset
from tests.app.api.conftest import admin_headers, load_service_database, make_settings, open_client

pytestmark = pytest.mark.anyio


async def test_recommend_rate_and_admin_on_each_database(
    migrated_url: str,
    tmp_path: Path,
    planted_dataset: RatingsDataset,
    checkpoints: dict[str, Path],
) -> None:
    engine = create_db_engine(migrated_url)
    with create_session_factory(engine)() as session:
        load_service_database(session, planted_dataset, checkpoints, active=("ease",))
    engine.dispose()
    async for client in open_client(make_settings(tmp_path, migrated_url)):
        assert (await client.get("/readyz")).json()["ready"] is True
        user = (await client.post("/v1/users", json={})).json()["id"]
        assert user == 41  # the id sequence continues after the loaded users
        cold = (await client.get(f"/v1/users/{user}/recommendations")).json()
        assert cold["strategy"] == "popularity"
        await client.post(
            f"/v1/users/{user}/ratings", json=[{"item_id": i, "rating": 5} for i in (2, 4, 6)]
        )
        await client.post(f"/v1/users/{user}/ratings", json={"item_id": 2, "rating": 1})
        stored = (await client.get(f"/v1/users/{user}/ratings")).json()
        assert stored[0] == {"item_id": 2, "rating": 1.0}
        warm = (await client.get(f"/v1/users/{user}/recommendations?genre=Action")).json()
        assert warm["strategy"] == "model"
        assert all(item["genres"] == ["Action"] for item in warm["items"])
        versions = (await client.get("/v1/admin/models", headers=admin_headers())).json()
        assert [(v["model_type"], v["serving"]) for v in versions] == [("ease", True)]
