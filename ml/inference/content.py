"""Serving the content family (``content`` and ``hybrid``) from checkpoints.

A :class:`ContentRecommender` is a ``Recommender`` whose item set can grow after training: the
service hands it the current catalogue's metadata (:meth:`ContentRecommender.sync_catalogue`),
the small encoder embeds every item from its metadata (milliseconds for thousands of items), and
a film added a moment ago is scored, recommended and has content neighbours at once, with no
retraining. The state it answers from (vocabulary, codes, rating counts, EASE columns) is one
immutable object swapped in a single assignment, so a request never mixes two catalogues.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from ml.checkpoint import Checkpoint, CheckpointError
from ml.data.vocab import IdVocab
from ml.inference import Recommender, nearest_rows, top_items
from ml.models.content import (
    CODES,
    COUNTS,
    EASE_WEIGHTS,
    FEATURES,
    MAPPING,
    WARM,
    ContentAutoencoder,
    ContentConfig,
    ContentFeaturizer,
    ContentScorer,
    ItemMeta,
    content_unit,
    map_inputs,
)

__all__ = ["ContentRecommender", "ContentState", "ItemMeta", "load"]


@dataclass(frozen=True)
class ContentState:
    """One catalogue as the model sees it: (N,) ids, (N, d) codes, and for the hybrid the
    training rating count and EASE column of each item (0 and -1 for items added since)."""

    items: IdVocab
    codes: np.ndarray  # (N, d)
    unit: np.ndarray  # (N, d) row-normalised centred codes (``content_unit``)
    inputs: np.ndarray  # (N, D) what the hybrid's map reads
    counts: np.ndarray  # (N,)
    warm: np.ndarray  # (N,)
    token: object = None  # what it was built from (the service's catalogue snapshot)


class _StateScorer:
    """The ``Scorer`` protocol over the model's current state (CLI evaluation, warm-up)."""

    def __init__(self, owner: ContentRecommender) -> None:
        self.owner = owner

    def score(self, user_rows: sp.csr_matrix) -> np.ndarray:
        return self.owner.rule.score(self.owner.state, user_rows)


class ContentRecommender(Recommender):
    """A recommender over a catalogue that can change at run time (see the module docstring)."""

    def __init__(
        self,
        model_type: str,
        users: IdVocab,
        checkpoint: Checkpoint,
        *,
        featurizer: ContentFeaturizer,
        encoder: ContentAutoencoder,
        rule: ContentScorer,
        state: ContentState,
    ) -> None:
        super().__init__(model_type, users, state.items, _StateScorer(self), checkpoint)
        self.featurizer = featurizer
        self.encoder = encoder
        self.rule = rule
        self.state = state
        self.trained = state  # the catalogue as it was at training time
        self.centre: np.ndarray = state.codes.mean(axis=0) if len(state.codes) else np.zeros(1)

    # ------------------------------------------------------------ catalogue
    def features(self, items: Sequence[ItemMeta]) -> tuple[np.ndarray, np.ndarray]:
        """Features (N, F) and content codes (N, d) of items from their metadata alone."""
        features = self.featurizer.transform(items)
        if not items:
            return features, np.zeros((0, self.trained.codes.shape[1]), np.float32)
        device = next(self.encoder.parameters()).device
        codes = self.encoder.codes(torch.from_numpy(features).to(device))
        return features, codes.float().cpu().numpy()

    def encode(self, items: Sequence[ItemMeta]) -> np.ndarray:
        """Content codes (N, d) of items from their metadata alone."""
        return self.features(items)[1]

    def sync_catalogue(self, items: Sequence[ItemMeta], token: object = None) -> ContentState:
        """Serve over ``items`` (the current catalogue): every code recomputed from the current
        metadata; training's rating counts and EASE columns kept for the items it knew."""
        if token is not None and self.state.token is token:
            return self.state
        ordered = sorted(items, key=lambda item: item.id)
        vocab = IdVocab.from_list([item.id for item in ordered])
        features, codes = self.features(ordered)
        inputs = map_inputs(codes, features, self.rule.config.map_from)
        old = self.trained.items.encode(vocab.ids, strict=False)  # (N,) -1 for new items
        known = old >= 0
        counts = np.zeros(len(vocab))
        counts[known] = self.trained.counts[old[known]]
        warm = np.full(len(vocab), -1, np.int64)
        warm[known] = self.trained.warm[old[known]]
        unit = content_unit(codes, self.centre)
        state = ContentState(vocab, codes, unit, inputs, counts, warm, token)
        self.state = state  # one assignment: requests read either the old or the new state
        self.items = vocab
        return state

    # ------------------------------------------------------------ serving
    def _rows(self, state: ContentState, ratings: Mapping[int, float]) -> sp.csr_matrix:
        raw = np.fromiter(ratings.keys(), dtype=np.int64, count=len(ratings))
        values = np.fromiter(ratings.values(), dtype=np.float32, count=len(ratings))
        idx = state.items.encode(raw, strict=False)
        keep = idx >= 0
        rows = np.zeros(int(keep.sum()), np.int64)
        matrix = sp.csr_matrix(
            (values[keep], (rows, idx[keep])), shape=(1, len(state.items)), dtype=np.float32
        )
        matrix.sort_indices()
        return matrix

    def recommend(
        self,
        user_ratings: Mapping[int, float],
        k: int = 10,
        *,
        exclude_seen: bool = True,
        candidates: np.ndarray | None = None,
    ) -> list[tuple[int, float]]:
        """Top-k over the current catalogue (items added since training included)."""
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        state = self.state  # one read: the whole answer comes from one catalogue
        if len(state.items) == 0:
            return []
        rows = self._rows(state, user_ratings)
        scores = self.rule.score(state, rows)  # (1, N)
        return top_items(scores, rows, state.items, k, exclude_seen, candidates)

    def similar_items(self, item_id: int, k: int = 10) -> list[tuple[int, float]] | None:
        """(item_id, cosine) of the k items nearest in content space over the current catalogue;
        ``None`` for an id the catalogue does not hold."""
        state = self.state  # one read: the whole answer comes from one catalogue
        index = state.items.index_of(item_id)
        if index is None:
            return None
        return [
            (int(state.items.ids[i]), cosine) for i, cosine in nearest_rows(state.unit, index, k)
        ]

    def warm_up(self) -> None:
        if len(self.state.items):
            self.recommend({int(self.state.items.ids[0]): 4.0}, 1)


