"""Training the rating RBM by CD-k on mini-batches of users (Salakhutdinov, Mnih & Hinton 2007).

``RBMTrainer(train, config, options, validation=...)`` then ``train_epoch(epoch)`` per epoch and
``finalize()``; ``fit_rbm`` drives the loop with a progress bar and early stopping on validation
nDCG@10. Each epoch returns (and logs) train reconstruction RMSE, the mean free energy of train
vs validation ratings of the same users (the overfitting gap of Hinton's practical guide, sec.
6), and, when a validation fold is given, validation nDCG@10 (relevance "all") and RMSE.

Users' ratings stay sparse (CSR); one mini-batch at a time is densified into softmax states.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from ml.checkpoint import Checkpoint
from ml.data.schema import RatingsDataset
from ml.data.splits import PROTOCOL_SEED, protocol_split
from ml.evaluation.evaluate import evaluate_ranking, evaluate_rating, top_k
from ml.evaluation.metrics import ranking_metrics, rmse
from ml.models.rbm import (
    RatedBatch,
    RatingRBM,
    RBMConfig,
    dense_states,
    predict_rows,
    rows_per_batch,
)
from ml.models.rbm_ratings import TENSOR_PREFIX, RatingFoldIn
from ml.training.base import TrainingOptions
from ml.training.cd import CDStatistics, MomentumSGD
from ml.training.distributed import world
from ml.training.fit import all_ratings, check_fit, fit_record
from ml.training.loop import Validation, fit
from ml.training.rbm_gibbs import Conditionals, gibbs_chain
from ml.training.rbm_sampled import sampled_rating_cd_statistics, uses_sampled_cd
from ml.training.rbm_sparse import (
    data_statistics,
    dropout_mask,
    sparse_rating_cd_gradients,
    sparse_rating_cd_statistics,
)

log = logging.getLogger(__name__)


@torch.no_grad()
def rating_cd_statistics(
    model: RatingRBM,
    bins: Tensor,
    k: int,
    generator: torch.Generator | None,
    chain: Tensor | None = None,
) -> CDStatistics:
    """CD-k (or PCD from ``chain``, states (B, I)) statistics for a batch of users ``bins`` (B, I).

    With ``model_rated`` the negative phase samples every item's K+1 states (the joint model);
    with ``conditional_weight`` > 0 a second, conditional chain (CD from the data) adds that
    weight times the gradient of log p(ratings | rated items): the returned statistics are then
    those of the hybrid objective, (1 + w) <.>_data - <.>_joint - w <.>_conditional. Without
    ``model_rated`` only the conditional chain runs (the paper's model).
    """
    cfg = model.config
    mask = dropout_mask(cfg, bins.shape[0], bins.device, generator)
    cond = Conditionals.of_model(model, mask)

    # Positive phase: hidden probabilities driven by the data, from its rated triples.
    data = RatedBatch.from_dense(bins)
    h0 = torch.sigmoid(model.hidden_input_sparse(data.items, data.values, data.offsets))
    if mask is not None:
        h0 = h0 * mask  # (B, H)
    weight = cfg.training.conditional_weight if cfg.model_rated else 0.0
    positive = data_statistics(model, data, h0, 1.0 + weight)

    # Negative phase: k steps of block Gibbs sampling, from the data (CD) or the chain (PCD).
    start = bins if chain is None else chain
    h_start = h0 if chain is None else cond.hidden_probs(chain)
    v_probs, r_probs, h_probs, states = gibbs_chain(
        cond, start, h_start, k, generator, joint=cfg.model_rated
    )
    negative = cond.statistics(v_probs, r_probs, h_probs)
    if weight > 0:
        v_c, r_c, h_c, _ = gibbs_chain(cond, bins, h0, k, generator, joint=False)
        conditional = cond.statistics(v_c, r_c, h_c, weight)
        negative = {name: negative[name] + conditional[name] for name in negative}
    return CDStatistics(positive, negative, states)


@torch.no_grad()
def exact_rating_cd_gradients(
    model: RatingRBM,
    bins: Tensor,
    k: int,
    generator: torch.Generator | None,
    out: dict[str, Tensor] | None = None,
) -> dict[str, Tensor]:
    """``rating_cd_statistics(...).gradients()`` of CD-k from the data without the hybrid
    objective (``conditional_weight`` 0), in fewer passes over the full-size tensors: both
    phases' value weights side by side, (2B, I K), times both phases' hiddens (2B, H) is the
    weight gradient in one product, written into ``out``'s buffers when given. The per-phase
    path builds two full-size statistics, one of them a strided view, then subtracts them.
    Same draws from ``generator``, same figures."""
    cfg = model.config
    if cfg.training.conditional_weight > 0:
        raise ValueError("the hybrid objective needs rating_cd_statistics")
    n_users = bins.shape[0]
    n_items, n_k, n_hidden = model.rating_weight.shape
    mask = dropout_mask(cfg, n_users, bins.device, generator)
    cond = Conditionals.of_model(model, mask)
    data = RatedBatch.from_dense(bins)
    h0 = torch.sigmoid(model.hidden_input_sparse(data.items, data.values, data.offsets))
    if mask is not None:
        h0 = h0 * mask  # (B, H)
    v_probs, r_probs, h_probs, _ = gibbs_chain(cond, bins, h0, k, generator, joint=cfg.model_rated)
    phases = h0.new_empty(2 * n_users, n_items, n_k)
    phases[:n_users].zero_()[data.owner, data.items, data.values - 1] = 1.0
    torch.neg(v_probs.permute(1, 2, 0), out=phases[n_users:])  # (B, I, K)
    phases = phases.view(2 * n_users, n_items * n_k)
    hiddens = torch.cat([h0, h_probs]) / n_users  # (2B, H): the batch mean's 1/B
    grads = out if out is not None else {}
    if "rating_weight" not in grads:
        grads["rating_weight"] = torch.empty_like(model.rating_weight)
    torch.mm(phases.T, hiddens, out=grads["rating_weight"].view(n_items * n_k, n_hidden))
    grads["rating_bias"] = phases.sum(0).view(n_items, n_k) / n_users
    grads["hidden_bias"] = hiddens[:n_users].sum(0) - hiddens[n_users:].sum(0)
    if cfg.model_rated or cfg.conditional:
        rated = torch.cat([(bins > 0).to(h0.dtype), r_probs.neg()])  # (2B, I)
        if "rated_weight" not in grads:
            grads["rated_weight"] = torch.empty_like(model.rated_weight)
        torch.mm(rated.T, hiddens, out=grads["rated_weight"])
        grads["rated_bias"] = rated.sum(0) / n_users
    return grads


@dataclass
class _FreeEnergyProbe:
    """Same-size rating vectors of the same users: validation ratings vs a random subset of the
    users' training ratings (free energy depends on how many items are rated)."""

    train_rows: sp.csr_matrix
    validation_rows: sp.csr_matrix


def _free_energy_probe(
    train: sp.csr_matrix, validation: sp.csr_matrix, seed: int
) -> _FreeEnergyProbe:
    rng = np.random.default_rng(seed)
    n_val = np.diff(validation.indptr)
    users = np.flatnonzero((n_val > 0) & (np.diff(train.indptr) >= n_val))
    indptr, indices, data = [0], [], []
    for u in users:  # one-off setup, not the hot path
        start, end = train.indptr[u], train.indptr[u + 1]
        pick = np.sort(rng.choice(end - start, size=n_val[u], replace=False)) + start
        indices.append(train.indices[pick])
        data.append(train.data[pick])
        indptr.append(indptr[-1] + len(pick))
    sub = sp.csr_matrix(
        (np.concatenate(data), np.concatenate(indices), np.asarray(indptr)),
        shape=(len(users), train.shape[1]),
    )
    return _FreeEnergyProbe(sub, validation[users])


@torch.inference_mode()
def fold_in_batches(
    model: RatingRBM, rows: sp.csr_matrix, batch_size: int = 1024
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """E[r] and the ranking score of each batch of rows, from one mean-field pass each:
    (first row, E[r] (B, I), score (B, I)). Only one batch is ever dense."""
    device = model.rating_weight.device
    batch_size = rows_per_batch(batch_size, rows.shape[1], model.config.n_ratings)
    for start in range(0, rows.shape[0], batch_size):
        v = RatedBatch.from_rows(rows[start : start + batch_size], model.config.n_ratings, device)
        x = model.hidden_input_sparse(v.items, v.values, v.offsets)  # (B, H)
        counts = torch.bincount(v.owner, minlength=v.n_users)  # (B,)
        h = torch.sigmoid(model.fold_in_hidden_input(x, counts))
        expected, p_rated = model.fold_in_outputs(h)
        assert expected is not None
        score = model.score_from_outputs(expected, p_rated)
        yield start, expected.float().cpu().numpy(), score.float().cpu().numpy()


@torch.inference_mode()
def mean_free_energy(model: RatingRBM, rows: sp.csr_matrix, batch_size: int = 1024) -> float:
    device = model.rating_weight.device
    total = 0.0
    for start in range(0, rows.shape[0], batch_size):
        rated = rows[start : start + batch_size]
        batch = RatedBatch.from_rows(rated, model.config.n_ratings, device)
        total += float(model.free_energy_sparse(batch).sum())
    return total / max(rows.shape[0], 1)


def _root_mean_square(errors: list[np.ndarray]) -> float:
    joined = np.concatenate(errors).astype(np.float64) if errors else np.zeros(0)
    return float(np.sqrt(np.mean(joined**2))) if len(joined) else float("nan")


def needs_dense_cd(config: RBMConfig) -> bool:
    """Whether the dense CD path is needed: the joint model, PCD chains or hidden dropout."""
    return config.model_rated or config.training.persistent or config.hidden_dropout > 0


def _raters(batch: RatedBatch) -> Tensor:
    """Users of the mini-batch who rated each item, (I,), at least 1."""
    return torch.bincount(batch.items, minlength=batch.n_items).clamp_min(1).float()


def _dense_raters(bins: Tensor) -> Tensor:
    """``_raters`` of dense states (B, I)."""
    return (bins > 0).sum(0).clamp_min(1).float()


def _fold_in_reference(config: RBMConfig, train: sp.csr_matrix) -> float:
    """``config.fold_in.reference``, or when unset the median ratings of the training users."""
    if config.fold_in.reference is not None:
        return float(config.fold_in.reference)
    counts = np.diff(sp.csr_matrix(train).indptr)
    counts = counts[counts > 0]
    return float(np.median(counts)) if len(counts) else 0.0


class RBMTrainer:
    """CD training of a ``RatingRBM`` on a users x items CSR matrix of ratings."""

    TRAIN_RMSE_USERS = 256  # users whose reconstruction RMSE is logged when there is no validation

    def __init__(
        self,
        train: sp.csr_matrix,
        config: RBMConfig,
        options: TrainingOptions = TrainingOptions(),
        *,
        validation: sp.csr_matrix | None = None,
    ) -> None:
        if train.nnz == 0:
            raise ValueError("no training ratings")
        if validation is not None and validation.shape != train.shape:
            raise ValueError("validation must have the training matrix's shape")
        self.config = replace(
            config,
            n_items=train.shape[1],
            fold_in=replace(config.fold_in, reference=_fold_in_reference(config, train)),
        )
        self.options = options
        self.device = options.torch_device
        self.train = train.tocsr()
        self.validation = validation
        self.world = world()
        # Every rank starts from the same parameters (init_gen) but samples its own chains.
        self.generator = torch.Generator(device=self.device).manual_seed(
            options.seed + self.world.rank
        )
        init_gen = torch.Generator().manual_seed(options.seed)
        self.model = RatingRBM(self.config, init_gen).to(self.device)
        self.model.init_biases_from_rows(self.train)
        self.optimiser = MomentumSGD(
            self.model.cd_parameters(), frozenset({"rating_weight", "rated_weight"})
        )
        # With torchrun, each rank trains on its share of the users (ml.training.distributed).
        self.users = self.world.shard(np.flatnonzero(np.diff(self.train.indptr) > 0))
        self.batch_size = self.world.local_batch_size(self.config.training.batch_size)
        self.chain: Tensor | None = None
        self._buffers: dict[str, Tensor] = {}  # full-size CD gradients, reused every update
        # The paper's model only ever touches rated entries: train it on them (rbm_sparse);
        # the joint model on a large catalogue samples the items its chain visits.
        self.sparse = not needs_dense_cd(self.config)
        self.sampled = uses_sampled_cd(self.config)
        self.probe = (
            _free_energy_probe(self.train, validation, options.seed)
            if validation is not None
            else None
        )

    def train_epoch(self, epoch: int, max_updates: int | None = None) -> dict[str, float]:
        """One pass over this rank's users; ``max_updates`` stops it early (benchmarks time a
        part of an epoch on large data)."""
        cfg = self.config
        schedule = cfg.training
        k, momentum = schedule.cd_k(epoch), schedule.momentum_at(epoch)
        lr = schedule.learning_rate_at(epoch)
        order = self.users[
            torch.randperm(len(self.users), generator=self.generator, device=self.device)
            .cpu()
            .numpy()
        ]
        started = time.perf_counter()
        # Every rank runs the same number of updates (shards differ by at most one user).
        steps = self.world.max_over_ranks(-(-len(order) // self.batch_size))
        steps = steps if max_updates is None else min(steps, max_updates)
        for step in range(steps):
            users = order[step * self.batch_size : (step + 1) * self.batch_size]
            grads, scale = self._batch_gradients(self.train[users], k)
            grads = self.world.all_reduce_mean(grads, float(len(users)))
            self._step(grads, scale, lr, momentum)
        metrics = {
            "epoch": float(epoch),
            "cd_k": float(k),
            "epoch_seconds": time.perf_counter() - started,
        }
        metrics.update(self.evaluate())
        return metrics

    def _batch_gradients(
        self, rows: sp.csr_matrix, k: int
    ) -> tuple[dict[str, Tensor], Tensor | None]:
        """CD gradients of one mini-batch of users (mean over them) and, with
        ``per_item_rate``, the per-item rescaling. A rank whose users ran out this epoch
        contributes zeros (its weight in the all-reduce is 0)."""
        cfg = self.config
        if rows.shape[0] == 0:
            params = self.model.cd_parameters()
            return {name: torch.zeros_like(params[name]) for name in self._gradient_names}, None
        if self.sparse or self.sampled:
            batch = RatedBatch.from_rows(rows, cfg.n_ratings, self.device)
            scale = batch.n_users / _raters(batch) if cfg.training.per_item_rate else None
            if self.sampled:
                stats = sampled_rating_cd_statistics(self.model, batch, k, self.generator)
            elif cfg.conditional:
                stats = sparse_rating_cd_statistics(self.model, batch, k, self.generator)
            elif not self.world.distributed:  # the paper's model: the batch's rows only
                grads = sparse_rating_cd_gradients(
                    self.model, batch, k, self.generator, visited_rows=True
                )
                return grads, scale
            else:  # the paper's model: gradients straight into reused buffers
                params = self.model.cd_parameters()
                if not self._buffers:
                    self._buffers = {
                        name: torch.empty_like(params[name])
                        for name in ("rating_weight", "rating_bias")
                    }
                grads = sparse_rating_cd_gradients(
                    self.model, batch, k, self.generator, self._buffers
                )
                return dict(grads), scale
            return stats.gradients(), scale
        bins = dense_states(rows, cfg.n_ratings, self.device)
        if not cfg.training.persistent and cfg.training.conditional_weight == 0:
            if not self._buffers:
                params = self.model.cd_parameters()
                self._buffers = {
                    name: torch.empty_like(params[name])
                    for name in ("rating_weight", "rated_weight")
                }
            grads = exact_rating_cd_gradients(self.model, bins, k, self.generator, self._buffers)
            scale = bins.shape[0] / _dense_raters(bins) if cfg.training.per_item_rate else None
            return {name: grads[name] for name in self._gradient_names}, scale
        chain = None
        if cfg.training.persistent:
            if self.chain is None or self.chain.shape[0] != bins.shape[0]:
                self.chain = bins.clone()
            chain = self.chain
        stats = rating_cd_statistics(self.model, bins, k, self.generator, chain)
        if cfg.training.persistent:
            self.chain = stats.negative_visible
        scale = bins.shape[0] / _dense_raters(bins) if cfg.training.per_item_rate else None
        return stats.gradients(), scale

    @property
    def _gradient_names(self) -> list[str]:
        """The parameters a CD update changes (the rated units' only when they are used)."""
        uses_rated = self.config.model_rated or self.config.conditional
        names = self.model.cd_parameters()
        return [n for n in names if uses_rated or n not in ("rated_weight", "rated_bias")]

    def _step(
        self,
        grads: dict[str, Tensor],
        per_rater_scale: Tensor | None,
        lr: float,
        momentum: float,
    ) -> None:
        """One momentum-SGD update; ``per_rater_scale`` (I,), batch size / raters per item, is
        given only with ``per_item_rate``."""
        cfg = self.config
        visited = grads.pop("visited", None)  # the rows the weight gradient holds, if not all
        if per_rater_scale is not None:
            row_scale = per_rater_scale if visited is None else per_rater_scale[visited]
            grads["rating_weight"] = grads["rating_weight"] * row_scale[:, None, None]
            grads["rating_bias"] = grads["rating_bias"] * per_rater_scale[:, None]
        if cfg.training.rating_lr_scale != 1.0:
            grads["rating_weight"] = grads["rating_weight"] * cfg.training.rating_lr_scale
            grads["rating_bias"] = grads["rating_bias"] * cfg.training.rating_lr_scale
        rows = {"rating_weight": visited} if visited is not None else None
        self.optimiser.step(grads, lr, momentum, cfg.training.weight_decay, rows)

    @torch.inference_mode()
    def evaluate(self) -> dict[str, float]:
        """Train reconstruction RMSE; with validation: free energies, nDCG@10 and RMSE.

        One fold-in pass over the training users feeds every figure (cheap enough per epoch).
        """
        model = self.model
        if self.validation is None:  # reconstruction RMSE on a fixed sample of users only
            sample = self.train[self.users[: self.TRAIN_RMSE_USERS]].tocoo()
            expected = predict_rows(model, sample.tocsr(), "rating")
            return {"train_rmse": rmse(expected[sample.row, sample.col], sample.data)}
        figures = self._validation_figures(self.validation)
        out = {"train_rmse": figures.pop("train_rmse")}
        if self.probe is not None:
            out["free_energy_train"] = mean_free_energy(model, self.probe.train_rows)
            out["free_energy_val"] = mean_free_energy(model, self.probe.validation_rows)
        return out | figures

    def _validation_figures(self, validation: sp.csr_matrix) -> dict[str, float]:
        """Train RMSE, validation nDCG@10, precision@10 and RMSE, one batch of users at a time
        (never a users x items array)."""
        train_err: list[np.ndarray] = []
        val_err: list[np.ndarray] = []
        ndcg: list[np.ndarray] = []
        precision: list[np.ndarray] = []
        for start, expected, score in fold_in_batches(self.model, self.train):
            stop = start + expected.shape[0]
            seen = self.train[start:stop].tocoo()
            train_err.append(expected[seen.row, seen.col] - seen.data)
            held = validation[start:stop]
            val = held.tocoo()
            val_err.append(expected[val.row, val.col] - val.data)
            local = np.flatnonzero(np.diff(held.indptr) > 0)
            if len(local) == 0:
                continue
            ranked = top_k(score[local], 10, exclude=self.train[start + local])
            per_user = ranking_metrics(ranked, validation, start + local)
            ndcg.append(per_user["ndcg"])
            precision.append(per_user["precision"])
        return {
            "train_rmse": _root_mean_square(train_err),
            "val_ndcg@10": float(np.concatenate(ndcg).mean()) if ndcg else 0.0,
            "val_precision@10": float(np.concatenate(precision).mean()) if precision else 0.0,
            "val_rmse": _root_mean_square(val_err),
        }

    def finalize(self) -> RatingRBM:
        return self.model


class _EpochCounter:
    """``RBMTrainer`` as the shared loop's ``Trainer``: it numbers the epochs (the CD schedule,
    momentum and learning rate follow the epoch) and snapshots the model. It has no ``model``
    attribute on purpose: the loop would switch a model to eval mode before validating, and the
    RBM's validation figures are already computed inside ``train_epoch``."""

    def __init__(self, trainer: RBMTrainer) -> None:
        self.trainer = trainer
        self.epoch = 0
        self.last: dict[str, float] = {}

    def train_epoch(self) -> dict[str, float]:
        self.epoch += 1
        self.last = self.trainer.train_epoch(self.epoch)
        return self.last

    def state_dict(self) -> dict[str, Tensor]:
        return self.trainer.model.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> Any:
        return self.trainer.model.load_state_dict(state)


def fit_rbm(
    train: sp.csr_matrix,
    config: RBMConfig = RBMConfig(),
    options: TrainingOptions = TrainingOptions(),
    *,
    validation: sp.csr_matrix | None = None,
    patience: int | None = None,
) -> tuple[RatingRBM, list[dict[str, float]]]:
    """Train for ``config.training.epochs`` epochs (``options.epochs`` is ignored: the epoch
    count is part of the tuned configuration) in the shared fit loop. With ``validation`` and
    ``patience``, stop when validation nDCG@10 has not improved for ``patience`` epochs and
    return the best epoch's model."""
    trainer = RBMTrainer(train, config, options, validation=validation)
    counter = _EpochCounter(trainer)
    early_stopping = None
    if validation is not None and patience is not None:
        early_stopping = Validation(
            score=lambda: counter.last["val_ndcg@10"], patience=patience, name="val_ndcg@10"
        )
    result = fit(
        counter,
        options,
        epochs=config.training.epochs,
        name="rbm",
        validation=early_stopping,
        postfix="val_ndcg@10",
    )
    return trainer.finalize(), result.history.records


def fit_rating_fold_in(
    train: sp.csr_matrix,
    config: RBMConfig,
    options: TrainingOptions = TrainingOptions(),
    *,
    item_config: RBMConfig | None = None,
) -> RatingFoldIn:
    """The companion rating predictor (``ml.models.rbm_ratings``): the item-based RBM of
    ``item_config`` (default ``config.item_rbm_config()``) trained on ``train.T`` (items as
    cases, users as softmax visibles; only rated entries are visible, so CD takes the sparse
    path), then its fold-in."""
    items = sp.csr_matrix(train.T)  # (I, U): one case per item
    model, _ = fit_rbm(items, item_config or config.item_rbm_config(), options)
    return RatingFoldIn.from_item_rbm(
        model, items, prior_strength=config.fold_in.prior, steps=config.fold_in.steps
    )


def train_rbm_checkpoint(
    dataset: RatingsDataset,
    config: RBMConfig = RBMConfig(),
    options: TrainingOptions = TrainingOptions(),
    *,
    fit: str = "train",
) -> Checkpoint:
    """Train on the protocol's TRAIN fold with the configuration chosen on the validation pair,
    its epochs scaled to the train fold's ratings per unit (``RBMConfig.scaled_to``), and store
    the test-fold figures in the checkpoint's metrics; with ``fit="all"`` the served models are
    then trained again on every rating (``ml.training.fit``) for the same epochs.
    """
    check_fit(fit)
    ratings = dataset.ratings
    if ratings.empty:
        raise ValueError("no ratings to train on")
    if ratings["user_id"].nunique() < 2 or ratings["item_id"].nunique() < 2:
        raise ValueError("need at least two users and two items to train")
    split = protocol_split(ratings, seed=PROTOCOL_SEED)
    n_users, n_items = split.train.shape
    # The epochs follow the train fold's density; the refit on every rating reuses them.
    item_config = config.item_rbm_config().scaled_to(split.train.nnz, n_users)
    config = replace(
        config.scaled_to(split.train.nnz, n_items),
        item_rbm=replace(
            config.item_rbm, epochs=item_config.training.epochs, epochs_ratings_per_visible=0.0
        ),
    )
    started = time.perf_counter()
    model, history = fit_rbm(split.train, config, options)
    ratings_model = (
        fit_rating_fold_in(split.train, config, options, item_config=item_config)
        if config.rating_model == "item_rbm"
        else None
    )
    train_seconds = time.perf_counter() - started
    model.eval()
    metrics: dict[str, float] = {}
    if world().is_main:  # under torchrun, only rank 0 measures (and writes the checkpoint)
        started = time.perf_counter()
        metrics = evaluate_ranking(lambda rows: predict_rows(model, rows), split.train, split.test)
        predict = (
            ratings_model.predict
            if ratings_model is not None
            else lambda rows: predict_rows(model, rows, "rating")
        )
        metrics.update(evaluate_rating(predict, split.train, split.test))
        metrics["evaluate_seconds"] = time.perf_counter() - started
    metrics["train_seconds"] = train_seconds
    fitted, fit_all_seconds = split.train, None
    if fit == "all":
        started, fitted = time.perf_counter(), all_ratings(split)
        model, _ = fit_rbm(fitted, config, options)
        if config.rating_model == "item_rbm":
            ratings_model = fit_rating_fold_in(fitted, config, options, item_config=item_config)
        model.eval()
        fit_all_seconds = time.perf_counter() - started
    tensors = {name: p.detach().cpu() for name, p in model.state_dict().items()}
    if ratings_model is not None:
        tensors.update(
            {TENSOR_PREFIX + name: p.cpu() for name, p in ratings_model.state_dict().items()}
        )
    return Checkpoint(
        model_type="rbm",
        config=model.config.to_dict(),
        tensors=tensors,
        vocab={"user": split.users.to_list(), "item": split.items.to_list()},
        data_sha256=dataset.sha256,
        metrics=metrics,
        extra={
            "dataset": dataset.name,
            "seed": options.seed,
            "split_seed": PROTOCOL_SEED,
            "history": history,
            "epochs": {
                "ranking": config.training.epochs,
                "item_rbm": item_config.training.epochs,
            },
            **fit_record(fit, fitted, fit_all_seconds),
        },
    )
