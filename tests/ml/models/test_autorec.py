"""I-AutoRec: masked loss, the ridge fold-in, and learning a planted rating pattern."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.data.splits import protocol_split
from ml.models.autorec import AutoRecConfig, IAutoRec, fold_in_rows
from ml.training.autorec import fit_autorec, predict_fold_in, rmse_known_users
from ml.training.base import TrainingOptions


def test_loss_ignores_unobserved_entries() -> None:
    model = IAutoRec(AutoRecConfig(n_users=6, n_hidden=3, l2=0.0))
    r = torch.tensor([[5.0, 0, 3, 0, 0, 1]])
    observed = (r != 0).float()
    _, sse = model.loss(r, observed)
    with torch.no_grad():
        expected = (((model(r) - r) * observed) ** 2).sum()
    torch.testing.assert_close(sse.detach(), expected)


def test_fold_in_is_the_ridge_solution() -> None:
    gen = torch.Generator().manual_seed(0)
    codes = torch.rand(12, 4, generator=gen, dtype=torch.float64)
    rows = torch.zeros(2, 12, dtype=torch.float64)
    rows[0, [0, 3, 5, 7, 9]] = torch.tensor([4.0, 5, 2, 3, 4], dtype=torch.float64)
    out = fold_in_rows(codes, rows, 0.5, (1.0, 5.0))
    x = torch.cat([codes, torch.ones(12, 1, dtype=torch.float64)], 1)[[0, 3, 5, 7, 9]]
    penalty = torch.diag(torch.tensor([0.5, 0.5, 0.5, 0.5, 1e-6], dtype=torch.float64))
    beta = torch.linalg.solve(x.T @ x + penalty, x.T @ rows[0, [0, 3, 5, 7, 9]])
    expected = (torch.cat([codes, torch.ones(12, 1, dtype=torch.float64)], 1) @ beta).clamp(1, 5)
    torch.testing.assert_close(out[0], expected)
    assert torch.all(out[1] == 3.0)  # no ratings: the middle of the scale


def test_config_validation() -> None:
    for bad in ({"n_hidden": 0}, {"l2": -1.0}, {"learning_rate": 0.0}, {"rating_min": 5.0}):
        with pytest.raises(ValueError):
            AutoRecConfig(**bad)


def test_learns_a_planted_pattern(planted_ratings) -> None:
    frame = planted_ratings.copy()
    # group 0 users rate items 1-15 at 5 and group 1 rate items 16-30 at 5, except items whose id
    # is a multiple of 3, which everyone rates 2: a pattern the item codes can carry
    frame["rating"] = np.where(frame["item_id"] % 3 == 0, 2.0, 5.0).astype(np.float32)
    split = protocol_split(frame)
    config = AutoRecConfig(
        n_users=split.train.shape[0],
        n_hidden=8,
        l2=0.1,
        learning_rate=1e-2,
        batch_size=8,
        fold_in_l2=0.1,
    )
    options = TrainingOptions(device="cpu", seed=0, epochs=80, progress=False)
    fit = fit_autorec(split.train, config, options)
    assert rmse_known_users(fit.model, split.train, split.test) < 1.0
    predicted = predict_fold_in(fit.model, fit.item_codes, split.train)
    test = split.test.tocoo()
    rmse = float(np.sqrt(np.mean((predicted[test.row, test.col] - test.data) ** 2)))
    assert rmse < 1.0  # a constant guess of the mean is off by about 1.3
    assert predicted.min() >= 1.0 and predicted.max() <= 5.0
