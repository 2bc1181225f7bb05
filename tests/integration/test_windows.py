"""Sentence windows: a hit cut from a longer turn shows its neighbours there (real store and MiniLM)."""

from __future__ import annotations

from lightmem_core import format_hits

MATCHA = {
    "id": "t1",
    "role": "user",
    "time_stamp": "2023-06-18T08:05:00",
    "content": "What is the difference between ceremonial and culinary grade matcha? "
    "I whisk up a bowl every single morning now and want to upgrade. "
    "My old coffee grinder is gathering dust in the cupboard.",
}
QUESTION = "What does the user whisk every morning?"


def _hit_from(hits, turn: str):
    return next(h for h in hits if h.entry.source_ids == [turn])


def _pieces(m, turn: str, user: str = "u"):
    return sorted(
        (e for e in m.get_all(user_id=user, include_superseded=True) if e.source_ids == [turn]),
        key=lambda e: e.position,
    )


def test_a_sentence_hit_shows_the_sentences_around_it(make_memory) -> None:
    m = make_memory()
    m.add_memory([MATCHA], user_id="u", session_id="s1")
    pieces = _pieces(m, "t1")
    assert [e.position for e in pieces] == [0, 1, 2]
    hit = _hit_from(m.retrieve(QUESTION, user_id="u", limit=3), "t1")
    assert hit.entry.memory == "user: I whisk up a bowl every single morning now and want to upgrade."
    # the sentence alone never says what is whisked; its window does, in the turn's order, one speaker prefix
    assert "matcha" not in hit.entry.memory
    assert hit.window == "user: " + MATCHA["content"]
    assert hit.text == hit.window and MATCHA["content"] in format_hits([hit]) and MATCHA["content"] in str(hit)


def test_width_bounds_the_window_and_zero_turns_it_off(make_memory, tmp_path) -> None:
    narrow = make_memory({"retrieval": {"window": 1}}, path=tmp_path / "narrow")
    off = make_memory({"retrieval": {"window": 0}}, path=tmp_path / "off")
    for m in (narrow, off):
        m.add_memory([MATCHA], user_id="u", session_id="s1")
    first = _hit_from(narrow.retrieve("ceremonial versus culinary grade matcha", user_id="u", limit=3), "t1")
    assert first.entry.position == 0
    assert first.window is not None and "matcha" in first.window and "upgrade" in first.window
    assert "grinder" not in first.window  # two sentences away
    bare = _hit_from(off.retrieve(QUESTION, user_id="u", limit=3), "t1")
    assert bare.window is None and bare.text == bare.entry.memory


def test_a_deleted_or_updated_neighbour_shows_as_memory_now_holds_it(make_memory) -> None:
    m = make_memory()
    m.add_memory([MATCHA], user_id="u", session_id="s1")
    first, _, last = _pieces(m, "t1")
    m.delete(first.id, user_id="u")
    m.update(last.id, "user: I gave my old coffee grinder to my brother.", user_id="u")
    hit = _hit_from(m.retrieve(QUESTION, user_id="u", limit=3), "t1")
    assert "matcha" not in (hit.window or "")  # deleted means gone, also from other hits' windows
    assert hit.window == (
        "user: I whisk up a bowl every single morning now and want to upgrade. "
        "I gave my old coffee grinder to my brother."
    )


def test_a_superseded_neighbour_shows_only_when_asked_for(make_memory) -> None:
    m = make_memory({"update": "online"})
    m.add_memory(
        [
            {
                "id": "o1",
                "role": "user",
                "time_stamp": "2024-01-10T09:00:00",
                "content": "I live in Seattle with my dog. I go surfing at the coast every weekend.",
            }
        ],
        user_id="u",
        session_id="s1",
    )
    m.add_memory(
        [
            {
                "id": "n1",
                "role": "user",
                "content": "I moved to Portland last month.",
                "time_stamp": "2024-05-04T10:00:00",
            }
        ],
        user_id="u",
        session_id="s2",
    )
    seattle, surfing = _pieces(m, "o1")
    assert not seattle.is_current and surfing.is_current
    hit = _hit_from(m.retrieve("What does the user do on weekends?", user_id="u", limit=3), "o1")
    assert hit.entry.id == surfing.id and hit.window is None  # its only neighbour is out of date
    both = _hit_from(
        m.retrieve("What does the user do on weekends?", user_id="u", limit=3, include_superseded=True), "o1"
    )
    assert "Seattle" in (both.window or "")


def test_windows_never_reach_another_user(make_memory) -> None:
    """Turn ids come from the caller, so two users can share one; a piece's id names its
    user as well as its turn and position, and the lookup is scoped besides."""
    m = make_memory()
    m.add_memory([MATCHA], user_id="u", session_id="s1")
    m.add_memory(
        [
            {
                **MATCHA,
                "content": "My bank PIN is written on a note. I whisk up a bowl every single morning "
                "now and want to upgrade. Please keep the PIN to yourself.",
            }
        ],
        user_id="bob",
        session_id="s1",
    )
    mine = _hit_from(m.retrieve(QUESTION, user_id="u", limit=3), "t1")
    theirs = _hit_from(m.retrieve(QUESTION, user_id="bob", limit=3), "t1")
    assert "PIN" not in (mine.window or "") and "matcha" in (mine.window or "")
    assert "matcha" not in (theirs.window or "") and "PIN" in (theirs.window or "")
