"""Fixtures for the API tests: a real SQLite file loaded with a small planted data set, real
checkpoints (EASE, popularity and a tiny rating RBM trained here) registered as the active model
versions, and an httpx client on ``create_app()`` with its lifespan running.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.crud import bulk_load, register_model_version
from app.db.session import create_db_engine, create_session_factory
from app.main import create_app
from ml.checkpoint import checkpoint_sha256, save_checkpoint
from ml.data.schema import RatingsDataset, normalise_ratings
from ml.models.rbm import RBMConfig
from ml.models.rbm_config import RBMTraining
from ml.training.base import TrainingOptions
from ml.training.baselines import (
    EASETrainingConfig,
    PopularityTrainingConfig,
    train_ease,
    train_popularity,
)
from ml.training.rbm import train_rbm_checkpoint
from tests.conftest import planted_frame

ADMIN_TOKEN = "test-admin-token"
N_ITEMS = 30
GROUP_GENRES = ("Action", "Comedy")  # items 1..15 are Action, 16..30 Comedy


def item_genre(item_id: int) -> str:
    return GROUP_GENRES[0] if item_id <= N_ITEMS // 2 else GROUP_GENRES[1]


def user_genre(user_id: int) -> str:
    """Users of group g (user_id % 2) rate only items of group g (see ``planted_frame``)."""
    return GROUP_GENRES[user_id % 2]


@pytest.fixture(scope="session")
def planted_dataset() -> RatingsDataset:
    """40 users in two groups with disjoint tastes over 30 titled items, plus 4 unrated items."""
    ratings = normalise_ratings(planted_frame(n_users=40, n_items=N_ITEMS, per_user=8, seed=0))
    ids = list(range(1, N_ITEMS + 5))
    items = pd.DataFrame(
        {
            "item_id": pd.Series(ids, dtype="int64"),
            "title": [f"Planted Movie {i}" for i in ids],
            "year": pd.Series([1990 + i % 10 for i in ids], dtype="Int64"),
            "genres": [[item_genre(i)] if i <= N_ITEMS else ["Drama"] for i in ids],
        }
    )
    return RatingsDataset(name="planted", ratings=ratings, items=items, source="test")


@pytest.fixture(scope="session")
def checkpoints(
    tmp_path_factory: pytest.TempPathFactory, planted_dataset: RatingsDataset
) -> dict[str, Path]:
    """Real checkpoints trained on the planted data: EASE, popularity, and a tiny RBM."""
    root = tmp_path_factory.mktemp("checkpoints")
    trained = {
        "ease": train_ease(planted_dataset, EASETrainingConfig(l2=10.0)),
        "popularity": train_popularity(planted_dataset, PopularityTrainingConfig()),
        "rbm": train_rbm_checkpoint(
            planted_dataset,
            RBMConfig(
                n_hidden=8,
                training=RBMTraining(
                    learning_rate=0.1, batch_size=8, epochs=30, cd_k_step_epochs=10
                ),
            ),
            TrainingOptions(device="cpu", seed=3, progress=False),
        ),
    }
    return {name: save_checkpoint(ckpt, root / name) for name, ckpt in trained.items()}


def load_service_database(
    session: Session, dataset: RatingsDataset, checkpoints: dict[str, Path], active: tuple[str, ...]
) -> None:
    bulk_load(session=session, dataset=dataset)
    for model_type in active:
        path = checkpoints[model_type]
        register_model_version(
            session=session,
            model_type=model_type,
            checkpoint_path=str(path),
            sha256=checkpoint_sha256(path),
            version="v1",
            activate=True,
        )


@pytest.fixture(scope="session")
def service_db_template(
    tmp_path_factory: pytest.TempPathFactory,
    _migrated_sqlite_template: Path,
    planted_dataset: RatingsDataset,
    checkpoints: dict[str, Path],
) -> Path:
    """A migrated SQLite file holding the planted data, with EASE and the RBM active."""
    target = tmp_path_factory.mktemp("service-db") / "deeprec.db"
    shutil.copyfile(_migrated_sqlite_template, target)
    engine = create_db_engine(f"sqlite:///{target}")
    with create_session_factory(engine)() as session:
        load_service_database(session, planted_dataset, checkpoints, active=("ease", "rbm"))
    engine.dispose()
    return target


def make_settings(tmp_path: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path,
        "database_url": database_url,
        "checkpoint_dir": tmp_path / "checkpoints",
        "required_models": "ease",
        "admin_token": ADMIN_TOKEN,
        "device": "cpu",
        "popularity_cache_s": 0.0,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def service_settings(tmp_path: Path, service_db_template: Path) -> Settings:
    """Settings on a private copy of the loaded database."""
    database = tmp_path / "deeprec.db"
    shutil.copyfile(service_db_template, database)
    return make_settings(tmp_path, f"sqlite:///{database}")


async def open_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://deeprec.test") as c:
            c.app = app  # type: ignore[attr-defined]
            yield c


@pytest.fixture
async def client(service_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on a running app (lifespan entered: models loaded)."""
    async for c in open_client(service_settings):
        yield c


def admin_headers(token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
