"""Retrain parameters are checked before a job is accepted, exactly as the train command would."""

from __future__ import annotations

import dataclasses

import pytest

from app.core.params import ParamsError
from app.services.retrain import TRAIN_COMMANDS
from app.services.retrain_params import (
    BASE_CONFIGS,
    EASEParams,
    PopularityParams,
    check_retrain_params,
)
from ml.inference import LOADERS
from ml.training.baselines import EASETrainingConfig, PopularityTrainingConfig


def _fields(cls: type) -> list[tuple[str, object]]:
    return [(f.name, f.default) for f in dataclasses.fields(cls)]


def test_the_mirrored_configs_match_the_training_ones() -> None:
    assert _fields(EASEParams) == _fields(EASETrainingConfig)
    assert _fields(PopularityParams) == _fields(PopularityTrainingConfig)


def test_every_retrainable_model_type_has_a_config() -> None:
    assert set(BASE_CONFIGS) == set(TRAIN_COMMANDS) == set(LOADERS)


@pytest.mark.parametrize(
    ("model_type", "params"),
    [
        ("rbm", {"n_hidden": 20, "learning_rate": 0.05}),
        ("ease", {"l2": 300}),
        ("autoencoder", {"noise_level": 0.3}),
        ("gan", {"latent_dim": 16}),
        ("dbn", {"finetune_epochs": 3}),
        ("popularity", {}),
    ],
)
def test_good_params_pass(model_type: str, params: dict[str, object]) -> None:
    check_retrain_params(model_type, params)


@pytest.mark.parametrize(
    ("model_type", "params", "message"),
    [
        ("rbm", {"n_hiden": 20}, "unknown parameter(s) ['n_hiden']"),
        ("ease", {"l2": 300, "alpha": 1}, "unknown parameter(s) ['alpha']"),
        ("popularity", {"k": "ten"}, "parameter 'k' must be a number"),
        ("rbm", {"n_hidden": 2.5}, "parameter 'n_hidden' must be an integer"),
        ("rbm", {"n_hidden": float("inf")}, "parameter 'n_hidden' must be finite"),
        ("gan", {"conditional": "yes"}, "parameter 'conditional' must be true or false"),
    ],
)
def test_bad_params_name_the_key(model_type: str, params: dict[str, object], message: str) -> None:
    with pytest.raises(ParamsError) as refused:
        check_retrain_params(model_type, params)
    assert message in str(refused.value)
