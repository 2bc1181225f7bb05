"""Pure retrieval logic: fusion, per-source caps, filter translation, query plans."""

from __future__ import annotations

from lightmem_core.config import RetrievalConfig
from lightmem_core.extract import entry_id
from lightmem_core.indexing import to_payload
from lightmem_core.lexical import SparseVec
from lightmem_core.retrieval import (
    CandidateList,
    ListKind,
    QueryAnalysis,
    Retriever,
    asks_for_name,
    fuse,
    parse_filters,
    plan,
    rank,
    sibling_ids,
    speaker_filter,
    without_roles,
)
from lightmem_core.retrieval.stages import (
    PREFERENCES,
    CurrentStateSettings,
    asks_only,
    choose_sentences,
    current_state_first,
    rules_for,
    window_ids,
    with_windows,
)
from lightmem_core.retrieval.stages.neighbours import neighbour_order
from lightmem_core.store.base import Filter, Match, Range, Record
from lightmem_core.types import Hit, MemoryEntry
from lightmem_core.update import attributes


def vector(records: list[Record]) -> CandidateList:
    return CandidateList(ListKind(Retriever.EMBEDDING), records)


def lexical(records: list[Record]) -> CandidateList:
    return CandidateList(ListKind(Retriever.CONTEXT), records)


def rec(i: int, src: str, score: float = 1.0) -> Record:
    e = MemoryEntry(id=f"00000000-0000-0000-0000-{i:012d}", memory=f"fact {i}", user_id="u", source_ids=[src])
    return Record(e.id, to_payload(e), score)


def test_rrf_rewards_agreement_and_reports_retrievers() -> None:
    dense = [rec(1, "a"), rec(2, "b"), rec(3, "c")]
    sparse = [rec(3, "c"), rec(4, "d"), rec(1, "a")]
    hits = fuse([vector(dense), lexical(sparse)], limit=4, rrf_k=60)
    assert [h.entry.memory for h in hits[:2]] == ["fact 1", "fact 3"]
    assert hits[0].retrievers == ["embedding", "context"] and hits[-1].retrievers in (["embedding"], ["context"])
    assert [h.rank for h in hits] == [1, 2, 3, 4]


def test_single_list_keeps_scores_and_cap_per_source() -> None:
    records = [rec(1, "a", 0.9), rec(2, "a", 0.8), rec(3, "a", 0.7), rec(4, "b", 0.6)]
    hits = fuse([vector(records)], limit=10, rrf_k=60, per_source_limit=2)
    assert [h.entry.memory for h in hits] == ["fact 1", "fact 2", "fact 4"]
    assert hits[0].score == 0.9


def test_filter_translation() -> None:
    f = parse_filters(
        {
            "time_stamp": {"gt": "2025-01-01", "lte": 1800000000},
            "speaker_name": ["A", "B"],
            "metadata": {"topic": "x"},
            "entry_type": {"ne": "summary"},
        }
    )
    assert isinstance(f, Filter)
    assert Range("_ts", gt=1735689600.0) in f.must and Range("_ts", lte=1800000000.0) in f.must
    assert Match("speaker_name", any=("A", "B")) in f.must and Match("metadata.topic", "x") in f.must
    assert f.must_not == (Match("entry_type", "summary"),)
    assert parse_filters(None) is None and parse_filters({}) is None


def test_plans_per_strategy() -> None:
    cfg = RetrievalConfig()
    sv = SparseVec([1], [1.0])
    assert [n.value for n, _ in plan("embedding", dense=[0.1], sparse=None, limit=5, flt=None, config=cfg)] == [
        "embedding"
    ]
    assert [n.value for n, _ in plan("hybrid", dense=[0.1], sparse=sv, limit=5, flt=None, config=cfg)] == [
        "embedding",
        "context",
    ]
    # a query with no indexable word (all stop words) falls back to the vector alone
    assert [
        n.value for n, _ in plan("hybrid", dense=[0.1], sparse=SparseVec([], []), limit=5, flt=None, config=cfg)
    ] == ["embedding"]
    assert plan("context", dense=None, sparse=SparseVec([], []), limit=5, flt=None, config=cfg) == []
    fr = plan("hybrid", dense=[0.1], sparse=sv, limit=5, flt=None, config=RetrievalConfig(hybrid_mode="filter_rerank"))
    assert fr[0][1].prefetch is not None and fr[0][1].prefetch.using == "sparse"


