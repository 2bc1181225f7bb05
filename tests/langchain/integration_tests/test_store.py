"""LightMemStore: the BaseStore operations on a real memory, inside a LangGraph graph, and
as ``create_agent(..., store=...)``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.tools import ToolRuntime
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import GetOp, ListNamespacesOp, PutOp, SearchOp
from typing_extensions import TypedDict

from lightmem_langchain import LightMemStore, NamespaceMapping
from tests.langchain.scripted import ScriptedChatModel, tool_call

NS = ("memories", "maya")


def test_put_get_update_delete_with_a_stable_memory_id(memory: Any) -> None:
    store = LightMemStore(memory)
    store.put(NS, "food", {"content": "Maya is vegetarian and loves mushroom risotto.", "kind": "preference"})
    item = store.get(NS, "food")
    assert item is not None and item.key == "food" and item.namespace == NS
    assert item.value == {"content": "Maya is vegetarian and loves mushroom risotto.", "kind": "preference"}
    entries = memory.get_all(user_id="maya")
    assert len(entries) == 1 and entries[0].memory == "Maya is vegetarian and loves mushroom risotto."
    memory_id, version = entries[0].id, entries[0].version

    store.put(NS, "food", {"content": "Maya eats fish again since 2025.", "kind": "preference"})
    after = memory.get_all(user_id="maya")
    assert [e.id for e in after] == [memory_id] and after[0].version == version + 1  # updated in place, not added
    assert [h.event for h in memory.history(memory_id, user_id="maya")][-1] == "UPDATE"
    assert store.get(NS, "food").value["content"] == "Maya eats fish again since 2025."  # type: ignore[union-attr]
    assert store.get(NS, "food").created_at == item.created_at  # type: ignore[union-attr]

    store.delete(NS, "food")
    assert store.get(NS, "food") is None and memory.get_all(user_id="maya") == []
    assert memory.history(memory_id, user_id="maya")[-1].event == "DELETE"
    store.put(NS, "food", {"content": "Maya is vegan now."})  # a deleted key can be put again
    assert store.get(NS, "food").value == {"content": "Maya is vegan now."}  # type: ignore[union-attr]


def test_a_multi_sentence_value_is_one_entry(memory: Any) -> None:
    store = LightMemStore(memory)
    text = "Maya is a nurse at Brightline Health. She works night shifts. She lives in Porto with her corgi."
    store.put(NS, "bio", {"content": text})
    entries = memory.get_all(user_id="maya")
    assert [e.memory for e in entries] == [text]  # the extractor's sentence split is folded back into one entry
    store.put(NS, "bio", {"content": text})  # the same value again changes nothing
    assert memory.get_all(user_id="maya")[0].version == entries[0].version


def test_put_with_extraction_on_an_llm_memory(make_memory: Any, fake_llm: Any) -> None:
    memory = make_memory({"llm": {"base_url": fake_llm.base_url, "api_key": "k", "model": "fake"}})
    verbatim, extracting = LightMemStore(memory), LightMemStore(memory, extract=True)
    verbatim.put(NS, "plain", {"content": "Maya's locker code is 4512."})
    assert [e.memory for e in memory.get_all(user_id="maya")] == ["Maya's locker code is 4512."]
    assert fake_llm.calls["chat"] == 0  # a plain put is stored verbatim (add_memory infer=False): no LLM call

    fake_llm.responder = lambda req: json.dumps(
        {
            "facts": [
                {"fact": "Maya moved to Porto.", "source_ids": ["1"]},
                {"fact": "Maya adopted a corgi.", "source_ids": ["1"]},
            ]
        }
    )
    extracting.put(NS, "facts", {"content": "Maya moved to Porto. She adopted a corgi."})
    facts = [e for e in memory.get_all(user_id="maya") if e.metadata.get("lg_key") == "facts"]
    assert sorted(e.memory for e in facts) == ["Maya adopted a corgi.", "Maya moved to Porto."]
    assert extracting.get(NS, "facts").value == {"content": "Maya moved to Porto. She adopted a corgi."}  # type: ignore[union-attr]
    assert [i.key for i in extracting.search(NS, query="corgi")][:1] == ["facts"]  # one item per key
    extracting.delete(NS, "facts")
    assert [e.metadata.get("lg_key") for e in memory.get_all(user_id="maya")] == ["plain"]


def test_namespaces_are_scopes(memory: Any) -> None:
    """A namespace under ("memories", user) lives in that user's scope, deeper labels kept
    exactly; any other namespace is a scope of its own. Isolation comes from the storage
    layer: another user's scope is never read."""
    store = LightMemStore(memory)
    store.put(NS, "pet", {"text": "Maya has a corgi named Biscuit."})
    store.put(("memories", "maya", "trips", "2026"), "trip", {"text": "Maya is planning a trip to Kyoto in May."})
    store.put(("memories", "omar"), "pet", {"text": "Omar has a poodle named Rex."})
    store.put(("users", "zoe", "prefs"), "tea", {"text": "Zoe drinks oolong."})

    assert store.get(("memories", "omar"), "pet").value["text"].startswith("Omar")  # type: ignore[union-attr]
    assert {e.metadata["lg_key"] for e in memory.get_all(user_id="maya")} == {"pet", "trip"}
    assert [e.metadata["lg_key"] for e in memory.get_all(user_id="omar")] == ["pet"]
    assert memory.get_all(user_id="zoe") == []  # ("users", "zoe", ...) is not under the prefix: a scope of its own
    # a user's namespace covers the deeper ones; nobody else's memories
    found = store.search(NS, query="dog breed corgi poodle")
    assert {i.key for i in found} == {"pet", "trip"} and all(i.namespace[:2] == NS for i in found)
    assert found[0].key == "pet" and 0.0 <= found[0].score <= 1.0  # type: ignore[operator]
    assert [i.key for i in store.search(("memories", "maya", "trips"))] == ["trip"]
    assert store.get(NS, "trip") is None  # get is exact: the item lives in the deeper namespace
    assert [i.key for i in store.search(("users",), query="tea")] == ["tea"]

    assert store.list_namespaces(prefix=("memories", "maya")) == [NS, ("memories", "maya", "trips", "2026")]
    assert store.list_namespaces() == [
        NS,
        ("memories", "maya", "trips", "2026"),
        ("memories", "omar"),
        ("users", "zoe", "prefs"),
    ]
    assert store.list_namespaces(max_depth=2) == [NS, ("memories", "omar"), ("users", "zoe")]
    assert store.list_namespaces(suffix=("2026",)) == [("memories", "maya", "trips", "2026")]
    assert store.list_namespaces(prefix=("users", "*", "prefs")) == [("users", "zoe", "prefs")]


