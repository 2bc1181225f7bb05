"""``LightMemMemory``: a complete chat-engine memory in the style of ``Mem0Memory``.

Recent chat lives in a LlamaIndex ``Memory`` (the *primary* memory, short-term);
every message put is also journaled in LightMem at once, and every ``get`` returns
the recent chat with one system message in front holding what LightMem recalls for
the latest user message. Pass it as ``memory=`` to ``SimpleChatEngine``,
``CondensePlusContextChatEngine``, ``FunctionAgent`` / ``AgentWorkflow`` ``run``.

Each method is written once as an operation and run by the core's driver, sync or on
the event loop with the core's (and the primary memory's) ``a*`` twins, so an agent's
event loop is never blocked by the store or the embedder. Memories made only from turns that are
still in the recent chat are left out of the system message: they are in the prompt
already, and the current question would otherwise be its own best match.
"""

from __future__ import annotations

import logging
from typing import Any, List, Mapping, Optional, Union

from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.bridge.pydantic import Field, PrivateAttr, SerializeAsAny
from llama_index.core.memory import Memory
from llama_index.core.memory.types import BaseMemory

from lightmem_core import AddResult, Hit, LightMemory, MemoryConfig, RemoteMemory
from lightmem_core.drive import Op, call, run_async, run_sync

from ._convert import (
    DEFAULT_HEADER,
    fetch_limit,
    query_from,
    recent_turn_ids,
    render_hits,
    stamp_turn_ids,
    to_turns,
    without_recent,
)

log = logging.getLogger(__name__)

__all__ = ["LightMemMemory"]


