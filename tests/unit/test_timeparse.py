from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from lightmem_core import timeparse


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2023/05/20 (Sat) 00:44", datetime(2023, 5, 20, 0, 44)),  # upstream LightMem
        ("1:56 pm on 8 May, 2023", datetime(2023, 5, 8, 13, 56)),  # LoCoMo
        ("10:37 am on 27 June, 2023", datetime(2023, 6, 27, 10, 37)),
        ("2025-01-12T09:14:00", datetime(2025, 1, 12, 9, 14)),
        ("2025-01-12T09:14:00Z", datetime(2025, 1, 12, 9, 14)),
        ("2025-01-12T11:14:00+02:00", datetime(2025, 1, 12, 9, 14)),  # aware input normalised to UTC
        ("2025-01-12", datetime(2025, 1, 12)),
        (1736673240, datetime(2025, 1, 12, 9, 14)),
        (1736673240000, datetime(2025, 1, 12, 9, 14)),  # milliseconds
        (datetime(2025, 1, 12, 11, 14, tzinfo=timezone(timedelta(hours=2))), datetime(2025, 1, 12, 9, 14)),
    ],
)
def test_formats(value, expected) -> None:
    assert timeparse.parse_time(value) == expected


@pytest.mark.parametrize("value", ["", "yesterday-ish", "x" * 100, float("nan"), True, [2025], 10**20])
def test_rejects(value) -> None:
    with pytest.raises(ValueError):
        timeparse.parse_time(value)


def test_epoch_round_trip_and_weekday() -> None:
    dt = datetime(2023, 5, 20, 0, 44)
    assert timeparse.from_epoch(timeparse.to_epoch(dt)) == dt
    assert timeparse.weekday(dt) == "Sat"
    assert timeparse.format_time(dt) == "2023-05-20 00:44"


# --- time expressions in queries ---------------------------------------------------------
NOW = datetime(2023, 6, 15, 12, 0)  # a Thursday


@pytest.mark.parametrize(
    "query, start, end",
    [
        ("What did I cook last week?", datetime(2023, 6, 5), datetime(2023, 6, 11, 23, 59, 59, 999999)),
        ("What happened in May 2023?", datetime(2023, 5, 1), datetime(2023, 5, 31, 23, 59, 59, 999999)),
        ("What did Caroline do on 8 May, 2023?", datetime(2023, 5, 8), datetime(2023, 5, 8, 23, 59, 59, 999999)),
        ("What did I do on September 3, 2022?", datetime(2022, 9, 3), datetime(2022, 9, 3, 23, 59, 59, 999999)),
        ("what happened yesterday", datetime(2023, 6, 14), datetime(2023, 6, 14, 23, 59, 59, 999999)),
        ("Did I go hiking on Sunday?", datetime(2023, 6, 11), datetime(2023, 6, 11, 23, 59, 59, 999999)),
        ("What did she do in 2022?", datetime(2022, 1, 1), datetime(2022, 12, 31, 23, 59, 59, 999999)),
        ("What did she paint last summer?", datetime(2022, 6, 1), datetime(2022, 8, 31, 23, 59, 59, 999999)),
        ("What did we do in December?", datetime(2022, 12, 1), datetime(2022, 12, 31, 23, 59, 59, 999999)),
        ("What did you read last month?", datetime(2023, 5, 1), datetime(2023, 5, 31, 23, 59, 59, 999999)),
        ("What did you do since March?", datetime(2023, 3, 1), None),
        ("What happened before May 2023?", None, datetime(2023, 4, 30, 23, 59, 59, 999999)),
        ("in the past three days what did I eat", datetime(2023, 6, 12), NOW),
    ],
)
def test_query_periods(query: str, start: datetime | None, end: datetime | None) -> None:
    tq = timeparse.parse_query_time(query, NOW)
    if start is None:
        assert tq.start is None
    else:
        assert tq.start == start
    if end is None:
        assert tq.end is None
    else:
        assert abs((tq.end - end).total_seconds()) < 1
    assert tq.expression and tq.expression not in tq.text  # the expression is cut from the lexical query


def test_ago_is_a_window_around_the_point() -> None:
    tq = timeparse.parse_query_time("What did I do 2 weeks ago?", NOW)
    assert tq.start < datetime(2023, 6, 1) < tq.end
    assert tq.end < NOW


def test_event_anchors_and_recency() -> None:
    tq = timeparse.parse_query_time("Where did we eat before the trip to Paris?", NOW)
    assert (tq.anchor, tq.relation, tq.has_range) == ("the trip to Paris", "before", False)
    assert timeparse.parse_query_time("What did she do after the race?", NOW).relation == "after"
    assert timeparse.parse_query_time("Where does he live now?", NOW).recency
    assert timeparse.parse_query_time("What is your current job?", NOW).recency


@pytest.mark.parametrize(
    "query",
    [
        "When did Caroline go to the LGBTQ support group?",
        "May I ask what you like?",
        "What is 2 + 2?",
        "Tell me about March of the penguins",
        "",
    ],
)
def test_no_period_where_none_is_named(query: str) -> None:
    tq = timeparse.parse_query_time(query, NOW)
    assert not tq.has_range and tq.anchor is None


@pytest.mark.parametrize(
    "query, present",
    [
        ("Where does the user live?", True),
        ("Which city does the user live in now?", True),
        ("What is Caroline's job?", True),
        ("What did Caroline research?", False),
        ("Where has Melanie camped?", False),
        ("Which company did the user work for first?", False),
        ("Is she still dating Mark?", True),
        ("Which kind of pet does the user prefer?", True),
        ("Who is the user's manager at present?", True),
    ],
)
def test_present_tense_questions_ask_for_the_current_state(query: str, present: bool) -> None:
    assert timeparse.parse_query_time(query, NOW).present is present
