"""The autoencoder's variants each do what their name says (small data, fixed seeds)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from ml.data.digits import load_images
from ml.inference.images import corrupt
from ml.models.autoencoder import (
    Autoencoder,
    AutoencoderConfig,
    apply_variants,
    item_dae_config,
    jacobian_frobenius_sq,
    mult_dae_config,
)
from ml.training.autoencoder import fit_autoencoder
from ml.training.base import TrainingOptions

BASE = AutoencoderConfig(
    n_inputs=64, hidden_layers=(16,), learning_rate=5e-3, batch_size=64, loss="bce"
)
OPTIONS = TrainingOptions(device="cpu", seed=0, epochs=25, progress=False)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_images("digits")
    return data.train_images[:600], data.test_images[:200]


def _train(config: AutoencoderConfig, images: np.ndarray, epochs: int = 25) -> Autoencoder:
    return fit_autoencoder(images, config, replace(OPTIONS, epochs=epochs)).model


def test_config_refuses_bad_values() -> None:
    for bad in (
        {"hidden_layers": ()},
        {"activation": "gelu"},
        {"noise": "salt"},
        {"noise": "mask", "noise_level": 1.0},
        {"sparsity": "kl", "activation": "tanh"},
        {"loss": "bce", "output": "identity"},
        {"learning_rate": 0.0},
    ):
        with pytest.raises(ValueError):
            replace(BASE, **bad)


def test_deep_layers_mirror_and_shapes() -> None:
    config = apply_variants(replace(BASE, hidden_layers=(8,)), "deep")
    assert config.hidden_layers == (32, 8)
    model = Autoencoder(config, generator=torch.Generator().manual_seed(0))
    x = torch.rand(5, 64)
    assert model.codes(x).shape == (5, 8)
    out = model.reconstruct(x)
    assert out.shape == (5, 64) and out.min() >= 0 and out.max() <= 1
    widths = [m.out_features for m in model.decoder if isinstance(m, torch.nn.Linear)]
    assert widths == [32, 64]
    with pytest.raises(ValueError):
        apply_variants(config, "deep,unknown")


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_analytic_jacobian_matches_autograd(activation: str) -> None:
    config = replace(BASE, activation=activation, loss="mse")
    model = Autoencoder(config, generator=torch.Generator().manual_seed(1))
    x = torch.rand(4, 64)
    analytic = jacobian_frobenius_sq(model, x)
    exact = torch.stack(
        [torch.autograd.functional.jacobian(model.encode, row[None]).pow(2).sum() for row in x]
    )
    torch.testing.assert_close(analytic, exact, rtol=1e-4, atol=1e-6)
    deep = Autoencoder(
        replace(config, hidden_layers=(12, 6)), generator=torch.Generator().manual_seed(1)
    )
    by_loop = jacobian_frobenius_sq(deep, x)
    exact_deep = torch.stack(
        [torch.autograd.functional.jacobian(deep.encode, row[None]).pow(2).sum() for row in x]
    )
    torch.testing.assert_close(by_loop, exact_deep, rtol=1e-4, atol=1e-6)


def test_sparse_lowers_mean_code_activation(digits) -> None:
    train, test = digits
    plain = _train(BASE, train)
    sparse = _train(apply_variants(BASE, "sparse"), train)
    x = torch.from_numpy(test)
    plain_mean, sparse_mean = float(plain.codes(x).mean()), float(sparse.codes(x).mean())
    assert sparse_mean < 0.6 * plain_mean
    l1 = _train(replace(BASE, sparsity="l1", sparsity_weight=0.05), train)
    assert float(l1.codes(x).abs().mean()) < plain_mean


def test_contractive_lowers_encoder_jacobian_norm(digits) -> None:
    train, test = digits
    plain = _train(BASE, train)
    contractive = _train(replace(BASE, contractive=0.5), train)
    x = torch.from_numpy(test)
    with torch.no_grad():
        plain_norm = float(jacobian_frobenius_sq(plain, x).mean())
        contractive_norm = float(jacobian_frobenius_sq(contractive, x).mean())
    assert contractive_norm < 0.5 * plain_norm


def test_denoising_reconstructs_corrupted_inputs_better(digits) -> None:
    train, test = digits
    wide = replace(
        BASE, hidden_layers=(128,)
    )  # overcomplete: a plain model can learn to copy holes
    plain = _train(wide, train, epochs=60)
    denoising = _train(apply_variants(wide, "denoising"), train, epochs=60)
    noisy = torch.from_numpy(corrupt(test, 0.3, "mask", seed=3))
    clean = torch.from_numpy(test)
    plain_mse = float(((plain.reconstruct(noisy) - clean) ** 2).mean())
    denoising_mse = float(((denoising.reconstruct(noisy) - clean) ** 2).mean())
    assert denoising_mse < 0.8 * plain_mse
    assert denoising_mse < 0.5 * float(((noisy - clean) ** 2).mean())


def test_corruptions_apply_only_in_training() -> None:
    model = Autoencoder(replace(BASE, noise="gaussian", noise_level=0.5))
    x = torch.full((3, 64), 0.5)
    gen = torch.Generator().manual_seed(0)
    assert not torch.equal(model.corrupt(x, gen), x)
    dropped = Autoencoder(replace(BASE, noise="dropout", noise_level=0.5)).corrupt(x, gen)
    assert set(torch.unique(dropped).tolist()) <= {0.0, 1.0}  # kept entries rescaled by 1/(1-p)
    model.eval()
    assert torch.equal(model.reconstruct(x), model.reconstruct(x))


def test_mult_dae_learns_planted_groups(planted_ratings) -> None:
    from ml.data.splits import protocol_split

    split = protocol_split(planted_ratings)
    config = mult_dae_config(split.train.shape[1], hidden_layers=(8,), batch_size=8)
    model = fit_autoencoder(split.train, config, replace(OPTIONS, epochs=60), name="planted").model
    rows = torch.from_numpy(split.train.toarray())
    scores = model.reconstruct(rows).numpy()  # (U, I)
    scores[split.train.toarray() != 0] = -np.inf
    top = scores.argmax(axis=1)
    item_group = (split.items.ids[top] > 15).astype(int)
    user_group = split.users.ids % 2
    assert (item_group == user_group).mean() == 1.0


def test_input_embeddings_are_the_first_layers_item_columns() -> None:
    model = Autoencoder(mult_dae_config(12, hidden_layers=(6, 3)), torch.Generator().manual_seed(0))
    first = model.encoder[0]
    assert isinstance(first, torch.nn.Linear)
    assert model.input_embeddings().shape == (12, 6)
    assert torch.equal(model.input_embeddings(), first.weight.T)
    assert model.item_embeddings().shape == (12, 6)  # the decoder's output rows


def test_item_dae_config_is_mult_dae_over_users_without_decay() -> None:
    config = item_dae_config(40, hidden_layers=(8,))
    assert config.n_inputs == 40 and config.hidden_layers == (8,)
    assert config.loss == "multinomial" and config.normalize_input
    assert not config.binarize_input and config.weight_decay == 0.0
