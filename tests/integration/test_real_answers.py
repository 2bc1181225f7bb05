"""The repairs, each against an answer a real model or server gave.

Everything replayed here was recorded from Qwen2.5-Coder-1.5B-Instruct (Q4_K_M) and
SmolLM2-135M on llama-cpp-python 0.3.36 (``tools/record_llm_answers.py``,
``tools/record_server_errors.py``, ``benchmarks/llm_local.py``) into
``tests/fixtures/llm_answers``. The loopback server of tests/fake_llm.py plays the
recorded bodies back over real HTTP, because no model can run inside ``make test``; the
same paths run against the live model in ``make test-llm`` (tests/llm_real).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from lightmem_core.config import LLMConfig
from lightmem_core.llm import OpenAICompatibleLLM, complete_json
from tests.fake_llm import FakeLLMServer, FaultSpec
from tools.record_llm_answers import CHAT as RECORDED_CHAT

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "llm_answers"
ISO = re.compile(r"^\d{4}(-\d{2}(-\d{2})?|-W\d{2})?$")

# the four turns the answers were recorded for (tools/record_llm_answers.py), with ids
CHAT = [{**turn, "id": f"m{i}"} for i, turn in enumerate(RECORDED_CHAT, 1)]


def recorded(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def replaying(server: FakeLLMServer, calls: list[dict[str, Any]]) -> None:
    """Answer the n-th chat request with the n-th recorded answer (its finish_reason too)."""
    server.script(
        *(FaultSpec(body=c["answer"], finish_reason=c.get("finish_reason") or "stop") for c in calls), endpoint="chat"
    )


def llm_for(server: FakeLLMServer, **kw: Any) -> OpenAICompatibleLLM:
    cfg = LLMConfig(
        base_url=server.base_url,
        model=kw.pop("model", "recorded"),
        api_key="k",
        timeout=5,
        max_retries=kw.pop("max_retries", 1),
        **kw,
    )
    return OpenAICompatibleLLM(cfg, backoff_base=0.01, max_backoff=0.02)


def test_relative_times_the_model_left_unresolved_get_dates(make_memory, fake_llm) -> None:
    """Qwen gave "time": "2023-05-08 13:56" (the session) for "adopted ... yesterday" and
    "null" for "in June"; the stored facts carry the dates those words stand for."""
    replaying(fake_llm, recorded("flat")["calls"])
    m = make_memory(llm=llm_for(fake_llm))
    r = m.add_memory(CHAT, user_id="maya", force_extract=True)
    assert r.error is None and m.pending(user_id="maya") == []
    got = {e.memory: e for e in m.get_all(user_id="maya")}
    pixel = got["Maya adopted a rescue greyhound called Pixel yesterday (2023-05-07)."]
    assert pixel.source_ids == ["m1"] and pixel.metadata["event_date"] == "2023-05-07"
    june = got["Tom is running the Boston marathon in June (2023-06)."]
    assert june.source_ids == ["m4"] and june.metadata["event_date"] == "2023-06"
    stats = m.get_repair_statistics()
    assert stats["times_from_fact"] == 2 and stats["ids_kept"] == 2 and stats["ids_dropped"] == 0


def test_event_time_comes_from_the_turn_when_the_model_gave_the_session_date(make_memory, fake_llm) -> None:
    """In event mode Qwen dropped "Yesterday" from the fact and gave the session's date as
    the event's time; the one turn cited still says yesterday."""
    replaying(fake_llm, recorded("event")["calls"])
    m = make_memory({"extraction_mode": "event"}, llm=llm_for(fake_llm))
    m.add_memory(CHAT, user_id="maya", force_extract=True)
    facts = [e for e in m.get_all(user_id="maya") if e.entry_type.value == "fact"]
    assert [e.memory for e in facts] == ["Maya adopted a rescue greyhound called Pixel! (2023-05-07)"]
    assert facts[0].metadata["event_date"] == "2023-05-07" and facts[0].metadata["event"] == "Maya adopts Pixel"
    assert m.get_repair_statistics()["times_from_turn"] >= 1
    assert all(ISO.match(e.metadata.get("event_date", "2023")) for e in m.get_all(user_id="maya"))


