"""Resource exhaustion in a ``deeprec`` command: one line on stderr, a non-zero exit, no
traceback (and nothing half-written)."""

from __future__ import annotations

from pathlib import Path

import typer

from app.cli.common import run_cli
from tests.app.cli.runner import deeprec_in_process
from tests.conftest import planted_frame


def test_a_model_too_large_for_memory_is_one_line(tmp_path: Path) -> None:
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
        '{"n_hidden": 1000000000}',  # a (I, 5, 1e9) weight tensor: terabytes
        "--epochs",
        "1",
        "--no-progress",
    )
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: out of memory (")
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_memory_error_from_any_command_is_one_line(capsys: object) -> None:
    app = typer.Typer()

    @app.command()
    def greedy() -> None:
        raise MemoryError("cannot allocate 10 TB")

    import sys

    argv, sys.argv = sys.argv, ["deeprec"]
    try:
        run_cli(app)
    except SystemExit as exc:
        assert exc.code == 3
    else:
        raise AssertionError("run_cli did not exit")
    finally:
        sys.argv = argv
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert err == (
        "error: out of memory (cannot allocate 10 TB); use a smaller model or batch "
        "(--params-json), fewer ratings, or a machine with more memory\n"
    )
