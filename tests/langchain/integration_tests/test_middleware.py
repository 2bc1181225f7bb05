"""LightMemoryMiddleware in real ``create_agent`` agents, driven by a scripted chat model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from lightmem_core import InvalidInputError, LightMemory, MemoryConfig
from lightmem_langchain import LightMemoryMiddleware
from tests.langchain.scripted import ScriptedChatModel


@dataclass
class Ctx:
    user_id: str


def _run(agent: Any, text: str, thread: str, user: str) -> dict[str, Any]:
    return agent.invoke(
        {"messages": [HumanMessage(text)]}, {"configurable": {"thread_id": thread}}, context=Ctx(user_id=user)
    )


def _agent(memory: Any, model: ScriptedChatModel, **kwargs: Any) -> tuple[Any, LightMemoryMiddleware]:
    mw = LightMemoryMiddleware(memory, raise_errors=True, **kwargs)
    agent = create_agent(
        model,
        tools=[],
        system_prompt="You are a helpful assistant.",
        middleware=[mw],
        context_schema=Ctx,
        checkpointer=InMemorySaver(),
    )
    return agent, mw


def test_fact_told_in_one_thread_is_recalled_in_another_and_not_for_another_user(memory: Any) -> None:
    model = ScriptedChatModel(default="Noted.")
    agent, _ = _agent(memory, model)

    _run(agent, "My dog Biscuit is a corgi, he is three years old.", "thread-1", "maya")
    assert "corgi" not in model.system_text(0)  # nothing was known yet
    assert model.system_text(0).startswith("You are a helpful assistant.")

    _run(agent, "What breed is my dog Biscuit?", "thread-2", "maya")
    second = model.system_text(-1)
    assert second.startswith("You are a helpful assistant.")  # the agent's own prompt is kept
    assert "Long-term memory" in second and "Biscuit is a corgi" in second
    # the thread's own messages are not polluted: thread 2 holds only its own exchange
    assert [m.type for m in model.requests[-1][1:]] == ["human"]

    _run(agent, "What breed is my dog Biscuit?", "thread-3", "omar")
    assert "corgi" not in model.system_text(-1)
    assert "Long-term memory" not in model.system_text(-1)

    saved = memory.get_all(user_id="maya")
    assert {e.session_id for e in saved} == {"thread-1", "thread-2"}  # thread id became the session
    assert any("Noted." in e.memory for e in saved)  # the assistant's answer was saved too
    assert memory.get_all(user_id="omar") and all(e.user_id == "omar" for e in memory.get_all(user_id="omar"))


def test_scope_from_config_agent_narrows_and_only_new_turns_are_saved(memory: Any) -> None:
    model = ScriptedChatModel(default="Got it.")
    mw = LightMemoryMiddleware(memory, raise_errors=True)
    agent = create_agent(model, tools=[], middleware=[mw], checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "a", "user_id": "lena", "agent_id": "planner"}}
    agent.invoke({"messages": [HumanMessage("I am flying to Tokyo on March 3rd.")]}, cfg)
    before = memory.get_all(user_id="lena")
    assert before and all(e.agent_id == "planner" and e.session_id == "a" for e in before)

    agent.invoke(
        {"messages": [HumanMessage("When is my flight to Tokyo?")]},
        {"configurable": {"thread_id": "b", "user_id": "lena", "agent_id": "planner"}},
    )
    assert "Tokyo on March 3rd" in model.system_text(-1)
    # a different agent of the same user does not read the planner's memories
    agent.invoke(
        {"messages": [HumanMessage("When is my flight to Tokyo?")]},
        {"configurable": {"thread_id": "c", "user_id": "lena", "agent_id": "other"}},
    )
    assert "March 3rd" not in model.system_text(-1)
    n = len(memory.get_all(user_id="lena"))
    # a later run in the same thread saves only its own exchange, not the thread so far
    agent.invoke(
        {"messages": [HumanMessage("Thanks!")]},
        {"configurable": {"thread_id": "b", "user_id": "lena", "agent_id": "planner"}},
    )
    texts = [e.memory for e in memory.get_all(user_id="lena")]
    assert len(texts) == n + 2 and sum("When is my flight" in t for t in texts) == 2


def test_missing_user_is_refused(memory: Any) -> None:
    agent = create_agent(ScriptedChatModel(), tools=[], middleware=[LightMemoryMiddleware(memory)])
    with pytest.raises(InvalidInputError) as err:
        agent.invoke({"messages": [HumanMessage("hello there")]})
    assert err.value.field == "scope.user_id"


def test_save_adds_no_llm_call_while_the_pipeline_buffers(make_memory: Any, fake_llm: Any) -> None:
    memory = make_memory(
        {"llm": {"base_url": fake_llm.base_url, "api_key": "k", "model": "fake"}, "extract_tokens": 100_000}
    )
    model = ScriptedChatModel(default="Sure.")
    agent, _ = _agent(memory, model)
    _run(agent, "I moved to Porto last spring.", "t1", "maya")
    _run(agent, "Where do I live now?", "t2", "maya")
    assert fake_llm.calls["chat"] == 0  # the memory manager was never called on the agent's path
    pending = memory.pending(user_id="maya")
    assert [t.content for t in pending][:2] == ["I moved to Porto last spring.", "Sure."]
    memory.flush(user_id="maya")  # extraction happens when asked (or when the buffer fills)
    assert fake_llm.calls["chat"] >= 1 and memory.get_all(user_id="maya")


def test_background_save(memory: Any) -> None:
    model = ScriptedChatModel(default="OK.")
    agent, mw = _agent(memory, model, background=True)
    _run(agent, "My sister Ana works as a nurse in Braga.", "t1", "maya")
    mw.wait(timeout=30)
    assert any("nurse in Braga" in e.memory for e in memory.get_all(user_id="maya"))
    mw.close()


def test_tool_loop_recalls_once_per_user_message(memory: Any) -> None:
    from langchain_core.tools import tool

    from tests.langchain.scripted import tool_call

    @tool
    def clock() -> str:
        """The current time."""
        return "10:00"

    memory.add_memory("My favourite tea is genmaicha.", user_id="maya")
    calls = []
    real = memory.retrieve

    def counting(*a: Any, **kw: Any) -> Any:
        calls.append(a)
        return real(*a, **kw)

    memory.retrieve = counting  # counts the real calls; the real method still runs
    model = ScriptedChatModel(script=[tool_call("clock", {}), "It is 10:00, time for genmaicha."])
    mw = LightMemoryMiddleware(memory, raise_errors=True)
    agent = create_agent(model, tools=[clock], middleware=[mw], context_schema=Ctx)
    agent.invoke({"messages": [HumanMessage("What tea do I like, and what time is it?")]}, context=Ctx("maya"))
    assert len(model.requests) == 2 and len(calls) == 1
    assert all("genmaicha" in model.system_text(i) for i in (0, 1))


@pytest.mark.asyncio
async def test_async_agent(memory: Any) -> None:
    model = ScriptedChatModel(default="Noted.")
    agent, _ = _agent(memory, model)
    await agent.ainvoke(
        {"messages": [HumanMessage("I am vegetarian since 2019.")]},
        {"configurable": {"thread_id": "x1"}},
        context=Ctx("maya"),
    )
    await agent.ainvoke(
        {"messages": [HumanMessage("Am I vegetarian?")]}, {"configurable": {"thread_id": "x2"}}, context=Ctx("maya")
    )
    assert "vegetarian since 2019" in model.system_text(-1)


def test_recall_failure_does_not_break_the_agent(tmp_path: Any, embedder: Any) -> None:
    memory = LightMemory(MemoryConfig.from_dict({"store": {"path": str(tmp_path / "s")}}), embedder=embedder)
    model = ScriptedChatModel(default="Still here.")
    agent = create_agent(model, tools=[], middleware=[LightMemoryMiddleware(memory)], context_schema=Ctx)
    memory.close()  # every memory call now fails
    out = agent.invoke({"messages": [HumanMessage("hello")]}, context=Ctx("maya"))
    assert out["messages"][-1].content == "Still here."
