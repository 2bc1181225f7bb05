"""The memory API end to end on the real embedded engine and the real MiniLM."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

import lightmem_core
from lightmem_core import LightMemory, NotFoundError, StoreLockedError

MAYA = [
    {
        "id": "m1",
        "role": "user",
        "content": "My dog is called Biscuit. He is a three year old corgi.",
        "time_stamp": "2025-01-12T09:00:00",
        "speaker_name": "Maya",
    },
    {
        "id": "m2",
        "role": "assistant",
        "content": "Biscuit sounds adorable! Corgis are great company.",
        "time_stamp": "2025-01-12T09:00:30",
    },
    {
        "id": "m3",
        "role": "user",
        "content": "I work as a data analyst at Northwind Labs in Seattle.",
        "time_stamp": "2025-02-03T19:00:00",
        "speaker_name": "Maya",
    },
    {
        "id": "m4",
        "role": "user",
        "content": "We are flying to Lisbon on June 14 for a week.",
        "time_stamp": "2025-03-09T14:30:00",
        "speaker_name": "Maya",
        "metadata": {"topic": "travel"},
    },
]
# Overlapping content for another user: same names, different facts.
BOB = [
    {
        "id": "m1",
        "role": "user",
        "content": "My dog is called Rex. He is a beagle.",
        "time_stamp": "2025-01-13T10:00:00",
        "speaker_name": "Bob",
    },
    {
        "id": "b2",
        "role": "user",
        "content": "I work as a nurse at Northwind Clinic.",
        "time_stamp": "2025-02-04T10:00:00",
        "speaker_name": "Bob",
    },
]


@pytest.fixture
def mem(make_memory):
    m = make_memory()
    m.add_memory(MAYA, user_id="maya", session_id="s1")
    m.add_memory(BOB, user_id="bob")
    return m


def test_add_creates_traceable_sentence_entries(mem: LightMemory) -> None:
    entries = mem.get_all(user_id="maya")
    assert {s for e in entries for s in e.source_ids} == {"m1", "m2", "m3", "m4"}
    biscuit = [e for e in entries if "Biscuit" in e.memory and "m1" in e.source_ids]
    assert biscuit and biscuit[0].speaker_name == "Maya" and "Biscuit" in biscuit[0].entities
    assert biscuit[0].time_stamp.isoformat() == "2025-01-12T09:00:00" and biscuit[0].weekday == "Sun"
    assert biscuit[0].session_id == "s1"
    turns = mem.source_turns(biscuit[0].id, user_id="maya")
    assert [t.id for t in turns] == ["m1"] and "corgi" in turns[0].content


def test_the_turn_type_is_public(make_memory) -> None:
    from lightmem_core import TurnRow

    assert "TurnRow" in lightmem_core.__all__ and TurnRow.__doc__
    m = make_memory()
    m.add_memory(MAYA[:2], user_id="maya", defer=True)  # accepted, waiting for extraction
    pending = m.pending(user_id="maya")
    assert [t.id for t in pending] == ["m1", "m2"] and all(isinstance(t, TurnRow) for t in pending)
    m.extract_pending(user_id="maya")
    entry = next(e for e in m.get_all(user_id="maya") if "m1" in e.source_ids)
    assert all(isinstance(t, TurnRow) for t in m.source_turns(entry.id, user_id="maya"))


@pytest.mark.parametrize("strategy", ["embedding", "context", "hybrid"])
def test_each_strategy_finds_planted_fact(mem: LightMemory, strategy: str) -> None:
    hits = mem.retrieve("Where does Maya work?", limit=3, user_id="maya", strategy=strategy)
    assert hits, strategy
    assert "Northwind Labs" in hits[0].entry.memory
    assert all(h.entry.user_id == "maya" for h in hits)
    expected = {"hybrid": {"embedding", "context"}}.get(strategy, {strategy})
    # "speaker:embedding" = the same retriever restricted to a speaker the query names;
    # "recency" = the newest-first ordering a present-tense question adds
    assert {r.rpartition(":")[2] for r in hits[0].retrievers} - {"recency"} <= expected and hits[0].retrievers


def test_filter_rerank_hybrid_mode(make_memory) -> None:
    m = make_memory({"retrieval": {"hybrid_mode": "filter_rerank"}})
    m.add_memory(MAYA, user_id="maya")
    hits = m.retrieve("Lisbon flight", user_id="maya")
    assert "Lisbon" in hits[0].entry.memory and hits[0].retrievers == ["context+embedding"]
    # BM25 candidates only: nothing without a query word survives the prefilter
    assert all({"lisbon", "flight", "flying"} & set(h.entry.memory.lower().replace(".", " ").split()) for h in hits)


def test_hits_format_for_prompt(mem: LightMemory) -> None:
    from lightmem_core import format_hits

    hits = mem.retrieve("Lisbon trip", limit=2, user_id="maya")
    text = format_hits(hits)
    assert "2025-03-09 14:30 Sun Maya: We are flying to Lisbon on June 14 for a week." in text.splitlines()


def test_scope_isolation_everywhere(mem: LightMemory) -> None:
    bob_ids = {e.id for e in mem.get_all(user_id="bob")}
    maya_ids = {e.id for e in mem.get_all(user_id="maya")}
    assert bob_ids and maya_ids and not bob_ids & maya_ids
    for strategy in ("embedding", "context", "hybrid"):
        hits = mem.retrieve("dog called Rex beagle nurse", limit=50, user_id="maya", strategy=strategy)
        assert {h.entry.id for h in hits} <= maya_ids
    bob_entry = next(iter(bob_ids))
    with pytest.raises(NotFoundError):
        mem.get(bob_entry, user_id="maya")
    with pytest.raises(NotFoundError):
        mem.update(bob_entry, "hijacked", user_id="maya")
    with pytest.raises(NotFoundError):
        mem.delete(bob_entry, user_id="maya")
    with pytest.raises(NotFoundError):
        mem.history(bob_entry, user_id="maya")
    assert mem.delete_all(user_id="maya") == len(maya_ids)
    assert {e.id for e in mem.get_all(user_id="bob")} == bob_ids
    assert mem.get(bob_entry, user_id="bob").memory != "hijacked"
    # the same caller-given turn id "m1" was accepted for both users
    assert any("m1" in e.source_ids for e in mem.get_all(user_id="bob"))


def test_session_and_agent_narrow_reads(make_memory) -> None:
    m = make_memory()
    m.add_memory({"role": "user", "content": "The launch code word is tangerine."}, user_id="u", session_id="a")
    m.add_memory({"role": "user", "content": "The launch code word is periwinkle."}, user_id="u", session_id="b")
    assert len(m.get_all(user_id="u")) == 2
    only_a = m.retrieve("launch code word", user_id="u", session_id="a")
    assert [h.entry.session_id for h in only_a] == ["a"]


def test_update_reembeds_and_history(mem: LightMemory) -> None:
    target = next(e for e in mem.get_all(user_id="maya") if "Northwind Labs" in e.memory)
    updated = mem.update(
        target.id, "Maya works at Brightline Health as a senior analyst.", user_id="maya", reason="job change"
    )
    assert updated.version == 2 and updated.source_ids == target.source_ids
    hits = mem.retrieve("Brightline Health", limit=1, user_id="maya", strategy="embedding")
    assert hits[0].entry.id == target.id  # found by its new vector, not the stale one
    mem.delete(target.id, user_id="maya", reason="test")
    events = [(h.event, h.version, h.old_memory, h.new_memory) for h in mem.history(target.id, user_id="maya")]
    assert events[0][0] == "ADD" and events[0][3] == target.memory
    assert events[1] == ("UPDATE", 2, target.memory, "Maya works at Brightline Health as a senior analyst.")
    assert events[2][:3] == ("DELETE", 3, "Maya works at Brightline Health as a senior analyst.")
    with pytest.raises(NotFoundError):
        mem.get(target.id, user_id="maya")


def test_persists_across_reopen_and_duplicate_turns_skipped(make_memory, tmp_path) -> None:
    path = tmp_path / "persist"
    m = make_memory(path=path)
    m.add_memory(MAYA, user_id="maya")
    before = {e.id: e.memory for e in m.get_all(user_id="maya")}
    m.close()
    m2 = make_memory(path=path)
    assert {e.id: e.memory for e in m2.get_all(user_id="maya")} == before
    again = m2.add_memory(MAYA, user_id="maya")
    assert again.duplicate_turn_ids == ["m1", "m2", "m3", "m4"] and not again.added
    assert len(m2.get_all(user_id="maya")) == len(before)
    assert m2.retrieve("corgi", user_id="maya")[0].entry.id in before


def test_second_process_gets_clear_lock_error(make_memory, tmp_path) -> None:
    path = tmp_path / "locked"
    m = make_memory(path=path)
    m.add_memory("hello there, this is a test", user_id="u")
    code = (
        "import sys\nfrom lightmem_core import LightMemory, StoreLockedError\n"
        f"try:\n    LightMemory({{'store': {{'path': {str(path)!r}}}, 'embedder': {{'dims': 384}}}})\n"
        "except StoreLockedError as e:\n    print('LOCKED', e)\n    sys.exit(3)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "already open" in proc.stdout and "Qdrant server" in proc.stdout
    with pytest.raises(StoreLockedError):
        make_memory(path=path)


def test_async_twins_do_not_block_loop(mem: LightMemory) -> None:
    async def main() -> tuple[int, list]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.001)
                ticks += 1

        t = asyncio.create_task(ticker())
        await mem.aadd_memory({"role": "user", "content": "I adopted a cat named Pixel last weekend."}, user_id="maya")
        results = await asyncio.gather(*[mem.aretrieve("cat named Pixel", user_id="maya") for _ in range(5)])
        t.cancel()
        return ticks, results

    ticks, results = asyncio.run(main())
    assert ticks > 5  # the loop kept running while embedding and searching
    assert all("Pixel" in r[0].entry.memory for r in results)
    entry = asyncio.run(mem.aget(results[0][0].entry.id, user_id="maya"))
    assert entry.memory == results[0][0].entry.memory


def test_retrieve_latency_is_interactive(mem: LightMemory) -> None:
    mem.retrieve("warm up", user_id="maya")
    t0 = time.perf_counter()
    for _ in range(10):
        mem.retrieve("When is the trip to Lisbon?", user_id="maya")
    assert (time.perf_counter() - t0) / 10 < 0.5


def test_quantized_embedder_stays_close_to_fp32(embedder) -> None:
    from lightmem_core.config import EmbedderConfig
    from lightmem_core.embed import SentenceTransformerEmbedder

    q = SentenceTransformerEmbedder(EmbedderConfig(quantize=True))
    texts = ["Where does Maya work now?", "My dog Biscuit is a corgi."]
    a, b = embedder.embed(texts), q.embed(texts)
    assert a.shape == b.shape and all(0.9 < float(x @ y) < 0.9999 for x, y in zip(a, b))


def test_a_turn_shows_the_answer_in_its_window(make_memory) -> None:
    # Both sentences of the last user turn share the turn's context in their vectors and
    # BM25 text, and only one hit per turn is shown. A rule that showed the sentence stating
    # the current state before one saying a state ended was measured and removed (on the
    # knowledge-update sets it cost 4 cases of 360: "I quit X and joined Y" states the
    # present too); the hit's window still shows the turn's answer beside it.
    turns = [
        (
            "t1",
            "user",
            "My flat in London is tiny, but I love being able to walk along the river after work.",
            "03-02T18:50",
        ),
        ("t2", "assistant", "Evening walks by the Thames are hard to beat.", "03-02T18:51"),
        ("t5", "user", "How do I politely ask my neighbour to keep the noise down after 11?", "04-15T21:20"),
        (
            "t6",
            "assistant",
            "Catch them at a calm moment, be friendly and specific about the time, and suggest a simple compromise.",
            "04-15T21:21",
        ),
        (
            "t9",
            "user",
            "I'm no longer in London. The rent got ridiculous, so I've moved back up to Manchester, and "
            "I can actually afford a spare room.",
            "10-14T17:30",
        ),
        (
            "t10",
            "assistant",
            "A spare room is a real luxury, and the Peak District is now close by for weekend hikes.",
            "10-14T17:31",
        ),
    ]
    m = make_memory()
    for tid, role, text, when in turns:
        m.add_memory(
            [{"id": tid, "role": role, "content": text, "time_stamp": f"2024-{when}:00"}],
            user_id="u",
            session_id=when[:5],
        )
    hits = m.retrieve("Where does the user live now?", limit=5, user_id="u")
    shown = next(h for h in hits if h.entry.source_ids == ["t9"])
    assert "Manchester" in shown.text and "London" in shown.text
