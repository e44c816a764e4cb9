"""Training the autoencoder (images, or users' ratings rows for Mult-DAE ranking).

Shape (after LensKit): ``trainer = AutoencoderTrainer(config, options, data)``;
``trainer.train_epoch()`` returns that epoch's metrics; ``trainer.finalize()`` returns the model
in eval mode. ``fit_autoencoder`` drives the loop with a progress bar and, when a validation
function is given, keeps the weights of the best validation epoch.

``train_ranking`` also stores the served item embedding in the checkpoint (``item_embeddings``):
the first-layer item columns of a Mult-DAE and the codes of the item-side DAE
(``item_dae_config``), combined by ``ml.inference.embeddings.combine_views``. The choice was made
on the validation pair by genre agreement (bench/bench_autoencoder.py). The ranking model learns
from the protocol's train fold only, so that its checkpoint carries honest test figures; the
embedding is fitted on every rating by default (``ITEM_EMBEDDING_DATA``): nothing measures it on
held-out ratings, and more raters per item is what it gains from most.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TypeAlias

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import nn

from ml.checkpoint import Checkpoint
from ml.data.digits import ImageDataset
from ml.data.splits import PROTOCOL_SEED, protocol_split
from ml.evaluation.evaluate import evaluate_ranking, evaluation_users
from ml.inference.embeddings import combine_views
from ml.inference.images import corrupt
from ml.models.autoencoder import (
    ITEM_EMBEDDINGS,
    Autoencoder,
    AutoencoderConfig,
    item_dae_config,
)
from ml.training.base import TrainingOptions
from ml.training.distributed import data_parallel, world
from ml.training.fit import all_ratings, check_fit, fit_record
from ml.training.loop import (
    BatchTrainer,
    FitHistory,
    Fitted,
    Validation,
    epoch_order,
    mini_batches,
)
from ml.training.loop import (
    fit as run_fit,
)

log = logging.getLogger(__name__)

Matrix: TypeAlias = np.ndarray | sp.csr_matrix


def batch_tensor(data: Matrix, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """Dense float32 rows of a numpy array or a CSR matrix, on ``device``."""
    block = data[rows]
    dense = block.toarray() if sp.issparse(block) else np.asarray(block)
    return torch.from_numpy(np.ascontiguousarray(dense, dtype=np.float32)).to(device)


class AutoencoderTrainer(BatchTrainer):
    """Adam on the autoencoder's objective, one dense mini-batch of rows at a time."""

    def __init__(self, config: AutoencoderConfig, options: TrainingOptions, data: Matrix) -> None:
        if data.shape[1] != config.n_inputs:
            raise ValueError(f"data has {data.shape[1]} columns, the model {config.n_inputs}")
        if data.shape[0] == 0:
            raise ValueError("no training rows")
        self.config = config
        self.options = options
        self.data: Matrix = (
            np.asarray(data, dtype=np.float32) if isinstance(data, np.ndarray) else data.tocsr()
        )
        self.device = options.torch_device
        init_generator = torch.Generator().manual_seed(options.seed)
        self.model = Autoencoder(config, generator=init_generator).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate)
        self.generator = options.generator(self.device)
        self.order_rng = np.random.default_rng(options.seed)

    def batches(self) -> Iterator[np.ndarray]:
        return mini_batches(epoch_order(self.data.shape[0], self.order_rng), self.config.batch_size)

    def step(self, rows: np.ndarray) -> dict[str, float]:
        x = batch_tensor(self.data, rows, self.device)
        terms = self.model.losses(x, self.generator)
        total = terms.total
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        return {
            "loss": float(total.detach()),
            "reconstruction": float(terms.reconstruction.detach()),
            "sparsity": float(terms.sparsity.detach()),
            "contractive": float(terms.contractive.detach()),
            "mean_code": terms.extra["mean_code"],
        }

    def finalize(self) -> Autoencoder:
        self.model.eval()
        return self.model


class _Objective(nn.Module):
    """The training objective as a forward pass, so DistributedDataParallel's reducer sees the
    backward that follows: ``weight`` scales the per-example terms (a rank's share of the
    global batch, times the world size, since DDP divides the summed gradients by it); the
    weight penalty is the same on every rank and stays unscaled. The KL sparsity penalty is
    a batch statistic: under DDP it is each rank's own (Mult-DAE does not use it)."""

    def __init__(self, model: Autoencoder) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, x: torch.Tensor, draws: torch.Tensor | None, weight: float
    ) -> tuple[torch.Tensor, ...]:
        if x.shape[0] == 0:  # no rows for this rank in a short last batch: zero gradients
            zero = torch.stack([p.sum() for p in self.model.parameters()]).sum() * 0.0
            penalty = self.model.weight_penalty()
            return penalty + zero, zero, zero, zero, zero.detach()
        terms = self.model.losses(x, None, draws)
        per_example = terms.reconstruction + terms.sparsity + terms.contractive
        return (
            weight * per_example + terms.weight_decay,
            terms.reconstruction,
            terms.sparsity,
            terms.contractive,
            torch.tensor(terms.extra["mean_code"]),
        )


