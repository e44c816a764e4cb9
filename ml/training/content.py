"""Training the content family: ``content`` (content-only) and ``hybrid`` (content + EASE).

Both learn a denoising autoencoder over every catalogue item's metadata (genres, year, title and
description tokens; ratings never enter it). The hybrid also fits EASE (Steck 2019) on the
ratings and a ridge map from content codes to EASE's item columns, trained on the items that
have ratings, so an item without ratings gets a predicted collaborative column. Like the other
families, the ratings parts fit on the protocol's TRAIN fold and the manifest carries the test
fold's figures; the vocabulary of items is the whole catalogue (rated or not).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import Tensor

from ml.checkpoint import Checkpoint, module_tensors
from ml.data.schema import RatingsDataset
from ml.data.splits import PROTOCOL_SEED, SplitData, protocol_split
from ml.evaluation.evaluate import evaluate_ranking
from ml.models.baselines import EASE, EASEConfig
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
    ridge,
)
from ml.training.base import TrainingOptions
from ml.training.baselines import tune_ease_l2
from ml.training.loop import BatchTrainer, fit

log = logging.getLogger(__name__)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def catalogue(dataset: RatingsDataset) -> list[ItemMeta]:
    """Every item the data set knows, with its metadata, ascending by id: the items table plus
    any rated item it lacks (with empty metadata)."""
    frame = dataset.items
    described = "description" in frame.columns
    items: dict[int, ItemMeta] = {}
    for row in frame.itertuples(index=False):
        year = getattr(row, "year", None)
        genres = getattr(row, "genres", None)
        items[int(row.item_id)] = ItemMeta(
            id=int(row.item_id),
            title=str(getattr(row, "title", "") or ""),
            year=None if year is None or pd.isna(year) else int(year),
            genres=tuple(genres) if isinstance(genres, list | tuple | np.ndarray) else (),
            description=_text(getattr(row, "description", None)) if described else None,
        )
    for item_id in np.unique(dataset.ratings["item_id"].to_numpy()):
        items.setdefault(int(item_id), ItemMeta(id=int(item_id)))
    return [items[i] for i in sorted(items)]


def fit_content_autoencoder(
    features: np.ndarray,
    config: ContentConfig,
    options: TrainingOptions,
    feature_weights: np.ndarray | None = None,
) -> ContentAutoencoder:
    """Train the denoising autoencoder on item features (N, F) with Adam, full epochs."""
    device = options.torch_device
    with torch.random.fork_rng(devices=[]):  # seeded initial weights, global state untouched
        torch.manual_seed(options.seed)
        weights = None if feature_weights is None else torch.from_numpy(feature_weights)
        model = ContentAutoencoder(config, weights)
        # The features are sparse (about 10 of ~800 on): PyTorch's fan-in init would give every
        # item nearly the same hidden state and the codes collapsed to one point. Scale the
        # first layer to the number of features that are actually on.
        active = float(max(np.count_nonzero(features, axis=1).mean(), 1.0))
        first: torch.nn.Linear = model.encoder[0]  # type: ignore[assignment]
        torch.nn.init.normal_(first.weight, std=1.0 / math.sqrt(active))
        # A feature no training item has (a word only a later description uses) never gets a
        # gradient: start it at zero so it adds nothing, rather than a random push.
        unseen = torch.from_numpy(~features.any(axis=0))
        with torch.no_grad():
            first.weight[:, unseen] = 0.0
    trainer = _ContentTrainer(model.to(device), features, config, options)
    fit(trainer, options, epochs=config.epochs, name="content-ae")
    return trainer.model.eval()


class _ContentTrainer(BatchTrainer):
    """Adam on the denoising loss, the items in a fresh seeded order each epoch."""

    def __init__(
        self,
        model: ContentAutoencoder,
        features: np.ndarray,
        config: ContentConfig,
        options: TrainingOptions,
    ) -> None:
        self.model = model
        self.device = options.torch_device
        self.generator = options.generator(self.device)  # the masking noise
        self.order_gen = torch.Generator().manual_seed(options.seed)
        self.x = torch.from_numpy(features).to(self.device)  # (N, F)
        self.batch_size = config.batch_size
        self.optimiser = torch.optim.Adam(
            model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )

    def batches(self) -> Iterator[Tensor]:
        order = torch.randperm(len(self.x), generator=self.order_gen).to(self.device)
        for start in range(0, len(self.x), self.batch_size):
            yield self.x[order[start : start + self.batch_size]]

    def step(self, batch: Tensor) -> dict[str, float]:
        loss = self.model.loss(batch, self.generator)
        self.optimiser.zero_grad()
        loss.backward()
        self.optimiser.step()
        return {"loss": loss.detach().item()}


def encode(model: ContentAutoencoder, features: np.ndarray) -> np.ndarray:
    device = next(model.parameters()).device
    return model.codes(torch.from_numpy(features).to(device)).float().cpu().numpy()  # (N, d)


@dataclass
class ContentFit:
    """The content side: feature layout, autoencoder and the catalogue's codes."""

    config: ContentConfig
    featurizer: ContentFeaturizer
    model: ContentAutoencoder
    ids: np.ndarray  # (N,) catalogue item ids, ascending
    codes: np.ndarray  # (N, d)
    features: np.ndarray  # (N, F)

    @property
    def inputs(self) -> np.ndarray:
        """(N, D) what the map into EASE's space reads."""
        return map_inputs(self.codes, self.features, self.config.map_from)


