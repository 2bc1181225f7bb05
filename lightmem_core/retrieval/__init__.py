"""Retrieval: one module per step of the read path, in the order a request meets them.

``request`` checks the call, ``query`` reads the question, ``filters`` turns user
filters into store filters, ``candidates`` names and plans the lists, ``fusion`` ranks
them, ``stages`` holds the named steps that can each be switched off, and ``pipeline``
runs them. Strategies: ``embedding`` (dense), ``context`` (BM25) and ``hybrid`` (both,
fused by reciprocal rank, or with ``hybrid_mode="filter_rerank"`` BM25 candidates
re-ranked by the vector, upstream LightMem's way).
"""

from .candidates import STRATEGIES, Boost, CandidateList, ListKind, Retriever, plan
from .filters import FILTER_FIELDS, LOGICAL, parse_filters, reads_summaries, time_filter
from .fusion import RANKING_FIELDS, fuse, rank, sibling_ids, to_hits
from .pipeline import ReadPath
from .query import QueryAnalysis, asks_for_name, named_speakers, speaker_filter, without_roles
from .request import MAX_QUERY_CHARS, RetrieveRequest, valid_limit, valid_query
from .stages import STAGE_NAMES, Sources

__all__ = [
    "FILTER_FIELDS",
    "LOGICAL",
    "MAX_QUERY_CHARS",
    "RANKING_FIELDS",
    "STAGE_NAMES",
    "STRATEGIES",
    "Boost",
    "CandidateList",
    "ListKind",
    "QueryAnalysis",
    "ReadPath",
    "RetrieveRequest",
    "Retriever",
    "Sources",
    "asks_for_name",
    "fuse",
    "named_speakers",
    "parse_filters",
    "plan",
    "reads_summaries",
    "rank",
    "sibling_ids",
    "speaker_filter",
    "time_filter",
    "to_hits",
    "valid_limit",
    "valid_query",
    "without_roles",
]
