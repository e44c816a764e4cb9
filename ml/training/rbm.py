"""Training the rating RBM by CD-k on mini-batches of users (Salakhutdinov, Mnih & Hinton 2007).

``RBMTrainer(train, config, options, validation=...)`` then ``train_epoch(epoch)`` per epoch and
``finalize()``; ``fit_rbm`` drives the loop with a progress bar and early stopping on validation
nDCG@10. Each epoch returns (and logs) train reconstruction RMSE, the mean free energy of train
vs validation ratings of the same users (the overfitting gap of Hinton's practical guide, sec.
6), and, when a validation fold is given, validation nDCG@10 (relevance "all") and RMSE.

Users' ratings stay sparse (CSR); one mini-batch at a time is densified into softmax states.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor
from tqdm import tqdm

from ml.checkpoint import Checkpoint
from ml.data.schema import RatingsDataset
from ml.data.splits import PROTOCOL_SEED, protocol_split
from ml.evaluation.evaluate import evaluate_ranking, evaluate_rating, top_k
from ml.evaluation.metrics import ranking_metrics, rmse
from ml.models.rbm import RatedBatch, RatingRBM, RBMConfig, dense_states, predict_rows
from ml.models.rbm_ratings import TENSOR_PREFIX, RatingFoldIn
from ml.training.base import TrainingOptions, log_epoch
from ml.training.cd import CDStatistics, MomentumSGD
from ml.training.fit import all_ratings, check_fit, fit_record
from ml.training.rbm_sparse import data_statistics, sparse_rating_cd_statistics

log = logging.getLogger(__name__)


# The CD hot path works "value-major": visible tensors are (K, B, I), so every reduction over
# the K rating values runs over whole (B, I) slabs (a softmax over a last axis of 5 or 6 is
# several times slower on the CPU).


def _sample_states(probs: Tensor, generator: torch.Generator | None) -> Tensor:
    """One categorical sample per (b, i) from ``probs`` (S, B, I) summing to one over axis 0,
    by inverting the cumulative distribution: indices (B, I) in 0..S-1."""
    u = torch.rand(probs.shape[1:], generator=generator, device=probs.device)  # (B, I)
    return (probs.cumsum(0) < u).sum(0).clamp_max(probs.shape[0] - 1)


class _ValueMajor:
    """The model's conditionals in the (K, B, I) layout, for one CD update (weights fixed)."""

    def __init__(self, model: RatingRBM, hidden_mask: Tensor | None = None) -> None:
        self.model = model
        self.hidden_mask = hidden_mask  # (B, H) dropout mask, fixed for the whole update
        self.cfg = model.config
        self.bias = model.rating_bias.T.unsqueeze(1)  # (K, 1, I)
        self.uses_rated = self.cfg.model_rated or self.cfg.conditional

    def hidden_probs(self, states: Tensor) -> Tensor:
        """p(h = 1 | v) (B, H) from visible states (B, I) in 0..K (0 = unrated).

        Through the rated entries only (``RatingRBM.hidden_input_sparse``): data and samples
        alike rate a few percent of the items, so this beats the dense one-hot product.
        """
        v = RatedBatch.from_dense(states)
        probs = torch.sigmoid(self.model.hidden_input_sparse(v.items, v.values, v.offsets))
        return probs if self.hidden_mask is None else probs * self.hidden_mask

    def rating_logits(self, h: Tensor) -> Tensor:
        """Logits of the K rated states, (K, B, I) (see ``RatingRBM.rating_logits``)."""
        n_items, k, n_hidden = self.model.rating_weight.shape
        flat = h @ self.model.rating_weight.view(n_items * k, n_hidden).T  # (B, I*K)
        logits = flat.view(-1, n_items, k).permute(2, 0, 1) + self.bias  # (K, B, I)
        if self.cfg.model_rated:
            logits = logits + (h @ self.model.rated_weight.T + self.model.rated_bias).unsqueeze(0)
        return logits


