"""Scripted LlamaIndex models for the adapter tests.

Why scripted models and not mocks of our own code: the LlamaIndex classes under test
(``SimpleChatEngine``, ``FunctionAgent``, ``Memory``, ``RetrieverQueryEngine``) are the
real ones; only the LLM has to be a stand-in, since no real model runs offline here.
The stand-ins subclass LlamaIndex's own ``CustomLLM`` / ``MockFunctionCallingLLM``, so
every call goes through LlamaIndex's LLM machinery, and they record each prompt so a
test can check what the model was shown.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Optional, Sequence

import pytest
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
    TextBlock,
    ToolCallBlock,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from llama_index.core.llms.mock import MockFunctionCallingLLM

from tests.fake_llm import count_tokens, default_responder


def text_of(messages: Sequence[ChatMessage]) -> str:
    """Everything a model was shown, as one string."""
    return "\n".join(b.text for m in messages for b in m.blocks if isinstance(b, TextBlock))


class ScriptedChatLLM(CustomLLM):
    """A chat LLM that answers like the loopback server (``tests/fake_llm.py``) without HTTP.

    Extraction prompts get facts for each ``[turn_id] Speaker: text`` line, summary
    prompts a summary, anything else ``reply`` (or an echo). Every response reports
    usage in ``raw["usage"]`` with the server's deterministic token counts, so the
    bridge's accounting can be checked exactly. ``prompts`` holds every chat call.
    """

    reply: Optional[str] = None
    prompts: list = Field(default_factory=list, exclude=True)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(is_chat_model=True, model_name="scripted-chat")

    def _answer(self, messages: Sequence[ChatMessage]) -> ChatResponse:
        self.prompts.append(list(messages))
        request = {"messages": [{"role": m.role.value, "content": m.content or ""} for m in messages]}
        has_turns = any(re.search(r"^\s*\[[^\]]+\]", m.content or "", re.M) for m in messages)
        text = default_responder(request) if (self.reply is None or has_turns) else self.reply
        usage = {
            "prompt_tokens": sum(count_tokens(m.content or "") + 3 for m in messages),
            "completion_tokens": max(1, count_tokens(text)),
        }
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text), raw={"usage": usage})

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._answer(messages)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._answer(messages)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self._answer([ChatMessage(role="user", content=prompt)]).message.content)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        text = self.complete(prompt).text

        def gen() -> CompletionResponseGen:
            yield CompletionResponse(text=text, delta=text)

        return gen()


class CityAgentLLM(MockFunctionCallingLLM):
    """A function-calling LLM scripted like a small agent model.

    When the user asks about the weather and the prompt (memories included) names a
    known city, it calls ``get_weather`` for that city; after the tool result it
    answers with it; otherwise it says it does not know. So whether the tool runs with
    the right city shows whether the memory reached the model.
    """

    cities: tuple = ("Lisbon", "Oslo", "Nairobi")
    prompts: list = Field(default_factory=list, exclude=True)
    _n: int = PrivateAttr(default=0)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.response_generator = self._respond

    def _respond(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        self.prompts.append(list(messages))
        last = messages[-1]
        if last.role == MessageRole.TOOL:
            return ChatMessage(role="assistant", content=f"The weather report: {last.content}")
        asked = (last.content or "").lower()
        if "weather" not in asked:
            return ChatMessage(role="assistant", content="Noted.")
        shown = text_of(messages)
        city = next((c for c in self.cities if c in shown), None)
        if city is None:
            return ChatMessage(role="assistant", content="I do not know which city you mean.")
        self._n += 1
        return ChatMessage(
            role="assistant",
            blocks=[ToolCallBlock(tool_call_id=f"call-{self._n}", tool_name="get_weather", tool_kwargs={"city": city})],
        )


@pytest.fixture(params=["local", "remote"])
def lightmem(request: Any, make_memory: Callable[..., Any]) -> Any:
    """An offline LightMemory on a temp embedded store (real engine, real MiniLM), in
    process or through ``RemoteMemory`` and a real server on loopback."""
    from tests._served import local_or_remote

    yield from local_or_remote(request.param, make_memory())


@pytest.fixture
def scripted_llm() -> ScriptedChatLLM:
    return ScriptedChatLLM(reply="Noted.")


@pytest.fixture
def agent_llm() -> CityAgentLLM:
    return CityAgentLLM()
