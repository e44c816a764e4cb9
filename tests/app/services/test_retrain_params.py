"""Retrain parameters are checked before a job is accepted, exactly as the train command would."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from app.core.params import ParamsError
from app.services.retrain_params import check_retrain_params
from ml.registry import SPECS


def test_every_family_has_a_params_config() -> None:
    for spec in SPECS:
        assert dataclasses.is_dataclass(spec.config()), spec.name


def test_checking_every_family_params_imports_no_training_code() -> None:
    """The web app never imports training code: checking each family's parameters (a fresh
    interpreter, as the service runs) leaves ml.training unimported."""
    script = (
        "import sys\n"
        "from app.services.retrain_params import check_retrain_params\n"
        "from ml.registry import SPECS\n"
        "for spec in SPECS:\n"
        "    try:\n"
        "        check_retrain_params(spec.name, {'no_such_parameter': 1})\n"
        "    except Exception:\n"
        "        pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('ml.training')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


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
