"""LEGACY: LightMem behind ``langchain-classic``'s ``BaseMemory`` for pre-1.0 chain code
(``ConversationChain``, ``LLMChain(memory=...)``).

New code should use ``LightMemoryMiddleware`` with ``create_agent`` instead; LangChain
itself deprecates ``BaseMemory``. This module is imported only when used and needs
the ``classic`` extra (``pip install lightmem[classic]``).

``load_memory_variables`` returns the memories relevant to the chain's input (not a
transcript), ``save_context`` journals the exchange, ``clear`` deletes every memory of
the scope (with a DELETE record in each entry's history).
"""

from __future__ import annotations

from typing import Any, Optional

from langchain_classic.base_memory import BaseMemory
from langchain_core.messages import SystemMessage
from pydantic import ConfigDict, Field

from lightmem_core import Scope

from ._common import memory_section, retrieve_kwargs

DEFAULT_HEADER = "Relevant memories from earlier conversations:"


class LightMemClassicMemory(BaseMemory):
    """LightMem as a legacy chain memory.

    ``memory_key`` is the prompt variable it fills (``history`` as ConversationChain
    expects); ``input_key``/``output_key`` pick the chain's fields when there are
    several. ``return_messages=True`` gives a ``SystemMessage`` list for chat prompts.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    memory: Any = Field(exclude=True)
    user_id: str
    agent_id: Optional[str] = None
    session_id: Optional[str] = None
    memory_key: str = "history"
    input_key: Optional[str] = None
    output_key: Optional[str] = None
    k: int = Field(5, ge=1)
    hierarchical: Optional[bool] = None
    return_messages: bool = False
    header: str = DEFAULT_HEADER

    @property
    def memory_variables(self) -> list[str]:
        return [self.memory_key]

    def _scope(self) -> dict[str, Optional[str]]:
        return Scope(user_id=self.user_id, agent_id=self.agent_id, session_id=self.session_id).as_payload()

    def _read_scope(self) -> dict[str, Optional[str]]:
        """Reads span the user's sessions (long-term memory), writes carry the session."""
        return {"user_id": self.user_id, "agent_id": self.agent_id}

    def _pick(self, values: dict[str, Any], key: Optional[str], what: str) -> str:
        if key is not None:
            return str(values[key])
        candidates = {k: v for k, v in values.items() if k != self.memory_key and k != "stop"}
        if len(candidates) != 1:
            raise ValueError(f"cannot tell which {what} to use among {sorted(candidates)}; set {what}_key")
        return str(next(iter(candidates.values())))

    def _variables(self, hits: list[Any]) -> dict[str, Any]:
        text = memory_section(hits, header=self.header) if hits else ""
        if self.return_messages:
            return {self.memory_key: [SystemMessage(content=text)] if text else []}
        return {self.memory_key: text}

    def _turns(self, inputs: dict[str, Any], outputs: dict[str, Any]) -> list[dict[str, str]]:
        turns = [
            {"role": "user", "content": self._pick(inputs, self.input_key, "input")},
            {"role": "assistant", "content": self._pick(outputs, self.output_key, "output")},
        ]
        return [t for t in turns if t["content"].strip()]

    def load_memory_variables(self, inputs: dict[str, Any]) -> dict[str, Any]:
        query = self._pick(inputs, self.input_key, "input")
        if not query.strip():
            return self._variables([])
        opts = retrieve_kwargs(strategy=None, hierarchical=self.hierarchical)
        return self._variables(self.memory.retrieve(query, self.k, **self._read_scope(), **opts))

    async def aload_memory_variables(self, inputs: dict[str, Any]) -> dict[str, Any]:
        query = self._pick(inputs, self.input_key, "input")
        if not query.strip():
            return self._variables([])
        opts = retrieve_kwargs(strategy=None, hierarchical=self.hierarchical)
        return self._variables(await self.memory.aretrieve(query, self.k, **self._read_scope(), **opts))

    def save_context(self, inputs: dict[str, Any], outputs: dict[str, str]) -> None:
        turns = self._turns(inputs, outputs)
        if turns:
            self.memory.add_memory(turns, **self._scope())

    async def asave_context(self, inputs: dict[str, Any], outputs: dict[str, str]) -> None:
        turns = self._turns(inputs, outputs)
        if turns:
            await self.memory.aadd_memory(turns, **self._scope())

    def clear(self) -> None:
        self.memory.delete_all(**self._scope())

    async def aclear(self) -> None:
        await self.memory.adelete_all(**self._scope())
