"""Training the companion item-based rating RBM that predicts the RBM filter's ratings.

Same CD machinery as the user-based model (``fit_rbm``) on the transposed matrix: items are
the cases, users the softmax visibles. Only rated entries are visible in this model, so the
sparse CD path (``ml.training.rbm_sparse``) does the work. See ``ml.models.rbm_ratings``.
"""

from __future__ import annotations

import scipy.sparse as sp

from ml.models.rbm import RBMConfig
from ml.models.rbm_ratings import RatingFoldIn
from ml.training.base import TrainingOptions
from ml.training.rbm import fit_rbm


def fit_rating_fold_in(
    train: sp.csr_matrix, config: RBMConfig, options: TrainingOptions = TrainingOptions()
) -> RatingFoldIn:
    """Train the item-based RBM of ``config.item_rbm_config()`` on ``train`` (U, I) and return
    the fold-in predictor built from it."""
    items = sp.csr_matrix(train.T)  # (I, U): one case per item
    model, _ = fit_rbm(items, config.item_rbm_config(), options)
    return RatingFoldIn.from_item_rbm(
        model, items, prior_strength=config.fold_in_prior, steps=config.fold_in_steps
    )
