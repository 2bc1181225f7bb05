"""Candidate lists: which retriever found them, which boost they stand for, their weight.

A list is named by its ``ListKind`` (an enum pair), never by a string parsed back; the
label a hit reports in ``Hit.retrievers`` ("embedding", "time:context", ...) is derived
from it, for people and for the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Optional, Sequence, Union

from ..config import RetrievalConfig
from ..lexical import SparseVec
from ..store.base import Filter, Record, VectorQuery

STRATEGIES = ("embedding", "context", "hybrid")


class Retriever(str, Enum):
    EMBEDDING = "embedding"
    CONTEXT = "context"
    # BM25 candidates re-ranked by the vector (``hybrid_mode="filter_rerank"``, upstream's)
    CONTEXT_EMBEDDING = "context+embedding"


class Boost(str, Enum):
    """Why a list was searched: the plain query, or one of the lists that only re-weigh."""

    NONE = ""
    PERIOD = "time"
    SUMMARY = "summary"
    SPEAKER = "speaker"
    NEIGHBOUR = "neighbour"


@dataclass(frozen=True)
class ListKind:
    retriever: Retriever
    boost: Boost = Boost.NONE

    @property
    def label(self) -> str:
        return f"{self.boost.value}:{self.retriever.value}" if self.boost is not Boost.NONE else self.retriever.value


@dataclass
class CandidateList:
    kind: ListKind
    records: list[Record] = field(default_factory=list)
    weight: float = 1.0

    @property
    def is_base_vector_list(self) -> bool:
        """The plain query's vector list: its scores are cosines to the question."""
        return self.kind == ListKind(Retriever.EMBEDDING)


def retriever_weight(retriever: Retriever, config: RetrievalConfig) -> float:
    return config.context_weight if retriever is Retriever.CONTEXT else 1.0


def plan(
    strategy: str,
    *,
    dense: Optional[Sequence[float]],
    sparse: Optional[SparseVec],
    limit: int,
    flt: Optional[Filter],
    config: RetrievalConfig,
    payload: Optional[tuple[str, ...]] = None,
    fetch: Optional[int] = None,
) -> list[tuple[Retriever, VectorQuery]]:
    """The engine queries for a strategy, each with the retriever it stands for.

    ``payload`` limits the payload keys each candidate comes back with (None = all);
    ``fetch`` the candidates per list (None = from the limit and ``config.candidates``).
    """
    if fetch is None:
        fetch = max(limit * 3, config.candidates) if config.per_source_limit else max(limit, config.candidates)

    def query(using: str, vector: Union[Sequence[float], SparseVec, None]) -> VectorQuery:
        assert vector is not None
        return VectorQuery(using, vector, fetch, flt, payload=payload)  # type: ignore[arg-type]

    has_sparse = sparse is not None and len(sparse) > 0
    if strategy == "embedding":
        return [(Retriever.EMBEDDING, query("dense", dense))]
    if strategy == "context":
        return [(Retriever.CONTEXT, query("sparse", sparse))] if has_sparse else []
    if config.hybrid_mode == "filter_rerank" and has_sparse:
        rerank = query("dense", dense)
        rerank.prefetch = VectorQuery("sparse", sparse, fetch, flt)  # type: ignore[arg-type]
        return [(Retriever.CONTEXT_EMBEDDING, rerank)]
    queries = [(Retriever.EMBEDDING, query("dense", dense))]
    if has_sparse:
        queries.append((Retriever.CONTEXT, query("sparse", sparse)))
    return queries
