"""Conflict-resolving update: online rules, the offline queue, LLM decisions, history."""

from __future__ import annotations

import json

import pytest

from lightmem_core.config import LLMConfig
from lightmem_core.llm import OpenAICompatibleLLM

OLD = {"id": "o1", "role": "user", "content": "I live in Seattle with my dog.", "time_stamp": "2025-01-12T09:00:00"}
OTHER = {"id": "o2", "role": "user", "content": "My favourite band is Radiohead.", "time_stamp": "2025-01-12T09:01:00"}
NEW = {"id": "n1", "role": "user", "content": "I moved to Portland last month.", "time_stamp": "2025-05-04T10:00:00"}


def _current(m, user="u"):
    return {e.memory for e in m.get_all(user_id=user)}


def test_online_supersedes_and_keeps_history(make_memory) -> None:
    m = make_memory({"update": "online"})
    m.add_memory([OLD, OTHER], user_id="u", session_id="s1")
    m.add_memory([NEW], user_id="u", session_id="s2")
    assert "user: I live in Seattle with my dog." not in _current(m)
    assert {"user: I moved to Portland last month.", "user: My favourite band is Radiohead."} <= _current(m)
    old = next(e for e in m.get_all(user_id="u", include_superseded=True) if e.source_ids == ["o1"])
    assert not old.is_current and old.valid_to.isoformat() == "2025-05-04T10:00:00" and old.version == 2
    events = m.history(old.id, user_id="u")
    assert [h.event for h in events] == ["ADD", "SUPERSEDE"] and "residence" in events[1].reason
    assert events[1].old_memory == old.memory
    hits = m.retrieve("Where does the user live?", user_id="u")
    assert all(h.entry.is_current for h in hits)
    assert any(h.entry.id == old.id for h in m.retrieve("Seattle", user_id="u", include_superseded=True))


def test_superseding_keeps_the_vector_norm_and_ignores_the_assistant(make_memory) -> None:
    m = make_memory({"update": "online"})
    m.add_memory(
        [
            OLD,
            {
                "id": "a1",
                "role": "assistant",
                "content": "Seattle has great coffee; you live near it.",
                "time_stamp": "2025-01-12T09:00:30",
            },
        ],
        user_id="u",
        session_id="s1",
    )
    m.add_memory(
        [
            NEW,
            {
                "id": "a2",
                "role": "assistant",
                "content": "Portland has great food carts where you live now.",
                "time_stamp": "2025-05-04T10:00:30",
            },
        ],
        user_id="u",
        session_id="s2",
    )
    everything = {e.source_ids[0]: e for e in m.get_all(user_id="u", include_superseded=True)}
    assert not everything["o1"].is_current
    assert everything["a1"].is_current  # the assistant's words are not a user attribute to replace
    # the superseded entry was re-written with its stored vector: the payload's blend norm
    # (which chooses the sentence a turn shows) must survive the rewrite
    (rec,) = m._store.get(m._scope("u", None, None), [everything["o1"].id])
    assert 0.5 < rec.payload["_dn"] <= 1.0 and "_dn" not in everything["o1"].model_dump()


def test_online_merges_near_duplicates(make_memory) -> None:
    m = make_memory({"update": "online"})
    m.add_memory([OTHER], user_id="u")
    r = m.add_memory([{"id": "d1", "role": "user", "content": "My favourite band is Radiohead!"}], user_id="u")
    assert r.added == []
    (entry,) = m.get_all(user_id="u")
    assert entry.source_ids == ["o2", "d1"] and [h.event for h in m.history(entry.id, user_id="u")] == ["ADD", "MERGE"]
    assert r.merged == [entry.id]  # the turn is cited there, and the caller is told where


def test_a_merged_turn_stays_traceable_after_its_entry_is_deleted(make_memory) -> None:
    """Regression (the online concurrency run, 1 in 2 fresh clones): a turn merged into an
    entry that was later deleted was cited by nothing any more. History said what text
    the merge brought, not which turn. Each record now names the turns it brought in."""
    m = make_memory({"update": "online"})
    m.add_memory([OTHER], user_id="u")
    m.add_memory([{"id": "d1", "role": "user", "content": "My favourite band is Radiohead!"}], user_id="u")
    (entry,) = m.get_all(user_id="u")
    m.delete(entry.id, user_id="u", reason="user asked")
    history = m.history(entry.id, user_id="u")
    assert [(h.event, h.source_ids) for h in history] == [("ADD", ["o2"]), ("MERGE", ["d1"]), ("DELETE", [])]
    # and it survives an export / import round trip
    records = list(m.export_records(user_id="u"))
    assert [r["source_ids"] for r in records if r["kind"] == "history"] == [["o2"], ["d1"], []]


def test_offline_queue_update_and_resume(make_memory) -> None:
    m = make_memory()
    m.add_memory([OLD, OTHER], user_id="u", session_id="s1")
    m.add_memory([NEW], user_id="u", session_id="s2")
    m.add_memory([OLD], user_id="v")  # another user: never a candidate
    assert m.construct_update_queue_all_entries(top_k=5, keep_top_n=3, user_id="u") >= 1
    result = m.offline_update_all_entries(score_threshold=0.1, user_id="u")
    assert result["failed"] == 0 and result["changes"] >= 1
    assert "user: I live in Seattle with my dog." not in _current(m)
    assert "user: I live in Seattle with my dog." in _current(m, "v")
    # nothing left to do: a second run (e.g. after an interruption) is a no-op
    assert m.offline_update_all_entries(score_threshold=0.1, user_id="u")["processed"] == 0


