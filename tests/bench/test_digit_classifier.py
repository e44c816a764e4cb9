"""The GAN benchmark's judge: Fréchet distance maths, and a deterministic, accurate classifier."""

from __future__ import annotations

import numpy as np
import pytest

from bench.digit_classifier import DigitClassifier, JudgeConfig, class_report, frechet_distance
from ml.data.digits import load_images


def test_frechet_distance_of_gaussians() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = np.array([1.0, -2.0, 0.5])
    # Same covariance, shifted mean: the distance is the squared shift.
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-6)
    # N(0, I) vs N(0, 4I) in 3 dims: 3 * (1 + 4 - 2 * 2) = 3.
    b = rng.normal(size=(200_000, 3)) * 2.0
    c = rng.normal(size=(200_000, 3))
    assert frechet_distance(c, b) == pytest.approx(3.0, rel=0.02)


def test_judge_is_deterministic_and_reads_real_digits() -> None:
    data = load_images("digits")
    config = JudgeConfig(epochs=10, features=16)
    judge = DigitClassifier.train(data, config)
    again = DigitClassifier.train(data, config)
    np.testing.assert_array_equal(
        judge.predict_proba(data.test_images[:20]), again.predict_proba(data.test_images[:20])
    )
    assert judge.test_accuracy > 0.8
    assert judge.features(data.test_images[:5]).shape == (5, 16)
    report = class_report(judge, data.test_images)
    assert report["min_class_share"] > 0.05  # type: ignore[operator]
    assert len(report["class_shares"]) == 10  # type: ignore[arg-type]
