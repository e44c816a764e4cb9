from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ml.data.vocab import IdVocab


@given(st.lists(st.integers(min_value=-(2**40), max_value=2**40), min_size=1, max_size=50))
def test_encode_decode_round_trip(ids: list[int]) -> None:
    vocab = IdVocab(ids)
    indices = vocab.encode(ids)
    assert vocab.decode(indices).tolist() == ids
    assert sorted(set(indices.tolist())) == list(range(len(set(ids))))
    assert IdVocab.from_list(vocab.to_list()) == vocab


def test_unknown_ids() -> None:
    vocab = IdVocab([10, 20, 30])
    with pytest.raises(KeyError, match="25"):
        vocab.encode([20, 25])
    assert vocab.encode(np.array([20, 25, 99, 5]), strict=False).tolist() == [1, -1, -1, -1]
    assert 30 in vocab and 31 not in vocab
    assert vocab.index_of(30) == 2 and vocab.index_of(31) is None
