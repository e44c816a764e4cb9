"""What the service and the CLI call: load a checkpoint, score, recommend, similar items, embed.

Every recommender loads into a ``Recommender``: the id vocabularies plus a ``score`` function that
folds a batch of users in from their ratings (CSR, users x items) and returns (B, I) scores. That
contract makes a rating written to the database count in the very next answer, with no retraining.
Each model family has a module here (``ml.inference.rbm``, ``.autoencoder``, ``.dbn``, ``.gan``,
``.baselines``) whose ``load(checkpoint, device)`` rebuilds the served object: a ``Recommender``
for rating models, an image model (``reconstruct``) or a GAN sampler. ``ml.registry`` names that
function for each checkpoint ``model_type``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp
import torch

from ml.checkpoint import Checkpoint, CheckpointError, load_checkpoint, read_manifest
from ml.data.vocab import IdVocab
from ml.evaluation.evaluate import top_k
from ml.registry import BY_NAME, SPECS, image_model_types


class Scorer(Protocol):
    def score(self, user_rows: sp.csr_matrix) -> np.ndarray: ...


def best_unseen(scores: np.ndarray, k: int, seen: sp.csr_matrix | None) -> list[np.ndarray]:
    """Per row of ``scores`` (B, I), the indices of its k best items with a finite score, best
    first, the items of ``seen`` (B, I) left out: FEWER than k where fewer remain (``top_k``
    fills k places, seen or not). Masks ``scores`` in place: pass a copy the caller owns."""
    if seen is not None:
        owners = np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))
        scores[owners, seen.indices] = -np.inf
    ranked = top_k(scores, k)
    return [row[np.isfinite(scores[r, row])] for r, row in enumerate(ranked)]


def top_items(
    scores: np.ndarray,
    rows: sp.csr_matrix,
    items: IdVocab,
    k: int,
    exclude_seen: bool,
    candidates: np.ndarray | None,
) -> list[tuple[int, float]]:
    """Top-k (item_id, score) of one user's scores (1, I): the items of ``rows`` (the user's
    ratings) left out when ``exclude_seen``, only ``candidates`` (raw ids) when given."""
    scores = scores.astype(np.float64)  # a copy: the masking below must not touch the scorer's
    if candidates is not None:
        mask = np.full(scores.shape[1], True)
        allowed = items.encode(np.asarray(candidates), strict=False)
        mask[allowed[allowed >= 0]] = False
        scores[:, mask] = -np.inf
    ranked = best_unseen(scores, k, rows if exclude_seen else None)[0]
    return [(int(items.ids[i]), float(scores[0, i])) for i in ranked]


def nearest_rows(unit: np.ndarray, index: int, k: int) -> list[tuple[int, float]]:
    """(row, cosine) of the k rows of ``unit`` (N, d), rows of unit length, nearest to row
    ``index``, best first; the row itself is left out."""
    cosine = unit @ unit[index]  # (N,)
    cosine[index] = -np.inf
    k = min(k, len(cosine) - 1)
    if k <= 0:
        return []
    top = np.argpartition(-cosine, k - 1)[:k]
    top = top[np.argsort(-cosine[top], kind="stable")]
    return [(int(i), float(cosine[i])) for i in top]


@dataclass
class Recommender:
    """A loaded recommender: vocabularies, a fold-in scorer, optional rating predictions."""

    model_type: str
    users: IdVocab
    items: IdVocab
    scorer: Scorer
    checkpoint: Checkpoint
    predict_ratings: Callable[[sp.csr_matrix], np.ndarray] | None = None
    item_embeddings: Callable[[], np.ndarray] | None = None
    user_embeddings: Callable[[sp.csr_matrix], np.ndarray] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Unit-length item embeddings, computed on the first similar-items request and kept for
    # the life of this loaded model (a new version is a new Recommender).
    _unit_items: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _unit_lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def rows_from_ratings(
        self, ratings: Mapping[int, float] | list[Mapping[int, float]]
    ) -> sp.csr_matrix:
        """CSR rows (B, I) from raw {item_id: rating} maps; unknown items are dropped."""
        batch = [ratings] if isinstance(ratings, Mapping) else list(ratings)
        indptr, indices, values = [0], [], []
        for user in batch:
            raw = np.fromiter(user.keys(), dtype=np.int64, count=len(user))
            vals = np.fromiter(user.values(), dtype=np.float32, count=len(user))
            idx = self.items.encode(raw, strict=False)
            keep = idx >= 0
            order = np.argsort(idx[keep])
            indices.extend(idx[keep][order].tolist())
            values.extend(vals[keep][order].tolist())
            indptr.append(len(indices))
        return sp.csr_matrix(
            (np.asarray(values, np.float32), np.asarray(indices, np.int64), np.asarray(indptr)),
            shape=(len(batch), len(self.items)),
        )

    def warm_up(self) -> None:
        """Run each inference path once on a one-rating user.

        First calls load lazy kernels and libraries (seconds where later calls take
        milliseconds: ``bench/results/warm_up.md``). A loaded model pays that here, before it
        is served, not on its first request; a model that cannot answer fails here.
        """
        if len(self.items) == 0:
            return
        rows = self.rows_from_ratings({int(self.items.ids[0]): 3.0})  # (1, I)
        self.scorer.score(rows)
        if self.predict_ratings is not None:
            self.predict_ratings(rows)
        if self.user_embeddings is not None:
            self.user_embeddings(rows)

    def recommend(
        self,
        user_ratings: Mapping[int, float],
        k: int = 10,
        *,
        exclude_seen: bool = True,
        candidates: np.ndarray | None = None,
    ) -> list[tuple[int, float]]:
        """Top-k (item_id, score) for one user, folded in from that user's ratings.

        ``candidates`` (raw item ids) restricts the answer, e.g. to one genre.
        """
        rows = self.rows_from_ratings(user_ratings)
        return self.recommend_rows(rows, k, exclude_seen=exclude_seen, candidates=candidates)

    def recommend_rows(
        self,
        rows: sp.csr_matrix,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        candidates: np.ndarray | None = None,
    ) -> list[tuple[int, float]]:
        """:meth:`recommend` for one user's row already built by :meth:`rows_from_ratings`
        (the service builds it once, to tell a user the model knows from one it does not)."""
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        scores = self.scorer.score(rows)  # (1, I)
        return top_items(scores, rows, self.items, k, exclude_seen, candidates)

    def recommend_batch(
        self, rows: sp.csr_matrix, k: int = 10, *, exclude_seen: bool = True
    ) -> list[list[tuple[int, float]]]:
        """:meth:`recommend_rows` for each user of ``rows`` (B, I), folded in together: one call
        of the scorer for the whole batch, a fraction of B single calls' CPU (the service's
        precompute after a swap)."""
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        scores = self.scorer.score(rows)  # (B, I)
        return [
            top_items(scores[i : i + 1], rows[i], self.items, k, exclude_seen, None)
            for i in range(rows.shape[0])
        ]

    def unit_item_embeddings(self) -> np.ndarray:
        """(I, d) float32 item embeddings scaled to unit length, read-only: computed once per
        loaded model, under a lock so that concurrent first requests compute them once."""
        unit = self._unit_items
        if unit is not None:
            return unit
        if self.item_embeddings is None:
            raise ValueError(f"model {self.model_type!r} has no item embeddings")
        with self._unit_lock:
            if self._unit_items is None:
                vectors = np.asarray(self.item_embeddings(), dtype=np.float32)  # (I, d)
                norms = np.linalg.norm(vectors, axis=1, keepdims=True)  # (I, 1)
                unit = vectors / np.maximum(norms, 1e-12)
                unit.setflags(write=False)
                self._unit_items = unit
            return self._unit_items

    def similar_items(self, item_id: int, k: int = 10) -> list[tuple[int, float]] | None:
        """(item_id, cosine) of the k items nearest ``item_id`` in the model's item-embedding
        space, best first; ``None`` when the model does not know the item. ``ValueError`` for
        a model without item embeddings."""
        unit = self.unit_item_embeddings()
        index = self.items.index_of(item_id)
        if index is None:
            return None
        return [(int(self.items.ids[i]), cosine) for i, cosine in nearest_rows(unit, index, k)]


# checkpoint model_type -> "module:function" taking (Checkpoint, torch.device): ml.registry's.
LOADERS: dict[str, str] = {spec.name: spec.load for spec in SPECS}
# The model types that load into something other than a Recommender (images, digits): known
# without loading them, so a request naming one gets the same answer whether it is loaded or not.
IMAGE_MODEL_TYPES: frozenset[str] = image_model_types()


def load_model(path: str | Path, device: str | torch.device = "cpu") -> Any:
    """Load any checkpoint into the object that serves it (verified, on ``device``)."""
    manifest = read_manifest(path)
    model_type = str(manifest.get("model_type"))
    spec = BY_NAME.get(model_type)
    if spec is None:
        raise CheckpointError(f"{path}: unknown model type {model_type!r}")
    loader = spec.loader()
    checkpoint = load_checkpoint(path, model_type=model_type, device="cpu")
    return loader(checkpoint, torch.device(device))


def load_recommender(path: str | Path, device: str | torch.device = "cpu") -> Recommender:
    """Load a checkpoint that serves recommendations; refuse image or GAN checkpoints."""
    spec = BY_NAME.get(str(read_manifest(path).get("model_type")))
    if spec is not None and not spec.can("recommend"):  # known before loading the tensors
        raise CheckpointError(f"{path}: a {spec.name} model cannot serve recommendations")
    model = load_model(path, device)
    if not isinstance(model, Recommender):
        raise CheckpointError(f"{path}: a {type(model).__name__} cannot serve recommendations")
    return model