class DistributedAutoencoderTrainer(AutoencoderTrainer):
    """The same training under torchrun: every rank shuffles the same global order and takes
    its share of each global mini-batch (``World.batch_share``); the model runs in
    DistributedDataParallel, which averages the gradients, so every rank applies the update
    of the whole batch (one process's, up to float summation order). The corruption's random
    numbers are drawn for the whole batch from the shared generator on every rank."""

    def __init__(self, config: AutoencoderConfig, options: TrainingOptions, data: Matrix) -> None:
        super().__init__(config, options, data)
        self.world = world()
        self.parallel = data_parallel(_Objective(self.model), self.device)

    def step(self, rows: np.ndarray) -> dict[str, float]:
        share = self.world.batch_share(len(rows))
        draws = self.model.noise_draws(
            (len(rows), self.config.n_inputs), self.generator, self.device
        )
        x = batch_tensor(self.data, rows[share], self.device)
        weight = self.world.size * len(share) / len(rows)
        total, reconstruction, sparsity, contractive, mean_code = self.parallel(
            x, None if draws is None else draws[torch.from_numpy(share).to(self.device)], weight
        )
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        return {  # this rank's share of the batch
            "loss": float(total.detach()),
            "reconstruction": float(reconstruction.detach()),
            "sparsity": float(sparsity.detach()),
            "contractive": float(contractive.detach()),
            "mean_code": float(mean_code),
        }


def make_trainer(
    config: AutoencoderConfig, options: TrainingOptions, data: Matrix
) -> AutoencoderTrainer:
    """The single-process trainer, or the data-parallel one under torchrun."""
    if world().distributed:
        return DistributedAutoencoderTrainer(config, options, data)
    return AutoencoderTrainer(config, options, data)


def fit_autoencoder(
    data: Matrix,
    config: AutoencoderConfig,
    options: TrainingOptions,
    *,
    validate: Callable[[Autoencoder], float] | None = None,
    validate_every: int = 1,
    patience: int | None = None,
    min_epochs: int = 0,
    metric: str = "validation",
    epochs: int | None = None,
    name: str = "autoencoder",
) -> Fitted[Autoencoder]:
    """Train for up to ``epochs`` (default ``options.epochs``) with the shared loop; with
    ``validate`` (higher is better) keep the best validated epoch, and with ``patience`` stop
    after that many validations without improvement."""
    trainer = make_trainer(config, options, data)
    validation = (
        Validation(
            score=lambda: validate(trainer.model),
            mode="max",
            every=validate_every,
            patience=patience,
            min_epochs=min_epochs,
            name=metric,
        )
        if validate is not None
        else None
    )
    result = run_fit(
        trainer, options, epochs=epochs, name=name, validation=validation, postfix="loss"
    )
    return Fitted(trainer.finalize(), result.history)


# -- Mult-DAE's epochs: early stopping on a validation slice of the training ratings ------------
RANKING_MAX_EPOCHS = 200  # the ceiling; early stopping usually ends well before it
RANKING_VALIDATE_EVERY = 5
RANKING_PATIENCE = 12  # validations (60 epochs): chosen on the validation pair, seeds 42 and 1
RANKING_MIN_EPOCHS = 20
VALIDATION_USERS = 0.2  # share of users whose ratings lend the validation slice
VALIDATION_MAX_USERS = 5_000  # bounds the cost of one validation on large data sets
VALIDATION_HELD_OUT = 0.25  # share of a chosen user's training ratings held out
VALIDATION_SEED_OFFSET = 1_000  # the slice's generator: options.seed + this
VALIDATION_METRIC = "val_ndcg@10_all"


