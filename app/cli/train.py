"""``deeprec train MODEL``: one command per model family, each in its own module."""

from __future__ import annotations

import typer

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
