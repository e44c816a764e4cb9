from __future__ import annotations

import pytest
import torch

from ml.device import resolve_device


def test_auto_picks_cuda_only_when_present() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(" CPU ").type == "cpu"


def test_bad_or_unavailable_devices_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.gpu
def test_cuda_device_runs_a_matmul() -> None:
    device = resolve_device("cuda")
    x = torch.ones(4, 4, device=device)
    assert (x @ x).sum().item() == 64.0
