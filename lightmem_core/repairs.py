"""Mapping what a real model wrote back onto the batch it was given.

A small local model answers in the right JSON shape and still gets details wrong (all
seen from Qwen2.5-1.5B and 0.5B on llama.cpp, recorded in ``tests/fixtures/llm_answers``):
it cites a turn by its date or by quoting it instead of by its id, it leaves "yesterday"
unresolved and gives the session date as the time, and it writes "I" where the speaker's
name belongs. Each rule here fixes one such slip, only from what the batch itself shows,
and counts what it did, so a benchmark (and ``LightMemory.get_repair_statistics``) says
how much of a memory rests on repairs. Nothing a rule cannot ground in the batch is kept.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping, Optional, Sequence

from . import textproc, timeparse
from .journal import TurnRow

REPAIRS = (
    "ids_kept",  # cited ids that were the batch's own
    "ids_from_number",  # "[3]", "turn 3", 3 -> alias 3
    "ids_from_date",  # a date where an id belongs -> the batch's turns of that day
    "ids_from_text",  # a quote of a turn where an id belongs -> that turn
    "ids_dropped",  # cited values no rule could ground in the batch
    "facts_cited_batch",  # facts left with no grounded id: attributed to the whole batch
    "times_kept",  # an ISO date given as the time
    "times_normalised",  # another spelling of a date ("May 8, 2023") -> ISO
    "times_from_fact",  # "yesterday" in the fact, resolved against its turn's time
    "times_from_turn",  # the fact lost "yesterday", the model gave the day it was said: the turn's time
    "times_dropped",  # a time that is not a date
    "names_restored",  # a first-person fact prefixed with its speaker's name
    "updates_refused",  # an LLM "update" that would drop most of the old memory (update.MergeRule)
    "facts_kept_from_cut",  # whole facts before the loop of an answer cut at max_tokens
    "facts_dropped_as_loop",  # whole facts of a cut answer that repeat an earlier one
)


class RepairCounts:
    """Thread-safe counters of the repairs made, by name (see ``REPAIRS``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(REPAIRS, 0)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(REPAIRS, 0)


@dataclass(frozen=True)
class CitationRule:
    """How a cited value that is not one of the batch's ids may still name a turn.

    ``min_quote_chars``: a quote shorter than this names no turn (too many turns share
    short phrases). ``min_overlap``: share of the quote's content words a turn must hold.
    """

    min_quote_chars: int = 12
    min_overlap: float = 0.6


DEFAULT_CITATION = CitationRule()


@dataclass(frozen=True)
class LoopRule:
    """Where an answer cut at ``max_tokens`` stopped adding facts.

    A small model that runs to the limit has most often looped: it writes one fact again and
    again with a word or a name changed (Qwen2.5-1.5B did, ``tests/fixtures/llm_answers/
    truncated.json``). The whole facts before the first repeat are kept, and only the turns
    after the last one they cite are asked again; the rest of the cut answer is dropped.
    ``similarity``: the share of content words (Jaccard) a fact shares with an earlier one
    at which it is a repeat.
    """

    similarity: float = 0.6


DEFAULT_LOOP = LoopRule()


def before_loop(items: Sequence[Any], counts: RepairCounts, rule: LoopRule = DEFAULT_LOOP) -> list[Any]:
    """The items of a cut answer up to the first one that repeats an earlier one."""
    seen: list[set[str]] = []
    for n, item in enumerate(items):
        fact = item.get("fact") if isinstance(item, dict) else item
        words = set(textproc.content_words(fact)) if isinstance(fact, str) else set()
        if any(words and len(words & w) / len(words | w) >= rule.similarity for w in seen):
            counts.add("facts_dropped_as_loop", len(items) - n)
            return list(items[:n])
        seen.append(words)
    return list(items)


_NUMBER = re.compile(r"^\s*\[?\s*(?:turn|id|#)?\s*(\d{1,4})\s*\]?\.?\s*$", re.I)
_DATEISH = re.compile(
    r"\d{4}-\d{1,2}-\d{1,2}|\b\d{1,2}\s+[A-Za-z]{3,9},?\s+\d{4}\b|\b[A-Za-z]{3,9}\s+\d{1,2},?\s+\d{4}\b"
)


def said_at(turn: TurnRow) -> datetime:
    """When a turn was said: its time stamp, else when it was accepted (the extractors' clock too)."""
    return turn.time_stamp or turn.accepted_at or timeparse.utcnow()


def cite(
    values: Any, aliases: Mapping[str, TurnRow], counts: RepairCounts, rule: CitationRule = DEFAULT_CITATION
) -> list[str]:
    """The turn ids (real ones) that ``values`` names, in order, without repeats."""
    if isinstance(values, (str, int)):
        values = [values]
    if not isinstance(values, list):
        return []
    by_id = {t.id: t for t in aliases.values()}
    out: list[str] = []
    for raw in values:
        found = _one(raw, aliases, by_id, counts, rule)
        out += [t for t in found if t not in out]
    return out


def _one(
    raw: Any, aliases: Mapping[str, TurnRow], by_id: Mapping[str, TurnRow], counts: RepairCounts, rule: CitationRule
) -> list[str]:
    text = str(raw).strip().strip("\"'").strip()
    bare = text.strip("[] ")
    # the prompt shows only aliases, so an alias wins over a real id that looks the same
    if bare in aliases:
        counts.add("ids_kept")
        return [aliases[bare].id]
    if bare in by_id:
        counts.add("ids_kept")
        return [bare]
    m = _NUMBER.match(text)
    if m and m.group(1) in aliases:
        counts.add("ids_from_number")
        return [aliases[m.group(1)].id]
    if _DATEISH.search(text):
        day = _date_of(text)
        same = [t.id for t in aliases.values() if day is not None and said_at(t).date() == day]
        if same:
            counts.add("ids_from_date")
            return same
    if len(text) >= rule.min_quote_chars:
        turn = _quoted(text, aliases.values(), rule)
        if turn is not None:
            counts.add("ids_from_text")
            return [turn.id]
    counts.add("ids_dropped")
    return []


def _date_of(text: str) -> Optional[Any]:
    m = _DATEISH.search(text)
    if not m:
        return None
    try:
        return timeparse.parse_time(m.group(0)).date()
    except ValueError:
        return None


def _quoted(text: str, turns: Sequence[TurnRow] | Any, rule: CitationRule) -> Optional[TurnRow]:
    """The one turn that holds the quote (verbatim, or most of its content words)."""
    low = " ".join(text.lower().split())
    exact = [t for t in turns if low in " ".join(t.content.lower().split())]
    if len(exact) == 1:
        return exact[0]
    words = set(textproc.content_words(text))
    if not words:
        return None
    scored = sorted(
        ((len(words & set(textproc.content_words(t.content))) / len(words), t) for t in turns), key=lambda st: -st[0]
    )
    if scored and scored[0][0] >= rule.min_overlap and (len(scored) == 1 or scored[1][0] < scored[0][0]):
        return scored[0][1]
    return None


_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_PARTIAL = re.compile(r"^\d{4}(?:-\d{2})?$")
_NULLS = {"", "null", "none", "n/a", "unknown", "-"}


def _iso(start: datetime, end: datetime) -> Optional[str]:
    """A period as ISO 8601 at its own precision: a day, a month or a year; else None."""
    span = end - start
    if span <= timedelta(days=1):
        return start.date().isoformat()
    if span <= timedelta(days=7) and start.weekday() == 0:
        year, week, _ = start.isocalendar()
        return f"{year:04d}-W{week:02d}"
    if timedelta(days=27) <= span <= timedelta(days=31) and start.day == 1:
        return f"{start.year:04d}-{start.month:02d}"
    if span <= timedelta(days=366) and start.month == 1 and start.day == 1:
        return f"{start.year:04d}"
    return None


_YEAR = re.compile(r"\b\d{4}\b")


def fact_time(fact: str, said: datetime) -> Optional[tuple[str, str]]:
    """(ISO time, the expression) of a relative time in a statement made at ``said``.

    The query parser reads "in June" as the last June gone by (questions ask about the
    past); a statement may speak of the coming one ("I run the marathon in June", said in
    May). Without a year of its own, the month goes to the year its tense points at (see
    ``_tense``), and with no tense to go by, to the year that brings it nearest to when
    it was said.
    """
    ahead = _future(fact, said)
    if ahead is not None:
        return ahead
    tq = timeparse.parse_query_time(fact, now=said)
    if tq.start is None or tq.end is None or not tq.expression:
        return None
    start, end = tq.start, tq.end
    if not _YEAR.search(tq.expression) and end - start > timedelta(days=1):
        try:
            options = [start.replace(year=said.year + d) for d in (-1, 0, 1)]
        except ValueError:  # 29 February
            options = [start]
        tense = _tense(fact)
        said_month = datetime(said.year, said.month, 1)
        if tense == "future":
            options = [o for o in options if o >= said_month] or options
        elif tense == "past":
            options = [o for o in options if o <= said] or options
        best = min(options, key=lambda o: abs(o - said))
        end, start = end + (best - start), best
    resolved = _iso(start, end)
    return (resolved, tq.expression) if resolved else None


_FUTURE_CUES = re.compile(
    r"\b(?:will|won't|going to|gonna|plan|plans|planning|planned|hope to|hoping to|want to|"
    r"wants to|intend|upcoming|soon|next|'ll)\b|'ll\b",
    re.I,
)
_PAST_CUES = re.compile(
    r"\b(?:was|were|did|had|went|got|came|took|made|saw|met|ran|began|left|"
    r"ago|last|\w{3,}ed)\b",
    re.I,
)


def _tense(fact: str) -> Optional[str]:
    """ "future", "past" or None, from cue words. Plans win over past forms, since a plan
    is often told in them ("I planned to go in October", "we booked it for June")."""
    if _FUTURE_CUES.search(fact):
        return "future"
    if _PAST_CUES.search(fact):
        return "past"
    return None


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_COUNTS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "ten": 10}
_AHEAD = re.compile(
    r"\b(?:(?:next|this coming|coming)\s+(?P<what>" + "|".join(_WEEKDAYS) + r"|week|month|year)"
    r"|(?P<tomorrow>tomorrow)|in\s+(?P<n>\d{1,3}|an?|one|two|three|four|five|six|ten)\s+"
    r"(?P<unit>day|week|month|year)s?(?:'\s*time)?)\b",
    re.I,
)


