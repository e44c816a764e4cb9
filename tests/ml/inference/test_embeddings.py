"""Reducing embeddings (PCA, autoencoder), neighbours, genre agreement, the item map."""

from __future__ import annotations

import numpy as np
import pytest

from ml.inference.embeddings import (
    autoencoder_reduce,
    centre_rows,
    combine_views,
    cosine_neighbours,
    embedding_map_png,
    genre_agreement,
    main_genres,
    pca,
    reduce,
)


def _clusters(seed: int = 0) -> tuple[np.ndarray, list[list[str]]]:
    """Three genre clusters in 10-D: items of a genre lie along that cluster's direction."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 10)) * 3
    labels = np.repeat(np.arange(3), 30)
    x = centres[labels] + rng.normal(size=(90, 10))
    names = ["Action", "Comedy", "Drama"]
    return x, [[names[label]] for label in labels]


def test_pca_matches_the_svd_and_keeps_variance_order() -> None:
    x, _ = _clusters()
    y = pca(x, 3)
    assert y.shape == (90, 3)
    variances = y.var(axis=0)
    assert variances[0] >= variances[1] >= variances[2]
    expected = np.linalg.svd(x - x.mean(0), compute_uv=False)[:3] ** 2 / 90
    np.testing.assert_allclose(variances, expected, rtol=1e-4)


def test_autoencoder_reduction_is_seeded_and_keeps_clusters() -> None:
    x, genres = _clusters()
    a = autoencoder_reduce(x, 2, seed=1, steps=150)
    b = autoencoder_reduce(x, 2, seed=1, steps=150)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (90, 2)
    assert genre_agreement(a, genres).ratio > 2.0
    with pytest.raises(ValueError):
        reduce(x, 2, "tsne")
    with pytest.raises(ValueError):
        pca(x, 11)


def test_genre_agreement_separates_meaningful_from_random() -> None:
    x, genres = _clusters()
    good = genre_agreement(x, genres, k=10)
    assert good.neighbours == pytest.approx(1.0) and good.random == pytest.approx(29 / 89)
    noise = genre_agreement(np.random.default_rng(5).normal(size=(90, 10)), genres, k=10)
    assert noise.ratio < 1.5 < good.ratio
    with_empty = genre_agreement(np.vstack([x, np.ones((1, 10))]), [*genres, []], k=10)
    assert with_empty.items == 90


def test_neighbours_and_main_genres() -> None:
    x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    assert cosine_neighbours(x, 1)[:, 0].tolist() == [1, 0, 1, 2]
    assert main_genres([["Drama", "War"], ["Drama"], [], ["War", "Drama"]]) == [
        "War",
        "Drama",
        "unknown",
        "War",
    ]


def test_embedding_map_is_a_png() -> None:
    x, genres = _clusters()
    png = embedding_map_png(pca(x, 2), main_genres(genres), {0: "first"}, title="t")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_centre_rows_removes_the_shared_direction() -> None:
    x, genres = _clusters()
    shifted = x + 50.0  # a direction every row shares: cosines all near 1
    assert cosine_neighbours(shifted, 1).shape == (90, 1)
    centred = centre_rows(shifted)
    np.testing.assert_allclose(centred.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(centred, centre_rows(x), atol=1e-9)  # the offset is gone
    unit = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    assert np.median(unit @ unit.T) < 0.2  # cosines spread out again
    assert genre_agreement(centred, genres).ratio > 2.5


def test_combine_views_averages_the_views_cosines() -> None:
    x, genres = _clusters(0)
    noise = np.random.default_rng(1).normal(size=(90, 4)) * 100.0  # a wide, meaningless view
    both = combine_views(x, noise)
    assert both.shape == (90, 14) and both.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(both, axis=1), 1.0, rtol=1e-5)

    def cos(v: np.ndarray) -> np.ndarray:
        unit = centre_rows(v) / np.linalg.norm(centre_rows(v), axis=1, keepdims=True)
        return unit @ unit.T

    np.testing.assert_allclose(both @ both.T, (cos(x) + cos(noise)) / 2, atol=1e-5)
    # scale does not let a view dominate: the cluster view still shows through
    assert genre_agreement(both, genres).ratio > genre_agreement(noise, genres).ratio
    with pytest.raises(ValueError):
        combine_views(x, noise[:10])
    with pytest.raises(ValueError):
        combine_views()
