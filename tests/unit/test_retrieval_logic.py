"""Pure retrieval logic: fusion, per-source caps, filter translation, query plans."""

from __future__ import annotations

from lightmem_core.config import RetrievalConfig
from lightmem_core.indexing import to_payload
from lightmem_core.lexical import SparseVec
from lightmem_core.retrieve import fuse, parse_filters, plan
from lightmem_core.store.base import Filter, Match, Range, Record
from lightmem_core.types import MemoryEntry


def rec(i: int, src: str, score: float = 1.0) -> Record:
    e = MemoryEntry(id=f"00000000-0000-0000-0000-{i:012d}", memory=f"fact {i}", user_id="u", source_ids=[src])
    return Record(e.id, to_payload(e), score)


def test_rrf_rewards_agreement_and_reports_retrievers() -> None:
    dense = [rec(1, "a"), rec(2, "b"), rec(3, "c")]
    sparse = [rec(3, "c"), rec(4, "d"), rec(1, "a")]
    hits = fuse([("embedding", dense), ("context", sparse)], limit=4, rrf_k=60)
    assert [h.entry.memory for h in hits[:2]] == ["fact 1", "fact 3"]
    assert hits[0].retrievers == ["embedding", "context"] and hits[-1].retrievers in (["embedding"], ["context"])
    assert [h.rank for h in hits] == [1, 2, 3, 4]


def test_single_list_keeps_scores_and_cap_per_source() -> None:
    records = [rec(1, "a", 0.9), rec(2, "a", 0.8), rec(3, "a", 0.7), rec(4, "b", 0.6)]
    hits = fuse([("embedding", records)], limit=10, rrf_k=60, per_source_limit=2)
    assert [h.entry.memory for h in hits] == ["fact 1", "fact 2", "fact 4"]
    assert hits[0].score == 0.9


def test_filter_translation() -> None:
    f = parse_filters({"time_stamp": {"gt": "2025-01-01", "lte": 1800000000}, "speaker_name": ["A", "B"],
                       "metadata": {"topic": "x"}, "entry_type": {"ne": "summary"}})
    assert isinstance(f, Filter)
    assert Range("_ts", gt=1735689600.0) in f.must and Range("_ts", lte=1800000000.0) in f.must
    assert Match("speaker_name", any=("A", "B")) in f.must and Match("metadata.topic", "x") in f.must
    assert f.must_not == (Match("entry_type", "summary"),)
    assert parse_filters(None) is None and parse_filters({}) is None


def test_plans_per_strategy() -> None:
    cfg = RetrievalConfig()
    sv = SparseVec([1], [1.0])
    assert [n for n, _ in plan("embedding", dense=[0.1], sparse=None, limit=5, flt=None, config=cfg)] == ["embedding"]
    assert [n for n, _ in plan("hybrid", dense=[0.1], sparse=sv, limit=5, flt=None, config=cfg)] == ["embedding", "context"]
    # a query with no indexable word (all stop words) falls back to the vector alone
    assert [n for n, _ in plan("hybrid", dense=[0.1], sparse=SparseVec([], []), limit=5, flt=None, config=cfg)] == ["embedding"]
    assert plan("context", dense=None, sparse=SparseVec([], []), limit=5, flt=None, config=cfg) == []
    fr = plan("hybrid", dense=[0.1], sparse=sv, limit=5, flt=None, config=RetrievalConfig(hybrid_mode="filter_rerank"))
    assert fr[0][1].prefetch is not None and fr[0][1].prefetch.using == "sparse"