def sentence(i: int, src: str, text: str, score: float, norm: float, when: str = "2024-01-01") -> Record:
    e = MemoryEntry(
        id=f"00000000-0000-0000-0000-{i:012d}",
        memory=text,
        user_id="u",
        source_ids=[src],
        speaker_id="user",
        time_stamp=when,
    )
    return Record(e.id, to_payload(e, norm), score)


def test_a_turn_shows_the_sentence_closest_by_its_own_meaning() -> None:
    # Both sentences of turn "t" share the turn's context in their blended vectors. The
    # short one scores higher on the blend, but only because more context was mixed in:
    # score * norm (the fact's own similarity plus a shared term) puts the other first.
    short = sentence(1, "t", "The bootcamp paid off.", 0.48, 0.80)
    full = sentence(2, "t", "I started at a startup as a junior developer.", 0.45, 0.97)
    other = sentence(3, "u", "I like tea.", 0.30, 1.0)
    labelled = [vector([short, full, other]), lexical([short, other, full])]
    ranked = rank(labelled, limit=2, rrf_k=60, per_source_limit=1)
    assert [r.id for r, _, _ in ranked] == [short.id, other.id]
    siblings = sibling_ids(ranked, labelled)
    assert siblings == {short.id: [full.id]}
    payloads = {r.id: r.payload for r in (short, full, other)}
    chosen = choose_sentences(ranked, siblings, labelled, payloads)
    assert [r.id for r, _, _ in chosen] == [full.id, other.id]
    assert chosen[0][1] == ranked[0][1]  # the turn keeps its fused score and place


PRESENT = "What does the user do these days?"  # about the present; asks for no name
PRESENT_NAME = "Which city does the user live in now?"


def shown(*sentences: Record, question: str | None = None) -> str:
    """Which sentence of one turn (all from source "t") its hit shows for ``question``."""
    labelled = [vector(list(sentences))]
    ranked = rank(labelled, limit=1, rrf_k=60, per_source_limit=1)
    payloads = {r.id: r.payload for r in sentences}
    analysis = QueryAnalysis.of(question, None, temporal=True) if question else None
    preferences = [p() for p in PREFERENCES]
    return choose_sentences(ranked, sibling_ids(ranked, labelled), labelled, payloads, preferences, analysis)[0][0].id


def test_the_equally_close_newer_first_rule_needs_a_question_about_now() -> None:
    """On LoCoMo a present-tense question ("What does Caroline like?") is as much about the
    past: moving newer turns ahead there cost 17 of 760 questions at @5 (benchmarks/README)."""
    rules = CurrentStateSettings()
    assert rules_for(rules, QueryAnalysis.of("Where does the user live now?", None, temporal=True)).close == 0.05
    assert rules_for(rules, QueryAnalysis.of("Where does the user live?", None, temporal=True)).close is None
    every = CurrentStateSettings(close_needs_now=False)
    assert rules_for(every, QueryAnalysis.of("Where does the user live?", None, temporal=True)).close == 0.05


def test_current_state_first_orders_same_attribute_newest_first() -> None:
    def hit(text: str, when: str, speaker: str = "user") -> Hit:
        return Hit(entry=MemoryEntry(memory=text, user_id="u", speaker_id=speaker, time_stamp=when), score=1.0)

    old = hit("I live in Hamburg.", "2024-01-01")
    walk = hit("I walked along the harbour.", "2024-02-01")
    new = hit("We moved to Lisbon last month.", "2024-08-01")
    other = hit("The assistant said Lisbon is hilly and they live there.", "2024-09-01", speaker="assistant")
    out = current_state_first([old, walk, new, other], attributes)
    assert [h.entry.memory for h in out] == [new.entry.memory, old.entry.memory, walk.entry.memory, other.entry.memory]
    assert [h.rank for h in out] == [1, 2, 3, 4]


