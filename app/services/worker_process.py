"""Train subprocesses that die with the process that started them.

A worker runs in its own process group (so stopping it stops anything it started, and a
terminal's Ctrl-C reaches only the parent, which then stops it on purpose), and on Linux it asks
the kernel for a parent-death signal (``prctl(PR_SET_PDEATHSIG)``), so even a ``kill -9`` of the
server or of ``deeprec bootstrap`` does not leave it training on as an orphan of PID 1.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _parent_death_hook() -> Callable[[], None] | None:
    """The ``preexec_fn`` that sets the parent-death signal, or None off Linux.

    Everything it needs is looked up here, in the parent: after ``fork`` the child only makes
    two system calls (no imports, no allocation-heavy Python), which is what keeps a
    ``preexec_fn`` safe in a threaded server.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    sigterm = int(signal.SIGTERM)

    def set_parent_death_signal() -> None:
        prctl(PR_SET_PDEATHSIG, sigterm, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return set_parent_death_signal


def spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """Start ``command`` in a new process group, with the parent-death signal on Linux."""
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        process_group=0,
        preexec_fn=_parent_death_hook(),
    )


def stop(process: subprocess.Popen[str], grace_s: float = 5.0) -> None:
    """SIGTERM the worker's process group, SIGKILL it after ``grace_s``; reap the worker."""
    if process.poll() is not None:
        return
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        process.wait()


def _signal_group(process: subprocess.Popen[str], sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)  # the group's id is the worker's PID (process_group=0)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
