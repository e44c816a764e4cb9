"""Ratings models' epochs at MovieLens shapes: time per epoch and peak RSS, one model a run.

``python -m bench.epoch_scale RATINGS --model dae|item-dae|autorec|item-rbm [--epochs K]
[--batches N]``: RATINGS is a folder ``deeprec data synth`` wrote (or any ratings file). The
process loads it the way ``deeprec train`` does (``load_ratings_path``), takes the protocol's
train fold and trains the model as its trainer does (Mult-DAE, the item-side DAE of its
embedding, I-AutoRec, the item-based rating RBM at its largest CD-k), K epochs (median
reported), or N mini-batches with the epoch time extrapolated from them (batches per epoch x
seconds per batch; memory does not grow with more batches). ``bench.rbm_scale`` does the same
for the RBMs on its own generated data. Under torchrun (``torchrun --nproc-per-node 2 -m
bench.epoch_scale ...``) the
Mult-DAE runs in DistributedDataParallel, each rank on its share of every global batch, and
rank 0 prints; CPU seconds and peak RSS are summed / maxed over the ranks. Prints one JSON line
per model; with several models (``--model dae,autorec``, one load) each line's peak RSS is the
process's peak so far, so a model's own peak is at most that (run one model for its own).
Not part of ``python -m bench``; results: bench/results/scale.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from ml.data.movielens import load_ratings_path
from ml.data.splits import protocol_split
from ml.models.autoencoder import item_dae_config, mult_dae_config
from ml.models.autorec import AutoRecConfig
from ml.models.rbm import RBMConfig
from ml.training.autoencoder import item_view_rows, make_trainer
from ml.training.autorec import AutoRecTrainer
from ml.training.base import TrainingOptions
from ml.training.distributed import init_from_env, shutdown, world
from ml.training.rbm import RBMTrainer

MODELS = ("dae", "item-dae", "autorec", "item-rbm")


class _ItemRBM:
    """The item rating RBM's epoch as its CD updates (``RBMTrainer`` on the transpose, the
    configuration ``deeprec train rbm`` uses) at its largest CD-k; the end-of-epoch figures
    (``RBMTrainer.evaluate``) are not timed."""

    def __init__(self, train: sp.csr_matrix, options: TrainingOptions) -> None:
        config = RBMConfig().item_rbm_config()
        self.trainer = RBMTrainer(sp.csr_matrix(train.T), config, options)
        schedule = config.training
        epoch = schedule.cd_k_max * schedule.cd_k_step_epochs
        self.k, self.momentum = schedule.cd_k(epoch), schedule.momentum_at(epoch)
        self.lr = schedule.learning_rate_at(epoch)
        self.order = np.random.default_rng(options.seed).permutation(self.trainer.users)

    def start_epoch(self) -> None:
        return None

    def batches(self) -> list[np.ndarray]:
        size = self.trainer.batch_size
        return [self.order[i : i + size] for i in range(0, len(self.order), size)]

    def step(self, users: np.ndarray) -> None:
        t = self.trainer
        grads, scale = t._batch_gradients(t.train[users], self.k)
        t._step(grads, scale, self.lr, self.momentum)


def _trainer(model: str, train: sp.csr_matrix, options: TrainingOptions) -> Any:
    if model == "dae":
        return make_trainer(mult_dae_config(train.shape[1]), options, train)
    if model == "item-dae":
        rows = item_view_rows(train)  # (I, U), what fit_item_dae trains on
        return make_trainer(item_dae_config(rows.shape[1], hidden_layers=(200,)), options, rows)
    if model == "item-rbm":
        return _ItemRBM(train, options)
    if world().distributed:
        raise SystemExit("error: AutoRec has no data-parallel trainer")
    return AutoRecTrainer(AutoRecConfig(n_users=train.shape[0]), options, train)


def _epoch(trainer: Any, batches: int | None) -> tuple[float, float, int, int]:
    """Wall and CPU seconds of one epoch (or its first ``batches``), batches run, per epoch."""
    trainer.start_epoch()
    planned = list(trainer.batches())
    run = planned if batches is None else planned[:batches]
    wall, cpu = time.perf_counter(), time.process_time()
    for batch in run:
        trainer.step(batch)
    return time.perf_counter() - wall, time.process_time() - cpu, len(run), len(planned)


def _over_ranks(values: list[float], op: Any) -> list[float]:
    ranks = world()
    if not ranks.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    torch.distributed.all_reduce(t, op=op)
    return t.tolist()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ratings", type=Path)
    parser.add_argument("--model", default="dae", help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batches", default=None, help="N, or one N per model (comma-separated)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    models = args.model.split(",")
    if unknown := set(models) - set(MODELS):
        parser.error(f"unknown model(s) {sorted(unknown)}; choose from {MODELS}")
    batches: list[int | None] = [None] * len(models)
    if args.batches:
        counts = [int(n) for n in args.batches.split(",")]
        batches = list(counts * len(models) if len(counts) == 1 else counts)  # type: ignore[arg-type]
        if len(batches) != len(models):
            parser.error("--batches: one N, or one per model")
    options = TrainingOptions(device="cpu", seed=args.seed, progress=False)
    init_from_env(options.torch_device)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        data = load_ratings_path(args.ratings)
        split = protocol_split(data.ratings)
        del data
        load_wall, load_cpu = time.perf_counter() - wall, time.process_time() - cpu
        for model, n in zip(models, batches, strict=True):
            _measure(model, n, args.epochs, split.train, options, (load_wall, load_cpu))
    finally:
        shutdown()


def _measure(
    model: str,
    batches: int | None,
    n_epochs: int,
    train: sp.csr_matrix,
    options: TrainingOptions,
    load: tuple[float, float],
) -> None:
    """Time ``n_epochs`` of ``model`` (or its first ``batches`` per epoch); rank 0 prints."""
    ranks = world()
    wall = time.perf_counter()
    trainer = _trainer(model, train, options)
    setup = time.perf_counter() - wall
    epochs = [_epoch(trainer, batches) for _ in range(n_epochs)]
    del trainer
    walls = [w * per / ran for w, _, ran, per in epochs]
    cpus = [c * per / ran for _, c, ran, per in epochs]
    # ru_maxrss: this process's peak so far (the load, and every model measured before).
    rss_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    cpu_sum = _over_ranks([statistics.median(cpus), load[1]], torch.distributed.ReduceOp.SUM)
    (rss_max,) = _over_ranks([rss_gib], torch.distributed.ReduceOp.MAX)
    if ranks.is_main:
        record = {
            "model": model,
            "ratings": int(train.nnz),
            "shape": list(train.shape),
            "ranks": ranks.size,
            "torch_threads": torch.get_num_threads(),
            "load_split_wall_s": round(load[0], 1),
            "load_split_cpu_s_all_ranks": round(cpu_sum[1], 1),
            "setup_s": round(setup, 1),
            "batches_run": epochs[0][2],
            "batches_per_epoch": epochs[0][3],
            "epoch_wall_s": [round(w, 2) for w in walls],
            "epoch_wall_s_median": round(statistics.median(walls), 2),
            "epoch_cpu_s_all_ranks": round(cpu_sum[0], 2),
            "peak_rss_gib_so_far_per_rank_max": round(rss_max, 2),
            "extrapolated": batches is not None,
        }
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
