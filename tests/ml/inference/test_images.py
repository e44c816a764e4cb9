"""The shared image helpers: corruption, shape checks, PNG round trip."""

from __future__ import annotations

import numpy as np
import pytest

from ml.inference.images import check_images, corrupt, images_to_png, png_to_images


def _images(n: int = 20, side: int = 8) -> np.ndarray:
    return np.random.default_rng(0).random((n, side * side)).astype(np.float32)


def test_mask_drops_about_the_asked_fraction_and_is_seeded() -> None:
    images = np.ones((200, 64), dtype=np.float32)
    noisy = corrupt(images, 0.3, "mask", seed=1)
    assert noisy.shape == images.shape and noisy.dtype == np.float32
    assert abs((noisy == 0).mean() - 0.3) < 0.02
    np.testing.assert_array_equal(noisy, corrupt(images, 0.3, "mask", seed=1))
    assert not np.array_equal(noisy, corrupt(images, 0.3, "mask", seed=2))


def test_gaussian_stays_in_range_and_zero_noise_is_identity() -> None:
    images = _images()
    noisy = corrupt(images, 0.5, "gaussian", seed=0)
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0
    assert not np.allclose(noisy, images)
    np.testing.assert_array_equal(corrupt(images, 0.0, "gaussian"), images)


@pytest.mark.parametrize(("noise", "kind"), [(-0.1, "mask"), (1.5, "mask"), (0.1, "salt")])
def test_corrupt_rejects_bad_arguments(noise: float, kind: str) -> None:
    with pytest.raises(ValueError):
        corrupt(_images(), noise, kind)  # type: ignore[arg-type]


def test_check_images_accepts_shapes_and_rejects_bad_ones() -> None:
    assert check_images(np.zeros(64), 8).shape == (1, 64)
    assert check_images(np.zeros((3, 8, 8)), 8).shape == (3, 64)
    assert check_images([[0.5] * 64], 8).shape == (1, 64)
    for bad in (np.zeros((2, 63)), np.full((1, 64), 2.0), np.full((1, 64), np.nan), "x"):
        with pytest.raises(ValueError):
            check_images(bad, 8)


def test_png_round_trip() -> None:
    images = _images(3)
    png = images_to_png(images, 8, columns=3)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    tile = png_to_images(images_to_png(images[:1], 8), 8)
    np.testing.assert_allclose(tile, images[:1], atol=1 / 255 + 1e-6)
    with pytest.raises(ValueError):
        png_to_images(b"not a png", 8)
