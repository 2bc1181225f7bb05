"""LightMemMemory as the memory of real LlamaIndex chat engines and agents.

Real ``SimpleChatEngine`` / ``FunctionAgent``, real embedded store and MiniLM; the LLMs
are LlamaIndex's ``MockLLM`` family driven by a script (see ../conftest.py), which record
what the model was shown, so "recalled" means "was in the model's prompt".
"""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms.mock import MockLLMWithChatMemoryOfLastCall
from llama_index.core.tools import FunctionTool

from lightmem_llamaindex import LightMemMemory
from tests.llamaindex.conftest import CityAgentLLM, text_of

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # LlamaIndex's workflows inspect pydantic

FACT = "My sister Priya moved to Lisbon last spring and works at the aquarium there."


def _engine(lightmem: Any, user: str, session: str, llm: Any) -> tuple[SimpleChatEngine, LightMemMemory]:
    memory = LightMemMemory.from_defaults(lightmem, user_id=user, session_id=session)
    engine = SimpleChatEngine.from_defaults(llm=llm, memory=memory, system_prompt="You are a friendly assistant.")
    return engine, memory


def test_chat_engine_recalls_a_fact_in_a_new_session_for_the_same_user_only(lightmem: Any) -> None:
    llm = MockLLMWithChatMemoryOfLastCall(max_tokens=3)
    first, _ = _engine(lightmem, "alice", "s1", llm)
    first.chat(FACT)
    first.chat("Thanks, that's all for today.")

    later, memory = _engine(lightmem, "alice", "s2", llm)
    assert later.chat_history == []  # a new session starts with an empty recent chat
    later.chat("Which city does my sister live in?")
    prompt = llm.last_chat_messages
    assert "Lisbon" in text_of(prompt)
    # the memories arrive as one system message, right after the engine's own prompt
    assert [m.role.value for m in prompt[:2]] == ["system", "system"] and "Lisbon" in prompt[1].content
    assert any("Lisbon" in h.entry.memory and h.entry.session_id == "s1" for h in memory.last_hits)

    other, memory_b = _engine(lightmem, "bob", "s3", llm)
    other.chat("Which city does my sister live in?")
    assert "Lisbon" not in text_of(llm.last_chat_messages)
    assert memory_b.last_hits == [] or all(h.entry.user_id == "bob" for h in memory_b.last_hits)


@pytest.mark.asyncio
async def test_chat_engine_async_path(lightmem: Any) -> None:
    llm = MockLLMWithChatMemoryOfLastCall(max_tokens=3)
    first, memory = _engine(lightmem, "carol", "a1", llm)
    await first.achat("I am allergic to peanuts, please remember that.")
    # both turns were journaled with the session's scope
    entries = await lightmem.aget_all(user_id="carol")
    assert {e.session_id for e in entries} == {"a1"}
    assert any("peanuts" in e.memory for e in entries)

    later, _ = _engine(lightmem, "carol", "a2", llm)
    await later.achat("Do I have any food allergies?")
    assert "peanuts" in text_of(llm.last_chat_messages)


