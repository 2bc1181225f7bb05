"""Transparent long-term memory for ``langchain.agents.create_agent``.

::

    agent = create_agent(model, tools, middleware=[LightMemoryMiddleware(memory)],
                         context_schema=Context, checkpointer=InMemorySaver())
    agent.invoke({"messages": [...]}, config={"configurable": {"thread_id": "t1"}},
                 context=Context(user_id="maya"))

Before every model call the memories relevant to the latest user message, in the
run's scope, are added to the system message; after the run the exchange is handed
to ``add_memory``. Why these hooks:

* ``wrap_model_call`` (not ``before_model``) edits only the request, so recalled
  memories never enter the thread's state or checkpoint and are never re-saved as
  conversation; they are recomputed per model call (a tool loop re-uses the last
  retrieval for the same user message, see ``_recall``).
* ``after_agent`` runs once per invocation, when the exchange is complete. It calls
  ``add_memory`` without ``force_extract``: with an LLM pipeline the turns are only
  journaled and wait in the buffer, so saving adds no LLM call to the hot path. Set
  ``background=True`` to move the whole save (and the extraction a full buffer
  triggers) off the request path.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Awaitable, Callable, Mapping, Optional

from langchain.agents.middleware import AgentMiddleware, AgentState, ModelRequest, ModelResponse
from langchain_core.messages import SystemMessage
from langgraph.runtime import Runtime

from lightmem_core import AddResult, Hit, Scope
from lightmem_core.drive import Op, call, run_async, run_sync

from ._common import (
    ScopePolicy,
    exchange_turns,
    latest_user_text,
    memory_section,
    retrieve_kwargs,
    scope_kwargs,
)

log = logging.getLogger("lightmem_langchain.middleware")

DEFAULT_HEADER = (
    "Long-term memory: facts from earlier conversations with this user (oldest first; "
    "newer statements override older ones). Use them when relevant; do not mention this list."
)
MAX_QUERY_CHARS = 4000
_CACHE_SIZE = 256


def _current_config() -> Mapping[str, Any]:
    """The run's RunnableConfig (LangGraph sets it for every node); empty outside a run."""
    from langchain_core.runnables.config import var_child_runnable_config

    return var_child_runnable_config.get() or {}


