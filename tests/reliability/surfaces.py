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
    """One item a caller got back. ``block`` marks prompt text rendered from several
    items (it may be empty of the caller's memories, but must hold no one else's)."""

    text: str
    id: Optional[str] = None
    user_id: Optional[str] = None
    session_id: Optional[str] = None
    block: bool = False


def seen(entry: MemoryEntry) -> Seen:
    return Seen(entry.memory, entry.id, entry.user_id, entry.session_id)


class Surface:
    name = "surface"
    #: retrieval modes this surface offers: core strategy names, or "hierarchical"
    strategies: tuple[str, ...] = ("hybrid",)

    def add(self, who: Who, turns: list[dict[str, Any]]) -> list[str]:
        """Journal the turns; returns the turn ids they were stored under."""
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

    def add(self, who: Who, turns: list[dict[str, Any]]) -> list[str]:
        if self._async():
            result = asyncio.run(self.memory.aadd_memory(turns, user_id=who.user, session_id=who.session))
        else:
            result = self.memory.add_memory(turns, user_id=who.user, session_id=who.session)
        return result.turn_ids + result.duplicate_turn_ids

    def retrieve(self, who: Who, query: str, strategy: str) -> list[Seen]:
        kw: dict[str, Any] = {"user_id": who.user, "session_id": who.session, "limit": 8}
        if strategy == "hierarchical":
            kw["hierarchical"] = True
        elif strategy == "superseded":
            kw["include_superseded"] = True
        else:
            kw["strategy"] = strategy
        hits: list[Hit] = (
            asyncio.run(self.memory.aretrieve(query, **kw)) if self._async() else self.memory.retrieve(query, **kw)
        )
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
# Each adapter surface is the core surface with the operations the adapter offers done
# through the adapter; the rest (e.g. writes a retriever cannot do) still go through the
# core, as they would in an application that uses both.


SESSIONS = (None, "s1", "s2")  # the sessions the isolation test's callers use


def _strategy_kwargs(strategy: str) -> dict[str, Any]:
    if strategy == "hierarchical":
        return {"hierarchical": True}
    if strategy == "superseded":
        return {"include_superseded": True}
    return {"strategy": strategy}


class LangChainRetrieverSurface(CoreSurface):
    """``lightmem_langchain.LightMemRetriever``: one retriever, the scope set per call."""

    name = "langchain-retriever"

    def __init__(self, memory: LightMemory) -> None:
        super().__init__(memory)
        from lightmem_langchain import LightMemRetriever

        self.retriever = LightMemRetriever(memory=memory, k=8)

    def retrieve(self, who: Who, query: str, strategy: str) -> list[Seen]:
        kw = {"user_id": who.user, "session_id": who.session, **_strategy_kwargs(strategy)}
        docs = asyncio.run(self.retriever.ainvoke(query, **kw)) if self._async() else self.retriever.invoke(query, **kw)
        return [Seen(d.page_content, d.id, d.metadata.get("user_id"), d.metadata.get("session_id")) for d in docs]


