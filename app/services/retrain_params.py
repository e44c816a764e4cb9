"""Retrain parameters checked BEFORE a job is accepted: the admin endpoint answers 422 naming a
bad key or value, instead of 202 and a job that fails in its subprocess.

The check is the one ``deeprec train --params-json`` applies
(:func:`app.core.params.override_config`) on the config dataclass that command starts from
(``ModelSpec.config`` in ``ml.registry``, built without importing training code).
"""

from __future__ import annotations

from typing import Any

from app.core.params import ParamsError, override_config
from ml.registry import BY_NAME, get_spec


def check_retrain_params(model_type: str, params: dict[str, Any]) -> None:
    """:class:`ParamsError` (with the bad key named) if ``deeprec train`` would refuse
    ``params`` for ``model_type``. Data-dependent checks (e.g. a DBN's first layer against the
    image size) still happen in the job."""
    if model_type not in BY_NAME or not params:
        return
    try:
        override_config(get_spec(model_type).config(), params)
    except ParamsError:
        raise
    except (TypeError, ValueError) as exc:
        raise ParamsError(f"invalid parameters: {exc}") from exc