def test_a_relationship_is_stated_without_naming_it() -> None:
    """'Noor and I just celebrated six months together' says who the user is with as much
    as 'my girlfriend Chloe' does, so the newer goes first for "Who is the user's
    girlfriend?"; doing something together with a friend states no relationship."""
    for text in (
        "Noor and I just celebrated six months together.",
        "Jonas and I separated last week after six years.",
        "We have been back together since the summer.",
        "We split up in May.",
        "It was our anniversary yesterday.",
    ):
        assert "relationship" in attributes(text), text
    assert "relationship" not in attributes("We went hiking together on Sunday.")

    def hit(text: str, when: str) -> Hit:
        return Hit(entry=MemoryEntry(memory=text, user_id="u", speaker_id="user", time_stamp=when), score=1.0)

    chloe = hit("My girlfriend Chloe is vegan.", "2022-06-18")
    noor = hit("Noor and I just celebrated six months together.", "2023-04-30")
    assert [h.entry.memory for h in current_state_first([chloe, noor], attributes)] == [
        noor.entry.memory,
        chloe.entry.memory,
    ]


def entry(text: str, when: str, src: str) -> MemoryEntry:
    """A sentence the user said in turn ``src``."""
    return MemoryEntry(memory=text, user_id="u", speaker_id="user", time_stamp=when, source_ids=[src])


def test_a_turn_is_about_what_any_of_its_sentences_is_about() -> None:
    """Neither shown sentence names the attribute; their turns do. The newer turn goes
    first and shows the sentence that states it; the older keeps what it showed."""
    winters = entry("Minneapolis winters are something else.", "2023-12-03", "t1")
    duplex = entry("I live in a duplex near Lake Harriet.", "2023-12-03", "t1")
    heat = entry("The heat is already intense.", "2024-05-12", "t9")
    moved = entry("We finally moved to Tucson at the end of April.", "2024-05-12", "t9")
    hits = [Hit(entry=winters, score=1.0), Hit(entry=heat, score=0.9)]
    assert [h.entry.id for h in current_state_first(hits, attributes)] == [winters.id, heat.id]  # sentences alone
    turns = {winters.id: [to_payload(winters), to_payload(duplex)], heat.id: [to_payload(heat), to_payload(moved)]}
    out = current_state_first(hits, attributes, turns)
    assert [h.entry.memory for h in out] == [moved.memory, winters.memory]
    assert [h.rank for h in out] == [1, 2] and out[0].score == 0.9


def test_a_newer_statement_about_now_goes_first_whatever_the_attribute() -> None:
    """No attribute of the lexicon (music), but the user said "now": the newer turn goes
    first, unless it scored far below (then it is likely about something else), and a
    question with "now" in it states nothing."""

    def hit(text: str, when: str, score: float) -> Hit:
        return Hit(entry=MemoryEntry(memory=text, user_id="u", speaker_id="user", time_stamp=when), score=score)

    jazz = hit("I always work with jazz on in the background.", "2023-01-05", 0.080)
    synth = hit("Now it's retro synthwave playlists on repeat all day.", "2023-09-01", 0.057)
    out = current_state_first([jazz, synth], attributes)
    assert [h.entry.memory for h in out] == [synth.entry.memory, jazz.entry.memory]
    far = hit("Now it's retro synthwave playlists on repeat all day.", "2023-09-01", 0.040)
    assert current_state_first([jazz, far], attributes)[0].entry.memory == jazz.entry.memory
    asks = hit("What should I listen to now?", "2023-09-01", 0.070)
    assert current_state_first([jazz, asks], attributes)[0].entry.memory == jazz.entry.memory


def test_role_words_leave_the_matched_text_but_not_other_words() -> None:
    assert without_roles("What does the user do for work now?") == "What does do for work now?"
    assert without_roles("the user's") == "the user's"  # nothing left to match on: unchanged
    # "assistant manager" is a job title, not the assistant
    assert speaker_filter("How did John become assistant manager?") == Filter(
        must=(Match("speaker_name", any=("John",)),)
    )
    assert speaker_filter("Where does the user live?") == Filter(must=(Match("speaker_id", any=("user",)),))


