"""Run ``deeprec`` the way a user does, in this process (fast) or as a real subprocess."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys

from app.cli.common import run_cli
from app.cli.main import cli


def deeprec_in_process(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``deeprec ARGS`` through the real entry point's error handling, in this process;
    return what a subprocess run would (exit code, stdout, stderr)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    argv, sys.argv = sys.argv, ["deeprec", *args]
    code: int = 0
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            run_cli(cli)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
    return subprocess.CompletedProcess(args, code, stdout.getvalue(), stderr.getvalue())