class LangGraphStoreSurface(CoreSurface):
    """``lightmem_langchain.LightMemStore``: namespaces ("memories", user[, "_", session])."""

    name = "langgraph-store"
    strategies = ("hybrid",)

    def __init__(self, memory: LightMemory) -> None:
        super().__init__(memory)
        from lightmem_langchain import LightMemStore

        self.store = LightMemStore(memory)

    @staticmethod
    def _ns(who: Who) -> tuple[str, ...]:
        return ("memories", who.user) if who.session is None else ("memories", who.user, "_", who.session)

    @staticmethod
    def _seen(item: Any) -> Seen:
        value = item.value
        text = value.get("memory") or value.get("content") or json.dumps(value)
        ns = tuple(item.namespace)
        return Seen(text, item.key, ns[1] if len(ns) > 1 else None, ns[3] if len(ns) > 3 else None)

    def retrieve(self, who: Who, query: str, strategy: str) -> list[Seen]:
        items = (
            asyncio.run(self.store.asearch(self._ns(who), query=query, limit=8))
            if self._async()
            else self.store.search(self._ns(who), query=query, limit=8)
        )
        return [self._seen(i) for i in items]

    def get_all(self, who: Who) -> list[Seen]:
        return [self._seen(i) for i in self.store.search(self._ns(who), limit=1000)]

    def _locate(self, who: Who, memory_id: str) -> Optional[Any]:
        """The item under ``memory_id`` in the caller's namespaces (an item lives in its
        session's namespace): a search on the user's prefix, which lists current memories,
        then a ``get`` in each namespace the caller uses (``get`` also returns superseded ones)."""
        found = [i for i in self.store.search(("memories", who.user), limit=1000) if i.key == memory_id]
        spaces = [tuple(i.namespace) for i in found] + [self._ns(Who(who.user, s)) for s in SESSIONS]
        return next((item for ns in spaces if (item := self.store.get(ns, memory_id)) is not None), None)

    def get(self, who: Who, memory_id: str) -> Optional[Seen]:
        item = self._locate(who, memory_id)
        return None if item is None else self._seen(item)

    def update(self, who: Who, memory_id: str, text: str) -> bool:
        item = self._locate(who, memory_id)
        if item is not None:
            self.store.put(tuple(item.namespace), memory_id, {"content": text})
        return item is not None

    def delete(self, who: Who, memory_id: str) -> bool:
        item = self._locate(who, memory_id)
        if item is not None:
            self.store.delete(tuple(item.namespace), memory_id)
        return item is not None


class LlamaIndexRetrieverSurface(CoreSurface):
    """``lightmem_llamaindex.LightMemRetriever``: a retriever per scope, as LlamaIndex apps build them."""

    name = "llamaindex-retriever"

    def retrieve(self, who: Who, query: str, strategy: str) -> list[Seen]:
        from lightmem_llamaindex import LightMemRetriever

        retriever = LightMemRetriever(
            self.memory, user_id=who.user, session_id=who.session, limit=8, **_strategy_kwargs(strategy)
        )
        nodes = asyncio.run(retriever.aretrieve(query)) if self._async() else retriever.retrieve(query)
        return [
            Seen(
                n.node.get_content(), n.node.node_id, n.node.metadata.get("user_id"), n.node.metadata.get("session_id")
            )
            for n in nodes
        ]


class LlamaIndexMemorySurface(CoreSurface):
    """``lightmem_llamaindex.LightMemMemory``: chat turns in through ``put_messages``, memories
    out through ``get`` (the system message a chat engine would send, and ``last_hits``)."""

    name = "llamaindex-memory"
    strategies = ("hierarchical",)

    def _memory(self, who: Who) -> Any:
        """A LightMemMemory per call, as a chat engine per conversation would hold. The recent
        chat is a ``ChatMemoryBuffer``: the default ``Memory`` keeps it in aiosqlite, whose
        worker threads outlive the event loops of hundreds of short-lived instances."""
        from llama_index.core.memory import ChatMemoryBuffer

        from lightmem_llamaindex import LightMemMemory

        return LightMemMemory(
            self.memory,
            primary_memory=ChatMemoryBuffer.from_defaults(),
            user_id=who.user,
            session_id=who.session,
            session_scoped_reads=who.session is not None,
        )

    def add(self, who: Who, turns: list[dict[str, Any]]) -> list[str]:
        from llama_index.core.llms import ChatMessage

        from lightmem_llamaindex import TURN_ID_KEY

        messages = [
            ChatMessage(role=t["role"], content=t["content"], additional_kwargs={TURN_ID_KEY: t["id"]}) for t in turns
        ]
        self._memory(who).put_messages(messages)
        return [t["id"] for t in turns]

    def retrieve(self, who: Who, query: str, strategy: str) -> list[Seen]:
        memory = self._memory(who)
        messages = memory.get(input=query)
        shown = [Seen(m.content or "", block=True) for m in messages if m.role.value == "system"]
        return shown + [Seen(h.entry.memory, h.entry.id, h.entry.user_id, h.entry.session_id) for h in memory.last_hits]


