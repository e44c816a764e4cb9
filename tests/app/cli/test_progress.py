"""A train command run for a job writes each epoch's progress (and a heartbeat) into the row."""

from __future__ import annotations

from sqlalchemy import Engine

from app.cli.progress import JobProgress, headline
from app.crud import get_training_job
from app.db.session import create_session_factory
from app.models import JobStatus
from app.services.retrain import describe_progress
from ml.training.base import EpochReport, TrainingOptions, install_epoch_hook, log_epoch
from tests.factories import make_training_job


def test_headline_prefers_a_validation_figure_then_a_loss() -> None:
    assert headline({"epoch": 3.0, "loss": 0.5, "val_ndcg@10": 0.4}) == ("val_ndcg@10", 0.4)
    assert headline({"epoch": 3.0, "d_loss": 1.2, "g_loss": 0.7}) == ("d_loss", 1.2)
    assert headline({"epoch": 3.0}) == (None, None)


def test_epochs_reach_the_job_row_through_the_installed_hook(sqlite_engine: Engine) -> None:
    factory = create_session_factory(sqlite_engine)
    with factory() as session:
        job_id = make_training_job(session, status=JobStatus.running).id
    hook = JobProgress(str(sqlite_engine.url), job_id, min_interval_s=0.0)
    install_epoch_hook(hook)
    try:
        options = TrainingOptions(device="cpu", epochs=4)  # made after the install: gets the hook
    finally:
        install_epoch_hook(None)
    assert TrainingOptions().on_epoch is None
    for epoch in (1, 2):
        log_epoch("gan", epoch, {"d_loss": 1.0 / epoch, "g_loss": 0.5}, epochs=4, options=options)
    hook.engine.dispose()
    with factory() as session:
        job = get_training_job(session=session, job_id=job_id)
        assert job is not None and job.heartbeat_at is not None
        progress = job.progress or {}
    assert progress["stage"] == "gan" and (progress["epoch"], progress["epochs"]) == (2, 4)
    assert progress["figure"] == "d_loss" and progress["value"] == 0.5
    assert progress["elapsed_s"] >= 0 and progress["eta_s"] >= 0
    line = describe_progress(progress)
    assert line.startswith("gan epoch 2/4 d_loss=0.5000") and "s left" in line


def test_the_first_epoch_already_has_an_estimate(sqlite_engine: Engine) -> None:
    hook = JobProgress(str(sqlite_engine.url), job_id=1)
    hook.started -= 10.0  # the command has run 10 s (loading) before the first epoch ended
    hook._last_report = hook.started
    first = hook.progress(EpochReport("rbm", 1, 20, {"loss": 1.0}))
    hook.engine.dispose()
    assert first["eta_s"] >= 19 * 9.0  # 19 epochs left at about 10 s each


def test_a_report_says_which_stage_and_how_far() -> None:
    seen: list[EpochReport] = []
    options = TrainingOptions(device="cpu", on_epoch=seen.append)
    log_epoch("dbn-finetune", 7, {"mse": 0.01}, epochs=10, options=options)
    assert seen == [EpochReport("dbn-finetune", 7, 10, {"mse": 0.01})]
