"""Id vocabularies: raw ids (as in the data) to contiguous indices 0..n-1 and back."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class IdVocab:
    """A sorted, immutable mapping between raw integer ids and contiguous indices."""

    def __init__(self, raw_ids: Iterable[int]) -> None:
        ids = np.unique(
            np.asarray(
                list(raw_ids) if not isinstance(raw_ids, np.ndarray) else raw_ids, dtype=np.int64
            )
        )
        self._ids = ids
        self._ids.setflags(write=False)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, raw_id: object) -> bool:
        return self.index_of(int(raw_id)) is not None  # type: ignore[call-overload]

    @property
    def ids(self) -> np.ndarray:
        return self._ids

    def index_of(self, raw_id: int) -> int | None:
        pos = int(np.searchsorted(self._ids, raw_id))
        return pos if pos < len(self._ids) and self._ids[pos] == raw_id else None

    def encode(self, raw_ids: np.ndarray | Iterable[int], *, strict: bool = True) -> np.ndarray:
        """Indices of ``raw_ids``; unknown ids raise ``KeyError``, or map to -1 when not strict."""
        raw = np.asarray(raw_ids, dtype=np.int64)
        pos = np.searchsorted(self._ids, raw)
        pos_clipped = np.minimum(pos, max(len(self._ids) - 1, 0))
        known = (
            (pos < len(self._ids)) & (self._ids[pos_clipped] == raw)
            if len(self._ids)
            else np.zeros(raw.shape, bool)
        )
        if strict and not known.all():
            missing = raw[~known][:5].tolist()
            raise KeyError(f"unknown ids: {missing}")
        return np.where(known, pos_clipped, -1).astype(np.int64)

    def decode(self, indices: np.ndarray | Iterable[int]) -> np.ndarray:
        return self._ids[np.asarray(indices, dtype=np.int64)]

    def to_list(self) -> list[int]:
        return self._ids.tolist()

    @classmethod
    def from_list(cls, ids: list[int]) -> IdVocab:
        return cls(np.asarray(ids, dtype=np.int64))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdVocab) and np.array_equal(self._ids, other._ids)

    def __hash__(self) -> int:
        return hash(self._ids.tobytes())
