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
_DERIVED = ("_ts", "_rec", "_current", "_dn")


def context_lines(entries: Sequence[MemoryEntry]) -> list[str]:
    """The distinct lines (one per turn) of the entries' contexts."""
    return list(dict.fromkeys(line for e in entries if e.context for line in e.context.split("\n")))


def turn_vectors(entries: Sequence[MemoryEntry], facts: Sequence[Any]) -> dict[str, Any]:
    """Vectors for context lines, from the sentence vectors already computed.

    A one-sentence turn's line is its entry's text; a turn of several sentences has its
    own line as the last line of its context, and its vector is the normalised mean of
    its sentences' vectors. Lines not covered here (a neighbour whose sentences are not
    in this batch) are left for the caller to embed.
    """
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, e in enumerate(entries):
        groups.setdefault(tuple(e.source_ids), []).append(i)
    out: dict[str, Any] = {}
    for idx in groups.values():
        first = entries[idx[0]]
        if len(idx) == 1 and (not first.context or "\n" not in first.context):
            out.setdefault(first.memory, np.asarray(facts[idx[0]]))
        elif first.context:
            v = np.mean([np.asarray(facts[i]) for i in idx], axis=0)
            out.setdefault(first.context.split("\n")[-1], v / (np.linalg.norm(v) or 1.0))
    return out


def context_vectors(entries: Sequence[MemoryEntry], line_vectors: dict[str, Any]) -> dict[str, Any]:
    """Each context's vector as the normalised sum of its lines' vectors.

    A context is the previous turn and, for a turn of several sentences, the turn itself
    (``extract.py``), one line per turn. Embedding each *turn* once and summing, instead
    of embedding every context as one text, embeds each turn once instead of twice, and
    a one-sentence turn not at all: its line is the text of its entry, whose vector the
    caller already has. Contexts were the longest texts of the offline write path and
    most of its model time.
    """
    out: dict[str, Any] = {}
    for e in entries:
        if e.context and e.context not in out:
            v = np.sum([np.asarray(line_vectors[line]) for line in e.context.split("\n")], axis=0)
            out[e.context] = v / (np.linalg.norm(v) or 1.0)
    return out


def blend(entries: Sequence[MemoryEntry], facts: Any, contexts: dict[str, Any], weight: float) -> list[tuple[Any, float]]:
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
        w = share.get(entry.context or "", 0.0)
        norm = 1.0
        if w > 0:
            vec = (1 - w) * vec + w * np.asarray(contexts[entry.context])
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


def from_payload(payload: dict[str, Any]) -> MemoryEntry:
    data = {k: v for k, v in payload.items() if k not in _DERIVED}
    return MemoryEntry.model_validate(data)


def to_point(entry: MemoryEntry, dense: Optional[Any], sparse: Optional[SparseVec],
             dense_norm: Optional[float] = None) -> PointIn:
    return PointIn(
        id=entry.id,
        payload=to_payload(entry, dense_norm),
        dense=None if dense is None else [float(x) for x in dense],
        sparse=sparse,
    )
