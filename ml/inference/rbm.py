"""Serving the rating RBM: fold users in from their ratings at request time.

A user's current ratings go up through the hiddens and back down (one mean-field pass,
Salakhutdinov et al. 2007, eq. 7): no retraining, so a new rating counts at once.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import scipy.sparse as sp
import torch

from ml.checkpoint import Checkpoint, CheckpointError
from ml.data.vocab import IdVocab
from ml.inference import Recommender
from ml.models.rbm import RatingRBM, RBMConfig, dense_states, predict_rows


class RBMScorer:
    """Fold-in scorer over CSR rows (B, I): ranking scores, expected ratings, hidden codes."""

    def __init__(self, model: RatingRBM) -> None:
        self.model = model

    def score(self, user_rows: sp.csr_matrix) -> np.ndarray:
        return predict_rows(self.model, user_rows, "score")  # (B, I)

    def predict_ratings(self, user_rows: sp.csr_matrix) -> np.ndarray:
        return predict_rows(self.model, user_rows, "rating")  # (B, I), E[r] in [1, K]

    def item_embeddings(self) -> np.ndarray:
        return self.model.item_embeddings().detach().cpu().numpy()  # (I, H)

    @torch.inference_mode()
    def user_embeddings(self, user_rows: sp.csr_matrix) -> np.ndarray:
        device = self.model.rating_weight.device
        bins = dense_states(user_rows, self.model.config.n_ratings, device)
        return self.model.hidden_probs(*self.model.split_visible(bins)).cpu().numpy()  # (B, H)


def rebuild_model(checkpoint: Checkpoint, device: torch.device) -> RatingRBM:
    """The ``RatingRBM`` of a checkpoint, bit-exact, on ``device``."""
    known = {f.name for f in fields(RBMConfig)}
    try:
        config = RBMConfig(**{k: v for k, v in checkpoint.config.items() if k in known})
        model = RatingRBM(config)
        model.load_state_dict(checkpoint.tensors, strict=True)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{checkpoint.path}: not a valid rbm checkpoint ({exc})") from exc
    return model.to(device).eval()


def load(checkpoint: Checkpoint, device: torch.device) -> Recommender:
    model = rebuild_model(checkpoint, device)
    users = IdVocab.from_list(checkpoint.vocab["user"])
    items = IdVocab.from_list(checkpoint.vocab["item"])
    if len(items) != model.config.n_items:
        raise CheckpointError(
            f"{checkpoint.path}: item vocabulary ({len(items)}) does not match the weights "
            f"({model.config.n_items})"
        )
    scorer = RBMScorer(model)
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