def test_json_schema_refused_with_500_falls_back_once_per_endpoint(fake_llm) -> None:
    """llama-cpp-python 0.3.36 answers response_format json_schema with HTTP 500 (recorded);
    the client steps down to json_object, and the next client of the endpoint starts there."""
    err = recorded("server_errors")["json_schema"]
    assert err["status"] == 500
    fake_llm.script(FaultSpec(status=500, raw_body=err["body"]), endpoint="chat")
    fake_llm.responder = lambda req: '{"facts": []}'
    schema = {"type": "object", "properties": {"facts": {"type": "array"}}}
    llm = llm_for(fake_llm, json_mode="json_schema", model="schema-refused")
    assert llm.response_format == "json_schema"
    assert complete_json(llm, [{"role": "user", "content": "Give JSON."}], schema=schema) == {"facts": []}
    sent = [r.get("response_format", {}).get("type") for r in fake_llm.requests_for("chat")]
    assert sent == ["json_schema", "json_object"]  # refused once, not retried as a 500 would be
    again = llm_for(fake_llm, json_mode="json_schema", model="schema-refused")
    assert again.response_format == "json_object"
    complete_json(again, [{"role": "user", "content": "Give JSON."}], schema=schema)
    assert fake_llm.requests_for("chat")[-1]["response_format"] == {"type": "json_object"}
    # another model on the same server has not refused anything
    assert llm_for(fake_llm, json_mode="json_schema", model="other").response_format == "json_schema"


def test_json_schema_is_sent_with_the_answer_shape(fake_llm) -> None:
    fake_llm.responder = lambda req: '{"facts": []}'
    llm = llm_for(fake_llm, json_mode="json_schema", model="schema-ok")
    schema = {"type": "object", "properties": {"facts": {"type": "array"}}, "required": ["facts"]}
    complete_json(llm, [{"role": "user", "content": "Give JSON."}], schema=schema)
    fmt = fake_llm.requests_for("chat")[0]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"] == schema


def test_context_overflow_is_learned_and_the_batch_halved(make_memory, fake_llm) -> None:
    """The recorded 400 of a 512-token llama-cpp-python server: the client reads the window
    from it, the batch is cut in half and every turn is still extracted."""
    err = recorded("server_errors")["context_overflow"]
    assert err["status"] == 400 and "512" in err["body"]
    fake_llm.script(FaultSpec(status=400, raw_body=err["body"]), endpoint="chat")
    llm = llm_for(fake_llm, model="small-window")
    m = make_memory({"extract_tokens": 10_000}, llm=llm)
    talk = [
        {**t, "id": f"w{i}", "content": t["content"] + " " + "More words about the day. " * 20}
        for i, t in enumerate(CHAT)
    ]
    r = m.add_memory(talk, user_id="u", force_extract=True)
    assert r.error is None and m.pending(user_id="u") == []
    assert llm.context_window == 512
    chats = fake_llm.requests_for("chat")
    assert len(chats) == 3  # the refused batch of four, then two halves of two
    assert sorted(s for e in m.get_all(user_id="u") for s in e.source_ids) == ["w0", "w1", "w2", "w3"]
    assert m._extract_budget() < 10_000  # later batches are cut to the learned window


@pytest.mark.parametrize("shown", ["1", 1, "[1]", "turn 1"])
def test_numbered_citations_map_to_the_turn(make_memory, fake_llm, shown) -> None:
    fake_llm.responder = lambda req: json.dumps({"facts": [{"fact": "Maya adopted Pixel.", "source_ids": [shown]}]})
    m = make_memory(llm=llm_for(fake_llm))
    m.add_memory(CHAT, user_id="u", force_extract=True)
    assert [e.source_ids for e in m.get_all(user_id="u")] == [["m1"]]