def _future(fact: str, said: datetime) -> Optional[tuple[str, str]]:
    """Times ahead of the statement, which the query parser (built for the past) leaves out."""
    m = _AHEAD.search(fact)
    if not m:
        return None
    day = datetime(said.year, said.month, said.day)
    what = (m.group("what") or "").lower()
    if m.group("tomorrow"):
        start, end = day + timedelta(days=1), day + timedelta(days=1)
    elif what in _WEEKDAYS:
        ahead = (_WEEKDAYS.index(what) - day.weekday()) % 7 or 7
        start = end = day + timedelta(days=ahead)
    elif what == "week":
        start = day + timedelta(days=7 - day.weekday())
        end = start + timedelta(days=6)
    elif what == "month":
        start = datetime(said.year + said.month // 12, said.month % 12 + 1, 1)
        end = start + timedelta(days=28)
    elif what == "year":
        return f"{said.year + 1:04d}", m.group(0)
    else:
        n = int(m.group("n")) if m.group("n").isdigit() else _COUNTS[m.group("n").lower()]
        unit = m.group("unit").lower()
        days = n * {"day": 1, "week": 7, "month": 30, "year": 365}[unit]
        start = end = day + timedelta(days=days)
        if unit in ("month", "year"):  # "in two months" names a month, not a day
            named = f"{start.year:04d}-{start.month:02d}" if unit == "month" else f"{start.year:04d}"
            return named, m.group(0)
    iso = _iso(start, end)
    return (iso, m.group(0)) if iso else None


def dated_text(fact: str, said: datetime) -> str:
    """The fact with the date its relative time stands for ("... yesterday (2023-05-07)"),
    so a question that names the date finds it; unchanged when it has no such time."""
    found = fact_time(fact, said)
    if found is None or found[0] in fact:
        return fact
    iso, expression = found
    at = fact.find(expression)
    end = at + len(expression)
    return f"{fact[:end]} ({iso}){fact[end:]}" if at >= 0 else f"{fact} ({iso})"


def event_time(
    value: Any, fact: str, turn: TurnRow, counts: RepairCounts, cited: Sequence[TurnRow] = ()
) -> tuple[Optional[str], str]:
    """The time of a fact as an ISO date (or week, month, year) or None, and where it came
    from: "fact", "turn" or "model".

    A relative expression in the fact itself ("yesterday", "next Monday", "in June") is
    resolved against the time of the turn it came from and wins: small models give the
    session's date there, which is the time it was said, not when it happened. When the
    model dropped the expression from the fact and gave that date, the one turn the fact
    cites still has it.
    """
    said = said_at(turn)
    resolved = fact_time(fact, said)
    if resolved is not None:
        counts.add("times_from_fact")
        return resolved[0], "fact"
    from_turn = _turn_time(value, cited)
    if from_turn is not None:
        counts.add("times_from_turn")
        return from_turn, "turn"
    return _given_time(value, said, counts), "model"


def _turn_time(value: Any, cited: Sequence[TurnRow]) -> Optional[str]:
    if len(cited) != 1:
        return None
    said = said_at(cited[0])
    found = fact_time(cited[0].content, said)
    if found is None:
        return None
    # Only a time the model gave as the day it was said: a fact it left undated may well
    # be timeless ("Maya's dog is Biscuit", from "My dog Biscuit turned three today").
    given = str(value).strip() if value is not None else ""
    if not given.startswith(said.date().isoformat()) or found[0] == said.date().isoformat():
        return None
    return found[0]


def _given_time(value: Any, said: datetime, counts: RepairCounts) -> Optional[str]:
    if value is None or (isinstance(value, str) and value.strip().lower() in _NULLS):
        return None
    if not isinstance(value, str):
        counts.add("times_dropped")
        return None
    text = value.strip()
    if _ISO_DAY.match(text) or _ISO_PARTIAL.match(text):
        try:
            timeparse.parse_time(text if _ISO_DAY.match(text) else (text + "-01-01")[:10])
        except ValueError:
            counts.add("times_dropped")
            return None
        counts.add("times_kept")
        return text
    tq = timeparse.parse_query_time(text, now=said)
    if tq.start is not None and tq.end is not None and (resolved := _iso(tq.start, tq.end)):
        counts.add("times_normalised")
        return resolved
    day = _date_of(text)
    if day is not None:
        counts.add("times_normalised")
        return day.isoformat()
    counts.add("times_dropped")
    return None


_FIRST_PERSON = re.compile(r"\b(I|I'm|I've|I'll|I'd|me|my|mine|myself)\b")


def name_speaker(fact: str, cited: Sequence[TurnRow], counts: RepairCounts) -> str:
    """A fact still in the first person gets its speaker's name in front ("Maya: I ...").

    Only when every cited turn has the same speaker; otherwise "I" cannot be told apart
    and the fact is kept as the model wrote it. Rewriting the pronouns themselves would
    need the verbs conjugated again; the prefix keeps the words and adds the name.
    """
    speakers = {t.speaker for t in cited}
    if len(speakers) != 1 or not _FIRST_PERSON.search(fact):
        return fact
    name = next(iter(speakers))
    if not name or fact.lower().startswith(name.lower()):
        return fact
    counts.add("names_restored")
    return f"{name}: {fact}"
