"""A retrieve call checked field by field before anything is embedded or searched.

Every rejection is an ``InvalidInputError`` naming the argument, so the library, the
REST API (400 with the field) and the MCP tools report bad input the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Optional

from .. import timeparse
from ..config import RetrievalConfig
from ..errors import InvalidInputError
from ..store.base import Filter, Match
from ..types import clean_text
from .candidates import STRATEGIES
from .filters import parse_filters, reads_summaries

MAX_QUERY_CHARS = 10_000


def valid_query(query: Any) -> str:
    if not isinstance(query, str):
        raise InvalidInputError("query", f"expected a string, got {type(query).__name__}")
    try:
        query = clean_text(query, what="query").strip()
    except ValueError as exc:
        raise InvalidInputError("query", str(exc)) from None
    if not query:
        raise InvalidInputError("query", "is empty")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInputError("query", f"longer than {MAX_QUERY_CHARS} characters")
    return query


def valid_limit(limit: Any, field: str = "limit", maximum: int = 1000) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= maximum:
        raise InvalidInputError(field, f"expected an integer from 1 to {maximum}, got {limit!r}")
    return limit


@dataclass(frozen=True)
class RetrieveRequest:
    query: str
    limit: int
    strategy: str
    hierarchical: bool
    now: Optional[datetime]
    filter: Optional[Filter]  # the caller's filters, as a store filter
    include_superseded: bool
    summaries_only: bool  # filters={"entry_type": "summary"}: the summaries' own collection

    @property
    def search_filter(self) -> Optional[Filter]:
        """The caller's filter, and current entries only unless superseded ones are asked for."""
        if self.include_superseded:
            return self.filter
        return Filter(must=(Match("_current", 1),)) & self.filter

    @classmethod
    def of(
        cls,
        query: Any,
        limit: Any,
        filters: Optional[Mapping[str, Any]],
        *,
        strategy: Optional[str],
        include_superseded: bool,
        hierarchical: Optional[bool],
        now: Any,
        config: RetrievalConfig,
        index_strategy: str,
    ) -> RetrieveRequest:
        query = valid_query(query)
        limit = valid_limit(limit)
        strategy = strategy or config.strategy
        if strategy not in STRATEGIES:
            raise InvalidInputError("strategy", f"unknown strategy {strategy!r}; expected one of {list(STRATEGIES)}")
        if index_strategy != "hybrid" and strategy != index_strategy:
            raise InvalidInputError(
                "strategy", f"{strategy!r} needs vectors this store does not keep (index_strategy={index_strategy!r})"
            )
        if hierarchical is None:
            hierarchical = config.hierarchical
        elif not isinstance(hierarchical, bool):
            raise InvalidInputError("hierarchical", f"expected true or false, got {hierarchical!r}")
        if hierarchical and "hierarchical" not in config.stages:
            raise InvalidInputError("hierarchical", "the 'hierarchical' stage is not in retrieval.stages")
        try:
            reference = timeparse.parse_time(now) if now is not None else None
        except ValueError as exc:
            raise InvalidInputError("now", str(exc)) from None
        flt = parse_filters(filters)
        return cls(query, limit, strategy, hierarchical, reference, flt, include_superseded, reads_summaries(filters))
