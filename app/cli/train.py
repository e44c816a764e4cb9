"""``deeprec train MODEL``: one command per model family, each in its own module."""

from __future__ import annotations

from collections.abc import Iterable

import typer

from ml.registry import SPECS, ModelSpec

app = typer.Typer(help="Train a model and write a checkpoint.", no_args_is_help=True)


@app.callback()
def train_group(
    job_id: int | None = typer.Option(
        None,
        "--job-id",
        envvar="DEEPREC_JOB_ID",
        help="Record each epoch's progress in this training job's row (set by retrain jobs).",
    ),
) -> None:
    """Train a model and write a checkpoint."""
    if job_id is None:
        return
    from app.cli.common import settings
    from app.cli.progress import JobProgress
    from ml.training.base import install_epoch_hook

    install_epoch_hook(JobProgress(settings().resolved_database_url, job_id))


def command_names(group: typer.Typer = app) -> set[str]:
    """The commands registered on ``group`` so far."""
    return {
        c.name or (c.callback.__name__ if c.callback else "") for c in group.registered_commands
    }


def check_commands_match_specs(
    group: typer.Typer = app, specs: Iterable[ModelSpec] = SPECS
) -> None:
    """Refuse to start a CLI whose ``deeprec train`` commands and ``ml.registry`` disagree: a
    family declared without its command (the retrain job would run a command that does not
    exist), or a command that makes no declared family (its checkpoints would never load)."""
    registered, declared = command_names(group), {spec.command for spec in specs}
    if registered != declared:
        raise RuntimeError(
            "`deeprec train` commands and ml.registry disagree: "
            f"declared without a command: {sorted(declared - registered)}; "
            f"commands without a spec: {sorted(registered - declared)}"
        )
