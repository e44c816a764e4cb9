"""The content family's pure parts: features, the ridge map, the two scoring rules."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ml.models.content import (
    ContentConfig,
    ContentFeaturizer,
    ItemMeta,
    bucket,
    content_scores,
    hybrid_scores,
    ridge,
    title_tokens,
    tokens,
    unit_rows,
    with_bias,
)

ITEMS = [
    ItemMeta(1, "Star Wars (1977)", 1977, ("Action", "Sci-Fi"), "space rebels fight the empire"),
    ItemMeta(2, "Toy Story (1995)", 1995, ("Animation", "Comedy")),
    ItemMeta(3, "Heat", None, ("Action", "Crime"), None),
]


def test_tokens_drop_stopwords_case_and_the_title_year() -> None:
    assert tokens("The Empire Strikes Back, a SEQUEL") == ["empire", "strikes", "back", "sequel"]
    assert title_tokens("Star Wars (1977)") == ["star", "wars"]
    assert tokens(None) == []
    assert bucket("wars", 256) == bucket("wars", 256)  # stable across processes (crc32)


def test_features_mark_genres_year_and_tokens() -> None:
    featurizer = ContentFeaturizer.fit(ITEMS, year_bins=2, title_buckets=16, text_buckets=32)
    x = featurizer.transform(ITEMS)
    assert x.shape == (3, featurizer.width)
    genres = list(featurizer.genres)
    assert x[0, genres.index("Sci-Fi")] == 1 and x[1, genres.index("Sci-Fi")] == 0
    year0 = len(genres)
    assert x[2, year0 : year0 + featurizer.n_year].sum() == 0  # no year: no year features
    assert x[0, year0 : year0 + featurizer.n_year - 1].sum() == 1  # exactly one year bin
    text0 = year0 + featurizer.n_year + featurizer.title_buckets
    assert x[0, text0:].sum() > 0 and x[1, text0:].sum() == 0  # only item 1 has a description
    unseen = featurizer.transform([ItemMeta(9, "New", 2030, ("Western", "action"))])
    assert unseen[0, genres.index("Action")] == 1  # genres match case-insensitively
    assert unseen[0, : len(genres)].sum() == 1  # an unknown genre is ignored, not an error
    assert ContentFeaturizer.from_dict(featurizer.to_dict()) == featurizer


def test_config_refuses_bad_values() -> None:
    with pytest.raises(ValueError, match="noise"):
        ContentConfig(noise=1.5)
    with pytest.raises(ValueError, match="profile"):
        ContentConfig(profile="loud")
    with pytest.raises(ValueError, match="code_dim"):
        ContentConfig(code_dim=0)


def test_ridge_recovers_a_linear_map() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    true = rng.normal(size=(5, 3))
    y = with_bias(x) @ true
    assert np.allclose(ridge(x, y, 1e-6), true, atol=1e-4)


def test_content_scores_favour_the_profile_side() -> None:
    codes = unit_rows(np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]))
    rows = sp.csr_matrix(np.array([[5.0, 0.0, 0.0]], np.float32))  # liked item 0
    scores = content_scores(rows, codes, "binary")
    assert scores[0, 1] > scores[0, 2]


def test_hybrid_is_the_collaborative_score_on_rated_items_and_mapped_on_cold_ones() -> None:
    rng = np.random.default_rng(1)
    ease = rng.normal(size=(3, 3)).astype(np.float32)
    np.fill_diagonal(ease, 0)
    mapping = rng.normal(size=(3, 3)).astype(np.float32)  # (W, D+1), D = 2
    inputs = rng.normal(size=(4, 2)).astype(np.float32)  # catalogue: 3 warm items + 1 cold
    warm = np.array([0, 1, 2, -1])
    counts = np.array([5.0, 1.0, 3.0, 0.0])
    rows = sp.csr_matrix(np.array([[4.0, 0.0, 3.0, 0.0]], np.float32))
    scores = hybrid_scores(
        rows,
        warm=warm,
        ease_weights=ease,
        mapping=mapping,
        inputs=inputs,
        counts=counts,
        blend_k=0.0,
    )
    x = np.array([[1.0, 0.0, 1.0]])
    assert np.allclose(scores[0, :3], (x @ ease)[0], atol=1e-5)
    assert np.isclose(scores[0, 3], (x @ mapping @ np.r_[inputs[3], 1.0])[0], atol=1e-5)
    blended = hybrid_scores(
        rows,
        warm=warm,
        ease_weights=ease,
        mapping=mapping,
        inputs=inputs,
        counts=counts,
        blend_k=1.0,
    )
    mapped = x @ mapping @ with_bias(inputs[:3]).T
    weight = counts[:3] / (counts[:3] + 1.0)
    assert np.allclose(blended[0, :3], weight * (x @ ease)[0] + (1 - weight) * mapped[0], atol=1e-5)