def test_a_cut_answer_keeps_its_facts_before_the_loop_and_asks_only_for_the_tail(make_memory, fake_llm) -> None:
    """Qwen looped on a 36-turn batch until max_tokens (finish_reason "length"): its first
    fact (turns 2-7) is whole, then it wrote the same fact again with the names and the
    nouns changed. The first fact is kept, the repeats are dropped, and only the turns after
    7 are asked again: no repair call (it would be cut the same way), no second pass over
    the head of the batch."""
    cut = recorded("truncated")["calls"][0]
    assert cut["finish_reason"] == "length"
    fake_llm.script(FaultSpec(body=cut["answer"], finish_reason="length"), endpoint="chat")
    m = make_memory({"extract_tokens": 10_000}, llm=llm_for(fake_llm, model="truncating"))
    turns = [
        {"id": f"t{i}", "role": "user" if i % 2 else "assistant", "content": f"Jon and Gina discuss plan number {i}."}
        for i in range(1, 13)
    ]
    r = m.add_memory(turns, user_id="u", force_extract=True)
    assert r.error is None and m.pending(user_id="u") == []
    chats = fake_llm.requests_for("chat")
    assert len(chats) == 2 and not any(msg["role"] == "assistant" for c in chats for msg in c["messages"])
    again = chats[1]["messages"][-1]["content"]
    assert "plan number 8." in again and "plan number 7." not in again  # the tail only
    got = m.get_all(user_id="u")
    kept = [e for e in got if e.memory.startswith("Jon is using a stay organized system")]
    assert len(kept) == 1 and kept[0].source_ids == [f"t{i}" for i in range(2, 8)]
    assert not any("whiteboard" in e.memory for e in got)  # the loop is not stored
    assert {s for e in got for s in e.source_ids} >= {f"t{i}" for i in range(8, 13)}
    stats = m.get_repair_statistics()
    assert stats["facts_kept_from_cut"] == 1 and stats["facts_dropped_as_loop"] > 5


def test_a_cut_answer_with_nothing_whole_halves_the_batch(make_memory, fake_llm) -> None:
    """Cut inside its first fact: nothing to keep, so the batch is halved and all of it stored."""
    cut = recorded("truncated")["calls"][0]
    fake_llm.script(FaultSpec(body=cut["answer"][:150], finish_reason="length"), endpoint="chat")
    m = make_memory({"extract_tokens": 10_000}, llm=llm_for(fake_llm, model="truncating-early"))
    r = m.add_memory(CHAT, user_id="u", force_extract=True)
    assert r.error is None and m.pending(user_id="u") == []
    assert len(fake_llm.requests_for("chat")) == 3
    assert sorted(s for e in m.get_all(user_id="u") for s in e.source_ids) == ["m1", "m2", "m3", "m4"]


def test_a_single_turn_whose_answer_is_cut_stays_pending(make_memory, fake_llm) -> None:
    cut = recorded("truncated")["calls"][0]
    fake_llm.script(FaultSpec(body=cut["answer"], finish_reason="length"), endpoint="chat")
    m = make_memory(llm=llm_for(fake_llm, model="truncating-one"))
    r = m.add_memory(CHAT[:1], user_id="u", force_extract=True)
    assert r.error and "completion limit" in r.error
    assert [t.id for t in m.pending(user_id="u")] == ["m1"] and m.get_all(user_id="u") == []
    assert m.flush(user_id="u").error is None and [e.source_ids for e in m.get_all(user_id="u")] == [["m1"]]


def test_an_update_that_would_wipe_the_old_memory_is_not_applied(fake_llm) -> None:
    """Two recorded offline-update answers. In the first, Qwen merged "Jon started his own
    business starting a dance studio" into a fuller statement that keeps it: applied. In
    the second it "updated" "Jon is grateful for the support of Gina and his friends" to
    "Jon is appreciating Gina's words of encouragement", which says something else: not
    applied (update.MergeRule), so both memories stay current."""
    from lightmem_core.drive import run_sync
    from lightmem_core.repairs import RepairCounts
    from lightmem_core.types import MemoryEntry
    from lightmem_core.update import LLMResolver

    counts = RepairCounts()
    resolver = LLMResolver(llm_for(fake_llm, model="updates"), counts=counts)
    decided = []
    for call in recorded("update_real")["calls"]:
        lines = call["messages"][-1]["content"].splitlines()
        new_id, new_text = re.match(r"NEW \[(.+?)\] \(.+?\): (.*)", lines[1]).groups()
        old_id, old_text = re.match(r"\[(.+?)\] \(.+?\): (.*)", lines[3]).groups()
        new = MemoryEntry(id=new_id, memory=new_text, user_id="u")
        old = MemoryEntry(id=old_id, memory=old_text, user_id="u")
        replaying(fake_llm, [call])
        decided.append(run_sync(resolver.decide(new, [(old, 0.9)])))
    kept, refused = decided
    assert [d.action for d in kept] == ["update"] and "dance studio owner" in kept[0].memory
    assert refused == [] and counts.snapshot()["updates_refused"] == 1
