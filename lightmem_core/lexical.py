"""BM25 as sparse vectors, so keyword search runs inside the vector engine.

Documents get term-frequency weights (k1, b, average length); the engine applies
IDF at query time (``Modifier.Idf``), computed over the caller's scope only on the
embedded store. Tokenising, stop words and stemming come from qdrant-edge's BM25
model so the same encoder serves every backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import InvalidInputError

_U32 = 2**32


@dataclass(frozen=True)
class SparseVec:
    indices: list[int]
    values: list[float]

    def __len__(self) -> int:
        return len(self.indices)


def validate_sparse(vec: SparseVec, field: str = "sparse") -> SparseVec:
    """Refuse a malformed sparse vector before it reaches the engine.

    qdrant-edge panics on a vector whose indices and values differ in length, and
    the panic is replayed from its WAL on every later open, bricking the store.
    """
    if len(vec.indices) != len(vec.values):
        raise InvalidInputError(field, f"{len(vec.indices)} indices but {len(vec.values)} values")
    if len(set(vec.indices)) != len(vec.indices):
        raise InvalidInputError(field, "duplicate indices")
    for i in vec.indices:
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < _U32:
            raise InvalidInputError(field, f"index {i!r} is not an unsigned 32-bit integer")
    for v in vec.values:
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            raise InvalidInputError(field, f"value {v!r} is not a finite number")
    return vec


class Bm25Encoder:
    def __init__(self, *, k1: float = 1.2, b: float = 0.75, avg_len: float = 40.0, language: str = "english") -> None:
        import qdrant_edge as qe

        self._model = qe.Bm25(qe.Bm25Config(k=k1, b=b, avg_len=avg_len, language=language))

    def document(self, text: str, context: str | None = None, context_weight: float = 0.3) -> SparseVec:
        """Term weights of ``text``, plus those of ``context`` scaled down.

        Context words help a short fact match ("the red one" in a turn about cars),
        but at full weight a neighbouring turn would outrank the fact's own words.
        """
        sv = self._model.embed_document(text)
        weights = dict(zip(sv.indices, (float(v) for v in sv.values)))
        if context and context_weight > 0:
            cv = self._model.embed_document(context)
            for i, v in zip(cv.indices, cv.values):
                weights[i] = weights.get(i, 0.0) + context_weight * float(v)
        return validate_sparse(SparseVec(list(weights), list(weights.values())))

    def query(self, text: str) -> SparseVec:
        sv = self._model.embed_query(text)
        return validate_sparse(SparseVec(list(sv.indices), [float(v) for v in sv.values]))
