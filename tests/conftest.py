"""Shared fixtures: real ml-100k (cached outside git), planted synthetic ratings, devices."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ml.data.fetch import load_dataset
from ml.data.schema import RatingsDataset

ROOT = Path(__file__).resolve().parents[1]
TEST_DATA_DIR = Path(os.environ.get("DEEPREC_TEST_DATA_DIR", ROOT / "data"))


@pytest.fixture(scope="session")
def ml100k() -> RatingsDataset:
    """Real MovieLens-100K through the offline route (the wheel from PyPI), cached in data/."""
    return load_dataset("ml-100k", data_dir=TEST_DATA_DIR, online=False)


def planted_frame(
    n_users: int = 40, n_items: int = 30, per_user: int = 8, seed: int = 0
) -> pd.DataFrame:
    """Two user groups who like disjoint item sets: users in group g rate only items of group g
    (high), so a recommender must recommend within each group."""
    rng = np.random.default_rng(seed)
    half_items = n_items // 2
    rows = []
    for user in range(1, n_users + 1):
        group = user % 2
        pool = np.arange(1, half_items + 1) + group * half_items
        for item in rng.choice(pool, size=per_user, replace=False):
            rows.append((user, int(item), float(rng.choice([4.0, 5.0])), 1_000_000 + user))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])


@pytest.fixture
def planted_ratings() -> pd.DataFrame:
    return planted_frame()


def _devices() -> list[str]:
    return ["cpu", "cuda"]


@pytest.fixture(params=_devices())
def torch_device(request: pytest.FixtureRequest) -> torch.device:
    """Each device the test should run on; cuda is skipped where no GPU is present."""
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    return torch.device(request.param)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="no CUDA device on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
