"""Retrain parameters checked BEFORE a job is accepted: the admin endpoint answers 422 naming a
bad key or value, instead of 202 and a job that fails in its subprocess.

The check is the one ``deeprec train --params-json`` applies
(:func:`app.core.params.override_config`) on the config dataclass that command starts from.
Two of those configs live in ``ml.training``, which the web app must not import (import-linter);
their fields are mirrored here, and tests/app/services/test_retrain_params.py keeps the mirror
equal to the real dataclasses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from app.core.params import ParamsError, override_config


@dataclasses.dataclass(frozen=True)
class EASEParams:
    """Mirror of ``ml.training.baselines.EASETrainingConfig``'s fields (the web app may not
    import training code)."""

    l2: float | None = None
    k: int = 10
    max_tuning_fits: int = 4
    memory_budget_gib: float = 8.0


@dataclasses.dataclass(frozen=True)
class PopularityParams:
    """Mirror of ``ml.training.baselines.PopularityTrainingConfig``'s fields."""

    k: int = 10


def _rbm() -> Any:
    from ml.models.rbm import RBMConfig

    return RBMConfig()


def _autoencoder_ratings() -> Any:
    from ml.models.autoencoder import mult_dae_config

    return mult_dae_config(1)


def _autoencoder_images() -> Any:
    from ml.models.autoencoder import image_config

    return image_config(64)


def _autorec() -> Any:
    from ml.models.autorec import AutoRecConfig

    return AutoRecConfig()


def _rbm_images() -> Any:
    from ml.models.rbm import BernoulliRBMConfig

    return BernoulliRBMConfig(n_visible=64, n_hidden=256)


def _dbn() -> Any:
    from ml.models.dbn import DBNConfig

    return DBNConfig(layers=(64, 256, 64, 16))


def _gan() -> Any:
    from ml.models.gan import GANConfig

    return GANConfig(side=8)


def _content() -> Any:
    from ml.models.content import ContentConfig

    return ContentConfig()


# model_type -> the config its `deeprec train` command applies --params-json to.
BASE_CONFIGS: dict[str, Callable[[], Any]] = {
    "rbm": _rbm,
    "autoencoder": _autoencoder_ratings,
    "autorec": _autorec,
    "ease": EASEParams,
    "popularity": PopularityParams,
    "autoencoder-images": _autoencoder_images,
    "rbm-images": _rbm_images,
    "dbn": _dbn,
    "gan": _gan,
    "content": _content,
    "hybrid": _content,
}


def check_retrain_params(model_type: str, params: dict[str, Any]) -> None:
    """:class:`ParamsError` (with the bad key named) if ``deeprec train`` would refuse
    ``params`` for ``model_type``. Data-dependent checks (e.g. a DBN's first layer against the
    image size) still happen in the job."""
    factory = BASE_CONFIGS.get(model_type)
    if factory is None or not params:
        return
    try:
        override_config(factory(), params)
    except ParamsError:
        raise
    except (TypeError, ValueError) as exc:
        raise ParamsError(f"invalid parameters: {exc}") from exc
