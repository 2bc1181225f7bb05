"""LightMem as a memory block of LlamaIndex's ``Memory``.

``Memory.from_defaults(memory_blocks=[LightMemMemoryBlock(...)])`` keeps the recent
chat in LlamaIndex's short-term queue and asks each block for long-term context on
every ``get``. Two things about LlamaIndex's contract shape this module:

* Blocks only receive messages when the short-term queue overflows (about 21k tokens
  with the defaults: 70% of a 30k limit), so with a plain ``Memory`` a fact from an
  ordinary-length session never reaches long-term memory. ``LightMemChatMemory`` (a
  ``Memory`` subclass) also hands every turn to blocks built with
  ``save_every_turn=True`` as it is put; the turn carries its journal id, so the
  later overflow flush of the same message is recognised and not stored twice.
* ``atruncate`` gets back the text ``_aget`` produced; the block remembers which hits
  that text was made of, so it can drop the least relevant ones instead of
  cutting the text blindly.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, List, Optional

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr, field_validator
from llama_index.core.memory.memory import BaseMemoryBlock, Memory
from llama_index.core.utils import get_tokenizer

from lightmem_core import Hit, LightMemory, RemoteMemory

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

__all__ = ["LightMemChatMemory", "LightMemMemoryBlock"]

_RENDER_CACHE = 16


class LightMemMemoryBlock(BaseMemoryBlock[str]):
    """Long-term memories relevant to the latest user message, for ``Memory``'s prompt.

    Reads are scoped to ``user_id`` (and ``agent_id`` when set) but not to the
    session, so what a user said in an earlier session comes back in a new one; set
    ``session_scoped_reads=True`` to stay inside the session. Writes are stamped with
    ``session_id``, or with the ``Memory``'s session id when it is not set.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = Field(default="long_term_memory", description="The name of the memory block.")
    description: Optional[str] = Field(
        default="Facts LightMem remembers about the user from earlier conversations.",
    )
    priority: int = Field(
        default=1,
        description="Truncation priority; unlike LlamaIndex's default 0 (never truncate), the block can drop "
        "its least relevant memories when the prompt is over budget.",
    )
    lightmem: Any = Field(exclude=True, description="The core memory, LightMemory or RemoteMemory (shared, not owned).")
    user_id: Optional[str] = Field(default=None, description="Whose memories; None = the core's default user.")
    agent_id: Optional[str] = None
    session_id: Optional[str] = Field(default=None, description="Stamped on writes; None = the Memory's session.")
    session_scoped_reads: bool = False
    limit: int = Field(default=8, ge=1, le=1000, description="Entry hits per read (summaries come on top).")
    hierarchical: bool = Field(default=True, description="Session summaries first, then entries.")
    query_window: int = Field(default=1, ge=1, description="How many latest user messages form the query.")
    filters: Optional[dict[str, Any]] = None
    header: Optional[str] = DEFAULT_HEADER
    save_every_turn: bool = Field(
        default=False,
        description="Save each turn as it is put (needs LightMemChatMemory); otherwise only overflow flushes.",
    )
    force_extract: bool = Field(
        default=False,
        description="With an LLM memory manager: extract at every write instead of waiting for a full buffer.",
    )

    _rendered: "OrderedDict[str, list[Hit]]" = PrivateAttr(default_factory=OrderedDict)
    _tokenizer: Any = PrivateAttr(default=None)
    _fed_every_turn: bool = PrivateAttr(default=False)
    _warned: bool = PrivateAttr(default=False)

    @field_validator("lightmem", mode="before")
    @classmethod
    def _check_lightmem(cls, v: Any) -> Any:
        if not isinstance(v, (LightMemory, RemoteMemory)):
            raise ValueError(f"lightmem must be a lightmem_core.LightMemory or RemoteMemory, got {type(v).__name__}")
        return v

    # --- writes -------------------------------------------------------------------------
    async def _aput(self, messages: List[ChatMessage]) -> None:
        """Messages LlamaIndex flushed from the short-term queue (or saved every turn)."""
        by_session: dict[Optional[str], list[ChatMessage]] = {}
        for m in messages:
            sid = m.additional_kwargs.pop("session_id", None)
            by_session.setdefault(self.session_id or sid, []).append(m)
        for sid, group in by_session.items():
            await self._save(group, sid)

    async def asave(self, messages: List[ChatMessage], *, session_id: Optional[str] = None) -> None:
        """Save turns now, whatever LlamaIndex's flush policy (what ``save_every_turn`` uses)."""
        self._fed_every_turn = True
        await self._save(messages, self.session_id or session_id)

    async def _save(self, messages: List[ChatMessage], session_id: Optional[str]) -> None:
        turns = to_turns(messages, max_chars=self.lightmem.config.max_message_chars)
        if not turns:
            return
        result = await self.lightmem.aadd_memory(
            turns,
            user_id=self.user_id,
            agent_id=self.agent_id,
            session_id=session_id,
            force_extract=self.force_extract,
        )
        if result.error:
            log.warning("LightMem kept %d turn(s) pending: %s", result.pending_turns, result.error)

    # --- reads --------------------------------------------------------------------------
    async def _aget(
        self, messages: Optional[List[ChatMessage]] = None, session_id: Optional[str] = None, **block_kwargs: Any
    ) -> str:
        if self.save_every_turn and not self._fed_every_turn and messages and not self._warned:
            self._warned = True
            log.warning(
                "LightMemMemoryBlock(save_every_turn=True) is inside a plain Memory, which only flushes "
                "on overflow; use LightMemChatMemory to save every turn"
            )
        query = query_from(messages, block_kwargs.get("input"), self.query_window)
        if not query:
            return ""
        recent = recent_turn_ids(messages)  # saved every turn: the current chat is journaled already
        hits = await self.lightmem.aretrieve(
            query,
            fetch_limit(self.limit, recent),
            self.filters,
            user_id=self.user_id,
            agent_id=self.agent_id,
            session_id=(self.session_id or session_id) if self.session_scoped_reads else None,
            hierarchical=self.hierarchical,
        )
        return self._render(without_recent(hits, recent, self.limit))

    def _render(self, hits: list[Hit]) -> str:
        text = render_hits(hits, self.header)
        if text:
            self._rendered[text] = list(hits)
            self._rendered.move_to_end(text)
            while len(self._rendered) > _RENDER_CACHE:
                self._rendered.popitem(last=False)
        return text

    def _tokens(self, text: str) -> int:
        if self._tokenizer is None:
            self._tokenizer = get_tokenizer()
        return len(self._tokenizer(text))

    async def atruncate(self, content: str, tokens_to_truncate: int) -> Optional[str]:
        """Drop the least relevant memories until about ``tokens_to_truncate`` tokens are saved."""
        if tokens_to_truncate <= 0:
            return content
        hits = self._rendered.get(content)
        if hits is None:  # not text this block made (or long evicted): cut whole lines from the end
            lines = content.splitlines()
            target = self._tokens(content) - tokens_to_truncate
            while lines and self._tokens("\n".join(lines)) > target:
                lines.pop()
            return "\n".join(lines) or None
        target = self._tokens(content) - tokens_to_truncate
        kept = list(hits)  # best first: the core ranks summaries first, then entries by relevance
        while kept:
            kept.pop()
            text = render_hits(kept, self.header)
            if not text or self._tokens(text) <= target:
                break
        return self._render(kept) or None

    async def aflush(self) -> None:
        """Extract whatever the core still buffers for this scope (an LLM memory manager batches turns)."""
        await self.lightmem.aflush(user_id=self.user_id, agent_id=self.agent_id)