def _array(checkpoint: Checkpoint, name: str) -> np.ndarray:
    tensor = checkpoint.tensors.get(name)
    if tensor is None:
        raise CheckpointError(f"{checkpoint.path}: tensor {name!r} is missing")
    return tensor.cpu().numpy()


def load(checkpoint: Checkpoint, device: torch.device) -> ContentRecommender:
    """LOADERS entry for ``content`` and ``hybrid`` checkpoints."""
    hybrid = checkpoint.model_type == "hybrid"
    try:
        config = ContentConfig.from_dict(checkpoint.config)
        featurizer = ContentFeaturizer.from_dict(config.featurizer)
        encoder = ContentAutoencoder(config)
        weights = {
            k: v for k, v in checkpoint.tensors.items() if k.startswith(("encoder.", "decoder."))
        }
        encoder.load_state_dict(weights, strict=True)
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{checkpoint.path}: not a valid content model ({exc})") from exc
    if featurizer.width != config.n_features:
        raise CheckpointError(f"{checkpoint.path}: feature layout does not match the encoder")
    items = IdVocab.from_list(checkpoint.vocab["item"])
    users = IdVocab.from_list(checkpoint.vocab["user"])
    codes = _array(checkpoint, CODES).astype(np.float32)
    if codes.shape != (len(items), config.code_dim):
        raise CheckpointError(f"{checkpoint.path}: item codes of the wrong shape")
    counts, warm = np.zeros(len(items)), np.full(len(items), -1, np.int64)
    rule = ContentScorer(config)
    if hybrid:
        counts = _array(checkpoint, COUNTS).astype(np.float64)
        warm = _array(checkpoint, WARM).astype(np.int64)
        rule.ease_weights = _array(checkpoint, EASE_WEIGHTS).astype(np.float32)
        rule.mapping = _array(checkpoint, MAPPING).astype(np.float32)
        n_warm = rule.ease_weights.shape[0]
        if (
            counts.shape != (len(items),)
            or warm.shape != (len(items),)
            or rule.ease_weights.shape != (n_warm, n_warm)
            or rule.mapping.shape != (n_warm, config.map_width + 1)
            or warm.max(initial=-1) >= n_warm
        ):
            raise CheckpointError(f"{checkpoint.path}: hybrid tensors of inconsistent shapes")
    features = _array(checkpoint, FEATURES).astype(np.float32)
    if features.shape != (len(items), config.n_features):
        raise CheckpointError(f"{checkpoint.path}: item features of the wrong shape")
    inputs = map_inputs(codes, features, config.map_from)
    state = ContentState(
        items, codes, content_unit(codes, codes.mean(axis=0)), inputs, counts, warm
    )
    return ContentRecommender(
        checkpoint.model_type,
        users,
        checkpoint,
        featurizer=featurizer,
        encoder=encoder.to(device).eval(),
        rule=rule,
        state=state,
    )
