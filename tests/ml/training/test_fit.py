"""``fit="all"`` serves a model fitted on every rating; the measured figures stay the protocol's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from ml.data.schema import RatingsDataset, normalise_ratings
from ml.data.splits import protocol_split
from ml.models.rbm import RatingRBM, RBMConfig, predict_rows
from ml.models.rbm_config import FoldInSettings
from ml.training.baselines import (
    EASETrainingConfig,
    PopularityTrainingConfig,
    train_ease,
    train_popularity,
)
from tests.conftest import planted_frame


@pytest.fixture(scope="module")
def dataset() -> RatingsDataset:
    ratings = normalise_ratings(planted_frame())
    items = pd.DataFrame({"item_id": sorted(ratings["item_id"].unique())})
    return RatingsDataset(name="planted", ratings=ratings, items=items)


def test_popularity_served_from_every_rating(dataset: RatingsDataset) -> None:
    served = train_popularity(dataset, PopularityTrainingConfig(), fit="all")
    measured = train_popularity(dataset, PopularityTrainingConfig(), fit="train")
    assert served.extra["fit"] == "all" and measured.extra["fit"] == "train"
    assert served.extra["n_ratings_fitted"] == len(dataset.ratings)
    split = protocol_split(dataset.ratings)
    assert measured.extra["n_ratings_fitted"] == split.train.nnz < len(dataset.ratings)
    counts = dataset.ratings.groupby("item_id").size()
    assert served.tensors["counts"].numpy().tolist() == counts.loc[split.items.ids].tolist()
    # The figures in the manifest are the held-out measurement either way.
    for key in ("ndcg@10_all", "precision@10_all", "coverage"):
        assert served.metrics[key] == measured.metrics[key]


def test_ease_refit_keeps_lambda_and_figures(dataset: RatingsDataset) -> None:
    served = train_ease(dataset, EASETrainingConfig(l2=10.0), fit="all")
    measured = train_ease(dataset, EASETrainingConfig(l2=10.0), fit="train")
    assert served.config == measured.config
    assert served.metrics["ndcg@10_all"] == measured.metrics["ndcg@10_all"]
    assert not torch.equal(served.tensors["weights"], measured.tensors["weights"])
    assert served.extra["fit_all_seconds"] >= 0


def test_unknown_fit_is_refused(dataset: RatingsDataset) -> None:
    with pytest.raises(ValueError, match="fit must be one of"):
        train_popularity(dataset, PopularityTrainingConfig(), fit="everything")


def test_fold_in_reference_scales_only_users_with_few_ratings() -> None:
    torch.manual_seed(0)
    model = RatingRBM(RBMConfig(n_items=6, n_hidden=4, fold_in=FoldInSettings(reference=4.0)))
    with torch.no_grad():
        model.rating_weight.normal_(0, 1)
        model.rated_weight.normal_(0, 1)
        model.hidden_bias.normal_(0, 1)
    x = torch.randn(3, 4)
    counts = torch.tensor([1, 4, 9])
    scaled = model.fold_in_hidden_input(x, counts)
    evidence = x - model.hidden_bias
    assert torch.allclose(scaled - model.hidden_bias, evidence * torch.tensor([[4.0], [1], [1]]))
    # Off (0) or unset (None, old checkpoints): the plain fold-in.
    for reference in (0.0, None):
        plain = RatingRBM(
            RBMConfig(n_items=6, n_hidden=4, fold_in=FoldInSettings(reference=reference))
        )
        plain.load_state_dict(model.state_dict())
        assert torch.equal(plain.fold_in_hidden_input(x, counts), x)
    # The sparse serving path and the dense one agree.
    rows = sp.csr_matrix(np.array([[5, 0, 0, 0, 0, 0], [4, 3, 0, 1, 2, 0]], dtype=np.float32))
    dense = torch.from_numpy(rows.toarray()).long()
    assert np.allclose(predict_rows(model, rows), model.score(dense).numpy(), atol=1e-5)
