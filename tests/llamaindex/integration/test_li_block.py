"""LightMemMemoryBlock inside LlamaIndex's own ``Memory.from_defaults(memory_blocks=[...])``.

Shows both write paths: LlamaIndex's overflow flush (the only way a plain ``Memory``
feeds blocks) and ``LightMemChatMemory``'s save-every-turn, and that they do not store
a turn twice. Real ``Memory`` (with its SQL chat store), real engine and MiniLM.
"""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms.mock import MockLLMWithChatMemoryOfLastCall
from llama_index.core.memory import Memory
from llama_index.core.storage.chat_store.sql import MessageStatus
from llama_index.core.tools import FunctionTool

from lightmem_llamaindex import LightMemChatMemory, LightMemMemoryBlock
from tests.llamaindex.conftest import CityAgentLLM, text_of

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FACT = "My sister Priya moved to Lisbon last spring and works at the aquarium there."
FILLER = [f"Unrelated chatter number {i}: the train was late again and the coffee was cold." for i in range(6)]


def _block(lightmem: Any, user: str, **kw: Any) -> LightMemMemoryBlock:
    return LightMemMemoryBlock(lightmem=lightmem, user_id=user, **kw)


@pytest.mark.asyncio
async def test_plain_memory_feeds_the_block_only_on_overflow(lightmem: Any) -> None:
    # A roomy Memory (the default ~21k-token queue): an ordinary session never reaches the block.
    roomy = Memory.from_defaults(session_id="r1", memory_blocks=[_block(lightmem, "gina")])
    await roomy.aput(ChatMessage(role="user", content=FACT))
    await roomy.aput(ChatMessage(role="assistant", content="Noted."))
    assert lightmem.get_all(user_id="gina") == []

    # A tight Memory overflows at once, and LlamaIndex waterfalls the oldest turns into the block.
    tight = Memory.from_defaults(
        session_id="t1",
        token_limit=60,
        chat_history_token_ratio=0.5,
        token_flush_size=20,
        memory_blocks=[_block(lightmem, "gina")],
    )
    await tight.aput(ChatMessage(role="user", content=FACT))
    await tight.aput(ChatMessage(role="assistant", content="Noted."))
    for line in FILLER[:3]:
        await tight.aput(ChatMessage(role="user", content=line))
        await tight.aput(ChatMessage(role="assistant", content="I see."))
    entries = lightmem.get_all(user_id="gina")
    assert any("Lisbon" in e.memory for e in entries)
    assert {e.session_id for e in entries} == {"t1"}  # the Memory's session id is stamped on the turns

    # ...and a new session (a new Memory) gets it back in the system message
    fresh = Memory.from_defaults(session_id="t2", memory_blocks=[_block(lightmem, "gina")])
    await fresh.aput(ChatMessage(role="user", content="Where does my sister live now?"))
    got = await fresh.aget()
    assert got[0].role.value == "system" and "Lisbon" in got[0].content
    assert "<long_term_memory>" in got[0].content  # LlamaIndex's block template, with our block's name


def test_save_every_turn_with_a_chat_engine_recalls_in_a_new_session_for_that_user_only(lightmem: Any) -> None:
    llm = MockLLMWithChatMemoryOfLastCall(max_tokens=3)
    s1 = LightMemChatMemory.from_lightmem(lightmem, user_id="hana", session_id="h1")
    SimpleChatEngine.from_defaults(llm=llm, memory=s1).chat(FACT)
    entries = lightmem.get_all(user_id="hana")
    assert any("Lisbon" in e.memory for e in entries)  # saved at once, no overflow needed

    s2 = LightMemChatMemory.from_lightmem(lightmem, user_id="hana", session_id="h2")
    SimpleChatEngine.from_defaults(llm=llm, memory=s2).chat("Which city does my sister live in?")
    assert "Lisbon" in text_of(llm.last_chat_messages)

    other = LightMemChatMemory.from_lightmem(lightmem, user_id="ivan", session_id="i1")
    SimpleChatEngine.from_defaults(llm=llm, memory=other).chat("Which city does my sister live in?")
    assert "Lisbon" not in text_of(llm.last_chat_messages)


