"""Serving a GAN checkpoint: round trip, seeded samples, discrimination, interpolation, PNG."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
import torch

from ml.checkpoint import Checkpoint, CheckpointError, save_checkpoint
from ml.inference import load_model
from ml.inference.gan import GANSampler, gan_tensors, grid_png
from ml.models.gan import GAN, GANConfig, latent_codes


def _save(tmp_path: Path, conditional: bool) -> tuple[Path, GAN]:
    torch.manual_seed(0)
    model = GAN(GANConfig(n_hidden=16, latent_dim=6, conditional=conditional)).eval()
    ckpt = Checkpoint("gan", dataclasses.asdict(model.config), gan_tensors(model))
    return save_checkpoint(ckpt, tmp_path / "gan"), model


@pytest.mark.parametrize("conditional", [False, True])
def test_checkpoint_round_trip_gives_the_same_samples(tmp_path: Path, conditional: bool) -> None:
    path, model = _save(tmp_path, conditional)
    sampler = load_model(path, "cpu")
    assert isinstance(sampler, GANSampler)
    assert sampler.side == 8 and sampler.conditional is conditional
    before = GANSampler(model, torch.device("cpu")).sample(12, seed=7)
    after = sampler.sample(12, seed=7)
    np.testing.assert_array_equal(before, after)
    assert after.shape == (12, 64) and after.dtype == np.float32
    assert not np.array_equal(after, sampler.sample(12, seed=8))


def test_self_conditioned_checkpoint_round_trip_draws_its_clusters(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = GAN(GANConfig(n_hidden=16, latent_dim=6, n_clusters=3)).eval()
    model.cluster_shares.copy_(torch.tensor([0.0, 1.0, 0.0]))  # every sample from cluster 1
    ckpt = Checkpoint("gan", dataclasses.asdict(model.config), gan_tensors(model))
    sampler = load_model(save_checkpoint(ckpt, tmp_path / "gan"), "cpu")
    assert isinstance(sampler, GANSampler) and not sampler.conditional
    assert sampler.model.draw_clusters(20, seed=4).eq(1).all()
    z = latent_codes(5, 6, seed=2)
    expected = model.sample(z, torch.ones(5, dtype=torch.long)).numpy()
    np.testing.assert_array_equal(sampler.sample(5, seed=2), expected)
    assert sampler.interpolate(1, 2, steps=4).shape == (4, 64)
    probabilities = sampler.discriminate(expected)
    assert probabilities.shape == (5,) and ((probabilities >= 0) & (probabilities <= 1)).all()
    with pytest.raises(ValueError, match="unconditional"):
        sampler.sample(2, seed=0, label=1)


def test_checkpoint_from_before_the_new_settings_still_loads(tmp_path: Path) -> None:
    """A manifest written before n_clusters existed lacks that key."""
    torch.manual_seed(0)
    model = GAN(GANConfig(n_hidden=16, latent_dim=6)).eval()
    config = dataclasses.asdict(model.config)
    config.pop("n_clusters")
    sampler = load_model(
        save_checkpoint(Checkpoint("gan", config, gan_tensors(model)), tmp_path / "gan"), "cpu"
    )
    np.testing.assert_array_equal(
        sampler.sample(4, seed=1), GANSampler(model, torch.device("cpu")).sample(4, seed=1)
    )


def test_discriminate_returns_probabilities(tmp_path: Path) -> None:
    path, _ = _save(tmp_path, conditional=True)
    sampler = load_model(path, "cpu")
    images = np.random.default_rng(0).random((5, 64)).astype(np.float32)
    for probs in (sampler.discriminate(images), sampler.discriminate(images, np.arange(5))):
        assert probs.shape == (5,) and ((probs >= 0) & (probs <= 1)).all()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sampler.discriminate(images * 3)
    with pytest.raises(ValueError, match="expected images"):
        sampler.discriminate(images[:, :10])


def test_labels_and_interpolation(tmp_path: Path) -> None:
    path, _ = _save(tmp_path, conditional=True)
    sampler = load_model(path, "cpu")
    threes = sampler.sample(4, seed=1, label=3)
    assert threes.shape == (4, 64)
    with pytest.raises(ValueError, match="label"):
        sampler.sample(4, seed=1, label=10)
    path_images = sampler.interpolate(1, 2, steps=5, label=3)
    assert path_images.shape == (5, 64)
    np.testing.assert_allclose(path_images[0], sampler.sample(1, seed=1, label=3)[0], atol=1e-5)
    np.testing.assert_allclose(path_images[-1], sampler.sample(1, seed=2, label=3)[0], atol=1e-5)


def test_unconditional_gan_refuses_a_label_and_bad_sizes(tmp_path: Path) -> None:
    path, _ = _save(tmp_path, conditional=False)
    sampler = load_model(path, "cpu")
    with pytest.raises(ValueError, match="unconditional"):
        sampler.sample(2, seed=0, label=1)
    with pytest.raises(ValueError, match="n must"):
        sampler.sample(0, seed=0)


def test_checkpoint_whose_tensors_do_not_fit_is_refused(tmp_path: Path) -> None:
    _, model = _save(tmp_path, conditional=False)
    config = dataclasses.asdict(dataclasses.replace(model.config, n_hidden=17))
    bad = save_checkpoint(Checkpoint("gan", config, gan_tensors(model)), tmp_path / "bad")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(bad, "cpu")


def test_grid_png_decodes_to_the_expected_size() -> None:
    from PIL import Image

    images = np.random.default_rng(0).random((10, 64)).astype(np.float32)
    png = grid_png(images, 8, columns=5, scale=2, pad=1)
    with Image.open(io.BytesIO(png)) as picture:
        assert picture.size == ((5 * 9 + 1) * 2, (2 * 9 + 1) * 2)
