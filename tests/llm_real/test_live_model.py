"""The LLM path against a real model on a real OpenAI-compatible server (no fakes).

Run with ``make test-llm`` (marker ``llm``; never part of ``make test``). A 1.5B model
gets details wrong, so these tests assert what any real answer must satisfy, not what a
good one would say: cited ids from the batch, ISO times or none, nothing stored from an
unusable answer, the turns of a failed call still pending, no crash on a slow or cut
answer.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from lightmem_core import LightMemory
from lightmem_core.llm import complete_json
from tests.llm_real.conftest import check_entries, real_llm
from tools.record_llm_answers import CHAT as RECORDED_CHAT

# a real answer takes seconds to minutes on two cores
pytestmark = [pytest.mark.llm, pytest.mark.timeout(900)]

CHAT = [{**turn, "id": f"c{i}"} for i, turn in enumerate(RECORDED_CHAT, 1)]
IDS = {t["id"] for t in CHAT}


def memory(make_memory: Any, llm: Any, **cfg: Any) -> LightMemory:
    return make_memory(cfg, llm=llm)


def test_flat_extraction(make_memory, llm_url) -> None:
    m = memory(make_memory, real_llm(llm_url))
    r = m.add_memory(CHAT, user_id="maya", force_extract=True)
    if r.error:  # an unusable answer: nothing stored, every turn still pending
        assert m.get_all(user_id="maya") == [] and {t.id for t in m.pending(user_id="maya")} == IDS
        return
    entries = check_entries(m, "maya", IDS)
    assert entries and m.pending(user_id="maya") == []
    assert m.get_token_statistics()["extraction"]["completion_tokens"] > 0
    assert m.retrieve("What is the greyhound called?", user_id="maya")


def test_event_extraction(make_memory, llm_url) -> None:
    m = memory(make_memory, real_llm(llm_url), extraction_mode="event")
    r = m.add_memory(CHAT, user_id="maya", force_extract=True)
    if r.error:
        assert m.get_all(user_id="maya") == [] and {t.id for t in m.pending(user_id="maya")} == IDS
        return
    entries = check_entries(m, "maya", IDS)
    assert entries and all("event_id" in e.metadata for e in entries)


def test_the_llm_update_resolver(make_memory, llm_url) -> None:
    m = memory(make_memory, real_llm(llm_url))
    m.add_memory(
        [
            {
                "id": "u1",
                "role": "user",
                "name": "Maya",
                "time_stamp": "2023-05-08T10:00:00",
                "content": "I work as a nurse at Mercy Hospital.",
            }
        ],
        user_id="maya",
        force_extract=True,
    )
    m.add_memory(
        [
            {
                "id": "u2",
                "role": "user",
                "name": "Maya",
                "time_stamp": "2023-07-01T10:00:00",
                "content": "I quit Mercy Hospital last week; now I am a nurse at St. Luke's.",
            }
        ],
        user_id="maya",
        force_extract=True,
    )
    before = {e.id: e.memory for e in m.get_all(user_id="maya")}
    assert before, "the model stored nothing from two plain statements"
    m.construct_update_queue_all_entries(user_id="maya")
    result = m.offline_update_all_entries(score_threshold=0.0, user_id="maya")
    assert result["failed"] == 0 and m.get_token_statistics()["update"]["calls"] >= 1
    check_entries(m, "maya", {"u1", "u2"})
    for entry_id in before:  # whatever it decided, the history keeps what was said
        history = m.history(entry_id, user_id="maya")
        assert history[0].event == "ADD" and history[0].new_memory == before[entry_id]


def test_summaries(make_memory, llm_url) -> None:
    m = memory(make_memory, real_llm(llm_url))
    m.add_memory(CHAT, user_id="maya", session_id="s1", force_extract=True)
    if not m.get_all(user_id="maya"):
        pytest.skip("the model stored no facts to summarise")
    summaries = m.summarize(user_id="maya")
    assert summaries and all(s.memory.strip() for s in summaries)
    assert m.get_token_statistics()["summary"]["calls"] >= 1
    hits = m.retrieve("Maya's dog", user_id="maya", hierarchical=True)
    assert any(h.entry.entry_type.value == "summary" for h in hits)


def test_langchain_chat_openai_as_memory_manager(make_memory, llm_url) -> None:
    langchain_openai = pytest.importorskip("langchain_openai")
    from lightmem_langchain.models import ChatModelLLM

    chat = langchain_openai.ChatOpenAI(
        base_url=llm_url, api_key="none", model="local", temperature=0, max_tokens=700, timeout=600
    )
    m = memory(make_memory, ChatModelLLM(chat, json_mode=True))
    r = m.add_memory(CHAT, user_id="maya", force_extract=True)
    assert m.get_token_statistics()["extraction"]["calls"] >= 1
    if not r.error:
        assert check_entries(m, "maya", IDS)


def test_llamaindex_openai_like_as_memory_manager(make_memory, llm_url) -> None:
    openai_like = pytest.importorskip("llama_index.llms.openai_like")
    from lightmem_llamaindex.models import LlamaIndexLLM

    llm = openai_like.OpenAILike(
        api_base=llm_url, api_key="none", model="local", is_chat_model=True, temperature=0, max_tokens=700, timeout=600
    )
    m = memory(make_memory, LlamaIndexLLM(llm, json_kwargs={"response_format": {"type": "json_object"}}))
    r = m.add_memory(CHAT, user_id="maya", force_extract=True)
    assert m.get_token_statistics()["extraction"]["calls"] >= 1
    if not r.error:
        assert check_entries(m, "maya", IDS)


def test_a_truncated_answer_stores_nothing_and_keeps_the_turn_pending(make_memory, llm_url) -> None:
    m = memory(make_memory, real_llm(llm_url, max_tokens=8))
    r = m.add_memory(CHAT[:1], user_id="maya", force_extract=True)
    assert r.error and m.get_all(user_id="maya") == []
    assert [t.id for t in m.pending(user_id="maya")] == ["c1"]


def test_a_slow_call_times_out_then_the_turns_are_extracted(make_memory, llm_url) -> None:
    m = memory(make_memory, real_llm(llm_url, timeout=0.3, max_retries=0))
    r = m.add_memory(CHAT[:2], user_id="maya", force_extract=True)
    assert r.error and "Timeout" in r.error and m.get_all(user_id="maya") == []
    assert {t.id for t in m.pending(user_id="maya")} == {"c1", "c2"}
    m.close()
    m = memory(make_memory, real_llm(llm_url))  # the same store, a patient client: the turns go through
    assert {t.id for t in m.pending(user_id="maya")} == {"c1", "c2"}
    r = m.flush(user_id="maya")
    if not r.error:
        assert m.pending(user_id="maya") == [] and check_entries(m, "maya", {"c1", "c2"})


def test_a_window_that_fills_up_is_learned_and_batches_cut(make_memory, small_window_url) -> None:
    llm = real_llm(small_window_url, max_tokens=200)
    assert llm.context_window is None
    m = memory(make_memory, llm, extract_tokens=10_000)
    long = [
        {**t, "id": f"w{i}", "content": t["content"] + " " + "We talked about the weather for a while. " * 25}
        for i, t in enumerate(CHAT)
    ]
    m.add_memory(long, user_id="u", force_extract=True)
    assert llm.context_window == 1024  # read from the server's refusal
    assert m._extract_budget() < 10_000
    check_entries(m, "u", {t["id"] for t in long})
    stored = {s for e in m.get_all(user_id="u") for s in e.source_ids}
    assert stored | {t.id for t in m.pending(user_id="u")} >= {t["id"] for t in long}  # nothing lost


def test_json_object_accepted_by_the_real_server(llm_url) -> None:
    llm = real_llm(llm_url, max_tokens=60)
    out = complete_json(llm, [{"role": "user", "content": 'Reply with JSON: {"ok": true}'}])
    assert isinstance(out, dict) and llm.json_mode_supported


def test_json_schema_refused_by_llama_cpp_python_steps_down(llm_url) -> None:
    llm = real_llm(llm_url, max_tokens=60, json_mode="json_schema", model="local")
    out = complete_json(
        llm,
        [{"role": "user", "content": 'Reply with JSON: {"ok": true}'}],
        schema={"type": "object", "properties": {"ok": {"type": "boolean"}}},
    )
    assert isinstance(out, dict)
    # llama-cpp-python 0.3.36 refuses json_schema (HTTP 500); llama-server and vLLM accept it
    if not os.environ.get("LIGHTMEM_LLM_URL"):  # our own server: llama-cpp-python
        assert llm.response_format == "json_object"
