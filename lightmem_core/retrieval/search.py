"""One plain ranked search with full payloads: the summaries' level of hierarchical retrieval."""

from __future__ import annotations

from typing import Any, Optional

from ..config import RetrievalConfig
from ..drive import Op, call
from ..store.base import Filter, MemoryStore
from ..types import Hit, Scope
from .candidates import Boost, CandidateList, ListKind, plan, retriever_weight
from .fusion import fuse


def ranked_search_op(
    store: MemoryStore,
    scope: Scope,
    strategy: str,
    *,
    dense: Any,
    sparse: Any,
    limit: int,
    flt: Optional[Filter],
    config: RetrievalConfig,
    boost: Boost = Boost.NONE,
) -> Op[list[Hit]]:
    got = plan(strategy, dense=dense, sparse=sparse, limit=limit, flt=flt, config=config)
    if not got:
        return []
    results = yield call(store.search, scope, [q for _, q in got])
    lists = [
        CandidateList(ListKind(retriever, boost), records, retriever_weight(retriever, config))
        for (retriever, _), records in zip(got, results)
    ]
    return fuse(lists, limit=limit, rrf_k=config.rrf_k)