def test_the_async_offline_update_is_the_same_operation(make_memory, tmp_path) -> None:
    """One operation behind both twins: the async one checks the threshold as the sync one
    does (it used not to), and on the same store content both come to the same result."""
    import asyncio

    from lightmem_core import InvalidInputError

    def queued(name: str):
        m = make_memory(path=tmp_path / name)
        m.add_memory([OLD, OTHER], user_id="u", session_id="s1")
        m.add_memory([NEW], user_id="u", session_id="s2")
        assert m.construct_update_queue_all_entries(top_k=5, keep_top_n=3, user_id="u") >= 1
        return m

    plain, evented = queued("sync"), queued("async")
    for bad in (1.5, -0.1, "0.5"):
        with pytest.raises(InvalidInputError) as err:
            asyncio.run(evented.aoffline_update_all_entries(score_threshold=bad, user_id="u"))
        assert err.value.field == "score_threshold"
    assert len(evented._journal.queue_pending("u")) == len(plain._journal.queue_pending("u"))  # nothing consumed

    result = plain.offline_update_all_entries(score_threshold=0.1, user_id="u")
    assert result["failed"] == 0 and result["changes"] >= 1
    assert asyncio.run(evented.aoffline_update_all_entries(score_threshold=0.1, user_id="u")) == result
    assert _current(evented) == _current(plain)
    assert "user: I live in Seattle with my dog." not in _current(evented)


def test_deleted_entries_leave_the_queue(make_memory) -> None:
    m = make_memory()
    m.add_memory([OLD, OTHER], user_id="u", session_id="s1")
    m.add_memory([NEW], user_id="u", session_id="s2")
    m.construct_update_queue_all_entries(user_id="u")
    old = next(e for e in m.get_all(user_id="u") if e.source_ids == ["o1"])
    m.delete(old.id, user_id="u")
    queue = m._journal.queue_pending("u")
    assert all(old.id != e and old.id not in [c for c, _ in cands] for e, _, cands in queue)
    assert m.offline_update_all_entries(score_threshold=0.0, user_id="u")["failed"] == 0


def test_llm_resolver_updates_and_reembeds(make_memory, fake_llm) -> None:
    def responder(req):
        text = req["messages"][0]["content"]
        if "UPDATE_DECISION" not in text:
            return None
        body = req["messages"][1]["content"]
        target = [line for line in body.splitlines() if "Seattle" in line][0].split("]")[0].strip("[")
        return json.dumps(
            {
                "decisions": [
                    {
                        "id": target,
                        "action": "update",
                        "memory": "The user lives in Portland (moved from Seattle).",
                        "reason": "moved",
                    },
                    {"id": "not-shown", "action": "delete"},
                ]
            }
        )

    fake_llm.responder = responder
    llm = OpenAICompatibleLLM(LLMConfig(base_url=fake_llm.base_url, model="f", api_key="k"), backoff_base=0.01)
    m = make_memory(llm=llm)
    m.add_memory([OLD], user_id="u", session_id="s1", force_extract=True)
    m.add_memory([NEW], user_id="u", session_id="s2", force_extract=True)
    m.construct_update_queue_all_entries(user_id="u")
    m.offline_update_all_entries(score_threshold=0.0, user_id="u")
    assert m.get_token_statistics()["update"]["calls"] >= 1
    updated = next(e for e in m.get_all(user_id="u") if "moved from Seattle" in e.memory)
    assert updated.version == 2 and [h.event for h in m.history(updated.id, user_id="u")] == ["ADD", "UPDATE"]
    hit = m.retrieve("moved from Seattle to Portland", user_id="u", strategy="embedding")[0]
    assert hit.entry.id == updated.id


def test_whole_turn_entries_show_the_sentence_that_names_the_new_state(make_memory, tmp_path) -> None:
    """offline_unit="turn": one entry per turn, so the place named inside a request comes
    back with it; the older turn is superseded as a whole and kept in history. With
    sentences (the default) the same turn is two entries."""
    old = {
        "id": "t1",
        "role": "user",
        "content": "Our apartment in Brooklyn has a radiator that clanks all night.",
        "time_stamp": "2024-01-10T09:00:00",
    }
    new = {
        "id": "t2",
        "role": "user",
        "time_stamp": "2024-09-02T08:00:00",
        "content": "Commuting into Midtown from Hoboken, is the ferry reliable in winter? I miss walking to the "
        "subway from Brooklyn, honestly. We moved here in July.",
    }
    turns = make_memory({"update": "online", "offline_unit": "turn"}, path=tmp_path / "turns")
    sentences = make_memory({"update": "online"}, path=tmp_path / "sentences")
    for m in (turns, sentences):
        m.add_memory([old], user_id="u", session_id="s1")
        m.add_memory([new], user_id="u", session_id="s2")
    assert [
        len([e for e in m.get_all(user_id="u", include_superseded=True) if e.source_ids == ["t2"]])
        for m in (turns, sentences)
    ] == [1, 3]
    top = turns.retrieve("Where is the user based nowadays?", user_id="u", limit=3)
    assert top[0].entry.source_ids == ["t2"] and "Hoboken" in top[0].entry.memory
    old_entry = next(e for e in turns.get_all(user_id="u", include_superseded=True) if e.source_ids == ["t1"])
    assert not old_entry.is_current
    assert [h.event for h in turns.history(old_entry.id, user_id="u")] == ["ADD", "SUPERSEDE"]
