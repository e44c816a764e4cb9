"""Run-time device choice: ``auto`` takes CUDA when present, else the CPU."""

from __future__ import annotations

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """Turn a setting (``auto``, ``cpu``, ``cuda``, ``cuda:1``) into a usable device.

    Raises ``ValueError`` when CUDA is asked for explicitly but is not available, so a
    misconfigured deployment fails loudly instead of silently running on the CPU.
    """
    name = name.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available on this machine")
    return device
