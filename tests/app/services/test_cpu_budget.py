"""CPU budget: torch threads per serving worker, a thread cap and lower priority for training."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

import torch

from app.core.config import Settings
from app.services.cpu_budget import (
    apply_switch_interval,
    apply_torch_threads,
    deprioritise,
    freeze_start_up_objects,
    retrain_threads,
    training_env,
)


def test_torch_threads_are_set_and_restored() -> None:
    before = torch.get_num_threads()
    restore = apply_torch_threads(1)
    assert torch.get_num_threads() == 1
    restore()
    assert torch.get_num_threads() == before


def test_start_up_objects_leave_the_collectors_reach_until_undone() -> None:
    kept = [[i] for i in range(100)]  # alive at "start-up"
    undo = freeze_start_up_objects()
    try:
        assert gc.get_freeze_count() >= len(kept)
    finally:
        undo()
    assert gc.get_freeze_count() == 0


def test_training_env_caps_every_thread_pool() -> None:
    env = training_env(Settings(retrain_threads=3))
    assert {env[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "DEEPREC_TORCH_THREADS")} == {
        "3"
    }
    assert retrain_threads(Settings()) == max(1, (os.cpu_count() or 2) // 2)


def test_a_training_process_runs_nicer() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        before = os.getpriority(os.PRIO_PROCESS, child.pid)
        deprioritise(child.pid, Settings(retrain_nice=5))
        assert os.getpriority(os.PRIO_PROCESS, child.pid) == min(19, before + 5)
    finally:
        child.kill()
        child.wait()
    deprioritise(child.pid, Settings(retrain_nice=5))  # gone: a warning, never an error


def test_the_switch_interval_is_set_and_restored() -> None:
    before = sys.getswitchinterval()
    restore = apply_switch_interval(0.5)
    assert sys.getswitchinterval() == 0.0005
    restore()
    assert sys.getswitchinterval() == before
