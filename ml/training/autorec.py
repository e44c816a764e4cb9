"""Training I-AutoRec (Sedhain et al. 2015) on a users x items ratings matrix.

The trainer sees items as examples: the (I, U) transpose of the train matrix with its observed
mask. ``fit_autorec`` optionally keeps the epoch with the best validation RMSE.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from ml.checkpoint import Checkpoint
from ml.data.splits import PROTOCOL_SEED, protocol_split
from ml.evaluation.evaluate import evaluate_ranking, evaluate_rating
from ml.models.autorec import AutoRecConfig, IAutoRec, fold_in_rows
from ml.training.base import TrainingOptions, log_epoch
from ml.training.fit import all_ratings, check_fit, fit_record

log = logging.getLogger(__name__)


def item_matrix(train: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    """(I, U) dense item vectors of training ratings, 0 where unobserved."""
    return torch.from_numpy(train.T.toarray().astype(np.float32)).to(device)


class AutoRecTrainer:
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
        self.items = item_matrix(train, self.device)  # (I, U)
        self.observed = (self.items != 0).to(torch.float32)  # (I, U)
        init_generator = torch.Generator().manual_seed(options.seed)
        self.model = IAutoRec(config)
        with torch.no_grad():  # seeded init without touching the global generator
            for layer in (self.model.encoder, self.model.decoder):
                bound = 1.0 / layer.in_features**0.5
                layer.weight.uniform_(-bound, bound, generator=init_generator)
                layer.bias.uniform_(-bound, bound, generator=init_generator)
            self.model.decoder.bias.fill_(float(train.data.mean()))
        self.model.to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.order_rng = np.random.default_rng(options.seed)

    def train_epoch(self) -> dict[str, float]:
        self.model.train()
        n_items = self.items.shape[0]
        order = torch.from_numpy(self.order_rng.permutation(n_items)).to(self.device)
        sse_total, loss_total = 0.0, 0.0
        for start in range(0, n_items, self.config.batch_size):
            idx = order[start : start + self.config.batch_size]
            loss, sse = self.model.loss(self.items[idx], self.observed[idx], len(idx) / n_items)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            sse_total += float(sse.detach())
            loss_total += float(loss.detach())
        return {"loss": loss_total, "train_rmse": (sse_total / float(self.observed.sum())) ** 0.5}

    def finalize(self) -> IAutoRec:
        self.model.eval()
        return self.model


@dataclass
class AutoRecFit:
    model: IAutoRec
    item_codes: torch.Tensor  # (I, k), from the training ratings
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    best_epoch: int = 0


def fit_autorec(
    train: sp.csr_matrix,
    config: AutoRecConfig,
    options: TrainingOptions,
    *,
    validate: Callable[[IAutoRec, torch.Tensor], float] | None = None,
    validate_every: int = 5,
) -> AutoRecFit:
    """Train; with ``validate(model, items)`` (an RMSE, lower is better) keep the best epoch."""
    if options.epochs <= 0:
        raise ValueError(f"epochs must be positive, got {options.epochs}")
    trainer = AutoRecTrainer(config, options, train)
    history: list[dict[str, float]] = []
    best, best_epoch, best_state = None, options.epochs, None
    started = time.perf_counter()
    bar = tqdm(range(1, options.epochs + 1), desc="autorec", disable=not options.progress)
    for epoch in bar:
        metrics = trainer.train_epoch()
        if validate is not None and (epoch % validate_every == 0 or epoch == options.epochs):
            trainer.model.eval()
            score = float(validate(trainer.model, trainer.items))
            metrics["validation_rmse"] = score
            if best is None or score < best:
                best, best_epoch = score, epoch
                best_state = copy.deepcopy(trainer.model.state_dict())
        history.append(metrics)
        log_epoch("autorec", epoch, metrics, epochs=options.epochs, options=options)
        bar.set_postfix(rmse=f"{metrics['train_rmse']:.4f}")
    if best_state is not None:
        trainer.model.load_state_dict(best_state)
    model = trainer.finalize()
    codes = model.item_codes(trainer.items)
    return AutoRecFit(model, codes, history, time.perf_counter() - started, best_epoch)


@torch.inference_mode()
def predict_known_users(model: IAutoRec, items: torch.Tensor) -> np.ndarray:
    """(U, I) predictions for the training users from their trained output rows (eq. 1)."""
    cfg = model.config
    return model(items).T.clamp(cfg.rating_min, cfg.rating_max).cpu().numpy()


def rmse_known_users(model: IAutoRec, items: torch.Tensor, test: sp.csr_matrix) -> float:
    """Test RMSE of the standard I-AutoRec prediction (the trained users' output rows)."""
    predictions = predict_known_users(model, items)
    block = test.tocoo()
    err = predictions[block.row, block.col] - block.data
    return float(np.sqrt(np.mean(err**2)))


@torch.inference_mode()
def predict_fold_in(model: IAutoRec, codes: torch.Tensor, rows: sp.csr_matrix) -> np.ndarray:
    """(B, I) predictions for users given only their ratings rows (see ``fold_in_rows``)."""
    cfg = model.config
    dense = torch.from_numpy(rows.toarray().astype(np.float32)).to(codes.device)
    return (
        fold_in_rows(codes, dense, cfg.fold_in_l2, (cfg.rating_min, cfg.rating_max)).cpu().numpy()
    )


AUTOREC_EPOCHS = 32  # chosen on the validation pair (bench/tune_autoencoder.py)


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
    items = item_matrix(split.train, fitted.item_codes.device)

    def predict(rows: sp.csr_matrix) -> np.ndarray:
        return predict_fold_in(fitted.model, fitted.item_codes, rows)

    metrics: dict[str, float] = dict(evaluate_rating(predict, split.train, split.test))
    metrics["rmse_trained_rows"] = rmse_known_users(fitted.model, items, split.test)
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
