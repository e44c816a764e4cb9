"""GAN training on tiny planted images: runs, logs finite losses, is reproducible under a seed."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from ml.data.digits import ImageDataset
from ml.inference.gan import GANSampler
from ml.models.gan import GANConfig, kmeans, latent_codes
from ml.training.base import TrainingOptions
from ml.training.gan import GANTrainer, train_gan, train_gan_checkpoint


def planted_images(n: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Two kinds of 8x8 images: a bright top half (label 0) or a bright left half (label 1)."""
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 2
    images = np.zeros((n, 8, 8), dtype=np.float32)
    images[labels == 0, :4, :] = 1.0
    images[labels == 1, :, :4] = 1.0
    images = np.clip(images + rng.normal(0, 0.05, images.shape), 0, 1).astype(np.float32)
    return images.reshape(n, 64), labels.astype(np.int64)


CONFIG = GANConfig(n_hidden=32, latent_dim=8, batch_size=32, learning_rate=1e-3)
OPTIONS = TrainingOptions(device="cpu", seed=5, epochs=6, progress=False)


def test_training_is_reproducible_and_logs_every_epoch() -> None:
    images, labels = planted_images()
    first, history = train_gan(images, labels, CONFIG, OPTIONS)
    second, _ = train_gan(images, labels, CONFIG, OPTIONS)
    assert len(history.d_loss) == len(history.g_loss) == OPTIONS.epochs
    assert all(np.isfinite(history.d_loss)) and all(np.isfinite(history.g_loss))
    assert all(0.0 <= p <= 1.0 for p in history.d_real + history.d_fake)
    z = latent_codes(4, CONFIG.latent_dim, seed=1)
    assert torch.equal(first.sample(z), second.sample(z))


def test_generator_learns_the_planted_halves() -> None:
    images, labels = planted_images()
    config = GANConfig(n_hidden=64, latent_dim=8, batch_size=32, learning_rate=2e-3, ema_decay=0.9)
    options = TrainingOptions(device="cpu", seed=1, epochs=40, progress=False)
    model, _ = train_gan(images, labels, config, options)
    fake = model.sample(latent_codes(200, 8, seed=0)).numpy().reshape(200, 8, 8)
    untrained = GANTrainer(config, options, images, labels).model.eval()
    before = untrained.sample(latent_codes(200, 8, seed=0)).numpy().reshape(200, 8, 8)

    def distance_to_data(x: np.ndarray) -> float:
        top = np.abs(x - images[labels == 0][0].reshape(8, 8)).mean((1, 2))
        left = np.abs(x - images[labels == 1][0].reshape(8, 8)).mean((1, 2))
        return float(np.minimum(top, left).mean())

    assert distance_to_data(fake) < 0.5 * distance_to_data(before)


def _distance_to_kinds(x: np.ndarray, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per image (n, 64): mean absolute distance to the nearest of the two planted kinds, and
    which kind that is."""
    kinds = np.stack([images[labels == k][0] for k in (0, 1)])  # (2, 64)
    distances = np.abs(x[:, None, :] - kinds[None]).mean(2)  # (n, 2)
    return np.stack([distances.min(1), distances.argmin(1)], 1)


def test_kmeans_recovers_planted_groups() -> None:
    images, labels = planted_images()
    clusters = kmeans(torch.as_tensor(images), 2, torch.Generator().manual_seed(3)).numpy()
    agreement = (clusters == labels).mean()
    assert max(agreement, 1 - agreement) == 1.0  # the same partition, up to the clusters' names
    with pytest.raises(ValueError, match="clusters"):
        kmeans(torch.as_tensor(images), 0, torch.Generator())


def test_self_conditioned_gan_learns_both_kinds_without_labels() -> None:
    """Clusters stand in for labels: trained with no labels at all, the GAN draws both planted
    kinds, in about the clusters' shares, reproducibly for a seed."""
    images, labels = planted_images()
    config = GANConfig(
        n_hidden=64, latent_dim=8, batch_size=32, learning_rate=2e-3, ema_decay=0.9, n_clusters=2
    )
    options = TrainingOptions(device="cpu", seed=1, epochs=40, progress=False)
    model, _ = train_gan(images, None, config, options)
    np.testing.assert_allclose(model.cluster_shares.numpy(), [0.5, 0.5])
    sampler = GANSampler(model, torch.device("cpu"))
    fake = sampler.sample(200, seed=0)
    np.testing.assert_array_equal(fake, sampler.sample(200, seed=0))
    untrained = GANTrainer(config, options, images, None).model.eval()
    before = GANSampler(untrained, torch.device("cpu")).sample(200, seed=0)
    after_fit, before_fit = (_distance_to_kinds(x, images, labels) for x in (fake, before))
    assert after_fit[:, 0].mean() < 0.5 * before_fit[:, 0].mean()
    kind_shares = np.bincount(after_fit[:, 1].astype(int), minlength=2) / len(fake)
    assert kind_shares.min() > 0.25


def test_train_gan_checkpoint_records_figures_and_history() -> None:
    images, labels = planted_images()
    data = ImageDataset("planted", 8, images[:96], labels[:96], images[96:], labels[96:])
    checkpoint = train_gan_checkpoint(data, CONFIG, OPTIONS)
    assert checkpoint.model_type == "gan" and checkpoint.config["n_hidden"] == CONFIG.n_hidden
    assert 0.0 <= checkpoint.metrics["d_prob_test_real"] <= 1.0
    assert 0.0 <= checkpoint.metrics["d_prob_generated"] <= 1.0
    assert len(checkpoint.extra["history"]["d_loss"]) == OPTIONS.epochs
    assert checkpoint.data_sha256 and len(checkpoint.data_sha256) == 64


def test_trainer_state_round_trip_restores_both_networks_and_the_average() -> None:
    """What the shared fit loop snapshots to restore a best epoch."""
    images, labels = planted_images()
    trainer = GANTrainer(CONFIG, OPTIONS, images, labels)
    trainer.train_epoch()
    snapshot = copy.deepcopy(trainer.state_dict())
    trainer.train_epoch()
    changed = trainer.ema.state_dict()
    assert any(not torch.equal(changed[k], snapshot["ema"][k]) for k in changed)
    trainer.load_state_dict(snapshot)
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(tensor, snapshot["model"][name])
    for name, tensor in trainer.ema.state_dict().items():
        assert torch.equal(tensor, snapshot["ema"][name])


def test_conditional_training_needs_labels() -> None:
    images, _ = planted_images()
    with pytest.raises(ValueError, match="label"):
        GANTrainer(GANConfig(conditional=True, n_hidden=8), OPTIONS, images, None)
    with pytest.raises(ValueError, match="images"):
        GANTrainer(CONFIG, OPTIONS, images[:, :10], None)


def test_dcgan_trains_on_28x28_images() -> None:
    rng = np.random.default_rng(0)
    images = (rng.random((32, 784)) < 0.2).astype(np.float32)
    labels = np.arange(32) % 10
    config = GANConfig(side=28, n_hidden=4, latent_dim=4, batch_size=16, conditional=True)
    model, history = train_gan(images, labels, config, OPTIONS)
    assert model.config.resolved_architecture == "dcgan"
    assert len(history.d_loss) == OPTIONS.epochs and all(np.isfinite(history.g_loss))
    sample = model.sample(latent_codes(3, 4, seed=0), torch.tensor([0, 1, 2]))
    assert sample.shape == (3, 784)
