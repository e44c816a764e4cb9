"""DBN model: the unrolled autoencoder starts as the RBM stack; generation is seeded."""

from __future__ import annotations

import pytest
import torch

from ml.models.dbn import DBN, DBNConfig


def _dbn(**overrides: object) -> DBN:
    gen = torch.Generator().manual_seed(0)
    model = DBN(DBNConfig(layers=(16, 12, 4), **overrides), gen)  # type: ignore[arg-type]
    with torch.no_grad():  # give the RBMs non-trivial weights
        for rbm in model.rbms:
            rbm.weight.normal_(0, 0.5, generator=gen)
            rbm.visible_bias.normal_(0, 0.5, generator=gen)
            rbm.hidden_bias.normal_(0, 0.5, generator=gen)
    model.unroll()
    return model.eval()


def test_unrolled_autoencoder_equals_up_then_down_pass_before_finetuning() -> None:
    model = _dbn(linear_code=False)
    x = torch.rand(5, 16, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(model.reconstruct(x), model.down_pass(model.up_pass(x)))
    torch.testing.assert_close(model.codes(x), model.up_pass(x))


def test_generation_is_seeded_and_in_unit_range() -> None:
    model = _dbn()
    first = model.generate(6, torch.Generator().manual_seed(3), steps=20)
    again = model.generate(6, torch.Generator().manual_seed(3), steps=20)
    assert first.shape == (6, 16)
    assert torch.equal(first, again)
    assert float(first.min()) >= 0 and float(first.max()) <= 1


def test_config_coerces_layers_and_refuses_bad_ones() -> None:
    assert DBNConfig(layers=[64, 32]).layers == (64, 32)  # type: ignore[arg-type]
    for bad in ([64], [64, 0], "abc"):
        with pytest.raises(ValueError):
            DBNConfig(layers=bad)  # type: ignore[arg-type]
