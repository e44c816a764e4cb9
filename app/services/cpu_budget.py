"""CPU budget: serving workers and training processes must not fight for the cores.

Each serving worker caps torch's intra-op threads (``DEEPREC_TORCH_THREADS``, default 1: requests
are served in parallel by workers, not by threads inside one request, and oversubscribed BLAS
threads only slow everything down). A retrain subprocess runs with a thread cap
(``DEEPREC_RETRAIN_THREADS``, default half the cores) and a raised niceness
(``DEEPREC_RETRAIN_NICE``), so the request path wins the CPU while a model trains. Within a
worker, the event loop and the inference thread share the GIL: a short switch interval
(``DEEPREC_GIL_SWITCH_MS``) keeps a miss from waiting 5 ms for the GIL at each release.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import Callable

import torch

from app.core.config import Settings

log = logging.getLogger(__name__)


def apply_torch_threads(threads: int) -> Callable[[], None]:
    """Set torch's intra-op (and, once per process, inter-op) threads; returns a function that
    restores the previous intra-op count (tests build many apps in one process)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        # Allowed once, before any inter-op parallel work: a second app in the same process
        # (tests) keeps what the first one set.
        torch.set_num_interop_threads(threads)
    except RuntimeError:
        log.debug("torch inter-op threads already set (%d)", torch.get_num_interop_threads())
    return lambda: torch.set_num_threads(previous)


def apply_switch_interval(milliseconds: float) -> Callable[[], None]:
    """Set how long a thread may hold the GIL while another waits (``DEEPREC_GIL_SWITCH_MS``);
    returns a function that restores the previous interval."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(milliseconds / 1000)
    return lambda: sys.setswitchinterval(previous)


def freeze_start_up_objects() -> Callable[[], None]:
    """Collect once, then move every object alive now (modules, the app, the loaded models,
    SQLAlchemy's metadata: hundreds of thousands) out of the garbage collector's reach.

    Why: a full (oldest-generation) collection walks every tracked object. In a serving worker
    that was hundreds of ms with the event loop stopped, a few times a minute under load (the
    answer cache's new entries keep promoting objects): most of the p99 of requests that
    otherwise take a millisecond. Frozen objects are never walked (and never freed while frozen:
    they live as long as the process anyway). Returns the undo, for tests that start many apps
    in one process.
    """
    gc.collect()
    gc.freeze()
    return gc.unfreeze


def retrain_threads(settings: Settings) -> int:
    return settings.retrain_threads or max(1, (os.cpu_count() or 2) // 2)


def training_env(settings: Settings) -> dict[str, str]:
    """Environment a retrain subprocess gets on top of the service's: its thread cap."""
    n = str(retrain_threads(settings))
    return {
        "OMP_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "DEEPREC_TORCH_THREADS": n,
    }


def deprioritise(pid: int, settings: Settings) -> None:
    """Raise a just-started training process's niceness (threads it starts later inherit it).

    Done from the parent after the start rather than in a ``preexec_fn``, which is unsafe in a
    process with threads (the service has several).
    """
    if settings.retrain_nice <= 0:
        return
    try:
        current = os.getpriority(os.PRIO_PROCESS, pid)
        os.setpriority(os.PRIO_PROCESS, pid, min(19, current + settings.retrain_nice))
    except OSError as exc:  # it already exited, or the platform refuses: train anyway
        log.warning("cannot lower the priority of training process %d: %s", pid, exc)
