"""The default ratings models trained on each device of this machine: cuda (when present) and cpu.

Same code, data, seed and configuration on each device, in one invocation, so the times compare
and the test figures show that the device does not change what is learned. Trains the RBM
checkpoint (ranking + rating RBMs) and the Mult-DAE checkpoint (ranking model on the train fold,
item embedding on every rating), then times scoring all users. Writes
bench/results/devices-cuda.{md,json} on a GPU machine, devices-cpu.{md,json} elsewhere, so a
CPU-only ``make bench`` never overwrites the GPU figures.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from bench.common import markdown_table, median, timed, write_result
from ml.checkpoint import Checkpoint, save_checkpoint
from ml.data.fetch import load_dataset
from ml.data.splits import PROTOCOL_SEED, protocol_split
from ml.inference import load_recommender
from ml.models.autoencoder import mult_dae_config
from ml.models.rbm import RBMConfig
from ml.training.autoencoder import RANKING_EPOCHS, train_ranking
from ml.training.base import TrainingOptions
from ml.training.rbm import train_rbm_checkpoint
from tests.conftest import TEST_DATA_DIR

METRICS = ("ndcg@10_all", "precision@10_all", "rmse")


def _score_all_users(checkpoint: Checkpoint, device: str, train: Any) -> float:
    """Median seconds to score every user's train row on ``device``, with the model saved and
    loaded back as the service loads it."""
    with tempfile.TemporaryDirectory() as folder:
        save_checkpoint(checkpoint, Path(folder) / "model")
        model = load_recommender(Path(folder) / "model", device)
    model.scorer.score(train[:8])  # warm-up: kernels, caches
    _, seconds = timed(lambda: model.scorer.score(train), 5)
    return median(seconds)


def device_rows(device: str, dataset: Any, train: Any) -> list[dict[str, Any]]:
    options = TrainingOptions(device=device, seed=PROTOCOL_SEED, progress=False)
    torch.zeros(1, device=device).sum().item()  # context start-up is not training time
    n_items = int(dataset.ratings["item_id"].nunique())
    runs = (
        (
            "RBM (ranking + rating RBMs)",
            lambda: train_rbm_checkpoint(dataset, RBMConfig(), options),
        ),
        (
            "Mult-DAE (ranking + item embedding)",
            lambda: train_ranking(
                dataset.ratings, mult_dae_config(n_items), replace(options, epochs=RANKING_EPOCHS)
            ),
        ),
    )
    rows = []
    for name, train_fn in runs:
        started = time.perf_counter()
        checkpoint = train_fn()
        wall = time.perf_counter() - started
        rows.append(
            {
                "device": device,
                "model": name,
                "checkpoint wall s": wall,
                "train_s (model only)": checkpoint.metrics.get("train_seconds"),
                "score all users s": _score_all_users(checkpoint, device, train),
                **{m: checkpoint.metrics.get(m, "") for m in METRICS},
            }
        )
    return rows


def main() -> None:
    devices = ["cuda", "cpu"] if torch.cuda.is_available() else ["cpu"]
    dataset = load_dataset("ml-100k", data_dir=TEST_DATA_DIR, online=False)
    train = protocol_split(dataset.ratings, seed=PROTOCOL_SEED).train
    rows = [row for device in devices for row in device_rows(device, dataset, train)]
    body = (
        "Each model trained once per device in this invocation (seed 42, the chosen "
        "configurations); `checkpoint wall s` covers everything the CLI's train command does "
        "(Mult-DAE: the ranking model, then a second Mult-DAE and the item DAE on every rating "
        "for the served embedding); `train_s` is the model's own training loop. Test figures: "
        "the test fold of PROTOCOL.md.\n\n" + markdown_table(rows)
    )
    write_result(
        f"devices-{devices[0]}",
        {"rows": rows},
        body,
        device=",".join(devices),
        seed=PROTOCOL_SEED,
        title="Training and scoring per device",
    )


if __name__ == "__main__":
    main()
