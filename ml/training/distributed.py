"""Data-parallel training with ``torch.distributed``: one process per CPU core set or GPU.

Launch: ``torchrun --nproc-per-node N -m app.cli.main train rbm|autoencoder ...`` (or ``deeprec
train rbm|autoencoder --nproc N``, which starts torchrun itself). torchrun sets RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; ``init_from_env`` joins the group with gloo
on the CPU and NCCL on CUDA. Each rank trains on its share of the users (``shard``) with the
same initial parameters; the RBM's CD statistics are not autograd gradients, so
DistributedDataParallel's hooks never see them: ``all_reduce_mean`` averages them over every
rank's users before each update, so all ranks apply the same update and hold the same
parameters. Mult-DAE is an autograd model: it trains in DistributedDataParallel
(``data_parallel``), each rank on its share of every global mini-batch (``batch_share``), and
its validation score is all-reduced so every rank stops at the same epoch
(``ml.training.autoencoder``). Rank 0 writes the checkpoint.

Without torchrun's variables (or with WORLD_SIZE=1) everything here is a no-op and training is
the single-process code path, unchanged.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

log = logging.getLogger(__name__)

COLLECTIVE_TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class World:
    """This process's place in the process group: ``rank`` of ``size`` (size 1: alone)."""

    rank: int = 0
    size: int = 1

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, indices: np.ndarray) -> np.ndarray:
        """This rank's share of ``indices``: every size-th one from its rank (sizes differ by
        at most one between ranks)."""
        return indices[self.rank :: self.size] if self.distributed else indices

    def local_batch_size(self, batch_size: int) -> int:
        """Users per rank and update, so one update still averages ``batch_size`` users."""
        return max(1, -(-batch_size // self.size))

    def max_over_ranks(self, value: int) -> int:
        """The largest ``value`` of any rank (every rank must run the same number of updates)."""
        if not self.distributed:
            return value
        t = torch.tensor([value], dtype=torch.int64, device=_collective_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t.item())

    def all_reduce_mean(self, values: dict[str, Tensor], weight: float) -> dict[str, Tensor]:
        """The mean of every rank's ``values`` weighted by its ``weight`` (its users in the
        update), in one collective: the statistics of the update's whole global batch. A rank
        with weight 0 (no users left this epoch) contributes nothing. Alone: ``values``."""
        if not self.distributed:
            return values
        names = sorted(values)  # the same order on every rank
        flat = torch.cat([values[name].reshape(-1) * weight for name in names])
        flat = torch.cat([flat, flat.new_tensor([weight])])
        dist.all_reduce(flat)
        total = float(flat[-1])
        out, offset = {}, 0
        for name in names:
            n = values[name].numel()
            out[name] = (flat[offset : offset + n] / max(total, 1e-12)).view_as(values[name])
            offset += n
        return out

    def batch_share(self, n: int) -> np.ndarray:
        """Positions of this rank's rows in a global batch of ``n`` (every size-th from its
        rank): Mult-DAE's ranks split each global mini-batch, so an update averages the same
        users as one process would."""
        return np.arange(n)[self.rank :: self.size] if self.distributed else np.arange(n)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def data_parallel(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` in DistributedDataParallel (rank 0's parameters broadcast to every rank, the
    gradients averaged over ranks during backward); ``module`` itself when alone."""
    if not world().distributed:
        return module
    if device.type != "cuda":
        return DistributedDataParallel(module)
    index = device.index if device.index is not None else torch.cuda.current_device()
    return DistributedDataParallel(module, device_ids=[index])


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def world() -> World:
    """The current process group, or a world of one when none is initialised."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_from_env(device: torch.device) -> World:
    """Join the process group torchrun describes (gloo on the CPU, NCCL on CUDA), once.

    A world of one when this process was not launched by torchrun."""
    if not launched_by_torchrun() or not dist.is_available():
        return World()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        # Ranks other than 0 wait at their next collective while rank 0 evaluates.
        dist.init_process_group(backend=backend, timeout=COLLECTIVE_TIMEOUT)
        log.info("rank %d of %d joined (%s)", dist.get_rank(), dist.get_world_size(), backend)
    return world()


def relaunch_with_torchrun(nproc: int, argv: list[str]) -> int:
    """Run this command line again under torchrun with ``nproc`` processes on this machine
    (``--nproc`` removed from ``argv``, the arguments after the program name); the exit code."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "app.cli.main",
        *without_option(argv, "--nproc"),
    ]
    log.info("starting %d processes: %s", nproc, " ".join(command))
    return subprocess.run(command, check=False).returncode


def without_option(argv: list[str], name: str) -> list[str]:
    """``argv`` without ``name VALUE`` or ``name=VALUE``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(name + "="):
            out.append(arg)
    return out


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
