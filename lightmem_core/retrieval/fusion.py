"""Reciprocal-rank fusion of candidate lists, the per-turn cap, and hits from records."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ..indexing import from_payload
from ..store.base import Record
from ..types import Hit
from .candidates import CandidateList

RANKING_FIELDS = ("source_ids", "_ts")  # what rank() reads of a candidate's payload
RECENCY = "recency"  # the label of the newest-first list in Hit.retrievers

Ranked = tuple[Record, float, list[str]]


def source_key(rec: Record) -> str:
    return "|".join(rec.payload.get("source_ids") or ()) or rec.id


def rank(
    lists: Sequence[CandidateList],
    *,
    limit: int,
    rrf_k: int,
    per_source_limit: int = 0,
    recency_weight: float = 0.0,
) -> list[Ranked]:
    """Reciprocal-rank fusion (a single list keeps its own scores and order).

    Reads only ``RANKING_FIELDS`` of the payloads. ``recency_weight`` re-ranks the
    chosen hits with one more list, the same hits newest first: a question about the
    present sees the latest of several close matches first, yet recency never decides
    *which* memories come back, so a timeless fact ("Biscuit is a corgi") is not pushed
    out by whatever was said last.
    """
    if len(lists) == 1:
        only = lists[0]
        scored = [(r, float(r.score or 0.0), [only.kind.label]) for r in only.records]
    else:
        acc: dict[str, Ranked] = {}
        for cl in lists:
            name = cl.kind.label
            for rnk, r in enumerate(cl.records):
                rec, score, found = acc.get(r.id, (r, 0.0, []))
                acc[r.id] = (rec, score + cl.weight / (rrf_k + rnk + 1), found if name in found else [*found, name])
        scored = sorted(acc.values(), key=lambda t: -t[1])
    chosen: list[Ranked] = []
    per_source: dict[str, int] = {}
    for rec, score, found in scored:
        if per_source_limit:
            key = source_key(rec)
            if per_source.get(key, 0) >= per_source_limit:
                continue
            per_source[key] = per_source.get(key, 0) + 1
        chosen.append((rec, score, found))
        if len(chosen) >= limit:
            break
    if recency_weight and len(chosen) > 1:
        if len(lists) == 1:  # raw scores: put them on the rank scale first
            chosen = [(rec, 1.0 / (rrf_k + i + 1), found) for i, (rec, _, found) in enumerate(chosen)]
        newest = sorted(range(len(chosen)), key=lambda i: -float(chosen[i][0].payload.get("_ts") or 0.0))
        for rnk, i in enumerate(newest):
            rec, score, found = chosen[i]
            chosen[i] = (rec, score + recency_weight / (rrf_k + rnk + 1), [*found, RECENCY])
        chosen.sort(key=lambda t: -t[1])
    return chosen


def sibling_ids(ranked: Sequence[Ranked], lists: Sequence[CandidateList]) -> dict[str, list[str]]:
    """Per kept hit, the other candidates drawn from the same source turn(s).

    With ``per_source_limit`` a turn shows one hit, and fusion picks it among sentences
    that share the turn's context in both vectors, close to a coin toss; the
    ``closest_sentence`` stage then chooses among these by what each sentence says.
    """
    kept = {source_key(rec): rec.id for rec, _, _ in ranked}
    out: dict[str, list[str]] = {}
    for cl in lists:
        for r in cl.records:
            owner = kept.get(source_key(r))
            if owner is not None and r.id != owner and r.id not in out.setdefault(owner, []):
                out[owner].append(r.id)
    return {k: v for k, v in out.items() if v}


def to_hits(ranked: Sequence[Ranked], payloads: Optional[Mapping[str, Mapping[str, Any]]] = None) -> list[Hit]:
    """Hits from ranked records; ``payloads`` supplies full payloads when the search returned thin ones."""
    hits: list[Hit] = []
    for rec, score, found in ranked:
        payload = rec.payload if payloads is None else payloads.get(rec.id)
        if payload is None:  # deleted between the search and the fetch
            continue
        hits.append(Hit(entry=from_payload(payload), score=score, retrievers=found, rank=len(hits) + 1))
    return hits


def fuse(lists: Sequence[CandidateList], **kwargs: Any) -> list[Hit]:
    """``rank`` then ``to_hits``, for searches that returned full payloads."""
    return to_hits(rank(lists, **kwargs))
