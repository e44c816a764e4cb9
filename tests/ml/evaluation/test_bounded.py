"""Bounded evaluation: batches of users and a seeded user sample give the same figures as the
full computation over the users they cover; small data is evaluated in full."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ml.evaluation import evaluate as evaluation
from ml.evaluation.coldstart import coldstart_ndcg
from ml.evaluation.evaluate import batch_rows, evaluate_ranking, evaluate_rating, evaluation_users

N_USERS, N_ITEMS = 300, 80


def _matrix(seed: int, density: float) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    matrix = sp.random(N_USERS, N_ITEMS, density=density, format="csr", random_state=seed)
    matrix.data[:] = rng.integers(1, 6, matrix.nnz)
    return matrix.astype(np.float32)


@pytest.fixture(scope="module")
def folds() -> tuple[sp.csr_matrix, sp.csr_matrix]:
    train = _matrix(0, 0.1)
    test = _matrix(1, 0.04)
    test = test - test.multiply(train != 0)  # disjoint from train
    test.eliminate_zeros()
    return sp.csr_matrix(train), sp.csr_matrix(test)


WEIGHTS = np.random.default_rng(2).standard_normal((N_ITEMS, N_ITEMS)).astype(np.float32)


def _scorer(rows: sp.csr_matrix) -> np.ndarray:
    return np.asarray(rows @ WEIGHTS)


def _without_time(metrics: dict[str, float]) -> dict[str, float]:
    return {key: value for key, value in metrics.items() if key != "scoring_seconds"}


def test_batches_do_not_change_the_figures(folds: tuple[sp.csr_matrix, sp.csr_matrix]) -> None:
    train, test = folds
    whole = evaluate_ranking(_scorer, train, test, batch_size=1024, max_users=0)
    batched = evaluate_ranking(_scorer, train, test, batch_size=7, max_users=0)
    assert _without_time(batched) == pytest.approx(_without_time(whole))
    assert whole["users_evaluated"] == (np.diff(test.indptr) > 0).sum()
    assert "users_sampled_from" not in whole
    assert evaluate_rating(_scorer, train, test, batch_size=5, max_users=0) == pytest.approx(
        evaluate_rating(_scorer, train, test, max_users=0)
    )


def test_a_sample_equals_the_full_evaluation_of_its_users(
    folds: tuple[sp.csr_matrix, sp.csr_matrix],
) -> None:
    train, test = folds
    users = evaluation_users(test, 40)
    assert len(users) == 40 and np.array_equal(users, evaluation_users(test, 40))  # seeded
    only_sampled = sp.csr_matrix(sp.diags(np.isin(np.arange(N_USERS), users).astype(np.float32)))
    restricted = sp.csr_matrix(only_sampled @ test)
    sampled = evaluate_ranking(_scorer, train, test, batch_size=9, max_users=40)
    full_of_sample = evaluate_ranking(_scorer, train, restricted, max_users=0)
    assert sampled["users_sampled_from"] == (np.diff(test.indptr) > 0).sum()
    sampled_figures = _without_time(sampled)
    del sampled_figures["users_sampled_from"]
    assert sampled_figures == pytest.approx(_without_time(full_of_sample))
    assert evaluate_rating(_scorer, train, test, max_users=40) == pytest.approx(
        evaluate_rating(_scorer, train, restricted, max_users=0)
    )


def test_the_sample_size_setting(
    folds: tuple[sp.csr_matrix, sp.csr_matrix], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, test = folds
    population = int((np.diff(test.indptr) > 0).sum())
    assert len(evaluation_users(test)) == population  # default 10,000: small data in full
    monkeypatch.setenv(evaluation.MAX_USERS_ENV, "25")
    assert len(evaluation_users(test)) == 25
    monkeypatch.setenv(evaluation.MAX_USERS_ENV, "0")
    assert len(evaluation_users(test)) == population
    monkeypatch.setenv(evaluation.MAX_USERS_ENV, "many")
    with pytest.raises(ValueError, match="DEEPREC_EVAL_MAX_USERS"):
        evaluation_users(test)


def test_batches_shrink_for_large_catalogues() -> None:
    assert batch_rows(1_682, 1024) == 1024  # ML-100K: unchanged
    assert batch_rows(59_047, 1024) * 59_047 <= evaluation.MAX_BATCH_CELLS
    assert batch_rows(10**9, 1024) == 1


def test_coldstart_in_batches_equals_all_at_once(
    folds: tuple[sp.csr_matrix, sp.csr_matrix],
) -> None:
    train, _ = folds
    assert coldstart_ndcg(_scorer, train, batch_size=11) == pytest.approx(
        coldstart_ndcg(_scorer, train, batch_size=10_000)
    )