@pytest.mark.asyncio
async def test_save_every_turn_and_a_later_overflow_store_each_turn_once(lightmem: Any) -> None:
    memory = LightMemChatMemory.from_lightmem(
        lightmem, user_id="jo", session_id="j1", token_limit=80, chat_history_token_ratio=0.5, token_flush_size=30
    )
    await memory.aput(ChatMessage(role="user", content=FACT))
    count = len(lightmem.get_all(user_id="jo", limit=1000))
    assert count > 0
    for line in FILLER:
        await memory.aput(ChatMessage(role="user", content=line))
    archived = await memory.sql_store.get_messages(memory.session_id, status=MessageStatus.ARCHIVED)
    assert FACT in [m.content for m in archived]  # LlamaIndex did flush the fact to the block again
    entries = lightmem.get_all(user_id="jo", limit=1000)
    texts = [e.memory for e in entries]
    assert len(texts) == len(set(texts))  # the flushed copies were recognised, nothing stored twice
    assert sum("Lisbon" in t for t in texts) == 1


@pytest.mark.asyncio
async def test_function_agent_with_the_block_memory(lightmem: Any, agent_llm: CityAgentLLM) -> None:
    tool = FunctionTool.from_defaults(
        lambda city: f"{city}: 18C, light rain", name="get_weather", description="Current weather for a city."
    )

    async def turn(memory: Any, text: str) -> tuple[str, list]:
        agent = FunctionAgent(tools=[tool], llm=agent_llm, system_prompt="You help with the weather.")
        handler = agent.run(user_msg=text, memory=memory)
        calls = [dict(ev.tool_kwargs) async for ev in handler.stream_events() if isinstance(ev, ToolCallResult)]
        return str(await handler), calls

    await turn(
        LightMemChatMemory.from_lightmem(lightmem, user_id="kim", session_id="k1"), "I'm moving to Nairobi in June."
    )
    answer, calls = await turn(
        LightMemChatMemory.from_lightmem(lightmem, user_id="kim", session_id="k2"),
        "How is the weather in the city I'm moving to?",
    )
    assert calls == [{"city": "Nairobi"}] and "Nairobi: 18C" in answer
    answer, calls = await turn(
        LightMemChatMemory.from_lightmem(lightmem, user_id="lee", session_id="l1"),
        "How is the weather in the city I'm moving to?",
    )
    assert calls == []


@pytest.mark.asyncio
async def test_truncation_drops_the_least_relevant_memories(lightmem: Any) -> None:
    lightmem.add_memory(
        [
            {"role": "user", "content": "My sister Priya lives in Lisbon.", "time_stamp": "2025-01-01T10:00:00"},
            {"role": "user", "content": "I bought a red bicycle.", "time_stamp": "2025-01-02T10:00:00"},
            {"role": "user", "content": "My dentist appointment is on Friday.", "time_stamp": "2025-01-03T10:00:00"},
            {"role": "user", "content": "I like green tea in the morning.", "time_stamp": "2025-01-04T10:00:00"},
        ],
        user_id="mo",
    )
    block = _block(lightmem, "mo", limit=4)
    question = [ChatMessage(role="user", content="Where does my sister Priya live?")]
    content = await block.aget(question)
    assert content.count("\n") >= 4  # header + four memories
    hits = await lightmem.aretrieve("Where does my sister Priya live?", 4, user_id="mo")
    assert "Lisbon" in hits[0].entry.memory
    least = hits[-1].entry.memory

    cut = await block.atruncate(content, 10)
    assert cut is not None and least not in cut and "Lisbon" in cut
    assert cut.count("\n") == content.count("\n") - 1  # about 10 tokens: one memory
    assert await block.atruncate(content, 10_000) is None  # nothing left worth keeping

    # Inside a Memory whose budget is too small, LlamaIndex asks the block to truncate
    small = Memory.from_defaults(session_id="m1", token_limit=70, memory_blocks=[block])
    await small.aput(question[0])
    got = await small.aget()
    assert "Lisbon" in got[0].content and least not in got[0].content
