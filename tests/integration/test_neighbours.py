"""The turn next to a strong match is lifted (the ``neighbours`` stage), on the real store,
journal and MiniLM."""

from __future__ import annotations

from lightmem_core.retrieval import STAGE_NAMES
from lightmem_core.types import Scope


def _turn(i: str, who: str, text: str, day: int) -> dict:
    return {
        "id": i,
        "role": "user",
        "speaker_id": who.lower(),
        "speaker_name": who,
        "content": text,
        "time_stamp": f"2023-07-{day:02d}T10:{int(i[1:]):02d}:00",
    }


WORKSHOP = [
    _turn("a1", "Caroline", "Hey Mel, how was your weekend?", 14),
    _turn("a2", "Melanie", "Last Friday I took my kids to a pottery workshop downtown.", 14),
    _turn("a3", "Caroline", "Wow! How did the kids like the pottery workshop?", 14),
    # the answer, in words the question does not use
    _turn("a4", "Melanie", "They loved it and keep begging to go back next month.", 14),
    _turn("a5", "Caroline", "I started a new painting of a sunset.", 14),
    _turn("a6", "Melanie", "Beautiful colours, I love sunsets.", 14),
]
LATER = [
    _turn("b1", "Melanie", "My kids like soccer and swimming a lot.", 20),
    _turn("b2", "Caroline", "My cousin's kids enjoy board games.", 20),
    _turn("b3", "Melanie", "We visited a museum with the kids on Sunday, it was quiet.", 20),
    _turn("b4", "Caroline", "The kids' art class meets on Fridays.", 20),
    _turn("b5", "Melanie", "Did the kids enjoy the pottery class at school?", 20),
    _turn("b6", "Caroline", "No idea, I will ask them.", 20),
    _turn("b7", "Melanie", "The kids reacted badly to the long car ride.", 20),
    _turn("b8", "Caroline", "Kids react to everything with so much energy.", 20),
]
QUESTION = "How did Melanie's kids react to the pottery workshop?"


def _by_turn(hits):
    return {h.entry.source_ids[0]: h for h in hits}


def test_the_reply_to_a_matched_question_is_lifted_by_its_neighbours(make_memory) -> None:
    m = make_memory()
    m.add_memory(WORKSHOP, user_id="u", session_id="s1")
    m.add_memory(LATER, user_id="u", session_id="s2")
    with_stage = _by_turn(m.retrieve(QUESTION, user_id="u", limit=14))
    m.config.retrieval.stages = [s for s in STAGE_NAMES if s != "neighbours"]
    without = _by_turn(m.retrieve(QUESTION, user_id="u", limit=14))
    reply = with_stage["a4"]
    assert any(label.startswith("neighbour:") for label in reply.retrievers)
    assert reply.score > without["a4"].score
    assert not any("neighbour" in label for h in without.values() for label in h.retrievers)


def test_a_question_about_now_is_left_to_the_latest_statement(make_memory) -> None:
    """'Who is the user dating now?': the turns around an older match would crowd out the
    newest statement (three knowledge-update cases, benchmarks/README.md)."""
    m = make_memory()
    m.add_memory(WORKSHOP, user_id="u", session_id="s1")
    hits = m.retrieve("What do Melanie's kids like doing now?", user_id="u", limit=6)
    assert hits and not any("neighbour" in label for h in hits for label in h.retrievers)
    m.config.retrieval.stage_settings = {"neighbours": {"said_now": True}}
    hits = m.retrieve("What do Melanie's kids like doing now?", user_id="u", limit=6)
    assert any("neighbour" in label for h in hits for label in h.retrievers)


def test_a_question_that_counts_is_left_to_every_mention(make_memory) -> None:
    """'How many ...?' wants each mention; the turns around the best one pushed the last
    mentions out of three LongMemEval questions (benchmarks/README.md)."""
    m = make_memory()
    m.add_memory(WORKSHOP, user_id="u", session_id="s1")
    m.add_memory(LATER, user_id="u", session_id="s2")
    question = "How many pottery workshops did Melanie's kids go to?"
    hits = m.retrieve(question, user_id="u", limit=8)
    assert hits and not any("neighbour" in label for h in hits for label in h.retrievers)
    m.config.retrieval.stage_settings = {"neighbours": {"counting": True}}
    hits = m.retrieve(question, user_id="u", limit=8)
    assert any("neighbour" in label for h in hits for label in h.retrievers)


def test_neighbours_are_read_only_within_the_scope(make_memory) -> None:
    """Another user's turns with the same ids lend nothing: the journal reads one scope."""
    m = make_memory()
    m.add_memory(WORKSHOP, user_id="u", session_id="s1")
    m.add_memory(list(reversed(LATER[:4])) + WORKSHOP[:2], user_id="v", session_id="s9")
    assert m._journal.neighbour_turns(Scope(user_id="u"), ["a1", "a2", "b1"]) == {"a1": ("a2",), "a2": ("a1", "a3")}
    assert m._journal.neighbour_turns(Scope(user_id="v"), ["a1", "b1"]) == {"a1": ("b1", "a2"), "b1": ("b2", "a1")}


def test_turns_saved_one_at_a_time_among_other_users_stay_neighbours(make_memory) -> None:
    """A chat agent saves each turn as it comes, and a server takes other users' turns in
    between: a turn's neighbours are its own session's turns."""
    m = make_memory()
    for mine, theirs in zip(WORKSHOP, LATER):
        m.add_memory([mine], user_id="u", session_id="s1")
        m.add_memory([theirs], user_id="v", session_id="s2")
    around = m._journal.neighbour_turns(Scope(user_id="u"), ["a1", "a3", "a6"])
    assert around == {"a1": ("a2",), "a3": ("a2", "a4"), "a6": ("a5",)}
    hits = m.retrieve(QUESTION, user_id="u", limit=6)
    assert any(label.startswith("neighbour:") for h in hits for label in h.retrievers)
