"""GAN model: shapes, probabilities in [0, 1], seeded sampling, interpolation path."""

from __future__ import annotations

import pytest
import torch

from ml.models.gan import GAN, GANConfig, latent_codes, slerp


def _gan(**overrides: object) -> GAN:
    torch.manual_seed(0)
    return GAN(GANConfig(n_hidden=32, latent_dim=8, **overrides)).eval()  # type: ignore[arg-type]


def test_same_seed_gives_identical_samples_and_other_seeds_differ() -> None:
    gan = _gan()
    first = gan.sample(latent_codes(6, 8, seed=3))
    again = gan.sample(latent_codes(6, 8, seed=3))
    other = gan.sample(latent_codes(6, 8, seed=4))
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)
    assert first.shape == (6, 64) and float(first.min()) >= 0.0 and float(first.max()) <= 1.0


@pytest.mark.parametrize("conditional", [False, True])
def test_discriminator_output_is_a_probability(conditional: bool) -> None:
    gan = _gan(conditional=conditional)
    labels = torch.arange(5) % 10 if conditional else None
    images = torch.stack(
        [torch.zeros(64), torch.ones(64), torch.rand(64), torch.full((64,), 0.5), torch.rand(64)]
    )
    probs = gan.probability_real(images, labels)
    assert probs.shape == (5,)
    assert bool(((probs >= 0) & (probs <= 1)).all())


def test_conditional_generator_uses_the_label() -> None:
    gan = _gan(conditional=True)
    z = latent_codes(2, 8, seed=0)[:1].expand(2, -1)
    images = gan.sample(z, torch.tensor([1, 7]))
    assert not torch.allclose(images[0], images[1])
    with pytest.raises(ValueError, match="needs the labels"):
        gan.sample(z)


def test_dcgan_for_28x28_images(torch_device: torch.device) -> None:
    gan = GAN(GANConfig(side=28, n_hidden=8, latent_dim=4, conditional=True)).to(torch_device)
    assert gan.config.resolved_architecture == "dcgan"
    z = latent_codes(3, 4, seed=1).to(torch_device)
    labels = torch.tensor([0, 1, 2], device=torch_device)
    gan.eval()
    images = gan.sample(z, labels)
    assert images.shape == (3, 784)
    probs = gan.probability_real(images, labels)
    assert bool(((probs >= 0) & (probs <= 1)).all())


def test_slerp_runs_from_a_to_b() -> None:
    a, b = latent_codes(2, 16, seed=9)
    path = slerp(a, b, 7)
    assert path.shape == (7, 16)
    assert torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[-1], b, atol=1e-5)


@pytest.mark.parametrize(
    "bad",
    [
        {"latent_dim": 0},
        {"architecture": "resnet"},
        {"label_smoothing": 0.3},
        {"side": 30, "architecture": "dcgan"},
    ],
)
def test_config_refuses_bad_values(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        GANConfig(**bad)  # type: ignore[arg-type]