def test_search_filters_pagination_and_foreign_memories(memory: Any) -> None:
    store = LightMemStore(memory, mapping=NamespaceMapping(prefix=("users",)))
    ns = ("users", "maya")
    for i, (text, stars) in enumerate(
        [
            ("Maya rated the ramen place five stars.", 5),
            ("Maya rated the pizza place two stars.", 2),
            ("Maya rated the taco truck four stars.", 4),
        ]
    ):
        store.put(ns, f"review-{i}", {"content": text, "stars": stars, "kind": "review"})
    memory.add_memory("I started learning the cello in January.", user_id="maya", session_id="s1")

    good = store.search(ns, query="restaurant rating", filter={"stars": {"$gte": 4}})
    assert {i.key for i in good} == {"review-0", "review-2"}
    assert [i.key for i in store.search(ns, filter={"kind": "review"}, limit=2, offset=1)] == ["review-1", "review-2"]
    cello = store.search(ns, query="cello lessons", limit=1)[0]
    assert cello.namespace == ns and cello.value["session_id"] == "s1"  # a memory saved outside the store shows too
    assert cello.value["memory"] == "user: I started learning the cello in January." and cello.key == cello.value["id"]
    assert store.get(cello.namespace, cello.key).value["source_ids"]  # type: ignore[union-attr]
    # a sentence of a longer turn comes back with the sentences around it; get returns the memory alone
    memory.add_memory(
        "Is a carbon fibre bow worth it for a beginner? I practise the scales every evening after work now.",
        user_id="maya",
        session_id="s2",
    )
    scales = next(
        i for i in store.search(ns, query="when does Maya practise", limit=6) if "scales" in i.value.get("memory", "")
    )
    assert "bow" not in scales.value["memory"] and "carbon fibre bow" in scales.value["window"]
    assert "window" not in store.get(scales.namespace, scales.key).value  # type: ignore[union-attr]


