"""The rating RBM at MovieLens-1M/10M/25M shapes, on seeded synthetic ratings: time per epoch
of the ranking RBM and of the item-based rating RBM, and peak RSS.

``python -m bench.rbm_scale SHAPE [--updates N] [--seed S]``, SHAPE one of 1m, 10m, 25m. With
``--updates N`` each model runs N CD updates and the epoch time is extrapolated from them
(updates per epoch x seconds per update); memory does not grow with more updates. Under
torchrun (``torchrun --nproc-per-node 2 -m bench.rbm_scale 1m``) every rank trains on its share
of the users and rank 0 prints. Prints one JSON line per model; not part of ``python -m bench``
(it needs the bigmem lock on large shapes). Results: bench/results/rbm_scale.md.

The generator is deliberately small (Zipf item popularity, log-normal user activity, ratings
from biases + a rank-8 taste + noise); ``ml.data.synthetic`` is the project's full one.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.data.splits import protocol_split
from ml.models.rbm import RBMConfig
from ml.training.base import TrainingOptions
from ml.training.distributed import init_from_env, shutdown
from ml.training.rbm import RBMTrainer

# users, items, ratings of MovieLens 1M, 10M and 25M
SHAPES = {
    "1m": (6_040, 3_706, 1_000_209),
    "10m": (69_878, 10_677, 10_000_054),
    "25m": (162_541, 59_047, 25_000_095),
}


def synthetic_ratings(shape: str, seed: int = 0) -> pd.DataFrame:
    """About the shape's number of ratings, every user with at least 20."""
    n_users, n_items, n_ratings = SHAPES[shape]
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.9
    activity = rng.lognormal(0.0, 1.0, n_users)
    counts = np.maximum(20, np.round(activity / activity.sum() * n_ratings)).astype(np.int64)
    counts = np.minimum(counts, n_items // 2)
    # Draw three times each user's count (popular items repeat), keep distinct pairs, then each
    # user's first ``count`` of them in random order.
    users = np.repeat(np.arange(n_users, dtype=np.int64), 3 * counts)
    items = rng.choice(n_items, size=len(users), p=popularity / popularity.sum())
    keys = np.unique(users * n_items + items)
    keys = keys[np.lexsort((rng.random(len(keys)), keys // n_items))]
    users = keys // n_items
    starts = np.searchsorted(users, np.arange(n_users))
    keys = np.sort(keys[np.arange(len(keys)) - starts[users] < counts[users]])
    users, items = keys // n_items, keys % n_items
    taste_u, taste_i = rng.normal(0, 0.5, (n_users, 8)), rng.normal(0, 0.5, (n_items, 8))
    bias_u, bias_i = rng.normal(0, 0.4, n_users), rng.normal(0, 0.5, n_items)
    score = 3.6 + bias_u[users] + bias_i[items] + rng.normal(0, 0.8, len(users))
    score += np.einsum("nd,nd->n", taste_u[users], taste_i[items])
    return pd.DataFrame(
        {
            "user_id": users + 1,
            "item_id": items + 1,
            "rating": np.clip(np.round(score), 1, 5).astype(np.float32),
            "timestamp": np.zeros(len(users), dtype=np.int64),
        }
    )


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _time_model(
    name: str, data: sp.csr_matrix, config: RBMConfig, updates: int | None
) -> dict[str, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    trainer = RBMTrainer(data, config, TrainingOptions(device="cpu", progress=False))
    setup = time.perf_counter() - wall
    per_epoch = -(-len(trainer.users) // trainer.batch_size)
    ran = per_epoch if updates is None else min(updates, per_epoch)
    wall, cpu = time.perf_counter(), time.process_time()
    schedule = config.training
    trainer.train_epoch(schedule.cd_k_max * schedule.cd_k_step_epochs, max_updates=ran)  # max k
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "model": name,
        "shape": list(data.shape),
        "ratings": int(data.nnz),
        "sampled_cd": trainer.sampled,
        "ranks": trainer.world.size,
        "setup_s": round(setup, 1),
        "updates_run": ran,
        "updates_per_epoch": per_epoch,
        "epoch_wall_s": round(wall * per_epoch / ran, 1),
        "epoch_cpu_s": round(cpu * per_epoch / ran, 1),
        "peak_rss_gib": round(_peak_rss_gib(), 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shape", choices=sorted(SHAPES))
    parser.add_argument("--updates", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default="joint,item")
    args = parser.parse_args(argv)
    ranks = init_from_env(TrainingOptions(device="cpu").torch_device)
    try:
        started = time.perf_counter()
        split = protocol_split(synthetic_ratings(args.shape, args.seed))
        prepared = time.perf_counter() - started
        config = RBMConfig()
        models = {
            "joint": lambda: (split.train, config),
            "item": lambda: (sp.csr_matrix(split.train.T), config.item_rbm_config()),
        }
        for name in args.models.split(","):
            data, model_config = models[name]()
            result = _time_model(name, data, model_config, args.updates)
            if ranks.is_main:
                print(json.dumps({"data_s": round(prepared, 1), **result}), flush=True)
    finally:
        shutdown()


if __name__ == "__main__":
    main()
