"""The legacy langchain-classic BaseMemory shim, in a real legacy ConversationChain."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from tests.langchain.scripted import ScriptedChatModel


@pytest.fixture
def classic(memory: Any) -> Any:
    from lightmem_langchain import LightMemClassicMemory

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LangChain deprecates BaseMemory itself; the shim says so too
        return LightMemClassicMemory(memory=memory, user_id="maya", session_id="chat-1", input_key="input")


def test_save_load_clear(classic: Any, memory: Any) -> None:
    assert classic.memory_variables == ["history"]
    assert classic.load_memory_variables({"input": "What is my dog called?"}) == {"history": ""}
    classic.save_context({"input": "My dog is called Biscuit."}, {"response": "Nice name!"})
    history = classic.load_memory_variables({"input": "What is my dog called?"})["history"]
    assert history.startswith("Relevant memories") and "dog is called Biscuit" in history
    assert {e.session_id for e in memory.get_all(user_id="maya")} == {"chat-1"}
    classic.clear()
    assert memory.get_all(user_id="maya") == []


@pytest.mark.asyncio
async def test_async_and_messages(classic: Any) -> None:
    classic.return_messages = True
    await classic.asave_context({"input": "I live in Porto."}, {"output": "Great city."})
    loaded = await classic.aload_memory_variables({"input": "Where do I live?"})
    assert loaded["history"][0].type == "system" and "Porto" in loaded["history"][0].content
    await classic.aclear()
    assert (await classic.aload_memory_variables({"input": "Where do I live?"}))["history"] == []


def test_in_a_legacy_conversation_chain(classic: Any) -> None:
    from langchain_classic.chains import ConversationChain

    model = ScriptedChatModel(default="Noted.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chain = ConversationChain(llm=model, memory=classic)
        chain.invoke({"input": "My favourite colour is teal."})
        chain.invoke({"input": "What is my favourite colour?"})
    assert "favourite colour is teal" in model.requests[-1][0].text
