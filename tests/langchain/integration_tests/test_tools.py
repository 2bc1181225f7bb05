"""Memory tools called by a real ``create_agent`` agent (scripted tool calls) and directly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage, ToolMessage

from lightmem_langchain import create_memory_tools
from tests.langchain.scripted import ScriptedChatModel, tool_call


@dataclass
class Ctx:
    user_id: str


def _tool_messages(out: dict[str, Any]) -> list[ToolMessage]:
    return [m for m in out["messages"] if isinstance(m, ToolMessage)]


def test_agent_saves_searches_updates_and_deletes(memory: Any) -> None:
    model = ScriptedChatModel()
    agent = create_agent(model, tools=create_memory_tools(memory), context_schema=Ctx)
    cfg = {"configurable": {"thread_id": "t1"}}

    model.script = [tool_call("save_memory", {"content": "Maya is allergic to peanuts."}), "I'll remember that."]
    out = agent.invoke({"messages": [HumanMessage("Remember: I'm allergic to peanuts.")]}, cfg, context=Ctx("maya"))
    saved = _tool_messages(out)[0]
    assert saved.content.startswith("Saved 1 memory")
    memory_id = saved.artifact[0]["id"]
    entry = memory.get(memory_id, user_id="maya")
    assert "allergic to peanuts" in entry.memory and entry.session_id == "t1"  # thread id -> session

    # a later thread finds it (search spans sessions) and the model sees ids it can act on
    model.script = [tool_call("search_memory", {"query": "food allergies"}), "You are allergic to peanuts."]
    out = agent.invoke(
        {"messages": [HumanMessage("Any allergies?")]}, {"configurable": {"thread_id": "t2"}}, context=Ctx("maya")
    )
    found = _tool_messages(out)[0]
    assert f"[{memory_id}]" in found.content and "peanuts" in found.content
    assert found.artifact[0]["id"] == memory_id and found.artifact[0]["score"] > 0

    model.script = [
        tool_call(
            "update_memory",
            {
                "memory_id": memory_id,
                "content": "Maya is allergic to peanuts and cashews.",
                "reason": "user added cashews",
            },
        ),
        "Updated.",
    ]
    agent.invoke({"messages": [HumanMessage("Also cashews.")]}, context=Ctx("maya"))
    assert memory.get(memory_id, user_id="maya").memory == "Maya is allergic to peanuts and cashews."
    assert memory.history(memory_id, user_id="maya")[-1].reason == "user added cashews"

    # another user can neither see nor touch it: the tools act in the caller's scope
    model.script = [
        tool_call("search_memory", {"query": "peanuts allergy"}),
        tool_call("delete_memory", {"memory_id": memory_id}, "call-2"),
        "Done.",
    ]
    out = agent.invoke({"messages": [HumanMessage("What do you know?")]}, context=Ctx("omar"))
    search, delete = _tool_messages(out)
    assert search.content == "No memories found."
    assert delete.status == "error" and "not found" in delete.content
    assert memory.get(memory_id, user_id="maya")  # still there

    model.script = [tool_call("delete_memory", {"memory_id": memory_id, "reason": "user asked"}), "Forgotten."]
    agent.invoke({"messages": [HumanMessage("Forget my allergies.")]}, context=Ctx("maya"))
    assert memory.get_all(user_id="maya") == []
    assert memory.history(memory_id, user_id="maya")[-1].event == "DELETE"


def test_fixed_scope_schemas_and_direct_calls(memory: Any) -> None:
    tools = {
        t.name: t
        for t in create_memory_tools(memory, {"user_id": "maya", "agent_id": "coach"}, include=("save", "search"), k=2)
    }
    assert set(tools) == {"save_memory", "search_memory"}
    schema = tools["save_memory"].tool_call_schema.model_json_schema()
    assert set(schema["properties"]) == {"content", "time_stamp"} and schema["required"] == ["content"]
    assert "runtime" not in tools["search_memory"].tool_call_schema.model_json_schema()["properties"]

    msg = tools["save_memory"].invoke(
        {
            "type": "tool_call",
            "id": "1",
            "name": "save_memory",
            "args": {"content": "Maya runs 10 km every Sunday.", "time_stamp": "2025-05-04T08:00:00"},
        }
    )
    assert msg.content.startswith("Saved")
    entry = memory.get_all(user_id="maya", agent_id="coach")[0]
    assert entry.time_stamp.year == 2025 and entry.agent_id == "coach"
    assert "10 km" in tools["search_memory"].invoke({"query": "running"})
    # a sentence of a longer turn: the id names the sentence, the context shows what it is about
    tools["save_memory"].invoke(
        {
            "content": "Is ceremonial grade matcha worth it? I whisk up a bowl every single "
            "morning now and want to upgrade."
        }
    )
    found = tools["search_memory"].invoke({"query": "what does Maya whisk every morning"})
    line, context = found.split("\n")[:2]
    assert (
        "whisk" in line and "matcha" not in line and context.strip().startswith("in context:") and "matcha" in context
    )
    bad = tools["save_memory"].invoke({"type": "tool_call", "id": "2", "name": "save_memory", "args": {"content": ""}})
    assert bad.status == "error" and bad.artifact == {"error": bad.content}  # an artifact, as the format promises
    with pytest.raises(ValueError):
        create_memory_tools(memory, "maya", include=("forget",))


@pytest.mark.asyncio
async def test_async_agent_tools(memory: Any) -> None:
    model = ScriptedChatModel(
        script=[
            tool_call("save_memory", {"content": "Maya's gym is on Rua Augusta."}),
            "Ok.",
            tool_call("search_memory", {"query": "gym"}),
            "Rua Augusta.",
        ]
    )
    agent = create_agent(model, tools=create_memory_tools(memory), context_schema=Ctx)
    await agent.ainvoke({"messages": [HumanMessage("My gym is on Rua Augusta.")]}, context=Ctx("maya"))
    out = await agent.ainvoke({"messages": [HumanMessage("Where is my gym?")]}, context=Ctx("maya"))
    assert "Rua Augusta" in _tool_messages(out)[0].content


# --- langchain-tests' standard tool suite, on a success and on a failure ------------------------
from langchain_tests.integration_tests import ToolsIntegrationTests  # noqa: E402


@pytest.fixture(scope="module")
def tool_memory(tmp_path_factory: Any, embedder: Any) -> Any:
    from lightmem_core import LightMemory, MemoryConfig

    memory = LightMemory(
        MemoryConfig.from_dict({"store": {"path": str(tmp_path_factory.mktemp("tools"))}}), embedder=embedder
    )
    memory.add_memory("My dog Biscuit is a corgi.", user_id="maya")
    yield memory
    memory.close()


class TestSearchToolStandard(ToolsIntegrationTests):
    @pytest.fixture(autouse=True)
    def _memory(self, tool_memory: Any) -> None:
        self._tool = {t.name: t for t in create_memory_tools(tool_memory, "maya")}["search_memory"]

    @property
    def tool_constructor(self) -> Any:
        return self._tool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"query": "dog breed"}


class TestFailingToolStandard(TestSearchToolStandard):
    """A call that fails (an id that is not there) still answers with an artifact."""

    @pytest.fixture(autouse=True)
    def _memory(self, tool_memory: Any) -> None:
        self._tool = {t.name: t for t in create_memory_tools(tool_memory, "maya")}["update_memory"]

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"memory_id": "00000000-0000-0000-0000-000000000000", "content": "x"}