def validation_slice(
    train: sp.csr_matrix,
    seed: int,
    *,
    users: float = VALIDATION_USERS,
    max_users: int = VALIDATION_MAX_USERS,
    held_out: float = VALIDATION_HELD_OUT,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(fit rows, held-out rows), both (U, I) CSR: a sample of users with at least two ratings
    each lend ``held_out`` of their ratings (at least one, never all) to the validation slice.

    Only CSR index arithmetic: no users x items allocation, whatever the data's size.
    """
    train = sp.csr_matrix(train)
    train.sort_indices()
    counts = np.diff(train.indptr)
    eligible = np.flatnonzero(counts >= 2)
    rng = np.random.default_rng(seed)
    n_chosen = min(max_users, max(1, round(users * len(eligible)))) if len(eligible) else 0
    chosen = np.sort(rng.choice(eligible, size=n_chosen, replace=False))
    held = np.zeros(train.nnz, dtype=bool)
    for user in chosen:
        start, n = train.indptr[user], counts[user]
        k = min(n - 1, max(1, round(held_out * n)))
        held[start + rng.choice(n, size=k, replace=False)] = True
    rows = np.repeat(np.arange(train.shape[0]), counts)

    def part(mask: np.ndarray) -> sp.csr_matrix:
        out = sp.csr_matrix(
            (train.data[mask], (rows[mask], train.indices[mask])), shape=train.shape
        )
        out.sort_indices()
        return out

    return part(~held), part(held)


def fit_mult_dae(
    train: sp.csr_matrix,
    config: AutoencoderConfig,
    options: TrainingOptions,
    *,
    patience: int = RANKING_PATIENCE,
    name: str = "mult-dae",
) -> Fitted[Autoencoder]:
    """Mult-DAE with epochs that follow the data: early stopping on nDCG@10 of a validation
    slice of ``train`` (``validation_slice``), ``options.epochs`` the ceiling; the model of the
    best validated epoch comes back (trained on the rest of ``train``)."""
    fit_rows, held = validation_slice(train, options.seed + VALIDATION_SEED_OFFSET)
    if held.nnz == 0:  # nobody has two ratings: nothing to validate on
        return fit_autoencoder(train, config, options, name=name)

    def score(model: Autoencoder) -> float:
        return validation_ndcg(model, fit_rows, held)

    return fit_autoencoder(
        fit_rows,
        config,
        options,
        validate=score,
        validate_every=RANKING_VALIDATE_EVERY,
        patience=patience,
        min_epochs=RANKING_MIN_EPOCHS,
        metric=VALIDATION_METRIC,
        name=name,
    )


def validation_ndcg(model: Autoencoder, fit_rows: sp.csr_matrix, held: sp.csr_matrix) -> float:
    """nDCG@10 ("all") of ``model`` on the validation slice. Under torchrun each rank scores
    its share of the validation users and the mean is all-reduced: every rank gets the same
    figure, so early stopping ends every rank at the same epoch."""
    scorer = lambda rows: score_rows(model, rows)  # noqa: E731
    ranks = world()
    if not ranks.distributed:
        return evaluate_ranking(scorer, fit_rows, held)["ndcg@10_all"]
    users = ranks.shard(evaluation_users(held))  # the users one process would score
    mine = np.zeros(held.shape[0], dtype=np.float32)
    mine[users] = 1.0
    held_mine = sp.csr_matrix(sp.diags(mine) @ held)
    held_mine.eliminate_zeros()
    value = (
        evaluate_ranking(scorer, fit_rows, held_mine, max_users=0)["ndcg@10_all"]
        if len(users)
        else 0.0
    )
    device = next(model.parameters()).device  # NCCL reduces CUDA tensors only
    scores = {"ndcg": torch.tensor([value], dtype=torch.float64, device=device)}
    return float(ranks.all_reduce_mean(scores, float(len(users)))["ndcg"][0])


def epochs_record(history: FitHistory) -> dict[str, object]:
    """The manifest's account of how many epochs Mult-DAE ran and why."""
    return {
        "max_epochs": history.max_epochs,
        "epochs_run": history.epochs_run,
        "best_epoch": history.best_epoch,
        "stopped_early": history.stopped_early,
        "validation": (
            f"{history.metric} on a slice of the training ratings ({VALIDATION_HELD_OUT:.0%} of "
            f"the ratings of {VALIDATION_USERS:.0%} of users, at most {VALIDATION_MAX_USERS}), "
            f"every {RANKING_VALIDATE_EVERY} epochs, patience {RANKING_PATIENCE}"
        )
        if history.metric
        else None,
        "best_validation": history.best_score,
    }


def _in_batches(
    fn: Callable[[torch.Tensor], torch.Tensor],
    model: Autoencoder,
    rows: Matrix,
    width: int,
    batch_size: int = 1024,
) -> np.ndarray:
    """``fn`` over dense batches of ``rows`` on the model's device, stacked: (B, width)."""
    device = next(model.parameters()).device
    out = []
    for start in range(0, rows.shape[0], batch_size):
        idx = np.arange(start, min(start + batch_size, rows.shape[0]))
        out.append(fn(batch_tensor(rows, idx, device)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, width), np.float32)


def score_rows(model: Autoencoder, rows: sp.csr_matrix, batch_size: int = 1024) -> np.ndarray:
    """Ranking scores (B, I): Mult-DAE's logits for users folded in from their ratings rows."""
    return _in_batches(model.reconstruct, model, rows, rows.shape[1], batch_size)


# -- item embeddings -----------------------------------------------------------------------------
ITEM_DAE_EPOCHS = 100  # compared with 200 on the validation pair (bench/bench_autoencoder.py)
ITEM_WEIGHTINGS = ("binary", "inverse_sqrt")
ITEM_WEIGHTING = "inverse_sqrt"  # chosen on the validation pair (bench/bench_autoencoder.py)


def item_view_rows(train: sp.csr_matrix, weighting: str = ITEM_WEIGHTING) -> sp.csr_matrix:
    """Items' rows of users (I, U), binarised; ``inverse_sqrt`` weights user u by 1/sqrt(n_u).

    Like idf: a user who rated hundreds of items says less about any one of them.
    """
    if weighting not in ITEM_WEIGHTINGS:
        raise ValueError(f"weighting must be one of {ITEM_WEIGHTINGS}, got {weighting!r}")
    rows = sp.csr_matrix((train != 0).T, dtype=np.float32)  # (I, U)
    if weighting == "inverse_sqrt":
        per_user = np.asarray(rows.sum(axis=0)).ravel()  # (U,)
        rows = sp.csr_matrix(rows.multiply(1.0 / np.sqrt(np.maximum(per_user, 1.0))[None, :]))
    return rows.astype(np.float32)


def fit_item_dae(
    train: sp.csr_matrix,
    code_dim: int,
    options: TrainingOptions,
    *,
    weighting: str = ITEM_WEIGHTING,
    epochs: int = ITEM_DAE_EPOCHS,
) -> np.ndarray:
    """Fit the item-side DAE on the transposed train matrix; its codes (I, code_dim)."""
    rows = item_view_rows(train, weighting)
    config = item_dae_config(rows.shape[1], hidden_layers=(code_dim,))
    fitted = fit_autoencoder(rows, config, options, epochs=epochs, name="item-dae")
    return _in_batches(fitted.model.codes, fitted.model, rows, code_dim)  # (I, code_dim)


def two_view_item_embeddings(model: Autoencoder, item_codes: np.ndarray) -> np.ndarray:
    """The served item embedding (I, d1 + d): Mult-DAE's input columns + item-DAE codes."""
    return combine_views(model.input_embeddings().float().cpu().numpy(), item_codes)


# "all": every rating (the default, what is served); "train": the protocol's train fold only,
# reusing the ranking model's columns (cheaper; what the benchmark compares it with).
ITEM_EMBEDDING_DATA = ("all", "train")


def fit_item_embeddings(
    ratings: sp.csr_matrix,
    config: AutoencoderConfig,
    options: TrainingOptions,
    *,
    ranking_model: Autoencoder | None = None,
    item_dae_epochs: int = ITEM_DAE_EPOCHS,
) -> np.ndarray:
    """The served item embedding (I, d1 + code_dim) of a (U, I) ratings matrix.

    Fits a Mult-DAE with ``config`` for ``options.epochs`` on ``ratings`` unless
    ``ranking_model`` (already fitted on the same matrix) is given, then the item DAE, and
    joins the two views.
    """
    if ranking_model is None:
        ranking_model = fit_autoencoder(ratings, config, options, name="mult-dae (items)").model
    item_codes = fit_item_dae(ratings, config.code_dim, options, epochs=item_dae_epochs)
    return two_view_item_embeddings(ranking_model, item_codes)


# -- end-to-end runs that the CLI and the benchmark share --------------------------------------
# Mult-DAE's fixed count chosen on the validation pair before early stopping (mean of 3 seeds,
# bench/tune_autoencoder.py); kept for the benchmarks that fit without a validation slice.
RANKING_EPOCHS = 110
IMAGE_EPOCHS = 150


def train_ranking(
    ratings: pd.DataFrame,
    config: AutoencoderConfig,
    options: TrainingOptions,
    *,
    data_sha256: str | None = None,
    split_seed: int = PROTOCOL_SEED,
    item_embedding_data: str = "all",
    fit: str = "train",
) -> Checkpoint:
    """Fit Mult-DAE on the protocol's train fold; the checkpoint carries its test figures.

    ``options.epochs`` is a ceiling: the epochs follow the data (``fit_mult_dae``, early
    stopping on a validation slice of the train fold). Every later fit reuses the epoch count
    found there: with ``fit="all"`` the served Mult-DAE is fitted again on every rating, and the
    item embedding learns from ``item_embedding_data`` ("all" ratings or the "train" fold); the
    item DAE runs ``ITEM_DAE_EPOCHS``, or fewer when ``options.epochs`` is lower.
    """
    check_fit(fit)
    if item_embedding_data not in ITEM_EMBEDDING_DATA:
        raise ValueError(
            f"item_embedding_data must be one of {ITEM_EMBEDDING_DATA}, got {item_embedding_data!r}"
        )
    split = protocol_split(ratings, seed=split_seed)
    if config.n_inputs != split.train.shape[1]:
        config = replace(config, n_inputs=split.train.shape[1])
    result = fit_mult_dae(split.train, config, options)
    metrics: dict[str, float] = {}
    if world().is_main:  # under torchrun only rank 0 measures (and writes the checkpoint)
        metrics = evaluate_ranking(
            lambda rows: score_rows(result.model, rows), split.train, split.test
        )
    metrics["train_seconds"] = result.train_seconds
    metrics["epochs"] = float(result.best_epoch)
    chosen = replace(options, epochs=result.best_epoch)  # what every later fit reuses
    item_dae_epochs = min(ITEM_DAE_EPOCHS, options.epochs)
    served, fit_all_seconds, model = split.train, None, result.model
    if fit == "all":
        started, served = time.perf_counter(), all_ratings(split)
        model = fit_autoencoder(served, config, chosen, name="mult-dae (all)").model
        fit_all_seconds = time.perf_counter() - started
    if item_embedding_data == "all":
        everything = all_ratings(split)  # disjoint folds, one vocabulary
        # The served model already saw every rating: its input columns are the embedding's.
        items = fit_item_embeddings(
            everything,
            config,
            chosen,
            ranking_model=model if fit == "all" else None,
            item_dae_epochs=item_dae_epochs,
        )  # (I, d1 + code_dim)
    else:
        items = fit_item_embeddings(
            split.train,
            config,
            chosen,
            ranking_model=result.model,
            item_dae_epochs=item_dae_epochs,
        )
    epochs = epochs_record(result.history)
    epochs["reused_by"] = "fit all, item embeddings: the best epoch found on the split"
    epochs["item_dae_epochs"] = item_dae_epochs
    return Checkpoint(
        model_type="autoencoder",
        config=config.to_dict(),
        tensors={**model.state_dict(), ITEM_EMBEDDINGS: torch.from_numpy(items)},
        vocab={"user": split.users.to_list(), "item": split.items.to_list()},
        data_sha256=data_sha256,
        metrics=metrics,
        extra={
            "target": "ratings",
            "seed": options.seed,
            "split_seed": split_seed,
            "epochs": epochs,
            "item_embeddings": f"mult-dae input columns + item-dae codes ({ITEM_WEIGHTING})",
            "item_embedding_data": item_embedding_data,
            **fit_record(fit, served, fit_all_seconds),
        },
    )


def image_metrics(
    model: Autoencoder, images: np.ndarray, *, noise: float = 0.3, seed: int = 0
) -> dict[str, float]:
    """Held-out MSE per pixel: clean reconstruction, the corrupted input, its reconstruction."""
    device = next(model.parameters()).device
    clean = torch.from_numpy(images.astype(np.float32)).to(device)
    noisy = torch.from_numpy(corrupt(images, noise, "mask", seed=seed)).to(device)
    recon = model.reconstruct(clean)
    denoised = model.reconstruct(noisy)
    return {
        "mse": float(((recon - clean) ** 2).mean()),
        f"mse_corrupted_input@{noise}": float(((noisy - clean) ** 2).mean()),
        f"mse_denoised@{noise}": float(((denoised - clean) ** 2).mean()),
    }


def train_images(
    dataset: ImageDataset, config: AutoencoderConfig, options: TrainingOptions
) -> Checkpoint:
    """Fit the autoencoder on the training digits; held-out figures go into the manifest."""
    if config.n_inputs != dataset.n_pixels:
        config = replace(config, n_inputs=dataset.n_pixels)
    fitted = fit_autoencoder(dataset.train_images, config, options, name="ae-images")
    metrics = image_metrics(fitted.model, dataset.test_images)
    metrics["train_seconds"] = fitted.train_seconds
    return Checkpoint(
        model_type="autoencoder-images",
        config=config.to_dict(),
        tensors=dict(fitted.model.state_dict()),
        metrics=metrics,
        extra={"target": "digits", "images": dataset.name, "side": dataset.side},
    )
