"""Serving the classical baselines from their checkpoints (popularity counts, EASE weights)."""

from __future__ import annotations

import numpy as np
import torch

from ml.checkpoint import Checkpoint
from ml.data.vocab import IdVocab
from ml.inference import Recommender
from ml.models.baselines import EASE, EASEConfig, Popularity


def load(checkpoint: Checkpoint, device: torch.device) -> Recommender:
    users = IdVocab.from_list(checkpoint.vocab["user"])
    items = IdVocab.from_list(checkpoint.vocab["item"])
    if checkpoint.model_type == "popularity":
        scorer: Popularity | EASE = Popularity(checkpoint.tensors["counts"].numpy())
    else:
        scorer = EASE(
            checkpoint.tensors["weights"].numpy().astype(np.float32),
            EASEConfig(**checkpoint.config),
        )
    return Recommender(checkpoint.model_type, users, items, scorer, checkpoint)
