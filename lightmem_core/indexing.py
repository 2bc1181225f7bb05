"""How an entry is laid out in the store: payload fields, indexes, and indexed text.

Facts are short and lose the context their turn had ("Yes, the red one!"), so the
BM25 vector of a fact also carries the words of its context (its turn and the one
before), at a reduced weight so a neighbour's words never outrank the fact's own, and
the dense vector is the fact's embedding blended with its context's.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

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
_DERIVED = ("_ts", "_rec", "_current", "_dn")


def context_lines(entries: Sequence[MemoryEntry], *, per_turn: bool = True) -> list[str]:
    """The distinct pieces a context vector is summed from: its lines (one per turn),
    or with ``per_turn=False`` each whole context as one piece."""
    pieces = (e.context.split("\n") if per_turn else [e.context] for e in entries if e.context)
    return list(dict.fromkeys(p for group in pieces for p in group))


def turn_vectors(entries: Sequence[MemoryEntry], facts: Sequence[Any]) -> dict[str, Any]:
    """Vectors for the lines of turns that are their own context, from sentence vectors.

    A turn of several sentences (or a compressed one) has its own line as the last line
    of its context; its vector is the normalised mean of its sentences' vectors. A
    one-sentence turn's line is its entry's text, whose vector the caller has; lines of
    neighbours whose sentences are not in this batch are left for the caller to embed.
    """
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, e in enumerate(entries):
        groups.setdefault(tuple(e.source_ids), []).append(i)
    out: dict[str, Any] = {}
    for idx in groups.values():
        context = entries[idx[0]].context
        if context and (len(idx) > 1 or "\n" in context):
            v = np.mean([np.asarray(facts[i]) for i in idx], axis=0)
            out.setdefault(context.split("\n")[-1], v / (np.linalg.norm(v) or 1.0))
    return out


def context_vectors(
    entries: Sequence[MemoryEntry], vectors: dict[str, Any], *, per_turn: bool = True
) -> dict[str, Any]:
    """Each context's vector: the normalised sum of its pieces' vectors (``context_lines``).

    A context is the previous turn and, for a turn of several sentences, the turn itself
    (``extract.py``), one line per turn. Summing per-turn vectors embeds each turn once
    instead of twice, and a one-sentence turn not at all: its line is the text of its
    entry. Contexts were the longest texts of the offline write path and most of its
    model time.
    """
    out: dict[str, Any] = {}
    for e in entries:
        if e.context and e.context not in out:
            pieces = e.context.split("\n") if per_turn else [e.context]
            v = np.sum([np.asarray(vectors[p]) for p in pieces], axis=0)
            out[e.context] = v / (np.linalg.norm(v) or 1.0)
    return out


def blend(
    entries: Sequence[MemoryEntry], facts: Any, contexts: dict[str, Any], weight: float
) -> list[tuple[Any, float]]:
    """Each fact's vector pulled toward its context's vector by ``weight``, with the norm
    it had before normalising.

    Embedding "fact + context" as one text works as well for recall but costs a long
    embedding per fact; blending two unit vectors costs one short embedding per fact
    plus one per distinct context (about one per turn). The weight is the same for every
    fact of a context, so the norm (kept in the payload as ``_dn``) turns a search score
    back into the fact's own similarity plus a term all sentences of the turn share:
    retrieval uses that to choose which sentence a turn shows.
    """
    facts = [np.asarray(v) for v in facts]
    members: dict[str, list[int]] = {}
    for i, entry in enumerate(entries):
        if entry.context and entry.context in contexts:
            members.setdefault(entry.context, []).append(i)
    share: dict[str, float] = {}
    for text, idx in members.items():
        # Gate by relatedness: a question and its answer pull together, two unrelated
        # facts said one after the other do not blur into each other. One gate for all
        # the facts of a context (from their mean), so they keep one weight.
        c = np.asarray(contexts[text])
        mean = np.mean([facts[i] for i in idx], axis=0)
        related = float(mean @ c) / ((np.linalg.norm(mean) * np.linalg.norm(c)) or 1.0)
        share[text] = weight * min(1.0, max(0.0, (related - 0.1) / 0.3))
    out = []
    for entry, vec in zip(entries, facts):
        context = entry.context or ""
        w = share.get(context, 0.0)  # > 0 only for a context in ``contexts``
        norm = 1.0
        if w > 0:
            vec = (1 - w) * vec + w * np.asarray(contexts[context])
            norm = float(np.linalg.norm(vec)) or 1.0
            vec = vec / norm
        out.append((vec, norm))
    return out


def sparse_vector(encoder: Bm25Encoder, entry: MemoryEntry) -> SparseVec:
    return encoder.document(entry.memory, entry.context)


def to_payload(entry: MemoryEntry, dense_norm: Optional[float] = None) -> dict[str, Any]:
    payload = entry.model_dump(mode="json")
    # Never None: a point without the sort key drops out of time-ordered scrolls.
    payload["_ts"] = timeparse.to_epoch(entry.time_stamp or entry.recorded_at)
    payload["_rec"] = timeparse.to_epoch(entry.recorded_at)
    # An integer, not a bool: qdrant-edge 0.9 never matches MatchValue(True).
    payload["_current"] = int(entry.is_current)
    if dense_norm is not None:
        payload["_dn"] = round(dense_norm, 6)
    return payload


def from_payload(payload: Mapping[str, Any]) -> MemoryEntry:
    data = {k: v for k, v in payload.items() if k not in _DERIVED}
    return MemoryEntry.model_validate(data)


def to_point(
    entry: MemoryEntry, dense: Optional[Any], sparse: Optional[SparseVec], dense_norm: Optional[float] = None
) -> PointIn:
    return PointIn(
        id=entry.id,
        payload=to_payload(entry, dense_norm),
        dense=None if dense is None else [float(x) for x in dense],
        sparse=sparse,
    )
