"""Summaries: consolidated per period, stored apart, updated in place, in history."""

from __future__ import annotations

import json

from lightmem_core.config import LLMConfig
from lightmem_core.llm import OpenAICompatibleLLM

S1 = [
    {
        "id": "s1a",
        "role": "user",
        "content": "I adopted a corgi puppy named Biscuit from the shelter.",
        "time_stamp": "2025-01-12T09:00:00",
    },
    {
        "id": "s1b",
        "role": "user",
        "content": "Biscuit already knows how to sit and loves carrots.",
        "time_stamp": "2025-01-12T09:05:00",
    },
]
S2 = [
    {
        "id": "s2a",
        "role": "user",
        "content": "We booked flights to Lisbon for June 14.",
        "time_stamp": "2025-03-09T14:30:00",
    },
    {
        "id": "s2b",
        "role": "user",
        "content": "Tom insists on a day trip to Sintra during the Lisbon week.",
        "time_stamp": "2025-03-09T14:35:00",
    },
]


def test_offline_session_summaries(make_memory) -> None:
    m = make_memory()
    m.add_memory(S1, user_id="maya", session_id="s1")
    m.add_memory(S2, user_id="maya", session_id="s2")
    m.add_memory([{"id": "x", "role": "user", "content": "Bob keeps bees in Leeds."}], user_id="bob", session_id="s1")
    sums = {s.session_id: s for s in m.summarize(user_id="maya")}
    assert set(sums) == {"s1", "s2"}
    assert "Biscuit" in sums["s1"].memory and "Lisbon" in sums["s2"].memory and "Leeds" not in sums["s1"].memory
    assert sums["s2"].entry_type.value == "summary" and sorted(sums["s2"].source_ids) == ["s2a", "s2b"]
    assert sums["s2"].metadata["period_start"] == "2025-03-09T14:30:00" and sums["s2"].metadata["entry_count"] == 2
    # stored apart: plain entry reads do not see them, summary reads do
    assert all(e.entry_type.value != "summary" for e in m.get_all(user_id="maya"))
    got = m.get_all(user_id="maya", filters={"entry_type": "summary"})
    assert {g.id for g in got} == {s.id for s in sums.values()}
    hit = m.retrieve("trip to Portugal", user_id="maya", filters={"entry_type": "summary"})[0]
    assert hit.entry.id == sums["s2"].id
    assert m.get_all(user_id="bob", filters={"entry_type": "summary"}) == []
    # re-running with nothing new changes nothing; new entries update the summary in place
    again = m.summarize(user_id="maya")
    assert {s.id: s.version for s in again} == {s.id: 1 for s in sums.values()}
    m.add_memory(
        [
            {
                "id": "s2c",
                "role": "user",
                "content": "We will stay in a guesthouse in Alfama.",
                "time_stamp": "2025-03-09T14:40:00",
            }
        ],
        user_id="maya",
        session_id="s2",
    )
    updated = {s.session_id: s for s in m.summarize(user_id="maya", window="session")}
    assert updated["s2"].id == sums["s2"].id and updated["s2"].version == 2
    assert [h.event for h in m.history(sums["s2"].id, user_id="maya")] == ["ADD", "UPDATE"]
    assert len(m.summarize(user_id="maya", window="month")) == 2


def test_llm_summaries_count_as_summary_stage(make_memory, fake_llm) -> None:
    fake_llm.responder = lambda req: (
        json.dumps({"summary": "Maya adopted Biscuit, a corgi who loves carrots."})
        if "SUMMARIZE" in req["messages"][0]["content"]
        else None
    )
    llm = OpenAICompatibleLLM(LLMConfig(base_url=fake_llm.base_url, model="fake", api_key="k"), backoff_base=0.01)
    m = make_memory(llm=llm)
    m.add_memory(S1, user_id="maya", session_id="s1", force_extract=True)
    (summary,) = m.summarize(user_id="maya")
    assert summary.memory == "Maya adopted Biscuit, a corgi who loves carrots."
    stats = m.get_token_statistics()
    assert stats["summary"]["calls"] == 1 and stats["extraction"]["calls"] == 1
    prompt = fake_llm.requests_for("chat")[-1]["messages"][1]["content"]
    assert "Biscuit" in prompt and prompt.startswith("Memories (data):")