class LightMemoryMiddleware(AgentMiddleware[AgentState[Any], Any]):
    """Recall before each model call, save after each run, in the caller's scope.

    Args:
        memory: a ``LightMemory``.
        k: entry memories to inject (summaries come on top when ``hierarchical``).
        hierarchical: summaries first, then entries of the best periods (the core's
            hierarchical retrieval); ``None`` leaves it to the memory's config.
        strategy: ``embedding``, ``context`` (BM25) or ``hybrid``; ``None`` = config.
        filters: core filters added to every recall (e.g. ``{"entry_type": "fact"}``).
        user_id / agent_id / session_id: fix a scope field for every run (an agent's
            own id, a single-user app). Unset fields come from the run's context, then
            ``config["configurable"]``; ``session_id`` falls back to the thread id.
        share_across_sessions: recall from every session of the user (default) rather
            than the current thread only.
        save: hand each finished exchange to ``add_memory``.
        background: save on a worker thread so the run returns without waiting
            (call ``wait()`` to join, e.g. before shutdown or in tests).
        min_score: drop hits scoring below this (scores depend on the strategy).
        header / formatter: how the memory section reads; ``formatter(hits) -> str``
            replaces the default layout entirely.
        raise_errors: by default a failing recall or save is logged and the agent
            goes on without memory; set to surface the error instead. A missing
            ``user_id`` is always raised: it is a wiring mistake, not an outage.
    """

    def __init__(
        self,
        memory: Any,
        *,
        k: int = 5,
        hierarchical: Optional[bool] = True,
        strategy: Optional[str] = None,
        filters: Optional[Mapping[str, Any]] = None,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        session_from_thread: bool = True,
        share_across_sessions: bool = True,
        save: bool = True,
        background: bool = False,
        min_score: Optional[float] = None,
        header: str = DEFAULT_HEADER,
        formatter: Optional[Callable[[list[Hit]], str]] = None,
        raise_errors: bool = False,
    ) -> None:
        super().__init__()
        if k < 1:
            raise ValueError("k must be at least 1")
        self.memory = memory
        self.k = k
        self.hierarchical = hierarchical
        self.strategy = strategy
        self.filters = dict(filters) if filters else None
        self.policy = ScopePolicy(
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            session_from_thread=session_from_thread,
            share_across_sessions=share_across_sessions,
        )
        self.save = save
        self.min_score = min_score
        self.header = header
        self.formatter = formatter
        self.raise_errors = raise_errors
        self._executor: Optional[ThreadPoolExecutor] = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="lightmem-save") if background else None
        )
        self._pending: list[Future[Any]] = []
        self._cache: OrderedDict[tuple[Any, ...], list[Hit]] = OrderedDict()
        self._lock = threading.Lock()

    # --- scope -----------------------------------------------------------------------------
    def resolve_scope(self, runtime: Optional[Runtime[Any]]) -> Scope:
        """The write scope of this run; override to derive it differently."""
        context = getattr(runtime, "context", None) if runtime is not None else None
        return self.policy.resolve(context, _current_config())

    # --- recall ----------------------------------------------------------------------------
    def _recall_args(self, request: ModelRequest[Any]) -> Optional[tuple[tuple[Any, ...], str, dict[str, Any]]]:
        query = latest_user_text(request.messages)
        if not query:
            return None
        query = query[-MAX_QUERY_CHARS:]
        read = self.policy.read_scope(self.resolve_scope(request.runtime))
        kwargs = {
            **retrieve_kwargs(strategy=self.strategy, hierarchical=self.hierarchical),
            **scope_kwargs(read),
            "limit": self.k,
            "filters": self.filters,
        }
        # The same user message is recalled once per run, however many model calls the tool loop makes.
        last = next((m for m in reversed(request.messages) if getattr(m, "type", None) == "human"), None)
        key = (read, getattr(last, "id", None) or query)
        return key, query, kwargs

    def _cached(self, key: tuple[Any, ...]) -> Optional[list[Hit]]:
        with self._lock:
            hits = self._cache.get(key)
            if hits is not None:
                self._cache.move_to_end(key)
            return hits

    def _remember(self, key: tuple[Any, ...], hits: list[Hit]) -> None:
        with self._lock:
            self._cache[key] = hits
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)

    def _inject(self, request: ModelRequest[Any], hits: list[Hit]) -> ModelRequest[Any]:
        if self.min_score is not None:
            hits = [h for h in hits if h.score >= self.min_score]
        if not hits:
            return request
        section = self.formatter(hits) if self.formatter else memory_section(hits, header=self.header)
        current = request.system_message
        if current is None:
            system = SystemMessage(content=section)
        elif isinstance(current.content, str):
            system = SystemMessage(content=f"{current.content}\n\n{section}" if current.content else section)
        else:
            system = SystemMessage(content=[*current.content, {"type": "text", "text": section}])
        return request.override(system_message=system)

    def _failed(self, what: str, exc: Exception) -> None:
        if self.raise_errors or str(getattr(exc, "field", "") or "").startswith("scope"):
            raise exc
        log.warning("LightMem %s failed, the agent goes on without it: %s", what, exc, exc_info=True)

    def _recall_op(self, request: ModelRequest[Any]) -> Op[ModelRequest[Any]]:
        args = self._recall_args(request)
        if args is None:
            return request
        key, query, kwargs = args
        hits = self._cached(key)
        if hits is None:
            hits = yield call(self.memory.retrieve, query, **kwargs)
            self._remember(key, hits)
        return self._inject(request, hits)

    def wrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], ModelResponse[Any]]
    ) -> Any:
        try:
            request = run_sync(self._recall_op(request))
        except Exception as exc:  # noqa: BLE001 - policy in _failed
            self._failed("recall", exc)
        return handler(request)

    async def awrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]]
    ) -> Any:
        try:
            request = await run_async(self._recall_op(request))
        except Exception as exc:  # noqa: BLE001
            self._failed("recall", exc)
        return await handler(request)

    # --- save ------------------------------------------------------------------------------
    def _save_args(
        self, state: Mapping[str, Any], runtime: Runtime[Any]
    ) -> Optional[tuple[list[dict[str, Any]], Scope]]:
        if not self.save:
            return None
        turns = exchange_turns(state.get("messages") or [])
        if not turns:
            return None
        return turns, self.resolve_scope(runtime)

    def _log_result(self, result: AddResult) -> None:
        if result.error:
            log.warning("LightMem kept the exchange pending: %s", result.error)
        log.debug(
            "LightMem saved %d turn(s), %d entr(y/ies), %d pending",
            len(result.turn_ids),
            len(result.added),
            result.pending_turns,
        )

    def _save_sync(self, turns: list[dict[str, Any]], scope: Scope) -> None:
        try:
            self._log_result(self.memory.add_memory(turns, **scope_kwargs(scope)))
            with self._lock:
                self._cache.clear()
        except Exception as exc:  # noqa: BLE001
            self._failed("save", exc)

    def _dispatch_save(
        self, state: Mapping[str, Any], runtime: Runtime[Any]
    ) -> Optional[tuple[list[dict[str, Any]], Scope]]:
        """What the caller must save inline; None when there is nothing to save or the
        save went to the background worker."""
        try:
            args = self._save_args(state, runtime)
        except Exception as exc:  # noqa: BLE001
            self._failed("save", exc)
            return None
        if args is not None and self._executor is not None:
            self._track(self._executor.submit(self._save_sync, *args))
            return None
        return args

    def after_agent(self, state: AgentState[Any], runtime: Runtime[Any]) -> Optional[dict[str, Any]]:
        args = self._dispatch_save(state, runtime)
        if args is not None:
            self._save_sync(*args)
        return None

    async def aafter_agent(self, state: AgentState[Any], runtime: Runtime[Any]) -> Optional[dict[str, Any]]:
        args = self._dispatch_save(state, runtime)
        if args is None:
            return None
        turns, scope = args
        try:
            self._log_result(await self.memory.aadd_memory(turns, **scope_kwargs(scope)))
            with self._lock:
                self._cache.clear()
        except Exception as exc:  # noqa: BLE001
            self._failed("save", exc)
        return None

    # --- background saves ------------------------------------------------------------------
    def _track(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending = [f for f in self._pending if not f.done()] + [future]

    def wait(self, timeout: Optional[float] = None) -> None:
        """Block until every background save has finished."""
        with self._lock:
            pending = list(self._pending)
        for f in pending:
            f.result(timeout=timeout)

    async def await_saves(self) -> None:
        await asyncio.to_thread(self.wait)

    def close(self) -> None:
        """Finish background saves and stop the worker (the memory itself stays open)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
