"""Similar items on the recommender interface: cosine neighbours from unit-norm item embeddings
that are computed once per loaded model, also under concurrent first requests."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.sparse as sp

from ml.checkpoint import Checkpoint
from ml.data.vocab import IdVocab
from ml.inference import Recommender, nearest_rows
from ml.models.baselines import Popularity

ITEM_IDS = [10, 20, 30, 40, 50]
# Items 10 and 20 point the same way (20 is longer), 30 is orthogonal, 40 opposite, 50 between.
VECTORS = np.array([[1.0, 0.0], [3.0, 0.3], [0.0, 1.0], [-1.0, 0.0], [1.0, 1.0]])


class CountingEmbeddings:
    """Item embeddings that count how often they are computed."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> np.ndarray:
        with self._lock:
            self.calls += 1
        return VECTORS.copy()


def recommender(embeddings: CountingEmbeddings | None) -> Recommender:
    train = sp.csr_matrix(np.eye(len(ITEM_IDS), dtype=np.float32))
    return Recommender(
        model_type="test",
        users=IdVocab.from_list(list(range(1, len(ITEM_IDS) + 1))),
        items=IdVocab.from_list(ITEM_IDS),
        scorer=Popularity.fit(train),
        checkpoint=Checkpoint("popularity", {}, {}),
        item_embeddings=embeddings,
    )


def test_similar_items_are_the_cosine_neighbours_best_first() -> None:
    model = recommender(CountingEmbeddings())
    ranked = model.similar_items(10, k=3)
    assert ranked is not None
    assert [item for item, _ in ranked] == [20, 50, 30]
    unit = VECTORS / np.linalg.norm(VECTORS, axis=1, keepdims=True)
    expected = [unit[0] @ unit[1], unit[0] @ unit[4], unit[0] @ unit[2]]
    assert [score for _, score in ranked] == pytest.approx(expected, abs=1e-6)
    everything = model.similar_items(10, k=100)  # k above the catalogue: every other item
    assert everything is not None and [i for i, _ in everything] == [20, 50, 30, 40]


def test_unknown_items_and_models_without_embeddings() -> None:
    assert recommender(CountingEmbeddings()).similar_items(99, k=3) is None
    with pytest.raises(ValueError, match="no item embeddings"):
        recommender(None).similar_items(10, k=3)


def test_unit_embeddings_are_computed_once_even_by_concurrent_first_requests() -> None:
    embeddings = CountingEmbeddings()
    model = recommender(embeddings)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda i: model.similar_items(ITEM_IDS[i % 5], k=2), range(64)))
    assert embeddings.calls == 1
    assert all(answer is not None and len(answer) == 2 for answer in answers)
    unit = model.unit_item_embeddings()
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-6)
    assert not unit.flags.writeable  # shared by every request: nobody may change it
    assert model.unit_item_embeddings() is unit


def test_nearest_rows_leaves_the_row_itself_out() -> None:
    unit = np.eye(3, dtype=np.float32)
    assert nearest_rows(unit, 1, 5) == [(0, 0.0), (2, 0.0)]
    assert nearest_rows(unit[:1], 0, 5) == []
