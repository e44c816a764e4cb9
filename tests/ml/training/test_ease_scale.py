"""EASE at scale: float32 from a sparse Gram matrix, in-place inversion, a bounded lambda search,
and a clean refusal where the items x items arrays cannot fit the memory budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from app.services.retrain import error_line
from ml.models.baselines import (
    EASE,
    EASEConfig,
    EASETooLargeError,
    _invert_spd_in_place,
    check_ease_fits,
    ease_memory_bytes,
    gram_matrix,
)
from ml.training.baselines import (
    DEFAULT_L2_GRID,
    EASETrainingConfig,
    bounded_grid_search,
    train_ease,
)
from tests.app.cli.runner import deeprec_in_process
from tests.conftest import planted_frame
from tests.factories import ratings_dataset


def _ratings(users: int = 120, items: int = 70, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    matrix = sp.random(users, items, density=0.08, format="csr", random_state=seed)
    matrix.data[:] = rng.integers(1, 6, matrix.nnz)
    return matrix.astype(np.float32)


def test_float32_fit_equals_the_dense_float64_closed_form() -> None:
    train = _ratings()
    x = (train.toarray() != 0).astype(np.float64)
    precision = np.linalg.inv(x.T @ x + 30.0 * np.eye(x.shape[1]))
    expected = -precision / np.diag(precision)[None, :]
    np.fill_diagonal(expected, 0.0)
    fitted = EASE.fit(train, EASEConfig(30.0))
    assert fitted.weights.dtype == np.float32 and fitted.weights.flags.c_contiguous
    np.testing.assert_allclose(fitted.weights, expected, atol=1e-5)
    assert not np.diagonal(fitted.weights).any()


def test_gram_and_inverse_by_blocks_match_the_whole_computation() -> None:
    train = _ratings(items=53)
    x = (train.toarray() != 0).astype(np.float32)
    np.testing.assert_array_equal(gram_matrix(train, block_cells=53 * 4), x.T @ x)
    spd = x.T @ x + 10.0 * np.eye(53, dtype=np.float32)
    expected = np.linalg.inv(spd.astype(np.float64))
    for block_cells in (53, 53 * 7, 1 << 20):
        np.testing.assert_allclose(
            _invert_spd_in_place(spd.copy(), block_cells=block_cells), expected, atol=1e-6
        )


def test_bounded_search_finds_a_single_peak_within_its_fits() -> None:
    for peak in DEFAULT_L2_GRID:
        calls: list[float] = []

        def score(l2: float, peak: float = peak, calls: list[float] = calls) -> float:
            calls.append(l2)
            return -abs(np.log(l2) - np.log(peak))

        best, scores = bounded_grid_search(DEFAULT_L2_GRID, score, max_fits=4)
        assert best == peak and len(calls) == len(scores) <= 4
    best, scores = bounded_grid_search(DEFAULT_L2_GRID, lambda l2: 1.0, max_fits=1)
    assert len(scores) == 1 and best == 300.0  # one fit: the middle of the grid


def test_the_guard_names_the_need_and_the_setting() -> None:
    assert ease_memory_bytes(59_047) > 8 * 1024**3
    with pytest.raises(EASETooLargeError, match=r"59,047 items.*memory_budget_gib"):
        check_ease_fits(59_047, 8.0)
    check_ease_fits(10_677, 8.0)  # ML-10M's catalogue fits the default budget


def test_training_refuses_before_fitting_and_the_cli_says_so_in_one_line(tmp_path: Path) -> None:
    dataset = ratings_dataset(planted_frame())
    with pytest.raises(EASETooLargeError):
        train_ease(dataset, EASETrainingConfig(memory_budget_gib=1e-6))
    ratings = tmp_path / "ratings.csv"
    dataset.ratings.to_csv(ratings, index=False)
    out = tmp_path / "ease"
    done = deeprec_in_process(
        "train", "ease", "--ratings", str(ratings), "--out", str(out),
        "--memory-budget-gib", "0.000001",
    )  # fmt: skip
    assert done.returncode == 2 and not out.exists()
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "memory_budget_gib" in lines[0]
    # A retrain job runs this command and fails with that line as its reason.
    assert "EASE needs about" in error_line(done.stderr, done.returncode)


def test_tuned_training_uses_at_most_the_fits_it_is_allowed() -> None:
    checkpoint = train_ease(
        ratings_dataset(planted_frame()), EASETrainingConfig(max_tuning_fits=2), fit="train"
    )
    assert len(checkpoint.extra["validation_ndcg_by_l2"]) == 2
    assert checkpoint.tensors["weights"].dtype.is_floating_point