def test_a_question_in_the_first_person_favours_the_users_own_turns() -> None:
    user = Filter(must=(Match("speaker_id", any=("user",)),))
    assert speaker_filter("How long was I abroad for?") == user
    assert speaker_filter("Can you suggest a hotel for my upcoming trip?") == user
    # a name as well: either may have said it
    assert speaker_filter("What did Tom tell me?") == Filter(
        should=(Match("speaker_name", any=("Tom",)), Match("speaker_id", any=("user",)))
    )
    assert speaker_filter("How long was I abroad for?", asker=False) is None
    # third person, and the pronoun inside a name or word, name nobody
    assert speaker_filter("What did Caroline paint?") == Filter(must=(Match("speaker_name", any=("Caroline",)),))
    assert speaker_filter("Is Mystic River a film?") == Filter(must=(Match("speaker_name", any=("Mystic", "River")),))


def test_an_answer_about_as_close_in_meaning_goes_first_when_it_is_newer() -> None:
    """The old statement repeats the question's words and wins the fused score; by meaning
    alone the two are level, so the newer goes first. A newer turn far below in meaning,
    or another speaker's, stays where it was."""

    def hit(text: str, when: str, score: float, speaker: str = "user") -> Hit:
        return Hit(entry=MemoryEntry(memory=text, user_id="u", speaker_id=speaker, time_stamp=when), score=score)

    linda = hit("My manager Linda wants the report by Friday.", "2023-01-05", 0.064)
    rajesh = hit("These days I report to Rajesh, who is hands-off.", "2023-10-01", 0.041)
    lunch = hit("What are some quick lunches I can pack?", "2023-11-01", 0.040)
    said = hit("Rajesh sounds easier to work with.", "2023-10-01", 0.040, speaker="assistant")
    hits = [linda, rajesh, lunch, said]
    assert [h.entry.memory for h in current_state_first(hits, attributes)][:2] == [
        linda.entry.memory,
        rajesh.entry.memory,
    ]
    similarity = {linda.entry.id: 0.21, rajesh.entry.id: 0.19, lunch.entry.id: 0.03, said.entry.id: 0.30}
    out = current_state_first(hits, attributes, similarity=similarity)
    assert [h.entry.memory for h in out] == [
        rajesh.entry.memory,
        linda.entry.memory,
        lunch.entry.memory,
        said.entry.memory,
    ]
    similarity[rajesh.entry.id] = 0.10  # no longer about as close: order kept
    assert current_state_first(hits, attributes, similarity=similarity)[0].entry.memory == linda.entry.memory


def test_a_question_asking_for_a_name_shows_the_sentence_that_holds_one() -> None:
    assert asks_for_name("Which city does the user live in now?") and asks_for_name("Who is the user's partner?")
    assert asks_for_name("What is the name of the user's dog?")
    assert not asks_for_name("What does the user drink these days?") and not asks_for_name("What kind of diet?")
    vague = sentence(1, "t", "The altitude is killing me on my runs.", 0.50, 1.0)
    named = sentence(2, "t", "Any tips for Denver, since I live here?", 0.40, 1.0)
    assert shown(vague, named, question=PRESENT) == vague.id
    assert shown(vague, named, question=PRESENT_NAME) == named.id


def test_a_request_that_tells_nothing_about_the_asker_is_not_what_a_turn_shows() -> None:
    """The request resembles the question in form and wins on the vector; for a question
    about the present the turn shows the statement. A question with a statement inside
    ("now that I live here") is not a bare request."""
    request = sentence(1, "t", "user: What goes in a strong aims section?", 0.50, 1.0)
    state = sentence(2, "t", "user: I just started my postdoc and need a grant.", 0.40, 1.0)
    assert shown(request, state) == request.id
    assert shown(request, state, question=PRESENT) == state.id
    assert asks_only("How should I present a case study?") and not asks_only("Any tips now that I live here?")
    assert not asks_only("Which beaches near Barcelona are quiet?") and not asks_only("I teach chemistry.")


def test_a_hit_moved_for_an_attribute_keeps_its_closeness() -> None:
    """The newer turn moved ahead for where the user lives shows its sentence that says
    so, another entry; a still newer turn about as close to the question must still be
    measured against it, not against nothing."""
    seattle = entry("I live in Seattle.", "2024-01-01", "t1")
    rain = entry("The rain is different here.", "2024-05-01", "t2")
    moved = entry("We moved to Austin in April.", "2024-05-01", "t2")
    latest = entry("Honestly the tacos are the best part.", "2024-09-01", "t3")
    hits = [Hit(entry=e, score=s) for e, s in ((seattle, 1.0), (rain, 0.9), (latest, 0.8))]
    turns = {rain.id: [to_payload(rain), to_payload(moved)]}
    similarity = {seattle.id: 0.30, rain.id: 0.30, latest.id: 0.29}
    out = current_state_first(hits, attributes, turns, similarity)
    assert [h.entry.memory for h in out] == [latest.memory, moved.memory, seattle.memory]


