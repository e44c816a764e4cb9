"""Training I-AutoRec (Sedhain et al. 2015) on a users x items ratings matrix.

The trainer sees items as examples: the rows of the (I, U) transpose of the train matrix, kept
sparse; each mini-batch of items is densified on its own (no items x users allocation). The
shared loop (``ml.training.loop``) drives the epochs; ``fit_autorec`` optionally keeps the epoch
with the best validation RMSE (lower is better).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from ml.checkpoint import Checkpoint
from ml.data.splits import PROTOCOL_SEED, protocol_split
from ml.evaluation.evaluate import evaluate_ranking, evaluate_rating
from ml.models.autorec import AutoRecConfig, IAutoRec, fold_in_rows
from ml.registry import AUTOREC_EPOCHS as AUTOREC_EPOCHS  # the benches read it here
from ml.training.autoencoder import batch_tensor
from ml.training.base import TrainingOptions
from ml.training.fit import all_ratings, check_fit, fit_record
from ml.training.loop import BatchTrainer, Fitted, Validation, epoch_order, mini_batches
from ml.training.loop import fit as run_fit

log = logging.getLogger(__name__)
EVAL_BATCH = 1024  # items densified at a time outside training


def item_rows(train: sp.csr_matrix) -> sp.csr_matrix:
    """(I, U) sparse item vectors of the training ratings (float32, sorted indices)."""
    rows = sp.csr_matrix(train.T, dtype=np.float32)
    rows.sort_indices()
    return rows


class AutoRecTrainer(BatchTrainer):
    def __init__(
        self, config: AutoRecConfig, options: TrainingOptions, train: sp.csr_matrix
    ) -> None:
        if train.shape[0] != config.n_users:
            raise ValueError(f"train has {train.shape[0]} users, the model {config.n_users}")
        if train.nnz == 0:
            raise ValueError("no training ratings")
        self.config = config
        self.options = options
        self.device = options.torch_device
        self.items = item_rows(train)  # (I, U) sparse
        init_generator = torch.Generator().manual_seed(options.seed)
        self.model = IAutoRec(config)
        with torch.no_grad():  # seeded init without touching the global generator
            for layer in (self.model.encoder, self.model.decoder):
                bound = 1.0 / layer.in_features**0.5
                layer.weight.uniform_(-bound, bound, generator=init_generator)
                layer.bias.uniform_(-bound, bound, generator=init_generator)
            self.model.decoder.bias.fill_(float(train.data.mean()))
        self.model.to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate)
        self.order_rng = np.random.default_rng(options.seed)
        self._sse = self._loss = 0.0

    def batches(self) -> Iterator[np.ndarray]:
        self._sse = self._loss = 0.0
        order = epoch_order(self.items.shape[0], self.order_rng)
        return mini_batches(order, self.config.batch_size)

    def step(self, index: np.ndarray) -> dict[str, float]:
        r = batch_tensor(self.items, index, self.device)  # (B, U)
        observed = (r != 0).to(torch.float32)
        loss, sse = self.model.loss(r, observed, len(index) / self.items.shape[0])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self._sse += float(sse.detach())
        self._loss += float(loss.detach())
        return {}

    def end_epoch(self, metrics: dict[str, float]) -> None:
        metrics["loss"] = self._loss  # the epoch's objective (eq. 2), summed over items
        metrics["train_rmse"] = (self._sse / self.items.nnz) ** 0.5

    def finalize(self) -> IAutoRec:
        self.model.eval()
        return self.model


@dataclass
class AutoRecFit(Fitted[IAutoRec]):
    item_codes: torch.Tensor  # (I, k), from the training ratings


@torch.inference_mode()
def item_codes(model: IAutoRec, items: sp.csr_matrix, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """(I, k) codes z_i of every item from its (I, U) sparse training vector, in batches."""
    device = next(model.parameters()).device
    n = items.shape[0]
    out = [
        model.item_codes(batch_tensor(items, np.arange(start, min(start + batch_size, n)), device))
        for start in range(0, n, batch_size)
    ]
    return torch.cat(out) if out else torch.zeros((0, model.config.n_hidden), device=device)


def fit_autorec(
    train: sp.csr_matrix,
    config: AutoRecConfig,
    options: TrainingOptions,
    *,
    validate: Callable[[IAutoRec], float] | None = None,
    validate_every: int = 5,
    patience: int | None = None,
) -> AutoRecFit:
    """Train for ``options.epochs``; with ``validate(model)`` (an RMSE, lower is better) keep
    the best validated epoch (and stop after ``patience`` validations without improvement)."""
    trainer = AutoRecTrainer(config, options, train)
    validation = (
        Validation(
            score=lambda: validate(trainer.model),
            mode="min",
            every=validate_every,
            patience=patience,
            name="validation_rmse",
        )
        if validate is not None
        else None
    )
    result = run_fit(trainer, options, name="autorec", validation=validation, postfix="train_rmse")
    model = trainer.finalize()
    return AutoRecFit(model, result.history, item_codes(model, trainer.items))


@torch.inference_mode()
def rmse_known_users(
    model: IAutoRec, train: sp.csr_matrix, test: sp.csr_matrix, batch_size: int = EVAL_BATCH
) -> float:
    """Test RMSE of the standard I-AutoRec prediction (the trained users' output rows, eq. 1),
    over item batches of the (U, I) ``train`` and ``test`` matrices."""
    cfg = model.config
    device = next(model.parameters()).device
    items, held = item_rows(train), item_rows(test)  # (I, U) each
    sse, n = 0.0, 0
    for start in range(0, items.shape[0], batch_size):
        index = np.arange(start, min(start + batch_size, items.shape[0]))
        block = held[index].tocoo()  # the test ratings of these items
        if block.nnz == 0:
            continue
        predicted = model(batch_tensor(items, index, device)).clamp(cfg.rating_min, cfg.rating_max)
        rows = torch.from_numpy(block.row.astype(np.int64)).to(device)
        cols = torch.from_numpy(block.col.astype(np.int64)).to(device)
        err = predicted[rows, cols].double().cpu().numpy() - block.data
        sse, n = sse + float((err**2).sum()), n + block.nnz
    return float(np.sqrt(sse / n)) if n else float("nan")


@torch.inference_mode()
def predict_fold_in(model: IAutoRec, codes: torch.Tensor, rows: sp.csr_matrix) -> np.ndarray:
    """(B, I) predictions for users given only their ratings rows (see ``fold_in_rows``)."""
    cfg = model.config
    dense = torch.from_numpy(rows.toarray().astype(np.float32)).to(codes.device)
    return (
        fold_in_rows(codes, dense, cfg.fold_in_l2, (cfg.rating_min, cfg.rating_max)).cpu().numpy()
    )


def train_autorec(
    ratings: pd.DataFrame,
    config: AutoRecConfig,
    options: TrainingOptions,
    *,
    data_sha256: str | None = None,
    split_seed: int = PROTOCOL_SEED,
    fit: str = "train",
) -> Checkpoint:
    """Fit I-AutoRec on the protocol's train fold; test RMSE of the served fold-in predictions
    (``rmse``) and of the trained users' own output rows (``rmse_trained_rows``) in metrics.
    With ``fit="all"`` the served model is then fitted again on every rating."""
    check_fit(fit)
    split = protocol_split(ratings, seed=split_seed)
    if config.n_users != split.train.shape[0]:
        config = replace(config, n_users=split.train.shape[0])
    fitted = fit_autorec(split.train, config, options)

    def predict(rows: sp.csr_matrix) -> np.ndarray:
        return predict_fold_in(fitted.model, fitted.item_codes, rows)

    metrics: dict[str, float] = dict(evaluate_rating(predict, split.train, split.test))
    metrics["rmse_trained_rows"] = rmse_known_users(fitted.model, split.train, split.test)
    metrics.update(evaluate_ranking(predict, split.train, split.test))
    metrics["train_seconds"] = fitted.train_seconds
    metrics["epochs"] = float(options.epochs)
    served, fit_all_seconds = split.train, None
    if fit == "all":
        served = all_ratings(split)
        fitted = fit_autorec(served, config, options)
        fit_all_seconds = fitted.train_seconds
    tensors = {**fitted.model.state_dict(), "item_codes": fitted.item_codes}
    return Checkpoint(
        model_type="autorec",
        config=config.to_dict(),
        tensors=tensors,
        vocab={"user": split.users.to_list(), "item": split.items.to_list()},
        data_sha256=data_sha256,
        metrics=metrics,
        extra={
            "seed": options.seed,
            "split_seed": split_seed,
            **fit_record(fit, served, fit_all_seconds),
        },
    )
