"""The ways a caller can reach memories, behind one small interface for the isolation test.

Each ``Surface`` performs the isolation test's operations through one public entry
point -- the core ``LightMemory``, a framework adapter, the MCP tools -- and reports
what the caller got back as ``Seen`` items (text, and id / user / session where the
surface exposes them). The test does not trust a surface's own view of ownership: it
checks texts against per-user secret words, and the store state through the core.

An operation a surface does not offer raises ``Unsupported``; the runner skips it for
that surface. Adapter surfaces are built by ``build_surface``, which imports the
adapter lazily so a missing framework skips its surface instead of failing collection.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Callable, Optional

from lightmem_core import Hit, LightMemory, MemoryEntry, NotFoundError


class Unsupported(Exception):
    """This surface has no way to perform the operation."""


@dataclass(frozen=True)
class Who:
    """The caller: a user, optionally narrowed to one session."""

    user: str
    session: Optional[str] = None


@dataclass(frozen=True)
class Seen:
    """One item a caller got back."""

    text: str
    id: Optional[str] = None
    user_id: Optional[str] = None
    session_id: Optional[str] = None


def seen(entry: MemoryEntry) -> Seen:
    return Seen(entry.memory, entry.id, entry.user_id, entry.session_id)


class Surface:
    name = "surface"
    #: retrieval modes this surface offers: core strategy names, or "hierarchical"
    strategies: tuple[str, ...] = ("hybrid",)

    def add(self, who: Who, turns: list[dict[str, Any]]) -> None:
        raise Unsupported

    def retrieve(self, who: Who, query: str, strategy: str) -> list[Seen]:
        raise Unsupported

    def get_all(self, who: Who) -> list[Seen]:
        raise Unsupported

    def get(self, who: Who, memory_id: str) -> Optional[Seen]:
        """The entry, or None when it is not found in the caller's scope."""
        raise Unsupported

    def update(self, who: Who, memory_id: str, text: str) -> bool:
        """True when updated, False when not found in the caller's scope."""
        raise Unsupported

    def delete(self, who: Who, memory_id: str) -> bool:
        raise Unsupported

    def history(self, who: Who, memory_id: str) -> Optional[list[str]]:
        """Texts in the entry's history, or None when not found in the caller's scope."""
        raise Unsupported

    def offline_update(self, who: Optional[Who]) -> None:
        raise Unsupported

    def summarize(self, who: Who) -> list[Seen]:
        raise Unsupported


class CoreSurface(Surface):
    """``LightMemory`` itself, sync and async calls alternating."""

    name = "core"
    strategies = ("embedding", "context", "hybrid", "hierarchical", "superseded")

    def __init__(self, memory: LightMemory) -> None:
        self.memory = memory
        self._calls = 0

    def _async(self) -> bool:
        self._calls += 1
        return self._calls % 3 == 0  # every third call through the async twin

    def add(self, who: Who, turns: list[dict[str, Any]]) -> None:
        if self._async():
            asyncio.run(self.memory.aadd_memory(turns, user_id=who.user, session_id=who.session))
        else:
            self.memory.add_memory(turns, user_id=who.user, session_id=who.session)

    def retrieve(self, who: Who, query: str, strategy: str) -> list[Seen]:
        kw: dict[str, Any] = {"user_id": who.user, "session_id": who.session, "limit": 8}
        if strategy == "hierarchical":
            kw["hierarchical"] = True
        elif strategy == "superseded":
            kw["include_superseded"] = True
        else:
            kw["strategy"] = strategy
        hits: list[Hit] = (asyncio.run(self.memory.aretrieve(query, **kw)) if self._async()
                           else self.memory.retrieve(query, **kw))
        return [seen(h.entry) for h in hits]

    def get_all(self, who: Who) -> list[Seen]:
        entries = self.memory.get_all(user_id=who.user, session_id=who.session, limit=10_000, include_superseded=True)
        return [seen(e) for e in entries]

    def get(self, who: Who, memory_id: str) -> Optional[Seen]:
        try:
            return seen(self.memory.get(memory_id, user_id=who.user, session_id=who.session))
        except NotFoundError:
            return None

    def update(self, who: Who, memory_id: str, text: str) -> bool:
        try:
            self.memory.update(memory_id, text, user_id=who.user, session_id=who.session, reason="isolation test")
        except NotFoundError:
            return False
        return True

    def delete(self, who: Who, memory_id: str) -> bool:
        try:
            if self._async():
                asyncio.run(self.memory.adelete(memory_id, user_id=who.user, session_id=who.session))
            else:
                self.memory.delete(memory_id, user_id=who.user, session_id=who.session)
        except NotFoundError:
            return False
        return True

    def history(self, who: Who, memory_id: str) -> Optional[list[str]]:
        try:
            records = self.memory.history(memory_id, user_id=who.user, session_id=who.session)
        except NotFoundError:
            return None
        return [t for r in records for t in (r.old_memory, r.new_memory) if t]

    def offline_update(self, who: Optional[Who]) -> None:
        user = who.user if who else None
        self.memory.construct_update_queue_all_entries(top_k=10, keep_top_n=5, user_id=user)
        self.memory.offline_update_all_entries(score_threshold=0.1, user_id=user)

    def summarize(self, who: Who) -> list[Seen]:
        return [seen(e) for e in self.memory.summarize(user_id=who.user, session_id=who.session, window="session")]


# --- adapter surfaces --------------------------------------------------------------------
# The adapters (lightmem_langchain, lightmem_llamaindex, lightmem_core.mcp) are written in
# parallel with this suite. Each builder below returns a Surface over the shared core
# memory, or raises ``Unsupported`` with the reason the surface cannot be built yet.

SURFACES: dict[str, Callable[[LightMemory], Surface]] = {"core": CoreSurface}


def build_surface(name: str, memory: LightMemory) -> Surface:
    try:
        return SURFACES[name](memory)
    except ImportError as exc:
        raise Unsupported(f"{name}: adapter not importable: {exc}") from exc


def _json(text: Any) -> Any:
    return json.loads(text) if isinstance(text, str) else text
