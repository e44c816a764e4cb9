"""Mult-DAE in DistributedDataParallel over two gloo processes matches one process.

Two real processes (torch.multiprocessing, a file store for the rendezvous) run ``fit_mult_dae``
with early stopping on the planted two-group data. Every rank shuffles the same global order and
takes its share of each global mini-batch; DDP averages the gradients, so each update is the
whole batch's (one process's, up to float summation order): parameters, validation figures and
the stopping epoch must agree with a single-process run. The batch size (13 over 40 users) gives
unequal shares (7 and 6) and a last batch of one row, where rank 1 has none: the share
weighting and the empty share are both exercised.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ml.checkpoint import load_checkpoint
from ml.data.splits import protocol_split
from ml.models.autoencoder import AutoencoderConfig, mult_dae_config
from ml.training.autoencoder import (
    VALIDATION_METRIC,
    fit_mult_dae,
)
from ml.training.base import TrainingOptions
from ml.training.distributed import World, world
from tests.app.cli.runner import deeprec_in_process
from tests.conftest import planted_frame

WORLD_SIZE = 2
OPTIONS = TrainingOptions(device="cpu", seed=3, epochs=60, progress=False)
PATIENCE = 2  # validations (every 5 epochs) without improvement before stopping
# Same global batches and averaged gradients: only the order of float sums differs (and Adam
# carries it along), so parameters agree to float32 noise, not bit for bit.
PARAMETER_ATOL = 1e-5  # measured: 2e-7 after 40 epochs
SCORE_ATOL = 1e-6


def _config(n_items: int) -> AutoencoderConfig:
    return mult_dae_config(n_items, hidden_layers=(16,), batch_size=13, learning_rate=1e-2)


def _worker(rank: int, store: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD_SIZE)
    try:
        split = protocol_split(planted_frame())
        fitted = fit_mult_dae(
            split.train, _config(split.train.shape[1]), OPTIONS, patience=PATIENCE
        )
        torch.save(fitted.model.state_dict(), Path(out_dir) / f"model{rank}.pt")
        history = fitted.history
        record = {
            "epochs_run": history.epochs_run,
            "best_epoch": history.best_epoch,
            "stopped_early": history.stopped_early,
            "scores": [r.get(VALIDATION_METRIC) for r in history.records],
        }
        (Path(out_dir) / f"history{rank}.json").write_text(json.dumps(record))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=WORLD_SIZE)
    split = protocol_split(planted_frame())
    single = fit_mult_dae(split.train, _config(split.train.shape[1]), OPTIONS, patience=PATIENCE)

    # Both ranks stopped at the same epoch as one process, on the same validation figures.
    histories = [
        json.loads((tmp_path / f"history{rank}.json").read_text()) for rank in range(WORLD_SIZE)
    ]
    expected_scores = [r.get(VALIDATION_METRIC) for r in single.history.records]
    for history in histories:
        assert history["epochs_run"] == single.history.epochs_run
        assert history["best_epoch"] == single.history.best_epoch
        assert history["stopped_early"] == single.history.stopped_early
        for got, want in zip(history["scores"], expected_scores, strict=True):
            assert (got is None) == (want is None)
            if want is not None:
                assert got == pytest.approx(want, abs=SCORE_ATOL)
    assert single.history.stopped_early  # the test exercises early stopping across ranks

    # DDP kept the ranks identical, and the result is the single process's up to float sums.
    states = [
        torch.load(tmp_path / f"model{rank}.pt", weights_only=True) for rank in range(WORLD_SIZE)
    ]
    for name, value in single.model.state_dict().items():
        assert torch.equal(states[0][name], states[1][name]), name
        torch.testing.assert_close(states[0][name], value, rtol=0, atol=PARAMETER_ATOL)


def test_batch_share_splits_a_global_batch() -> None:
    assert World().batch_share(5).tolist() == [0, 1, 2, 3, 4]
    assert World(rank=0, size=2).batch_share(5).tolist() == [0, 2, 4]
    assert World(rank=1, size=2).batch_share(5).tolist() == [1, 3]
    assert World(rank=1, size=2).batch_share(1).tolist() == []
    assert not world().distributed  # outside torchrun: the single-process trainer


@pytest.mark.slow
def test_train_autoencoder_with_nproc_2_writes_one_checkpoint_from_rank_0(tmp_path: Path) -> None:
    ratings = tmp_path / "ratings.csv"
    planted_frame().to_csv(ratings, index=False)
    out = tmp_path / "dae"
    result = deeprec_in_process(
        "train",
        "autoencoder",
        "--ratings",
        str(ratings),
        "--out",
        str(out),
        "--params-json",
        '{"hidden_layers": [8]}',
        "--epochs",
        "2",
        "--fit",
        "train",
        "--device",
        "cpu",
        "--no-progress",
        "--nproc",
        "2",
    )
    assert result.returncode == 0, result.stderr
    checkpoint = load_checkpoint(out)
    assert checkpoint.extra["processes"] == 2
    assert 0 <= checkpoint.metrics["ndcg@10_all"] <= 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("dae")] == ["dae"]