class LightMemMemory(BaseMemory):
    """Short-term chat (LlamaIndex ``Memory``) plus LightMem long-term recall for one scope.

    ``user_id`` / ``agent_id`` / ``session_id`` fix the scope: every write is stamped
    with all three; reads cover all of the user's (and agent's) sessions unless
    ``session_scoped_reads`` is set, since recalling earlier sessions is the point.
    ``reset()`` clears the recent chat only; ``reset(long_term=True)`` also deletes the
    scope's long-term memories (history keeps a DELETE record of each).
    """

    primary_memory: SerializeAsAny[BaseMemory] = Field(description="Short-term chat history.")
    user_id: Optional[str] = Field(default=None, description="Whose memories; None = the core's default user.")
    agent_id: Optional[str] = None
    session_id: Optional[str] = None
    session_scoped_reads: bool = False
    search_limit: int = Field(default=8, ge=1, le=1000, description="Entry hits per get (summaries come on top).")
    hierarchical: bool = True
    query_window: int = Field(default=1, ge=1, description="How many latest user messages form the query.")
    filters: Optional[dict[str, Any]] = None
    header: Optional[str] = DEFAULT_HEADER
    force_extract: bool = Field(
        default=False,
        description="With an LLM memory manager: extract at every put instead of waiting for a full buffer.",
    )

    _lightmem: LightMemory = PrivateAttr()
    _owns_lightmem: bool = PrivateAttr(default=False)
    _last_hits: list[Hit] = PrivateAttr(default_factory=list)

    def __init__(self, lightmem: LightMemory, *, primary_memory: Optional[BaseMemory] = None, **data: Any) -> None:
        if not isinstance(lightmem, (LightMemory, RemoteMemory)):
            raise TypeError(
                f"lightmem must be a lightmem_core.LightMemory or RemoteMemory, got {type(lightmem).__name__}"
            )
        if primary_memory is None:
            primary_memory = Memory.from_defaults(session_id=data.get("session_id"))
        super().__init__(primary_memory=primary_memory, **data)
        self._lightmem = lightmem

    @classmethod
    def class_name(cls) -> str:
        return "LightMemMemory"

    @classmethod
    def from_defaults(  # type: ignore[override,unused-ignore]
        cls,
        lightmem: Optional[LightMemory] = None,
        *,
        config: Union[MemoryConfig, Mapping[str, Any], None] = None,
        llm: Any = None,
        embed_model: Any = None,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        chat_history: Optional[List[ChatMessage]] = None,
        token_limit: Optional[int] = None,
        **kwargs: Any,
    ) -> "LightMemMemory":
        """Build with a shared ``LightMemory``, or open one from ``config`` (then owned and
        closed by ``close()``); ``llm`` / ``embed_model`` may be LlamaIndex models."""
        owned = lightmem is None
        if lightmem is None:
            from .models import create_lightmemory

            lightmem = create_lightmemory(config, llm=llm, embed_model=embed_model)
        mem_kwargs: dict[str, Any] = {"session_id": session_id, "chat_history": chat_history}
        if token_limit is not None:
            mem_kwargs["token_limit"] = token_limit
        primary = Memory.from_defaults(**mem_kwargs)
        out = cls(lightmem, primary_memory=primary, user_id=user_id, agent_id=agent_id, session_id=session_id, **kwargs)
        out._owns_lightmem = owned
        return out

    @property
    def lightmem(self) -> LightMemory:
        """The core memory, for what this class does not wrap (update, history, summarize...)."""
        return self._lightmem

    @property
    def last_hits(self) -> list[Hit]:
        """What the last ``get`` recalled, with scores and provenance."""
        return list(self._last_hits)

    # --- helpers --------------------------------------------------------------------------
    def _scope(self) -> dict[str, Optional[str]]:
        return {"user_id": self.user_id, "agent_id": self.agent_id, "session_id": self.session_id}

    def _read_scope(self) -> dict[str, Optional[str]]:
        return {
            "user_id": self.user_id,
            "agent_id": self.agent_id,
            "session_id": self.session_id if self.session_scoped_reads else None,
        }

    def _report(self, result: AddResult) -> None:
        if result.error:
            log.warning("LightMem kept %d turn(s) pending: %s", result.pending_turns, result.error)

    def _with_memories(self, messages: List[ChatMessage], hits: list[Hit]) -> List[ChatMessage]:
        """The recent chat behind one system message with the recalled memories."""
        self._last_hits = list(hits)
        text = render_hits(hits, self.header)
        if not text:
            return messages
        if messages and messages[0].role == MessageRole.SYSTEM:
            first = messages[0].model_copy(deep=True)
            existing = first.content or ""
            first.content = f"{existing}\n\n{text}" if existing else text
            return [first, *messages[1:]]
        return [ChatMessage(role=MessageRole.SYSTEM, content=text), *messages]

    def _turns(self, messages: List[ChatMessage]) -> list[dict[str, Any]]:
        return to_turns(messages, max_chars=self._lightmem.config.max_message_chars)

    def _query(self, messages: List[ChatMessage], input: Any) -> str:
        return query_from(messages, input, self.query_window)

    # --- the operations, written once (lightmem_core.drive runs them sync or async) -----------
    def _get_op(self, input: Optional[str]) -> Op[List[ChatMessage]]:
        messages = yield call(self.primary_memory.get)
        query = self._query(messages, input)
        if not query:
            return self._with_memories(messages, [])
        recent = recent_turn_ids(messages)
        hits = yield call(
            self._lightmem.retrieve,
            query,
            fetch_limit(self.search_limit, recent),
            self.filters,
            hierarchical=self.hierarchical,
            **self._read_scope(),
        )
        return self._with_memories(messages, without_recent(hits, recent, self.search_limit))

    def _journal_op(self, messages: List[ChatMessage]) -> Op[None]:
        turns = self._turns(messages)
        if turns:
            result = yield call(self._lightmem.add_memory, turns, force_extract=self.force_extract, **self._scope())
            self._report(result)

    def _put_op(self, messages: List[ChatMessage]) -> Op[None]:
        stamp_turn_ids(messages)
        yield call(self.primary_memory.put_messages, messages)
        yield from self._journal_op(messages)

    def _set_op(self, messages: List[ChatMessage]) -> Op[None]:
        known = len((yield call(self.primary_memory.get_all)))
        stamp_turn_ids(messages)
        yield call(self.primary_memory.set, messages)
        yield from self._journal_op(messages[known:])

    # --- BaseMemory ---------------------------------------------------------------------------
    def get(self, input: Optional[str] = None, **kwargs: Any) -> List[ChatMessage]:
        """Recent chat plus a system message with the memories relevant to ``input`` (or the
        latest user message). Extra keyword arguments of chat engines are ignored."""
        return run_sync(self._get_op(input))

    async def aget(self, input: Optional[str] = None, **kwargs: Any) -> List[ChatMessage]:
        return await run_async(self._get_op(input))

    def get_all(self) -> List[ChatMessage]:
        """The session's chat history (without recalled memories)."""
        return self.primary_memory.get_all()

    async def aget_all(self) -> List[ChatMessage]:
        return await self.primary_memory.aget_all()

    def put(self, message: ChatMessage) -> None:
        self.put_messages([message])

    async def aput(self, message: ChatMessage) -> None:
        await self.aput_messages([message])

    def put_messages(self, messages: List[ChatMessage]) -> None:
        """Append to the recent chat and journal the turns in LightMem (one call)."""
        run_sync(self._put_op(messages))

    async def aput_messages(self, messages: List[ChatMessage]) -> None:
        await run_async(self._put_op(messages))

    def set(self, messages: List[ChatMessage]) -> None:
        """Replace the recent chat; messages beyond the current history are journaled as new turns."""
        run_sync(self._set_op(messages))

    async def aset(self, messages: List[ChatMessage]) -> None:
        await run_async(self._set_op(messages))

    def reset(self, *, long_term: bool = False) -> None:
        self.primary_memory.reset()
        if long_term:
            self._lightmem.delete_all(user_id=self.user_id, agent_id=self.agent_id)

    async def areset(self, *, long_term: bool = False) -> None:
        await self.primary_memory.areset()
        if long_term:
            await self._lightmem.adelete_all(user_id=self.user_id, agent_id=self.agent_id)

    # --- extras ---------------------------------------------------------------------------------
    def flush(self) -> AddResult:
        """Extract what the core still buffers for this scope (an LLM memory manager batches turns)."""
        return self._lightmem.flush(user_id=self.user_id, agent_id=self.agent_id)

    async def aflush(self) -> AddResult:
        return await self._lightmem.aflush(user_id=self.user_id, agent_id=self.agent_id)

    def close(self) -> None:
        """Close the core memory if ``from_defaults`` opened it."""
        if self._owns_lightmem:
            self._lightmem.close()
