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

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeAlias

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from ml.checkpoint import Checkpoint
from ml.data.digits import ImageDataset
from ml.data.splits import PROTOCOL_SEED, protocol_split
from ml.evaluation.evaluate import evaluate_ranking
from ml.inference.embeddings import combine_views
from ml.inference.images import corrupt
from ml.models.autoencoder import (
    ITEM_EMBEDDINGS,
    Autoencoder,
    AutoencoderConfig,
    item_dae_config,
)
from ml.training.base import TrainingOptions, log_epoch
from ml.training.fit import all_ratings, check_fit, fit_record

log = logging.getLogger(__name__)

Matrix: TypeAlias = np.ndarray | sp.csr_matrix


def batch_tensor(data: Matrix, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """Dense float32 rows of a numpy array or a CSR matrix, on ``device``."""
    block = data[rows]
    dense = block.toarray() if sp.issparse(block) else np.asarray(block)
    return torch.from_numpy(np.ascontiguousarray(dense, dtype=np.float32)).to(device)


class AutoencoderTrainer:
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
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.generator = options.generator(self.device)
        self.order_rng = np.random.default_rng(options.seed)
        self.epoch = 0

    def train_epoch(self) -> dict[str, float]:
        self.model.train()
        n = self.data.shape[0]
        order = self.order_rng.permutation(n)
        totals = {"loss": 0.0, "reconstruction": 0.0, "sparsity": 0.0, "contractive": 0.0}
        code_sum, batches = 0.0, 0
        for start in range(0, n, self.config.batch_size):
            x = batch_tensor(self.data, order[start : start + self.config.batch_size], self.device)
            terms = self.model.losses(x, self.generator)
            total = terms.total
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()
            self.optimizer.step()
            totals["loss"] += float(total.detach())
            totals["reconstruction"] += float(terms.reconstruction.detach())
            totals["sparsity"] += float(terms.sparsity.detach())
            totals["contractive"] += float(terms.contractive.detach())
            code_sum += terms.extra["mean_code"]
            batches += 1
        self.epoch += 1
        metrics = {k: v / batches for k, v in totals.items()}
        metrics["mean_code"] = code_sum / batches
        return metrics

    def finalize(self) -> Autoencoder:
        self.model.eval()
        return self.model


@dataclass
class FitResult:
    model: Autoencoder
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    best_epoch: int = 0
    best_score: float | None = None


def fit_autoencoder(
    data: Matrix,
    config: AutoencoderConfig,
    options: TrainingOptions,
    *,
    validate: Callable[[Autoencoder], float] | None = None,
    validate_every: int = 1,
    name: str = "autoencoder",
) -> FitResult:
    """Train for ``options.epochs``; with ``validate`` (higher is better), keep the best epoch."""
    if options.epochs <= 0:
        raise ValueError(f"epochs must be positive, got {options.epochs}")
    trainer = AutoencoderTrainer(config, options, data)
    history: list[dict[str, float]] = []
    best_state, best_score, best_epoch = None, None, options.epochs
    started = time.perf_counter()
    bar = tqdm(range(1, options.epochs + 1), desc=name, disable=not options.progress, leave=False)
    for epoch in bar:
        metrics = trainer.train_epoch()
        if validate is not None and (epoch % validate_every == 0 or epoch == options.epochs):
            trainer.model.eval()
            score = float(validate(trainer.model))
            metrics["validation"] = score
            if best_score is None or score > best_score:
                best_score, best_epoch = score, epoch
                best_state = copy.deepcopy(trainer.model.state_dict())
        history.append(metrics)
        log_epoch(name, epoch, metrics, epochs=options.epochs, options=options)
        bar.set_postfix(loss=f"{metrics['loss']:.4f}")
    if best_state is not None:
        trainer.model.load_state_dict(best_state)
    model = trainer.finalize()
    return FitResult(model, history, time.perf_counter() - started, best_epoch, best_score)


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
) -> np.ndarray:
    """Fit the item-side DAE on the transposed train matrix; its codes (I, code_dim)."""
    rows = item_view_rows(train, weighting)
    config = item_dae_config(rows.shape[1], hidden=(code_dim,))
    fit = fit_autoencoder(rows, config, replace(options, epochs=ITEM_DAE_EPOCHS), name="item-dae")
    return _in_batches(fit.model.codes, fit.model, rows, code_dim)  # (I, code_dim)


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
) -> np.ndarray:
    """The served item embedding (I, d1 + code_dim) of a (U, I) ratings matrix.

    Fits a Mult-DAE with ``config`` on ``ratings`` unless ``ranking_model`` (already fitted on
    the same matrix) is given, then the item DAE, and joins the two views.
    """
    if ranking_model is None:
        ranking_model = fit_autoencoder(ratings, config, options, name="mult-dae (items)").model
    item_codes = fit_item_dae(ratings, config.code_dim, options)
    return two_view_item_embeddings(ranking_model, item_codes)


# -- end-to-end runs that the CLI and the benchmark share --------------------------------------
RANKING_EPOCHS = 110  # chosen on the validation pair, mean of 3 seeds (bench/tune_autoencoder.py)
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

    The item embedding learns from ``item_embedding_data``: "all" ratings or the "train" fold.
    With ``fit="all"`` the served Mult-DAE is then fitted again on every rating.
    """
    check_fit(fit)
    if item_embedding_data not in ITEM_EMBEDDING_DATA:
        raise ValueError(
            f"item_embedding_data must be one of {ITEM_EMBEDDING_DATA}, got {item_embedding_data!r}"
        )
    split = protocol_split(ratings, seed=split_seed)
    if config.n_inputs != split.train.shape[1]:
        config = replace(config, n_inputs=split.train.shape[1])
    result = fit_autoencoder(split.train, config, options, name="mult-dae")
    metrics = evaluate_ranking(lambda rows: score_rows(result.model, rows), split.train, split.test)
    metrics["train_seconds"] = result.train_seconds
    metrics["epochs"] = float(options.epochs)
    served, fit_all_seconds, model = split.train, None, result.model
    if fit == "all":
        started, served = time.perf_counter(), all_ratings(split)
        model = fit_autoencoder(served, config, options, name="mult-dae (all)").model
        fit_all_seconds = time.perf_counter() - started
    if item_embedding_data == "all":
        everything = all_ratings(split)  # disjoint folds, one vocabulary
        # The served model already saw every rating: its input columns are the embedding's.
        items = (
            fit_item_embeddings(everything, config, options, ranking_model=model)
            if fit == "all"
            else fit_item_embeddings(everything, config, options)  # (I, d1 + code_dim)
        )
    else:
        items = fit_item_embeddings(split.train, config, options, ranking_model=result.model)
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
    fit = fit_autoencoder(dataset.train_images, config, options, name="ae-images")
    metrics = image_metrics(fit.model, dataset.test_images)
    metrics["train_seconds"] = fit.train_seconds
    return Checkpoint(
        model_type="autoencoder-images",
        config=config.to_dict(),
        tensors=dict(fit.model.state_dict()),
        metrics=metrics,
        extra={"target": "digits", "images": dataset.name, "side": dataset.side},
    )
