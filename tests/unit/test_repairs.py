"""The repair rules one by one (lightmem_core/repairs.py).

The slips were seen from real small models: the recorded answers are replayed end to end
in tests/integration/test_real_answers.py. Dates and quotes given as ids were reported
from Qwen2.5-0.5B (issue 18), which cannot be installed here, so those answers are
written here in the shape reported.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from lightmem_core import repairs
from lightmem_core.journal import TurnRow
from lightmem_core.llm import _context_overflow
from lightmem_core.update import MergeRule

TURNS = [
    TurnRow(
        id="t1",
        role="user",
        name="Maya",
        user_id="u",
        seq=1,
        content="I adopted a greyhound called Pixel.",
        time_stamp=datetime(2023, 5, 7, 10, 0),
    ),
    TurnRow(
        id="t2",
        role="assistant",
        name="Tom",
        user_id="u",
        seq=2,
        content="How is she settling in?",
        time_stamp=datetime(2023, 5, 7, 10, 1),
    ),
    TurnRow(
        id="t3",
        role="user",
        name="Maya",
        user_id="u",
        seq=3,
        content="Next Monday I start at Mercy Hospital.",
        time_stamp=datetime(2023, 5, 8, 9, 0),
    ),
]
ALIASES = {str(i): t for i, t in enumerate(TURNS, 1)}


def cite(values):
    counts = repairs.RepairCounts()
    return repairs.cite(values, ALIASES, counts), {k: v for k, v in counts.snapshot().items() if v}


@pytest.mark.parametrize(
    ("values", "ids", "rule"),
    [
        (["1", "3"], ["t1", "t3"], "ids_kept"),
        (["t2"], ["t2"], "ids_kept"),
        (["[2]", "turn 3"], ["t2", "t3"], "ids_from_number"),
        (["2023-05-07"], ["t1", "t2"], "ids_from_date"),
        (["7 May, 2023"], ["t1", "t2"], "ids_from_date"),
        (["Next Monday I start at Mercy Hospital"], ["t3"], "ids_from_text"),
        (["zz-invented", "9"], [], "ids_dropped"),
    ],
)
def test_citations(values, ids, rule) -> None:
    got, counts = cite(values)
    assert got == ids and rule in counts


@pytest.mark.parametrize(
    ("fact", "said", "iso"),
    [
        ("Maya adopted Pixel yesterday.", datetime(2023, 5, 8), "2023-05-07"),
        ("Maya starts next Monday.", datetime(2023, 5, 8), "2023-05-15"),  # 8 May 2023 was a Monday
        ("Tom flies tomorrow.", datetime(2023, 5, 8), "2023-05-09"),
        ("Tom runs the marathon in June.", datetime(2023, 5, 8), "2023-06"),
        ("We are planning a trip to Kyoto in October.", datetime(2025, 2, 3), "2025-10"),
        ("I went to Paris in June.", datetime(2025, 1, 5), "2024-06"),
        ("Maya moved last week.", datetime(2023, 5, 10), "2023-W18"),
        ("They marry in two months.", datetime(2023, 5, 10), "2023-07"),
    ],
)
def test_relative_times_in_facts(fact, said, iso) -> None:
    found = repairs.fact_time(fact, said)
    assert found is not None and found[0] == iso
    assert f"({iso})" in repairs.dated_text(fact, said)


def test_a_fact_without_a_relative_time_is_left_alone() -> None:
    assert repairs.fact_time("Maya's dog is called Pixel.", datetime(2023, 5, 8)) is None
    assert repairs.dated_text("Maya's dog is called Pixel.", datetime(2023, 5, 8)) == "Maya's dog is called Pixel."


@pytest.mark.parametrize(
    ("given", "iso", "rule"),
    [
        ("2023-05-08", "2023-05-08", "times_kept"),
        ("2023-06", "2023-06", "times_kept"),
        ("May 8, 2023", "2023-05-08", "times_normalised"),
        ("sometime", None, "times_dropped"),
        (42, None, "times_dropped"),
        ("null", None, None),
    ],
)
def test_times_the_model_gave(given, iso, rule) -> None:
    counts = repairs.RepairCounts()
    when, source = repairs.event_time(given, "Maya has a dog.", TURNS[0], counts)
    assert when == iso and source == "model"
    assert (rule is None and not any(counts.snapshot().values())) or counts.snapshot()[rule] == 1


def test_the_turn_time_replaces_the_session_date_only() -> None:
    counts = repairs.RepairCounts()
    turn = TURNS[2]  # "Next Monday ..." said on 2023-05-08
    assert repairs.event_time("2023-05-08", "Maya starts at Mercy.", turn, counts, [turn]) == ("2023-05-15", "turn")
    assert repairs.event_time("2023-09-01", "Maya starts at Mercy.", turn, counts, [turn])[1] == "model"
    assert repairs.event_time(None, "Maya starts at Mercy.", turn, counts, [turn]) == (None, "model")
    assert counts.snapshot()["times_from_turn"] == 1


def test_first_person_facts_get_the_speaker_name() -> None:
    counts = repairs.RepairCounts()
    assert repairs.name_speaker("I adopted a greyhound.", TURNS[:1], counts) == "Maya: I adopted a greyhound."
    assert repairs.name_speaker("Maya adopted a greyhound.", TURNS[:1], counts) == "Maya adopted a greyhound."
    assert repairs.name_speaker("I asked how she is.", TURNS[:2], counts) == "I asked how she is."  # two speakers
    assert counts.snapshot()["names_restored"] == 1


def test_the_recorded_overflow_names_the_window() -> None:
    import httpx
    import openai

    body = json.loads(
        (Path(__file__).resolve().parents[1] / "fixtures" / "llm_answers" / "server_errors.json").read_text()
    )["context_overflow"]["body"]
    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    exc = openai.BadRequestError(
        json.loads(body)["error"]["message"], response=httpx.Response(400, request=request), body=json.loads(body)
    )
    assert _context_overflow(exc) == 512
    other = openai.BadRequestError(
        "temperature is not supported", response=httpx.Response(400, request=request), body=None
    )
    assert _context_overflow(other) is None


def test_merge_rule() -> None:
    rule = MergeRule()
    assert rule.allows("Jon started a dance studio.", "Jon started a dance studio in January.")
    assert rule.allows("Maya lives in Seattle.", "Maya lives in Portland now.")  # same attribute, new value
    assert not rule.allows(
        "Jon is grateful for the support of Gina and his friends.", "Jon is appreciating Gina's words of encouragement."
    )