class MCPSurface(CoreSurface):
    """The MCP tools of ``lightmem_core.mcp``, called through fastmcp's in-process ``Client``."""

    name = "mcp"
    strategies = ("embedding", "context", "hybrid", "hierarchical")

    def __init__(self, memory: LightMemory) -> None:
        super().__init__(memory)
        from fastmcp import Client  # noqa: F401  (ImportError: surface unavailable)

        from lightmem_core.mcp import create_server

        self.server = create_server(memory)

    def _call(self, tool: str, args: dict[str, Any]) -> Optional[dict[str, Any]]:
        """The tool's structured result, or None when it answered "not found"."""
        from fastmcp import Client
        from fastmcp.exceptions import ToolError

        async def go() -> Any:
            async with Client(self.server) as client:
                return await client.call_tool(tool, args)

        try:
            result = asyncio.run(go())
        except ToolError as exc:
            if "not found in this scope" in str(exc):
                return None
            raise
        return result.structured_content

    @staticmethod
    def _scope(who: Who) -> dict[str, Any]:
        return {"user_id": who.user, **({"session_id": who.session} if who.session else {})}

    @staticmethod
    def _seen(d: dict[str, Any]) -> Seen:
        return Seen(d["memory"], d["id"], d["user_id"], d.get("session_id"))

    def add(self, who: Who, turns: list[dict[str, Any]]) -> list[str]:
        ids = []
        for t in turns:
            out = self._call(
                "add_memory", {"user_input": t["content"], "time_stamp": t.get("time_stamp"), **self._scope(who)}
            )
            assert out is not None and not out["error"]
            ids += out["turn_ids"]
        return ids

    def retrieve(self, who: Who, query: str, strategy: str) -> list[Seen]:
        args = {"query": query, "limit": 8, **self._scope(who), **_strategy_kwargs(strategy)}
        out = self._call("retrieve_memory", args)
        assert out is not None
        return [self._seen(m) for m in out["memories"]] + [Seen(out["formatted"], block=True)]

    def get_all(self, who: Who) -> list[Seen]:
        out = self._call("list_memories", {"limit": 1000, "include_superseded": True, **self._scope(who)})
        assert out is not None
        return [self._seen(m) for m in out["memories"]]

    def get(self, who: Who, memory_id: str) -> Optional[Seen]:
        out = self._call("get_memory", {"memory_id": memory_id, **self._scope(who)})
        if out is None:
            return None
        assert all(t["content"] for t in out["sources"])
        return self._seen(out)

    def update(self, who: Who, memory_id: str, text: str) -> bool:
        return (
            self._call("update_memory", {"memory_id": memory_id, "memory_text": text, **self._scope(who)}) is not None
        )

    def delete(self, who: Who, memory_id: str) -> bool:
        return self._call("delete_memory", {"memory_id": memory_id, **self._scope(who)}) is not None

    def history(self, who: Who, memory_id: str) -> Optional[list[str]]:
        out = self._call("memory_history", {"memory_id": memory_id, **self._scope(who)})
        if out is None:
            return None
        return [t for r in out["history"] for t in (r["old_memory"], r["new_memory"]) if t]

    def offline_update(self, who: Optional[Who]) -> None:
        if who is None:
            super().offline_update(None)  # the tool works per user; "all users" is the core's call
            return
        assert (
            self._call("offline_update", {"user_id": who.user, "score_threshold": 0.1, "top_k": 10, "keep_top_n": 5})
            is not None
        )

    def summarize(self, who: Who) -> list[Seen]:
        out = self._call("summarize", {"window": "session", **self._scope(who)})
        assert out is not None
        return [self._seen(m) for m in out["summaries"]]


SURFACES: dict[str, Callable[[LightMemory], Surface]] = {
    "core": CoreSurface,
    "langchain-retriever": LangChainRetrieverSurface,
    "langgraph-store": LangGraphStoreSurface,
    "llamaindex-retriever": LlamaIndexRetrieverSurface,
    "llamaindex-memory": LlamaIndexMemorySurface,
    "mcp": MCPSurface,
}


def build_surface(name: str, memory: LightMemory) -> Surface:
    try:
        return SURFACES[name](memory)
    except ImportError as exc:
        raise Unsupported(f"{name}: adapter not importable: {exc}") from exc