def test_a_batch_reads_before_it_writes(memory: Any) -> None:
    """As LangGraph's own stores: reads in a batch see the store as it was before it, then
    the writes apply, the last write of a key winning."""
    store = LightMemStore(memory)
    store.put(NS, "a", {"content": "Maya's locker code is 4512."})
    results = store.batch(
        [
            PutOp(NS, "a", {"content": "Maya's locker code is 7781."}),
            GetOp(NS, "a"),
            SearchOp(NS, query="locker code"),
            ListNamespacesOp(),
            PutOp(NS, "b", {"content": "Maya parks on level 3."}),
            PutOp(NS, "b", None),
            GetOp(NS, "b"),
        ]
    )
    assert results[0] is None and results[1].value["content"] == "Maya's locker code is 4512."
    assert results[2][0].key == "a" and results[3] == [NS] and results[6] is None
    assert store.get(NS, "a").value["content"] == "Maya's locker code is 7781."  # type: ignore[union-attr]
    assert store.get(NS, "b") is None


@pytest.mark.asyncio
async def test_async_batch(memory: Any) -> None:
    store = LightMemStore(memory)
    await store.aput(NS, "city", {"content": "Maya lives in Porto."})
    assert (await store.aget(NS, "city")).value["content"] == "Maya lives in Porto."  # type: ignore[union-attr]
    hits = await store.asearch(NS, query="Where does Maya live?")
    assert hits[0].key == "city"
    await store.adelete(NS, "city")
    assert await store.aget(NS, "city") is None


class State(TypedDict, total=False):
    text: str
    recalled: list[str]


@dataclass
class Ctx:
    user_id: str


def test_inside_a_langgraph_graph(memory: Any) -> None:
    store = LightMemStore(memory)

    def remember(state: State, runtime: Runtime[Ctx]) -> State:
        ns = ("memories", runtime.context.user_id)
        assert runtime.store is not None
        found = runtime.store.search(ns, query=state["text"], limit=3)
        runtime.store.put(ns, f"note-{len(found)}", {"content": state["text"]})
        return {"recalled": [i.value["content"] for i in found]}

    graph = (
        StateGraph(State, context_schema=Ctx)
        .add_node("remember", remember)
        .add_edge(START, "remember")
        .add_edge("remember", END)
        .compile(store=store)
    )
    graph.invoke({"text": "Maya's passport expires in June 2027."}, context=Ctx("maya"))
    out = graph.invoke({"text": "When does the passport expire?"}, context=Ctx("maya"))
    assert out["recalled"] == ["Maya's passport expires in June 2027."]
    assert graph.invoke({"text": "When does the passport expire?"}, context=Ctx("omar"))["recalled"] == []


def test_as_the_store_of_create_agent(memory: Any) -> None:
    @tool
    def save_profile(field: str, value: str, runtime: ToolRuntime[Ctx]) -> str:
        """Save a profile field for the current user."""
        runtime.store.put(("memories", runtime.context.user_id), field, {"content": f"{field}: {value}"})  # type: ignore[union-attr]
        return "saved"

    @tool
    def read_profile(query: str, runtime: ToolRuntime[Ctx]) -> str:
        """Search the current user's profile."""
        items = runtime.store.search(("memories", runtime.context.user_id), query=query)  # type: ignore[union-attr]
        return "\n".join(i.value.get("content", i.value.get("memory", "")) for i in items) or "nothing"

    store = LightMemStore(memory)
    model = ScriptedChatModel(
        script=[
            tool_call("save_profile", {"field": "home_city", "value": "Lisbon"}),
            "Saved your city.",
            tool_call("read_profile", {"query": "home city"}, "call-2"),
            "You live in Lisbon.",
            tool_call("read_profile", {"query": "home city"}, "call-3"),
            "I do not know.",
        ]
    )
    agent = create_agent(model, tools=[save_profile, read_profile], store=store, context_schema=Ctx)
    agent.invoke({"messages": [HumanMessage("I live in Lisbon.")]}, context=Ctx("maya"))
    assert store.get(("memories", "maya"), "home_city").value == {"content": "home_city: Lisbon"}  # type: ignore[union-attr]
    out = agent.invoke({"messages": [HumanMessage("Where do I live?")]}, context=Ctx("maya"))
    assert out["messages"][-2].content == "home_city: Lisbon"  # the tool's answer, read from LightMem
    other = agent.invoke({"messages": [HumanMessage("Where do I live?")]}, context=Ctx("omar"))
    assert other["messages"][-2].content == "nothing"