def piece(k: int, text: str, *, current: bool = True) -> MemoryEntry:
    """Piece ``k`` of turn t1, named as the offline extractor names it."""
    return MemoryEntry(
        id=entry_id("u", "t1", k),
        memory=f"user: {text}",
        user_id="u",
        speaker_id="user",
        source_ids=["t1"],
        position=k,
        superseded_by=None if current else "newer",
    )


def test_a_window_is_the_named_neighbours_in_turn_order() -> None:
    pieces = [
        piece(0, "Is matcha worth it?"),
        piece(1, "I whisk a bowl daily."),
        piece(2, "Old grinder.", current=False),
        piece(3, "Three away."),
    ]
    hit = Hit(entry=pieces[1], score=1.0)
    wanted = window_ids([hit], 1)
    assert wanted == {pieces[1].id: [pieces[0].id, pieces[1].id, pieces[2].id]}
    payloads = {p.id: to_payload(p) for p in pieces}
    [shown] = with_windows([hit], wanted, payloads)
    assert shown.window == "user: Is matcha worth it? I whisk a bowl daily."  # superseded neighbour left out
    [asked] = with_windows([hit], wanted, payloads, include_superseded=True)
    assert asked.window == "user: Is matcha worth it? I whisk a bowl daily. Old grinder."
    # deleted neighbours are simply absent; a lone piece has no window
    assert with_windows([hit], wanted, {pieces[1].id: payloads[pieces[1].id]})[0].window is None
    # an entry whose id is not its (user, turn, position) name, e.g. imported, gets none
    assert (
        window_ids(
            [Hit(entry=pieces[1].model_copy(update={"id": "00000000-0000-0000-0000-000000000001"}), score=1.0)], 1
        )
        == {}
    )
    assert window_ids([hit], 0) == {}


def test_a_possessive_names_the_speaker_and_leaving_names_out_keeps_something_to_match() -> None:
    from lightmem_core.retrieval.query import named_speakers, without_names

    assert named_speakers("What do Melanie's kids like?") == ("Melanie",)
    assert named_speakers("Did Jean-Luc call?") == ("Jean-Luc",)
    assert without_names("What do Melanie's kids like?", ("Melanie",)) == "What do kids like?"
    assert without_names("And Melanie?", ("Melanie",)) == "And Melanie?"  # nothing left to match: kept
    assert without_names("Where is Melanielle?", ("Melanie",)) == "Where is Melanielle?"  # whole words only


def test_the_turns_next_to_the_best_turns_are_listed_in_their_neighbours_order() -> None:
    """A reply goes with the matched question before it, and a statement with the matched
    follow-up after it, in the order of the turn they are next to; a turn next to no
    anchor gets nothing."""
    reply, statement, elsewhere = rec(2, "s1:4"), rec(3, "s2:7"), rec(5, "s3:5")
    question, follow_up = rec(1, "s1:3"), rec(4, "s2:8")
    anchors = ["s1:3", "s2:8"]  # the first fusion's best turns, best first
    around = {"s1:3": ("s1:2", "s1:4"), "s2:8": ("s2:7",)}  # their neighbours in their own sessions
    candidates = [follow_up, elsewhere, statement, reply, question]
    assert [r.id for r in neighbour_order(anchors, candidates, around)] == [reply.id, statement.id]
    assert neighbour_order(anchors, candidates, {}) == []  # turns the journal does not know lend nothing


def test_a_question_that_counts_or_totals_is_told_apart() -> None:
    for q in (
        "How many plants did I acquire in the last month?",
        "How often do I go swimming?",
        "How much time do I spend commuting in total?",
    ):
        assert QueryAnalysis.of(q, None, temporal=True).counts, q
    for q in ("How did the kids like the workshop?", "What does Caroline paint?", "How much does the user earn?"):
        assert not QueryAnalysis.of(q, None, temporal=True).counts, q