class LightMemChatMemory(Memory):
    """``Memory`` that also saves every turn to blocks built with ``save_every_turn=True``.

    LlamaIndex's own ``Memory`` waterfalls messages into blocks only when its
    short-term queue overflows; a chat engine or agent given this class instead
    remembers each turn as it happens. Everything else is ``Memory`` unchanged.
    """

    @classmethod
    def class_name(cls) -> str:
        return "LightMemChatMemory"

    @classmethod
    def from_lightmem(
        cls,
        lightmem: LightMemory,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        save_every_turn: bool = True,
        block_kwargs: Optional[dict[str, Any]] = None,
        **memory_kwargs: Any,
    ) -> "LightMemChatMemory":
        """A ``Memory`` with one ``LightMemMemoryBlock`` for ``user_id``; the session id is shared."""
        block = LightMemMemoryBlock(
            lightmem=lightmem,
            user_id=user_id,
            agent_id=agent_id,
            save_every_turn=save_every_turn,
            **(block_kwargs or {}),
        )
        return cls.from_defaults(session_id=session_id, memory_blocks=[block], **memory_kwargs)  # type: ignore[return-value]

    def _every_turn_blocks(self) -> list[LightMemMemoryBlock]:
        return [b for b in self.memory_blocks if isinstance(b, LightMemMemoryBlock) and b.save_every_turn]

    async def _save_now(self, messages: List[ChatMessage]) -> None:
        for block in self._every_turn_blocks():
            await block.asave(messages, session_id=self.session_id)

    async def aput(self, message: ChatMessage) -> None:
        if self._every_turn_blocks():
            stamp_turn_ids([message])  # before the chat store keeps its copy
        await super().aput(message)
        await self._save_now([message])

    async def aput_messages(self, messages: List[ChatMessage]) -> None:
        if self._every_turn_blocks():
            stamp_turn_ids(messages)
        await super().aput_messages(messages)
        await self._save_now(messages)

    async def aset(self, messages: List[ChatMessage]) -> None:
        """Replace the chat history; only messages beyond the current history count as new turns."""
        blocks = self._every_turn_blocks()
        known = len(await self.aget_all()) if blocks else 0
        if blocks:
            stamp_turn_ids(messages)
        await super().aset(messages)
        if blocks and messages[known:]:
            await self._save_now(messages[known:])