def fit_content(
    items: list[ItemMeta], config: ContentConfig, options: TrainingOptions
) -> ContentFit:
    if not items:
        raise ValueError("no items to learn content from")
    featurizer = ContentFeaturizer.fit(items)
    config = replace(config, n_features=featurizer.width, featurizer=featurizer.to_dict())
    features = featurizer.transform(items)
    weights = featurizer.feature_weights(
        config.genre_weight, config.year_weight, config.token_weight
    )
    model = fit_content_autoencoder(features, config, options, weights)
    ids = np.asarray([item.id for item in items], np.int64)
    return ContentFit(config, featurizer, model, ids, encode(model, features), features)


@dataclass
class HybridFit:
    """The collaborative side: EASE on the rated items and the content -> EASE column map."""

    ease_weights: np.ndarray  # (W, W)
    mapping: np.ndarray  # (W, D+1)
    counts: np.ndarray  # (N,) training ratings per catalogue item
    warm: np.ndarray  # (N,) EASE column of each catalogue item, -1 when it had no ratings
    ease_l2: float


def catalogue_rows(rows: sp.csr_matrix, positions: np.ndarray, n: int) -> sp.csr_matrix:
    """Re-index the columns of ``rows`` (B, I) to catalogue positions: (B, N)."""
    coo = sp.coo_matrix(rows)
    out = sp.csr_matrix((coo.data, (coo.row, positions[coo.col])), shape=(rows.shape[0], n))
    out.sort_indices()
    return out


def fit_hybrid(
    content: ContentFit, train: sp.csr_matrix, split_items: np.ndarray, ease_l2: float
) -> HybridFit:
    """EASE on ``train`` (U, W) and the ridge map from content codes to EASE's item columns."""
    positions = np.searchsorted(content.ids, split_items)  # (W,) catalogue position of each
    ease = EASE.fit(train, EASEConfig(ease_l2))
    counts_w = np.asarray((train != 0).sum(axis=0)).ravel().astype(np.float64)  # (W,)
    rated = counts_w > 0
    # Only items with ratings have a meaningful column to learn from.
    inputs = content.inputs[positions[rated]]  # (R, D)
    weights = ridge(inputs, ease.weights.T[rated], content.config.map_l2)
    counts = np.zeros(len(content.ids))
    counts[positions] = counts_w
    warm = np.full(len(content.ids), -1, np.int64)
    warm[positions] = np.arange(len(positions))
    return HybridFit(ease.weights, weights.T.astype(np.float32), counts, warm, ease_l2)


@dataclass
class _Catalogue:
    """The training catalogue as ``ContentScorer`` reads it."""

    unit: np.ndarray
    inputs: np.ndarray
    counts: np.ndarray
    warm: np.ndarray


