"""Serving the rating RBM: fold users in from their ratings at request time.

A user's current ratings go up through the hiddens and back down (one mean-field pass,
Salakhutdinov et al. 2007, eq. 7): no retraining, so a new rating counts at once.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from ml.checkpoint import Checkpoint, CheckpointError
from ml.data.vocab import IdVocab
from ml.inference import Recommender
from ml.models.rbm import RatedBatch, RatingRBM, RBMConfig, predict_rows
from ml.models.rbm_ratings import TENSOR_PREFIX, RatingFoldIn


class RBMScorer:
    """Fold-in scorer over CSR rows (B, I): ranking scores, expected ratings, hidden codes.

    Ratings come from the companion item-based RBM when the checkpoint has one
    (``rating_model="item_rbm"``), else from the ranking model's own E[r | rated, h].
    """

    def __init__(self, model: RatingRBM, ratings_model: RatingFoldIn | None = None) -> None:
        self.model = model
        self.ratings_model = ratings_model

    def score(self, user_rows: sp.csr_matrix) -> np.ndarray:
        return predict_rows(self.model, user_rows, "score")  # (B, I)

    def predict_ratings(self, user_rows: sp.csr_matrix) -> np.ndarray:
        if self.ratings_model is not None:
            return self.ratings_model.predict(user_rows)  # (B, I), E[r] in [1, K]
        return predict_rows(self.model, user_rows, "rating")

    def item_embeddings(self) -> np.ndarray:
        return self.model.item_embeddings().detach().cpu().numpy()  # (I, H)

    @torch.inference_mode()
    def user_embeddings(self, user_rows: sp.csr_matrix) -> np.ndarray:
        device = self.model.rating_weight.device
        v = RatedBatch.from_rows(user_rows, self.model.config.n_ratings, device)
        x = self.model.hidden_input_sparse(v.items, v.values, v.offsets)
        return torch.sigmoid(x).cpu().numpy()  # (B, H), from the rated triples only


def _config(checkpoint: Checkpoint) -> RBMConfig:
    # Checkpoints from before the companion rating model predicted with the joint E[r].
    return RBMConfig.from_dict({"rating_model": "joint", **checkpoint.config})


def rebuild_model(checkpoint: Checkpoint, device: torch.device) -> RatingRBM:
    """The ``RatingRBM`` of a checkpoint, bit-exact, on ``device``."""
    tensors = {k: v for k, v in checkpoint.tensors.items() if not k.startswith(TENSOR_PREFIX)}
    try:
        model = RatingRBM(_config(checkpoint))
        model.load_state_dict(tensors, strict=True)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{checkpoint.path}: not a valid rbm checkpoint ({exc})") from exc
    return model.to(device).eval()


def rebuild_ratings_model(checkpoint: Checkpoint, device: torch.device) -> RatingFoldIn | None:
    """The companion rating predictor of a checkpoint, or None when it predicts with E[r]."""
    config = _config(checkpoint)
    if config.rating_model != "item_rbm":
        return None
    try:
        ratings_model = RatingFoldIn.from_tensors(
            checkpoint.tensors, prior_strength=config.fold_in.prior, steps=config.fold_in.steps
        )
    except (KeyError, ValueError) as exc:
        raise CheckpointError(
            f"{checkpoint.path}: rbm checkpoint without a valid rating model ({exc})"
        ) from exc
    return ratings_model.to(device).eval()


def load(checkpoint: Checkpoint, device: torch.device) -> Recommender:
    model = rebuild_model(checkpoint, device)
    users = IdVocab.from_list(checkpoint.vocab["user"])
    items = IdVocab.from_list(checkpoint.vocab["item"])
    if len(items) != model.config.n_items:
        raise CheckpointError(
            f"{checkpoint.path}: item vocabulary ({len(items)}) does not match the weights "
            f"({model.config.n_items})"
        )
    ratings_model = rebuild_ratings_model(checkpoint, device)
    if ratings_model is not None and ratings_model.item_codes.shape[0] != len(items):
        raise CheckpointError(f"{checkpoint.path}: rating model does not match the item vocabulary")
    scorer = RBMScorer(model, ratings_model)
    return Recommender(
        model_type="rbm",
        users=users,
        items=items,
        scorer=scorer,
        checkpoint=checkpoint,
        predict_ratings=scorer.predict_ratings,
        item_embeddings=scorer.item_embeddings,
        user_embeddings=scorer.user_embeddings,
    )
