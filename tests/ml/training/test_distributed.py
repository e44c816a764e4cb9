"""Data-parallel RBM training over two gloo processes matches one process.

Two real processes (torch.multiprocessing, a file store for the rendezvous) train the rating RBM
on the planted two-group data; each rank trains on its half of the users and the CD statistics
are all-reduced before every update.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ml.checkpoint import load_checkpoint
from ml.data.splits import protocol_split
from ml.evaluation.evaluate import top_k
from ml.models.rbm import RatedBatch, RatingRBM, RBMConfig, predict_rows
from ml.models.rbm_config import RBMTraining
from ml.training.base import TrainingOptions
from ml.training.distributed import World, without_option, world
from ml.training.rbm import fit_rbm
from ml.training.rbm_sparse import data_statistics
from tests.app.cli.runner import deeprec_in_process
from tests.conftest import planted_frame

CONFIG = RBMConfig(
    n_hidden=8,
    training=RBMTraining(learning_rate=0.1, batch_size=8, epochs=30, cd_k_step_epochs=10),
)
OPTIONS = TrainingOptions(device="cpu", seed=3, progress=False)
WORLD_SIZE = 2
STAT_USERS = 16  # users of the one update whose all-reduced statistics are compared


def _model(n_items: int) -> RatingRBM:
    return RatingRBM(replace(CONFIG, n_items=n_items), torch.Generator().manual_seed(0))


def _positive_statistics(model: RatingRBM, rows: sp.csr_matrix) -> dict[str, torch.Tensor]:
    batch = RatedBatch.from_rows(rows, CONFIG.n_ratings, torch.device("cpu"))
    h = torch.sigmoid(model.hidden_input_sparse(batch.items, batch.values, batch.offsets))
    return data_statistics(model, batch, h)


def _worker(rank: int, store: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD_SIZE)
    try:
        ranks = world()
        split = protocol_split(planted_frame())
        # One update's statistics: each rank's share of the users, all-reduced.
        users = ranks.shard(np.arange(STAT_USERS))
        model = _model(split.train.shape[1])
        stats = ranks.all_reduce_mean(
            _positive_statistics(model, split.train[users]), float(len(users))
        )
        torch.save(stats, Path(out_dir) / f"stats{rank}.pt")
        # A whole training run, each rank on its half of the users.
        trained, history = fit_rbm(split.train, CONFIG, OPTIONS, validation=split.test)
        torch.save(trained.state_dict(), Path(out_dir) / f"model{rank}.pt")
        (Path(out_dir) / f"history{rank}.json").write_text(json.dumps(history))
    finally:
        dist.destroy_process_group()


def _within_group(model: RatingRBM) -> float:
    split = protocol_split(planted_frame())
    ranked = top_k(predict_rows(model, split.train), 5, exclude=split.train)
    items = split.items.ids[ranked]
    users = split.users.ids
    return float(((items > 15).astype(int) == (users % 2)[:, None]).mean())


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=WORLD_SIZE)
    split = protocol_split(planted_frame())

    # The all-reduced statistics of the two halves are those of the whole batch, exactly.
    whole = _positive_statistics(_model(split.train.shape[1]), split.train[:STAT_USERS])
    for rank in range(WORLD_SIZE):
        reduced = torch.load(tmp_path / f"stats{rank}.pt", weights_only=True)
        assert reduced.keys() == whole.keys()
        for name, value in whole.items():
            torch.testing.assert_close(reduced[name], value, rtol=1e-5, atol=1e-6)

    # Every rank applied the same updates: identical parameters.
    states = [
        torch.load(tmp_path / f"model{rank}.pt", weights_only=True) for rank in range(WORLD_SIZE)
    ]
    for name, value in states[0].items():
        assert torch.equal(value, states[1][name]), name

    # The result matches a single-process run within tolerance.
    single, single_history = fit_rbm(split.train, CONFIG, OPTIONS, validation=split.test)
    parallel = _model(split.train.shape[1])
    parallel.load_state_dict(states[0])
    history = json.loads((tmp_path / "history0.json").read_text())
    assert len(history) == len(single_history) == CONFIG.training.epochs
    assert history[-1]["val_ndcg@10"] == pytest.approx(single_history[-1]["val_ndcg@10"], abs=0.1)
    assert history[-1]["train_rmse"] == pytest.approx(single_history[-1]["train_rmse"], abs=0.1)
    assert _within_group(parallel) >= 0.95
    assert _within_group(single) >= 0.95


def test_world_of_one_changes_nothing() -> None:
    alone = World()
    values = {"w": torch.arange(4.0)}
    assert alone.all_reduce_mean(values, 3.0) is values
    assert alone.shard(np.arange(5)).tolist() == [0, 1, 2, 3, 4]
    assert alone.local_batch_size(32) == 32
    assert World(rank=1, size=2).shard(np.arange(5)).tolist() == [1, 3]
    assert World(rank=1, size=2).local_batch_size(33) == 17


def test_nproc_is_removed_from_the_relaunched_command_line() -> None:
    argv = ["train", "rbm", "--nproc", "2", "--out", "x", "--nproc=3"]
    assert without_option(argv, "--nproc") == ["train", "rbm", "--out", "x"]


@pytest.mark.slow
def test_train_rbm_with_nproc_2_writes_one_checkpoint_from_rank_0(tmp_path: Path) -> None:
    ratings = tmp_path / "ratings.csv"
    planted_frame().to_csv(ratings, index=False)
    out = tmp_path / "rbm"
    result = deeprec_in_process(
        "train",
        "rbm",
        "--ratings",
        str(ratings),
        "--out",
        str(out),
        "--params-json",
        '{"n_hidden": 8, "item_rbm_hidden": 8, "item_rbm_epochs": 2}',
        "--epochs",
        "2",
        "--fit",
        "train",
        "--no-progress",
        "--nproc",
        "2",
    )
    assert result.returncode == 0, result.stderr
    checkpoint = load_checkpoint(out)
    assert checkpoint.extra["processes"] == 2
    assert 0 <= checkpoint.metrics["ndcg@10_all"] <= 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("rbm")] == ["rbm"]
