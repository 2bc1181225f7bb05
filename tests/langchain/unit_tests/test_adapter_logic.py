"""Pure logic of the LangChain adapter: scope resolution, namespace mapping, which turns an
exchange saves, the store's value filters, the memory section, lazy imports."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel

from lightmem_core import Hit, InvalidInputError, MemoryEntry, Scope
from lightmem_langchain._common import ScopePolicy, exchange_turns, latest_user_text, memory_section
from lightmem_langchain.store import NamespaceMapping, _compare, _pushed


@dataclass
class DataCtx:
    user_id: str
    agent_id: str | None = None


class ModelCtx(BaseModel):
    user_id: str
    session_id: str | None = None


def test_scope_from_context_shapes_config_and_thread() -> None:
    policy = ScopePolicy()
    cfg = {"configurable": {"thread_id": "t1", "user_id": "ignored", "agent_id": "bot"}}
    assert policy.resolve(DataCtx("maya"), cfg) == Scope(user_id="maya", agent_id="bot", session_id="t1")
    assert policy.resolve(ModelCtx(user_id="maya", session_id="s9"), cfg).session_id == "s9"
    assert policy.resolve({"user_id": "maya"}, None) == Scope(user_id="maya")
    assert policy.resolve(None, {"configurable": {"user_id": "omar", "thread_id": "t"}}) == Scope(
        user_id="omar", session_id="t"
    )
    assert (
        ScopePolicy(session_from_thread=False)
        .resolve(None, cfg | {"configurable": {"user_id": "a", "thread_id": "t"}})
        .session_id
        is None
    )
    assert ScopePolicy(agent_id="fixed").resolve(DataCtx("maya", agent_id="ctx"), None).agent_id == "fixed"


def test_scope_errors_and_read_scope() -> None:
    with pytest.raises(InvalidInputError) as err:
        ScopePolicy().resolve(None, {"configurable": {"thread_id": "t1"}})
    assert err.value.field == "scope.user_id"
    with pytest.raises(InvalidInputError):
        ScopePolicy().resolve({"user_id": "bad\nid"}, None)
    write = Scope(user_id="maya", agent_id="bot", session_id="t1")
    assert ScopePolicy().read_scope(write) == Scope(user_id="maya", agent_id="bot")
    assert ScopePolicy(share_across_sessions=False).read_scope(write) == write


def test_exchange_turns_saves_the_last_exchange_without_tool_traffic() -> None:
    messages = [
        SystemMessage("sys"),
        HumanMessage("old question", id="h0"),
        AIMessage("old answer", id="a0"),
        HumanMessage("first part", id="h1"),
        HumanMessage([{"type": "text", "text": "second part"}], id="h2", name="Maya"),
        AIMessage("", id="a1", tool_calls=[{"name": "clock", "args": {}, "id": "c1"}]),
        ToolMessage("10:00", tool_call_id="c1", id="tm"),
        AIMessage("It is ten.", id="a2"),
    ]
    assert exchange_turns(messages) == [
        {"role": "user", "content": "first part", "id": "h1"},
        {"role": "user", "content": "second part", "id": "h2", "speaker_name": "Maya"},
        {"role": "assistant", "content": "It is ten.", "id": "a2"},
    ]
    assert exchange_turns([SystemMessage("only")]) == []
    assert latest_user_text(messages) == "second part"


def test_namespace_mapping() -> None:
    m = NamespaceMapping()
    assert m.user_of(("memories", "u")) == m.user_of(("memories", "u", "deeper", "still")) == "u"
    # any other namespace is a scope of its own, its user id encoding it (labels may hold anything but ".")
    other = m.user_of(("users", "u 1", "memo\nries"))
    assert other.startswith("ns:") and m.home(other) == ("users", "u 1", "memo\nries")
    assert m.home(m.user_of(("memories",))) == ("memories",) and m.home(m.user_of(())) == ()
    long = ("x" * 200, "y" * 200)
    assert m.user_of(long).startswith("ns#") and len(m.user_of(long)) < 256 and m.home(m.user_of(long)) is None
    # a label that cannot be a user id (or looks like an encoded one) makes a scope of its own
    assert m.user_of(("memories", "ns:sneaky")).startswith("ns:memories.ns%3Asneaky")
    assert m.home(m.user_of(("memories", "x\n", "deep"))) == ("memories", "x\n", "deep")
    # which scopes a prefix reaches, and whether they must be matched on the prefix too
    users = ["u", "v", m.user_of(("users", "a")), m.user_of(("users", "b", "c")), m.user_of(("org", "t"))]
    assert m.covering(("memories", "u", "deep"), users) == [("u", True)]
    assert m.covering(("memories", "u"), users) == [("u", False)]
    assert m.covering(("users",), users) == [(users[2], False), (users[3], False)]
    assert [u for u, _ in m.covering((), users)] == users
    assert NamespaceMapping(prefix=()).user_of(("users", "a")) == "users"


def test_store_value_filters() -> None:
    value = {"kind": "review", "stars": 4, "place": {"city": "Porto"}, "tags": ["food", "cheap"]}
    assert _compare(value["kind"], "review") and not _compare(value["kind"], "note")
    assert _compare(value["stars"], {"$gte": 4, "$lt": 5}) and not _compare(value["stars"], {"$gt": 4})
    assert _compare(value["place"], {"city": "Porto"}) and _compare(None, {"$ne": 1})
    assert not _compare(None, {"$gt": 1}) and _compare(value["tags"], ["food", "cheap"])
    assert not _compare(value["tags"], "food")  # a list equals a list, not one of its elements
    with pytest.raises(ValueError):
        _compare(1, {"$regex": "x"})
    # what the engine is asked: a superset of the matches, never less
    assert _pushed(
        {
            "kind": "review",
            "stars": {"$gte": 4},
            "place": {"city": "Porto"},
            "tags": ["food"],
            "flag": True,
            "note": {"$ne": "x"},
            "place.zip": "4000",
            "odd key": "v",
        }
    ) == {
        "metadata.lg_value.kind": "review",
        "metadata.lg_value.stars": {"gte": 4.0},
        "metadata.lg_value.place.city": "Porto",
        "metadata.lg_value.place.zip": "4000",
    }
    assert _pushed({"n": 3}) == {"metadata.lg_value.n": {"gte": 3.0, "lte": 3.0}}


def _hit(text: str, ts: str, kind: str = "fact") -> Hit:
    return Hit(
        entry=MemoryEntry(memory=text, user_id="u", time_stamp=datetime.fromisoformat(ts), entry_type=kind), score=1.0
    )


def test_memory_section_puts_summaries_first_and_entries_in_time_order() -> None:
    hits = [
        _hit("later fact", "2025-03-02T10:00"),
        _hit("the month in short", "2025-03-01T00:00", "summary"),
        _hit("earlier fact", "2025-03-01T09:00"),
    ]
    text = memory_section(hits, header="H")
    lines = text.splitlines()
    assert lines[0] == "H" and lines[1] == "Summaries:" and "the month in short" in lines[2]
    assert lines[3] == "Memories:" and "earlier fact" in lines[4] and "later fact" in lines[5]
    assert memory_section(hits[:1], header="H").splitlines()[1].startswith("- 2025-03-02 10:00 Sun later fact")
    windowed = hits[0].model_copy(update={"window": "Matcha, ceremonial grade. later fact"})
    assert (
        memory_section([windowed], header="H").splitlines()[1]
        == "- 2025-03-02 10:00 Sun Matcha, ceremonial grade. later fact"
    )


def test_importing_the_package_loads_no_framework() -> None:
    code = (
        "import sys, lightmem_langchain as l; "
        "assert not [m for m in sys.modules if m.split('.')[0] in ('langchain', 'langchain_core', 'langgraph', "
        "'langchain_classic')], 'framework imported eagerly'; "
        "assert 'create_memory_tools' in dir(l); l.LightMemRetriever; "
        "assert 'langchain_classic' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(__file__).parents[3]))