def test_memory_api_get_put_set_reset(lightmem: Any) -> None:
    memory = LightMemMemory.from_defaults(lightmem, user_id="dora", session_id="d1")
    memory.put(ChatMessage(role="user", content="My favourite composer is Arvo Pärt."))
    memory.put_messages(
        [
            ChatMessage(role="assistant", content="Lovely choice."),
            ChatMessage(role="user", content="I play the cello on Sundays."),
        ]
    )
    assert [m.content for m in memory.get_all()][0] == "My favourite composer is Arvo Pärt."
    # what is still in the recent chat is not repeated as a memory...
    assert memory.get("Who is my favourite composer?") == memory.get_all()
    # ...but another session of the user gets it, in a system message before its own chat
    other = LightMemMemory.from_defaults(lightmem, user_id="dora", session_id="d2")
    other.put(ChatMessage(role="user", content="Hello again"))
    got = other.get("Who is my favourite composer?")
    assert got[0].role.value == "system" and "Arvo Pärt" in got[0].content
    assert [m.content for m in got[1:]] == ["Hello again"]

    # set(): only messages beyond the known history are new turns
    before = len(lightmem.get_all(user_id="dora"))
    history = memory.get_all() + [ChatMessage(role="user", content="My cat is called Miso.")]
    memory.set(history)
    after = lightmem.get_all(user_id="dora")
    assert len(after) == before + 1 and any("Miso" in e.memory for e in after)

    # a system message already at the front gets the memories appended, not a second one
    memory.set([ChatMessage(role="system", content="Be terse."), ChatMessage(role="user", content="cello?")])
    got = memory.get()
    assert got[0].content.startswith("Be terse.") and "cello" in got[0].content
    assert sum(m.role.value == "system" for m in got) == 1

    memory.reset()
    assert memory.get_all() == []
    assert lightmem.get_all(user_id="dora")  # long-term memories survive a reset of the chat
    memory.reset(long_term=True)
    assert lightmem.get_all(user_id="dora") == []


def _weather(city: str) -> str:
    """Current weather for a city."""
    return f"{city}: 21C and sunny"


async def _agent_turn(llm: CityAgentLLM, memory: Any, message: str) -> tuple[str, list[dict]]:
    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(_weather, name="get_weather")],
        llm=llm,
        system_prompt="You help with the weather.",
    )
    handler = agent.run(user_msg=message, memory=memory)
    calls: list[dict] = []
    from llama_index.core.agent.workflow import ToolCallResult

    async for ev in handler.stream_events():
        if isinstance(ev, ToolCallResult):
            calls.append(dict(ev.tool_kwargs))
    return str(await handler), calls


@pytest.mark.asyncio
async def test_function_agent_uses_a_memory_from_an_earlier_session(lightmem: Any, agent_llm: CityAgentLLM) -> None:
    s1 = LightMemMemory.from_defaults(lightmem, user_id="erin", session_id="e1")
    answer, calls = await _agent_turn(agent_llm, s1, "I'm flying to Oslo next week for a conference.")
    assert answer == "Noted." and calls == []

    s2 = LightMemMemory.from_defaults(lightmem, user_id="erin", session_id="e2")
    answer, calls = await _agent_turn(agent_llm, s2, "What's the weather like where I'm flying to?")
    assert calls == [{"city": "Oslo"}]
    assert "Oslo: 21C and sunny" in answer
    # the agent's tool result and final answer were journaled too (tool turns as context)
    turns = {t.role for e in lightmem.get_all(user_id="erin") for t in lightmem.source_turns(e.id, user_id="erin")}
    assert "assistant" in turns

    other = LightMemMemory.from_defaults(lightmem, user_id="frank", session_id="f1")
    answer, calls = await _agent_turn(agent_llm, other, "What's the weather like where I'm flying to?")
    assert calls == [] and "do not know" in answer
    assert "Oslo" not in text_of(agent_llm.prompts[-1])


@pytest.mark.asyncio
async def test_a_tool_result_longer_than_the_store_accepts_does_not_fail_the_turn(
    make_memory: Any, tmp_path: Any
) -> None:
    small = make_memory({"max_message_chars": 200}, path=tmp_path / "small")
    memory = LightMemMemory.from_defaults(small, user_id="gus")
    await memory.aput_messages(
        [ChatMessage(role="user", content="Fetch the report."), ChatMessage(role="tool", content="row " * 500)]
    )
    assert len(await memory.aget_all()) == 2  # the recent chat keeps it whole
    turns = small.pending(user_id="gus") or [
        t for e in small.get_all(user_id="gus") for t in small.source_turns(e.id, user_id="gus")
    ]
    assert all(len(t.content) <= 200 for t in turns)