def content_scorer(
    content: ContentFit, fit: HybridFit | None = None
) -> Callable[[sp.csr_matrix], np.ndarray]:
    """The content model's catalogue scorer; with ``fit``, the hybrid's."""
    unit = content_unit(content.codes, content.codes.mean(axis=0))
    if fit is None:
        n = len(content.ids)
        catalogue = _Catalogue(unit, content.inputs, np.zeros(n), np.full(n, -1, np.int64))
        rule = ContentScorer(content.config)
    else:
        catalogue = _Catalogue(unit, content.inputs, fit.counts, fit.warm)
        rule = ContentScorer(content.config, fit.ease_weights, fit.mapping)
    return lambda rows: rule.score(catalogue, rows)


def hybrid_scorer(content: ContentFit, fit: HybridFit) -> Callable[[sp.csr_matrix], np.ndarray]:
    return content_scorer(content, fit)


def on_split(
    score: Callable[[sp.csr_matrix], np.ndarray], ids: np.ndarray, split: SplitData
) -> Callable[[sp.csr_matrix], np.ndarray]:
    """A catalogue scorer as a scorer over the split's items (the protocol's matrices)."""
    positions = np.searchsorted(ids, split.items.ids)
    return lambda rows: score(catalogue_rows(rows, positions, len(ids)))[:, positions]


def _check(dataset: RatingsDataset) -> None:
    if dataset.ratings.empty:
        raise ValueError("no ratings to train on")
    if dataset.ratings["user_id"].nunique() < 2 or dataset.ratings["item_id"].nunique() < 2:
        raise ValueError("need at least two users and two items to train")


def _checkpoint(
    model_type: str,
    dataset: RatingsDataset,
    content: ContentFit,
    split: SplitData,
    tensors: dict[str, torch.Tensor],
    metrics: dict[str, float],
    extra: dict[str, object],
) -> Checkpoint:
    return Checkpoint(
        model_type=model_type,
        config=asdict(content.config),
        tensors={
            **module_tensors(content.model),
            CODES: torch.from_numpy(content.codes.astype(np.float32)),
            FEATURES: torch.from_numpy(content.features.astype(np.float32)),
            **tensors,
        },
        vocab={"user": split.users.to_list(), "item": content.ids.tolist()},
        data_sha256=dataset.sha256,
        metrics=metrics,
        extra={"dataset": dataset.name, **extra},
    )


def train_content(
    dataset: RatingsDataset, config: ContentConfig, options: TrainingOptions
) -> Checkpoint:
    """The content-only model; its figures on the protocol's test fold in the manifest."""
    _check(dataset)
    started = time.perf_counter()
    content = fit_content(catalogue(dataset), config, options)
    train_seconds = time.perf_counter() - started
    split = protocol_split(dataset.ratings, seed=PROTOCOL_SEED)
    scorer = on_split(content_scorer(content), content.ids, split)
    metrics = evaluate_ranking(scorer, split.train, split.test)
    metrics["train_seconds"] = train_seconds
    return _checkpoint("content", dataset, content, split, {}, metrics, {"seed": options.seed})


def train_hybrid(
    dataset: RatingsDataset, config: ContentConfig, options: TrainingOptions
) -> Checkpoint:
    """Content codes, EASE on the protocol's train fold, and the map between them."""
    _check(dataset)
    started = time.perf_counter()
    l2 = config.ease_l2
    if l2 is None:
        l2, _ = tune_ease_l2(dataset.ratings)
    content = fit_content(catalogue(dataset), replace(config, ease_l2=float(l2)), options)
    split = protocol_split(dataset.ratings, seed=PROTOCOL_SEED)
    fit = fit_hybrid(content, split.train, split.items.ids, float(l2))
    train_seconds = time.perf_counter() - started
    metrics = evaluate_ranking(
        on_split(hybrid_scorer(content, fit), content.ids, split), split.train, split.test
    )
    metrics["train_seconds"] = train_seconds
    tensors = {
        EASE_WEIGHTS: torch.from_numpy(np.ascontiguousarray(fit.ease_weights, np.float32)),
        MAPPING: torch.from_numpy(fit.mapping),
        COUNTS: torch.from_numpy(fit.counts.astype(np.float32)),
        WARM: torch.from_numpy(fit.warm),
    }
    return _checkpoint("hybrid", dataset, content, split, tensors, metrics, {"seed": options.seed})
