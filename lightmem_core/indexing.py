"""How an entry is laid out in the store: payload fields, indexes, and indexed text.

Facts are short and lose the context their turn had ("Yes, the red one!"), so the
BM25 vector of a fact also carries the words of its context (its turn and the one
before), at a reduced weight so a neighbour's words never outrank the fact's own, and
the dense vector is the fact's embedding blended with its context's.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from . import timeparse
from .lexical import Bm25Encoder, SparseVec
from .store.base import IndexKind, PointIn
from .types import MemoryEntry

ENTRY_INDEXES: dict[str, IndexKind] = {
    "user_id": "keyword",
    "agent_id": "keyword",
    "session_id": "keyword",
    "entry_type": "keyword",
    "speaker_id": "keyword",
    "speaker_name": "keyword",
    "entities": "keyword",
    "source_ids": "keyword",
    "topic_id": "integer",
    "_ts": "float",
    "_rec": "float",
    "_current": "integer",
}

# Payload keys derived from the entry for filtering; never part of the entry itself.
_DERIVED = ("_ts", "_rec", "_current")


def blend(entries: Sequence[MemoryEntry], facts: Any, contexts: dict[str, Any], weight: float) -> list[Any]:
    """Each fact's vector, pulled toward its context's vector by ``weight``.

    Embedding "fact + context" as one text works as well for recall but costs a long
    embedding per fact; blending two unit vectors costs one short embedding per fact
    plus one per distinct context (about one per turn).
    """
    out = []
    for entry, vec in zip(entries, facts):
        ctx = contexts.get(entry.context) if entry.context else None
        if ctx is not None and weight > 0:
            # Gate by relatedness: a question and its answer pull together, two unrelated
            # facts said one after the other do not blur into each other.
            fact, c = np.asarray(vec), np.asarray(ctx)
            related = float(fact @ c) / ((np.linalg.norm(fact) * np.linalg.norm(c)) or 1.0)
            w = weight * min(1.0, max(0.0, (related - 0.1) / 0.3))
            vec = (1 - w) * fact + w * c
            vec = vec / (np.linalg.norm(vec) or 1.0)
        out.append(vec)
    return out


def sparse_vector(encoder: Bm25Encoder, entry: MemoryEntry) -> SparseVec:
    return encoder.document(entry.memory, entry.context)


def to_payload(entry: MemoryEntry) -> dict[str, Any]:
    payload = entry.model_dump(mode="json")
    # Never None: a point without the sort key drops out of time-ordered scrolls.
    payload["_ts"] = timeparse.to_epoch(entry.time_stamp or entry.recorded_at)
    payload["_rec"] = timeparse.to_epoch(entry.recorded_at)
    # An integer, not a bool: qdrant-edge 0.9 never matches MatchValue(True).
    payload["_current"] = int(entry.is_current)
    return payload


def from_payload(payload: dict[str, Any]) -> MemoryEntry:
    data = {k: v for k, v in payload.items() if k not in _DERIVED}
    return MemoryEntry.model_validate(data)


def to_point(entry: MemoryEntry, dense: Optional[Any], sparse: Optional[SparseVec]) -> PointIn:
    return PointIn(
        id=entry.id,
        payload=to_payload(entry),
        dense=None if dense is None else [float(x) for x in dense],
        sparse=sparse,
    )
