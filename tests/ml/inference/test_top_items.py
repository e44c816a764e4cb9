"""``ml.inference.top_items``: what a recommendation may contain."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ml.data.vocab import IdVocab
from ml.inference import top_items

ITEM_IDS = [10, 20, 30, 40, 50, 60]
SCORES = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4]], dtype=np.float32)


def _row(seen: list[int]) -> sp.csr_matrix:
    """One user's row rating the items at positions ``seen``."""
    values = np.full(len(seen), 4.0, dtype=np.float32)
    return sp.csr_matrix((values, (np.zeros(len(seen)), seen)), shape=(1, len(ITEM_IDS)))


def test_seen_items_never_fill_a_short_answer() -> None:
    """A user who rated all but two items gets those two, not k items padded with seen ones."""
    items = IdVocab.from_list(ITEM_IDS)
    ranked = top_items(SCORES, _row([0, 1, 2, 4]), items, k=5, exclude_seen=True, candidates=None)
    assert ranked == [(40, 0.6000000238418579), (60, 0.4000000059604645)]
    everything = top_items(SCORES, _row([0, 1, 2, 3, 4, 5]), items, 5, True, None)
    assert everything == []


def test_seen_items_come_back_when_not_excluded_and_candidates_restrict() -> None:
    items = IdVocab.from_list(ITEM_IDS)
    row = _row([0, 1])
    kept = top_items(SCORES, row, items, k=3, exclude_seen=False, candidates=None)
    assert [item for item, _ in kept] == [10, 20, 30]
    genre = np.array([20, 50, 60, 99])  # 99: not in the model's vocabulary
    assert [i for i, _ in top_items(SCORES, row, items, 3, True, genre)] == [50, 60]
    assert [i for i, _ in top_items(SCORES, row, items, 3, False, genre)] == [20, 50, 60]
    assert SCORES[0, 0] == np.float32(0.9)  # the scorer's array is left as it was
