"""LLM faults on the write path, through the real loopback HTTP server.

tests/integration/test_llm.py covers the client alone (retries, Retry-After, one JSON
repair) and tests/integration/test_pipeline.py one outage of 500/429/503, one repaired
answer and partly invented ids. This module drives the *memory* through every kind of
fault until the retries run out, then checks the promise end to end: the batch stays
pending (``pending()`` shows the attempt and the error), a later call stores it, every
turn ends up cited by exactly one entry, and no entry cites a turn that was not in its
batch (nothing invented).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Callable

import pytest

from lightmem_core import LightMemory
from tests.fake_llm import FakeLLMServer, FaultSpec
from tests.reliability.conftest import TimedFakeLLMServer, llm_for, remote_config

TURNS = [
    {
        "id": f"f{i}",
        "role": "user" if i % 2 == 0 else "assistant",
        "speaker_name": name,
        "content": text,
        "time_stamp": f"2025-02-0{i + 1}T08:00:00",
    }
    for i, (name, text) in enumerate(
        [
            ("Maya", "My sister Ines lives in Porto and teaches chemistry."),
            ("Tom", "I finally bought the green road bike last Friday."),
            ("Maya", "We are planning a trip to Kyoto in October."),
            ("Tom", "My landlord raised the rent by ten percent."),
        ]
    )
]
IDS = [t["id"] for t in TURNS]
# what the loopback server's answer becomes once stored: relative times get their date
STORED = {
    "Maya said: My sister Ines lives in Porto and teaches chemistry.",
    "Tom said: I finally bought the green road bike last Friday (2025-01-31).",
    "Maya said: We are planning a trip to Kyoto in October (2025-10).",
    "Tom said: My landlord raised the rent by ten percent.",
}


def stored_once(memory: LightMemory, user: str, turn_ids: list[str]) -> list[Any]:
    """Each turn cited by exactly one entry, and no entry citing anything else."""
    entries = memory.get_all(user_id=user, limit=1000, include_superseded=True)
    cited = sorted(s for e in entries for s in e.source_ids)
    assert cited == sorted(turn_ids), cited
    return entries


def fails_then_recovers(
    memory: LightMemory, server: FakeLLMServer, faults: list[FaultSpec], *, attempts: int, error: str
) -> None:
    """The shared scenario: a buffered batch meets ``faults``, stays pending, and a later flush stores it."""
    r = memory.add_memory(TURNS[:2], user_id="u")
    assert r.pending_turns == 2 and server.calls["chat"] == 0  # buffered, no call yet
    server.script(*faults, endpoint="chat")
    r = memory.add_memory(TURNS[2:], user_id="u", force_extract=True)
    assert r.error is not None and error in r.error, r.error
    assert r.added == [] and r.pending_turns == 4
    assert server.calls["chat"] == attempts
    pending = memory.pending(user_id="u")
    assert [t.id for t in pending] == IDS
    assert all(t.attempts == 1 and t.last_error and error in t.last_error for t in pending)
    assert memory.get_all(user_id="u") == []  # nothing half-written
    assert server.pending_faults == 0
    r = memory.flush(user_id="u")
    assert r.error is None and memory.pending(user_id="u") == []
    entries = stored_once(memory, "u", IDS)
    assert {e.memory for e in entries} == STORED


def test_timeouts_until_retries_run_out(make_memory, fake_llm) -> None:
    m = make_memory({"extract_tokens": 10_000}, llm=llm_for(fake_llm, max_retries=2, timeout=0.3))
    t0 = time.monotonic()
    fails_then_recovers(m, fake_llm, [FaultSpec(delay=1.5) for _ in range(3)], attempts=3, error="APITimeoutError")
    assert time.monotonic() - t0 < 10


def test_burst_of_500_backs_off_exponentially(make_memory, timed_llm: TimedFakeLLMServer) -> None:
    base = 0.1
    m = make_memory({"extract_tokens": 10_000}, llm=llm_for(timed_llm, max_retries=3, backoff_base=base, max_backoff=5))
    fails_then_recovers(
        m, timed_llm, [FaultSpec(status=s) for s in (500, 502, 503, 500)], attempts=4, error="InternalServerError 500"
    )
    gaps = timed_llm.gaps("chat")[:3]
    # wait before retry i is base * 2**i with jitter in [0.5, 1.0]: each gap at least the floor
    for i, gap in enumerate(gaps):
        assert gap >= base * 2**i * 0.5 - 0.01, gaps
    assert gaps[2] > gaps[0], gaps


def test_burst_of_429_honours_retry_after_then_stays_pending(make_memory, timed_llm: TimedFakeLLMServer) -> None:
    m = make_memory({"extract_tokens": 10_000}, llm=llm_for(timed_llm, max_retries=2, backoff_base=0.0))
    fails_then_recovers(
        m,
        timed_llm,
        [FaultSpec(status=429, retry_after=0.3, message="rate limited") for _ in range(3)],
        attempts=3,
        error="429",
    )
    assert all(g >= 0.29 for g in timed_llm.gaps("chat")[:2]), timed_llm.gaps("chat")


def test_truncated_answers_even_after_the_repair_call(make_memory, fake_llm) -> None:
    m = make_memory({"extract_tokens": 10_000}, llm=llm_for(fake_llm))
    cut = json.dumps({"facts": [{"fact": "Maya's sister lives in Porto", "source_ids": ["f0"]}]})[:-9]
    # answer, then the one repair round-trip: both cut off
    fails_then_recovers(m, fake_llm, [FaultSpec(body=cut), FaultSpec(body=cut[:20])], attempts=2, error="no valid JSON")


def test_prose_instead_of_json(make_memory, fake_llm) -> None:
    m = make_memory({"extract_tokens": 10_000}, llm=llm_for(fake_llm))
    fails_then_recovers(
        m,
        fake_llm,
        [FaultSpec(body="I'm sorry, I can't help with that."), FaultSpec(body="As an AI model I prefer prose.")],
        attempts=2,
        error="no valid JSON",
    )


def test_non_json_http_bodies_and_dropped_connections(make_memory, fake_llm) -> None:
    m = make_memory({"extract_tokens": 10_000}, llm=llm_for(fake_llm, max_retries=2))
    fails_then_recovers(
        m,
        fake_llm,
        [
            FaultSpec(raw_body="<html><body>502 Bad Gateway</body></html>"),
            FaultSpec(drop=True),
            FaultSpec(raw_body="upstream connect error"),
        ],
        attempts=3,
        error="failed after 3 attempts",
    )


def test_fault_in_a_later_batch_keeps_earlier_batches_and_loses_nothing(make_memory, fake_llm) -> None:
    # extract_tokens small enough that the four turns make several batches in one flush
    m = make_memory({"extract_tokens": 15}, llm=llm_for(fake_llm, max_retries=1))
    m.add_memory(TURNS[:1], user_id="u")
    fake_llm.script(FaultSpec(), FaultSpec(status=500), FaultSpec(status=500), endpoint="chat")
    r = m.add_memory(TURNS[1:], user_id="u", force_extract=True)
    assert r.error and fake_llm.calls["chat"] == 3
    stored = {s for e in m.get_all(user_id="u") for s in e.source_ids}
    pending = {t.id for t in m.pending(user_id="u")}
    assert stored and pending and stored | pending == set(IDS) and not stored & pending
    assert m.flush(user_id="u").error is None
    stored_once(m, "u", IDS)


def test_async_write_path_survives_the_same_faults(make_memory, fake_llm) -> None:
    m = make_memory({"extract_tokens": 10_000}, llm=llm_for(fake_llm, max_retries=1))

    async def main() -> None:
        await m.aadd_memory(TURNS[:2], user_id="u")
        fake_llm.script(FaultSpec(status=503), FaultSpec(status=429, retry_after=0), endpoint="chat")
        r = await m.aadd_memory(TURNS[2:], user_id="u", force_extract=True)
        assert r.error and r.pending_turns == 4
        assert [t.id for t in m.pending(user_id="u")] == IDS
        r = await m.aflush(user_id="u")
        assert r.error is None

    asyncio.run(main())
    assert fake_llm.calls["chat"] == 3
    stored_once(m, "u", IDS)


# --- answers that cite what they should not -----------------------------------------------


def _answer(facts: list[dict[str, Any]]) -> Callable[[dict[str, Any]], str]:
    return lambda request: json.dumps({"facts": facts})


def test_citations_outside_the_batch_are_never_stored(make_memory, fake_llm) -> None:
    m = make_memory(llm=llm_for(fake_llm))
    m.add_memory(
        [{"id": "other-secret", "role": "user", "content": "Vera's PIN is 4411."}], user_id="vera", force_extract=True
    )
    m.add_memory(TURNS[:1], user_id="u", force_extract=True)  # an earlier batch of the same user
    fake_llm.responder = _answer(
        [
            {"fact": "Tom bought a bike.", "source_ids": ["f1", "other-secret"]},  # a real id of another user
            {"fact": "Maya has a sister.", "source_ids": ["f0"]},  # a real id of an earlier batch
            {"fact": "Tom pays more rent.", "source_ids": ["[f3]", "f3", "f99"]},  # bracketed, repeated, invented
            {"fact": "Nobody said this.", "source_ids": []},
            {"fact": "Nor this.", "source_ids": "not-a-list"},
        ]
    )
    m.add_memory(TURNS[1:4], user_id="u", force_extract=True)
    got = {e.memory: e for e in m.get_all(user_id="u") if e.source_ids != ["f0"] or e.memory == "Maya has a sister."}
    assert got["Tom bought a bike."].source_ids == ["f1"]
    assert got["Tom pays more rent."].source_ids == ["f3"]
    for text in ("Maya has a sister.", "Nobody said this.", "Nor this."):
        # nothing the model cited is in the batch: attributed to the whole batch, and marked so
        assert got[text].source_ids == ["f1", "f2", "f3"] and got[text].metadata["provenance"] == "batch"
    assert all(s in {"f0", "f1", "f2", "f3"} for e in m.get_all(user_id="u") for s in e.source_ids)
    assert [e.source_ids for e in m.get_all(user_id="vera")] == [["other-secret"]]
    assert m.pending(user_id="u") == []


def test_event_mode_citations_are_checked_too(make_memory, fake_llm) -> None:
    fake_llm.responder = lambda request: json.dumps(
        {
            "events": [
                {
                    "event": "bike",
                    "source_ids": ["ghost"],
                    "facts": [{"fact": "Tom bought a bike.", "source_ids": ["ghost"]}],
                    "relations": [
                        {"subject": "Tom", "relation": "owns", "object": "bike", "source_ids": ["f1", "ghost"]},
                        {"subject": "Tom", "relation": "", "object": "bike"},
                    ],
                },
                "not an event",
                {"event": None, "facts": "nope", "relations": None},
            ]
        }
    )
    m = make_memory({"extraction_mode": "event"}, llm=llm_for(fake_llm))
    m.add_memory(TURNS[:2], user_id="u", force_extract=True)
    entries = {e.memory: e for e in m.get_all(user_id="u")}
    assert set(entries) == {"Tom bought a bike.", "Tom owns bike"}
    assert entries["Tom bought a bike."].source_ids == ["f0", "f1"]  # the event's ids were invented too
    assert entries["Tom owns bike"].source_ids == ["f1"]


@pytest.mark.parametrize(
    "items",
    [
        [{"fact": "\u0001\u0002"}],  # only control characters
        [{"fact": "broken \ud800 surrogate", "source_ids": ["f0"]}],  # a lone surrogate escape in valid JSON
        [{"fact": 42}, {"fact": None}, {"fact": ["a"]}, 7, None, {"source_ids": ["f0"]}],
        [{"fact": "ok fact", "source_ids": [{"id": "f0"}], "entities": "x", "time": 5}],
    ],
    ids=["control-only", "lone-surrogate", "wrong-types", "odd-fields"],
)
def test_malformed_facts_are_skipped_not_fatal(make_memory, fake_llm, items) -> None:
    """Regression: a fact of control characters, or with a lone surrogate, raised pydantic's
    ValidationError out of ``add_memory``; now it is repaired or skipped."""
    fake_llm.responder = _answer(items + [{"fact": "Maya's sister lives in Porto.", "source_ids": ["f0"]}])
    m = make_memory(llm=llm_for(fake_llm))
    r = m.add_memory(TURNS[:1], user_id="u", force_extract=True)
    assert r.error is None and m.pending(user_id="u") == []
    texts = {e.memory for e in m.get_all(user_id="u")}
    assert "Maya's sister lives in Porto." in texts
    assert all(t.isprintable() and t.encode("utf-8") for t in texts)
    if "surrogate" in str(items):
        assert "broken ? surrogate" in texts
    assert m.retrieve("sister Porto", user_id="u")


EMBED_OUTAGE = [FaultSpec(status=503, retry_after=0.01) for _ in range(4)]  # its client tries 4 times


def test_embedding_endpoint_outage_keeps_the_batch_pending(tmp_path, fake_llm) -> None:
    """The embedder is an HTTP endpoint too: its failure must leave the batch pending, not raise.

    Regression: ``add_memory`` raised the embedder's error after journaling the turns.
    """
    with LightMemory(remote_config(fake_llm, tmp_path / "s", extract_tokens=10_000)) as m:
        m.add_memory(TURNS[:2], user_id="u")
        fake_llm.script(*EMBED_OUTAGE, endpoint="embeddings")
        r = m.add_memory(TURNS[2:], user_id="u", force_extract=True)
        assert r.error and "embedding endpoint failed" in r.error
        assert [t.id for t in m.pending(user_id="u")] == IDS and m.get_all(user_id="u") == []
        assert m.flush(user_id="u").error is None
        stored_once(m, "u", IDS)


def test_store_opens_while_the_embedding_endpoint_is_down(tmp_path, fake_llm) -> None:
    """Offline extraction retries leftover turns on open; a dead endpoint must not stop the open.

    Regression: the constructor raised, so the store could not be opened until the endpoint came back.
    """
    config = remote_config(fake_llm, tmp_path / "s", llm=False)
    with LightMemory(config) as m:
        fake_llm.script(*EMBED_OUTAGE, endpoint="embeddings")
        r = m.add_memory(TURNS, user_id="u")
        assert r.error and r.pending_turns == 4
    fake_llm.script(*EMBED_OUTAGE, endpoint="embeddings")
    with LightMemory(config) as m:  # recovery meets the outage: opens anyway, turns still pending
        assert [t.id for t in m.pending(user_id="u")] == IDS
    with LightMemory(config) as m:  # the endpoint is back: recovery stores them
        assert m.pending(user_id="u") == []
        stored_once(m, "u", IDS)


def test_offline_update_with_a_failing_llm_changes_nothing_and_resumes(make_memory, fake_llm) -> None:
    m = make_memory(llm=llm_for(fake_llm, max_retries=1))
    m.add_memory(
        [{"id": "o1", "role": "user", "content": "I live in Seattle with my dog."}], user_id="u", force_extract=True
    )
    m.add_memory(
        [{"id": "n1", "role": "user", "content": "I moved from Seattle to Portland."}], user_id="u", force_extract=True
    )
    before = {e.id: (e.memory, e.version) for e in m.get_all(user_id="u")}
    assert m.construct_update_queue_all_entries(user_id="u") >= 1
    fake_llm.script(*[FaultSpec(status=500) for _ in range(10)], endpoint="chat")
    result = m.offline_update_all_entries(score_threshold=0.0, user_id="u")
    assert result["failed"] >= 1 and result["changes"] == 0
    assert {e.id: (e.memory, e.version) for e in m.get_all(user_id="u")} == before
    fake_llm.reset()
    target = next(e for e in m.get_all(user_id="u") if "Seattle with my dog" in e.memory)
    decision = {"decisions": [{"id": target.id, "action": "delete", "reason": "moved"}]}
    fake_llm.responder = lambda req: (
        json.dumps(decision) if "UPDATE_DECISION" in req["messages"][0]["content"] else None
    )
    result = m.offline_update_all_entries(score_threshold=0.0, user_id="u")
    assert result["failed"] == 0 and result["changes"] >= 1
    assert target.id not in {e.id for e in m.get_all(user_id="u")}
    assert [h.event for h in m.history(target.id, user_id="u")] == ["ADD", "SUPERSEDE"]


def test_summary_with_a_failing_llm_writes_nothing(make_memory, fake_llm) -> None:
    from lightmem_core.errors import LLMError

    m = make_memory(llm=llm_for(fake_llm, max_retries=1))
    m.add_memory(TURNS, user_id="u", session_id="s1", force_extract=True)
    fake_llm.script(FaultSpec(status=500), FaultSpec(status=500), endpoint="chat")
    with pytest.raises(LLMError):
        m.summarize(user_id="u", window="session")
    assert m.get_all(user_id="u", filters={"entry_type": "summary"}) == []
    (summary,) = m.summarize(user_id="u", window="session")
    assert summary.source_ids and set(summary.source_ids) <= set(IDS)


def test_unstorable_text_in_update_and_summary_answers_is_repaired(make_memory, fake_llm) -> None:
    """Regression: an update decision or summary holding a lone surrogate failed the
    offline update of that entry (SQLite refused it) and raised from ``summarize``."""
    m = make_memory(llm=llm_for(fake_llm))
    m.add_memory(
        [{"id": "o1", "role": "user", "content": "I live in Seattle with my dog."}],
        user_id="u",
        session_id="s1",
        force_extract=True,
    )
    m.add_memory(
        [{"id": "n1", "role": "user", "content": "I moved from Seattle to Portland."}],
        user_id="u",
        session_id="s1",
        force_extract=True,
    )
    old = next(e for e in m.get_all(user_id="u") if "dog" in e.memory)

    def responder(req: dict[str, Any]) -> Any:
        system = req["messages"][0]["content"]
        if "UPDATE_DECISION" in system:
            return json.dumps(
                {
                    "decisions": [
                        {
                            "id": old.id,
                            "action": "update",
                            "reason": "moved \ud800",
                            "memory": "Lives in Portland \ud800 now\u0007, with the dog.",
                        }
                    ]
                }
            )
        if "SUMMARIZE" in system:
            return json.dumps({"summary": "\u0001\ud800"})
        return None

    fake_llm.responder = responder
    m.construct_update_queue_all_entries(user_id="u")
    result = m.offline_update_all_entries(score_threshold=0.0, user_id="u")
    assert result["failed"] == 0
    assert m.get(old.id, user_id="u").memory == "Lives in Portland ? now, with the dog."
    assert m.history(old.id, user_id="u")[-1].reason == "moved ?"
    (summary,) = m.summarize(user_id="u", window="session")
    assert summary.memory.strip() and summary.memory.encode("utf-8")  # the extractive summary stands in
