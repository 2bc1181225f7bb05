"""Counts and extremes the pages need, answered by the store's payload indexes.

``LightMemory`` has no public count, and counting a scope by paging through it would
read every entry: 100k of them is seconds, where a page has 100 ms. The store answers a
filtered count, or the newest point of a filter, from its indexes in well under a
millisecond. These reads go through ``MemoryStore``'s public methods, which AND the
caller's ``Scope`` into every filter: a count can only ever cover that scope. Callers
check the key against the scope first, as every other page read does.

This is the one place the inspector reads below ``LightMemory``'s public API; if the
memory does not expose its collections (``available`` is False) the pages show no
counts and no chart rather than failing.
"""

from __future__ import annotations

from typing import Any, Optional

from ...indexing import from_payload
from ...store.base import Filter, Match, Range
from ...types import MemoryEntry, Scope

ORDER = "_ts"  # when it happened (the time stamp, or when it was recorded): what listings are ordered by
RECORDED = "_rec"


class StoreReads:
    def __init__(self, memory: Any) -> None:
        stores = getattr(memory, "_stores", None)
        self._stores: Optional[dict[str, Any]] = stores if isinstance(stores, dict) else None

    @property
    def available(self) -> bool:
        return self._stores is not None and "entries" in self._stores

    def _store(self, collection: str) -> Any:
        assert self._stores is not None
        return self._stores.get(collection, self._stores["entries"])

    def count(self, scope: Scope, flt: Optional[Filter] = None, *, collection: str = "entries") -> int:
        return int(self._store(collection).count(scope, flt))

    def newest(self, scope: Scope, key: str = RECORDED, *, collection: str = "entries") -> Optional[float]:
        """The largest value of an ordered payload key in the scope (None when empty)."""
        records = self._store(collection).scroll(scope, None, limit=1, order_by=key, descending=True)
        return float(records[0].payload.get(key) or 0.0) if records else None

    def extent(
        self, scope: Scope, flt: Optional[Filter] = None, *, collection: str = "entries"
    ) -> Optional[tuple[float, float]]:
        """The first and last time stamp (epoch seconds) of what the filter matches."""
        store = self._store(collection)
        first = store.scroll(scope, flt, limit=1, order_by=ORDER, descending=False)
        if not first:
            return None
        last = store.scroll(scope, flt, limit=1, order_by=ORDER, descending=True)
        return float(first[0].payload.get(ORDER) or 0.0), float(last[0].payload.get(ORDER) or 0.0)

    def recent_agents(self, scope: Scope, limit: int) -> set[str]:
        """The agents of the scope's most recently recorded entries (their payloads only, unparsed)."""
        records = self._store("entries").scroll(scope, None, limit=limit, order_by=RECORDED, descending=True)
        return {str(r.payload["agent_id"]) for r in records if r.payload.get("agent_id")}

    def superseded_into(self, scope: Scope, memory_id: str, limit: int = 20) -> list[MemoryEntry]:
        """The entries an entry superseded (their ``superseded_by`` names it), oldest first.

        ``superseded_by`` has no index of its own, but only superseded entries carry it, and
        ``_current`` is indexed: the engine scans the scope's superseded entries only."""
        flt = Filter(must=(Match("_current", 0), Match("superseded_by", memory_id)))
        records = self._store("entries").scroll(scope, flt, limit=limit)
        entries = [from_payload(r.payload) for r in records]
        return sorted(entries, key=lambda e: (e.time_stamp or e.recorded_at, e.id))


def entry_filter(
    *,
    speaker: Optional[str] = None,
    entry_type: Optional[str] = None,
    since: Optional[float] = None,
    until: Optional[float] = None,
    current: Optional[int] = None,
) -> Optional[Filter]:
    """The store filter of the timeline's choices (the same ones ``get_page`` is given)."""
    must: list[Any] = []
    if speaker:
        must.append(Filter(should=(Match("speaker_name", speaker), Match("speaker_id", speaker))))
    if entry_type and entry_type != "summary":  # summaries are a collection of their own
        must.append(Match("entry_type", entry_type))
    if since is not None or until is not None:
        must.append(Range(ORDER, gte=since, lt=until))
    if current is not None:
        must.append(Match("_current", current))
    return Filter(must=tuple(must)) if must else None