@torch.no_grad()
def _gibbs_chain(
    vm: _ValueMajor,
    start: Tensor,
    h_probs: Tensor,
    k: int,
    generator: torch.Generator | None,
    *,
    joint: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """k steps of block Gibbs sampling from visible states ``start`` (B, I) whose hidden
    probabilities are ``h_probs`` (B, H).

    ``joint``: every item's K+1 states (unrated or a value) are resampled. Otherwise the
    conditional chain: which items are rated stays clamped to ``start`` and only the values of
    the rated items are resampled (the paper's model). Returns the last visible probabilities
    (K, B, I), rated probabilities (B, I), hidden probabilities (B, H) and visible states (B, I).
    """
    mask = (start > 0).float()  # (B, I)
    h = torch.bernoulli(h_probs, generator=generator)
    states, v_probs, r_probs = start, torch.empty(0), mask
    for _ in range(k):
        logits = vm.rating_logits(h)  # (K, B, I)
        if joint:
            full = torch.cat([torch.zeros_like(logits[:1]), logits], 0)  # (K+1, B, I)
            p = torch.softmax(full, 0)
            v_probs, r_probs = p[1:], 1 - p[0]  # (K, B, I), (B, I)
            states = _sample_states(p, generator)  # (B, I) in 0..K
        else:
            p = torch.softmax(logits, 0)  # (K, B, I): p(k | rated, h)
            v_probs = p * mask  # rated items only
            states = (_sample_states(p, generator) + 1) * mask.long()  # (B, I)
        h_probs = vm.hidden_probs(states)
        h = torch.bernoulli(h_probs, generator=generator)
    return v_probs, r_probs, h_probs, states


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
    mask = None
    if cfg.hidden_dropout > 0:
        keep = torch.full((bins.shape[0], cfg.n_hidden), 1 - cfg.hidden_dropout, device=bins.device)
        mask = torch.bernoulli(keep, generator=generator)
    vm = _ValueMajor(model, mask)

    def stats(values: Tensor, rated: Tensor, h: Tensor, scale: float = 1.0) -> dict[str, Tensor]:
        m = h.shape[0] / scale
        h = h / m  # the mean's 1/m on (B, H), not on the (I, K, H) products
        out = {
            "rating_weight": (values.transpose(1, 2) @ h).transpose(0, 1),  # (I, K, H)
            "rating_bias": values.sum(1).T / m,  # (I, K)
            "hidden_bias": h.sum(0),  # (H,)
        }
        if vm.uses_rated:
            out["rated_weight"] = rated.T @ h  # (I, H)
            out["rated_bias"] = rated.sum(0) / m  # (I,)
        return out

    # Positive phase: hidden probabilities driven by the data, from its rated triples.
    data = RatedBatch.from_dense(bins)
    h0 = torch.sigmoid(model.hidden_input_sparse(data.items, data.values, data.offsets))
    if mask is not None:
        h0 = h0 * mask  # (B, H)
    weight = cfg.conditional_weight if cfg.model_rated else 0.0
    positive = data_statistics(model, data, h0, 1.0 + weight)

    # Negative phase: k steps of block Gibbs sampling, from the data (CD) or the chain (PCD).
    start = bins if chain is None else chain
    h_start = h0 if chain is None else vm.hidden_probs(chain)
    v_probs, r_probs, h_probs, states = _gibbs_chain(
        vm, start, h_start, k, generator, joint=cfg.model_rated
    )
    negative = stats(v_probs, r_probs, h_probs)
    if weight > 0:
        v_c, r_c, h_c, _ = _gibbs_chain(vm, bins, h0, k, generator, joint=False)
        conditional = stats(v_c, r_c, h_c, weight)
        negative = {name: negative[name] + conditional[name] for name in negative}
    return CDStatistics(positive, negative, states)


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
def _fold_in_all(
    model: RatingRBM, rows: sp.csr_matrix, batch_size: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """E[r] and the ranking score for every row, from one mean-field pass per batch."""
    device = model.rating_weight.device
    expected = np.empty(rows.shape, dtype=np.float32)
    score = np.empty(rows.shape, dtype=np.float32)
    for start in range(0, rows.shape[0], batch_size):
        bins = dense_states(rows[start : start + batch_size], model.config.n_ratings, device)
        e, s = model.predict_and_score(bins)
        expected[start : start + batch_size] = e.cpu().numpy()
        score[start : start + batch_size] = s.cpu().numpy()
    return expected, score


@torch.inference_mode()
def mean_free_energy(model: RatingRBM, rows: sp.csr_matrix, batch_size: int = 1024) -> float:
    device = model.rating_weight.device
    total = 0.0
    for start in range(0, rows.shape[0], batch_size):
        bins = dense_states(rows[start : start + batch_size], model.config.n_ratings, device)
        total += float(model.free_energy(*model.split_visible(bins)).sum())
    return total / max(rows.shape[0], 1)


def needs_dense_cd(config: RBMConfig) -> bool:
    """Whether the dense CD path is needed: the joint model, PCD chains or hidden dropout."""
    return config.model_rated or config.persistent or config.hidden_dropout > 0


def _raters(batch: RatedBatch) -> Tensor:
    """Users of the mini-batch who rated each item, (I,), at least 1."""
    return torch.bincount(batch.items, minlength=batch.n_items).clamp_min(1).float()


def _dense_raters(bins: Tensor) -> Tensor:
    """``_raters`` of dense states (B, I)."""
    return (bins > 0).sum(0).clamp_min(1).float()


def _fold_in_reference(config: RBMConfig, train: sp.csr_matrix) -> float:
    """``config.fold_in_reference``, or when unset the median ratings of the training users."""
    if config.fold_in_reference is not None:
        return float(config.fold_in_reference)
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
            fold_in_reference=_fold_in_reference(config, train),
        )
        self.options = options
        self.device = options.torch_device
        self.train = train.tocsr()
        self.validation = validation
        self.generator = options.generator(self.device)
        init_gen = torch.Generator().manual_seed(options.seed)
        self.model = RatingRBM(self.config, init_gen).to(self.device)
        self.model.init_biases(
            dense_states(self.train, self.config.n_ratings, "cpu").to(self.device)
        )
        self.optimiser = MomentumSGD(
            self.model.cd_parameters(), frozenset({"rating_weight", "rated_weight"})
        )
        self.users = np.flatnonzero(np.diff(self.train.indptr) > 0)
        self.chain: Tensor | None = None
        # The paper's model only ever touches rated entries: train it on them (rbm_sparse).
        self.sparse = not needs_dense_cd(self.config)
        self.probe = (
            _free_energy_probe(self.train, validation, options.seed)
            if validation is not None
            else None
        )

    def train_epoch(self, epoch: int) -> dict[str, float]:
        cfg = self.config
        k, momentum, lr = cfg.cd_k(epoch), cfg.momentum_at(epoch), cfg.learning_rate_at(epoch)
        order = self.users[
            torch.randperm(len(self.users), generator=self.generator, device=self.device)
            .cpu()
            .numpy()
        ]
        started = time.perf_counter()
        for start in range(0, len(order), cfg.batch_size):
            rows = self.train[order[start : start + cfg.batch_size]]
            if self.sparse:
                batch = RatedBatch.from_rows(rows, cfg.n_ratings, self.device)
                stats = sparse_rating_cd_statistics(self.model, batch, k, self.generator)
                scale = batch.n_users / _raters(batch) if cfg.per_item_rate else None
                self._step(stats.gradients(), scale, lr, momentum)
                continue
            bins = dense_states(rows, cfg.n_ratings, self.device)
            chain = None
            if cfg.persistent:
                if self.chain is None or self.chain.shape[0] != bins.shape[0]:
                    self.chain = bins.clone()
                chain = self.chain
            stats = rating_cd_statistics(self.model, bins, k, self.generator, chain)
            if cfg.persistent:
                self.chain = stats.negative_visible
            scale = bins.shape[0] / _dense_raters(bins) if cfg.per_item_rate else None
            self._step(stats.gradients(), scale, lr, momentum)
        metrics = {
            "epoch": float(epoch),
            "cd_k": float(k),
            "epoch_seconds": time.perf_counter() - started,
        }
        metrics.update(self.evaluate())
        return metrics

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
        if per_rater_scale is not None:
            grads["rating_weight"] = grads["rating_weight"] * per_rater_scale[:, None, None]
            grads["rating_bias"] = grads["rating_bias"] * per_rater_scale[:, None]
        if cfg.rating_lr_scale != 1.0:
            grads["rating_weight"] = grads["rating_weight"] * cfg.rating_lr_scale
            grads["rating_bias"] = grads["rating_bias"] * cfg.rating_lr_scale
        self.optimiser.step(grads, lr, momentum, cfg.weight_decay)

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
        expected, score = _fold_in_all(model, self.train)  # (U, I) each
        train = self.train.tocoo()
        out = {"train_rmse": rmse(expected[train.row, train.col], train.data)}
        if self.probe is not None:
            out["free_energy_train"] = mean_free_energy(model, self.probe.train_rows)
            out["free_energy_val"] = mean_free_energy(model, self.probe.validation_rows)
            val = self.validation.tocoo()
            users = np.flatnonzero(np.diff(self.validation.indptr) > 0)
            ranked = top_k(score[users], 10, exclude=self.train[users])
            per_user = ranking_metrics(ranked, self.validation, users)
            out["val_ndcg@10"] = float(per_user["ndcg"].mean())
            out["val_precision@10"] = float(per_user["precision"].mean())
            out["val_rmse"] = rmse(expected[val.row, val.col], val.data)
        return out

    def finalize(self) -> RatingRBM:
        return self.model


def fit_rbm(
    train: sp.csr_matrix,
    config: RBMConfig = RBMConfig(),
    options: TrainingOptions = TrainingOptions(),
    *,
    validation: sp.csr_matrix | None = None,
    patience: int | None = None,
) -> tuple[RatingRBM, list[dict[str, float]]]:
    """Train for ``config.epochs`` epochs (``options.epochs`` is ignored: the epoch count is
    part of the tuned configuration). With ``validation`` and ``patience``, stop when validation
    nDCG@10 has not improved for ``patience`` epochs and return the best epoch's model."""
    trainer = RBMTrainer(train, config, options, validation=validation)
    history: list[dict[str, float]] = []
    best, best_state, since = -np.inf, None, 0
    bar = tqdm(range(1, config.epochs + 1), desc="rbm", unit="epoch", disable=not options.progress)
    for epoch in bar:
        metrics = trainer.train_epoch(epoch)
        history.append(metrics)
        log_epoch("rbm", epoch, metrics, epochs=config.epochs, options=options)
        bar.set_postfix({k: f"{v:.4f}" for k, v in metrics.items() if k.startswith("val_")})
        if patience is not None and "val_ndcg@10" in metrics:
            if metrics["val_ndcg@10"] > best:
                best, since = metrics["val_ndcg@10"], 0
                best_state = copy.deepcopy(trainer.model.state_dict())
            else:
                since += 1
                if since >= patience:
                    log.info("rbm early stop at epoch %d (best nDCG@10 %.4f)", epoch, best)
                    break
    model = trainer.finalize()
    if best_state is not None:
        model.load_state_dict(best_state)
    return model, history


def fit_rating_fold_in(
    train: sp.csr_matrix, config: RBMConfig, options: TrainingOptions = TrainingOptions()
) -> RatingFoldIn:
    """The companion rating predictor (``ml.models.rbm_ratings``): the item-based RBM of
    ``config.item_rbm_config()`` trained on ``train.T`` (items as cases, users as softmax
    visibles; only rated entries are visible, so CD takes the sparse path), then its fold-in."""
    items = sp.csr_matrix(train.T)  # (I, U): one case per item
    model, _ = fit_rbm(items, config.item_rbm_config(), options)
    return RatingFoldIn.from_item_rbm(
        model, items, prior_strength=config.fold_in_prior, steps=config.fold_in_steps
    )


def train_rbm_checkpoint(
    dataset: RatingsDataset,
    config: RBMConfig = RBMConfig(),
    options: TrainingOptions = TrainingOptions(),
    *,
    fit: str = "train",
) -> Checkpoint:
    """Train on the protocol's TRAIN fold for ``config.epochs`` epochs (the configuration chosen
    on the validation pair) and store the test-fold figures in the checkpoint's metrics; with
    ``fit="all"`` the served models are then trained again on every rating (``ml.training.fit``).
    """
    check_fit(fit)
    ratings = dataset.ratings
    if ratings.empty:
        raise ValueError("no ratings to train on")
    if ratings["user_id"].nunique() < 2 or ratings["item_id"].nunique() < 2:
        raise ValueError("need at least two users and two items to train")
    split = protocol_split(ratings, seed=PROTOCOL_SEED)
    started = time.perf_counter()
    model, history = fit_rbm(split.train, config, options)
    ratings_model = (
        fit_rating_fold_in(split.train, config, options)
        if config.rating_model == "item_rbm"
        else None
    )
    train_seconds = time.perf_counter() - started
    model.eval()
    metrics: dict[str, float] = evaluate_ranking(
        lambda rows: predict_rows(model, rows), split.train, split.test
    )
    predict = (
        ratings_model.predict
        if ratings_model is not None
        else lambda rows: predict_rows(model, rows, "rating")
    )
    metrics.update(evaluate_rating(predict, split.train, split.test))
    metrics["train_seconds"] = train_seconds
    fitted, fit_all_seconds = split.train, None
    if fit == "all":
        started, fitted = time.perf_counter(), all_ratings(split)
        model, _ = fit_rbm(fitted, config, options)
        if config.rating_model == "item_rbm":
            ratings_model = fit_rating_fold_in(fitted, config, options)
        model.eval()
        fit_all_seconds = time.perf_counter() - started
    tensors = {name: p.detach().cpu() for name, p in model.state_dict().items()}
    if ratings_model is not None:
        tensors.update(
            {TENSOR_PREFIX + name: p.cpu() for name, p in ratings_model.state_dict().items()}
        )
    return Checkpoint(
        model_type="rbm",
        config=asdict(model.config),
        tensors=tensors,
        vocab={"user": split.users.to_list(), "item": split.items.to_list()},
        data_sha256=dataset.sha256,
        metrics=metrics,
        extra={
            "dataset": dataset.name,
            "seed": options.seed,
            "split_seed": PROTOCOL_SEED,
            "history": history,
            **fit_record(fit, fitted, fit_all_seconds),
        },
    )
