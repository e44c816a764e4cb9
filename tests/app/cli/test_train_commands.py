"""`deeprec train` has one command for each family ml.registry declares, and no other."""

from __future__ import annotations

import dataclasses

import pytest
import typer

from app.cli.main import cli  # noqa: F401 - registers every family's train command
from app.cli.train import app as train_app
from app.cli.train import check_commands_match_specs, command_names
from ml.registry import SPECS


def test_the_cli_has_exactly_the_declared_train_commands() -> None:
    assert command_names(train_app) == {spec.command for spec in SPECS}
    check_commands_match_specs()


def test_a_family_without_its_command_is_refused() -> None:
    extra = dataclasses.replace(SPECS[0], name="new-family", train_words=("new-family",))
    with pytest.raises(RuntimeError, match=r"declared without a command: \['new-family'\]"):
        check_commands_match_specs(train_app, [*SPECS, extra])


def test_a_command_without_a_family_is_refused() -> None:
    group = typer.Typer()
    for name in sorted({spec.command for spec in SPECS} | {"orphan"}):
        group.command(name)(lambda: None)
    with pytest.raises(RuntimeError, match=r"commands without a spec: \['orphan'\]"):
        check_commands_match_specs(group, SPECS)
