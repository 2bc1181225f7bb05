"""Time stamps in: the formats users actually send, normalised to one representation.

Conversation logs carry wall-clock times without a zone (LoCoMo, upstream LightMem),
so the library keeps *naive* datetimes and treats them as UTC wall time when it needs
a number for range filters. Zone-aware input is converted to UTC first, so mixing the
two never shifts an entry by the local offset of the machine running the code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from dateutil import parser as _dateparser

from .cues import en

# The weekday as upstream LightMem writes it in a time stamp ("Sat")
WEEKDAYS = tuple(d[:3].title() for d in en.WEEKDAYS)

# Upstream LightMem writes "2023/05/20 (Sat) 00:44"; the weekday is redundant and
# confuses dateutil, so it is dropped before parsing.
_WEEKDAY_PAREN = re.compile(rf"\(\s*({'|'.join(d[:3] for d in en.WEEKDAYS)})[a-z]*\.?\s*\)", re.I)


def parse_time(value: Any) -> datetime:
    """Parse a time stamp; raise ``ValueError`` with the reason when it cannot be read."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, bool):
        raise ValueError("a boolean is not a time stamp")
    elif isinstance(value, (int, float)):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("not a finite number")
        # Heuristic shared by most APIs: values this large are milliseconds.
        seconds = value / 1000.0 if abs(value) > 1e11 else float(value)
        try:
            dt = datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError(f"epoch {value!r} is out of range") from exc
    elif isinstance(value, str):
        dt = _parse_string(value)
    else:
        raise ValueError(f"expected a datetime, ISO string or epoch number, got {type(value).__name__}")
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt


def _parse_string(text: str) -> datetime:
    s = text.strip()
    if not s:
        raise ValueError("empty time stamp")
    if len(s) > 64:
        raise ValueError("time stamp longer than 64 characters")
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        pass
    m = en.LOCOMO_STAMP.match(s)
    if m:
        s = f"{m.group(2)} {m.group(1)}"
    s = _WEEKDAY_PAREN.sub(" ", s)
    try:
        return _dateparser.parse(s, fuzzy=False)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"cannot read {text!r} as a time stamp") from exc


def to_epoch(dt: datetime) -> float:
    """Seconds since 1970 of a naive (UTC wall time) datetime."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).replace(tzinfo=None)


def weekday(dt: datetime) -> str:
    return WEEKDAYS[dt.weekday()]


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def format_time(dt: datetime | None) -> str:
    """The prompt form used by upstream LightMem: date and minutes, no seconds."""
    return "" if dt is None else dt.strftime("%Y-%m-%d %H:%M")


# --- time expressions in queries ---------------------------------------------------------
# A question such as "what did I cook last week?" names a period, not a time stamp. The
# parser below resolves the common English forms against a reference time ("now") into
# a range; "before/after <event>" is left as an anchor for retrieval to date from the
# stored entries. Rule-based on purpose: deterministic, offline, and explainable.

# The words and patterns are English cues (cues.en: MONTHS, TIME_EXPRESSIONS, ...); what
# they capture is resolved here. The unit names compared below ("week", "weekend",
# "month", "year") are the symbols the patterns' ``unit`` group stands for.
_MONTHS = {m[:3]: i for i, m in enumerate(en.MONTHS, 1)}
_TICK = timedelta(microseconds=1)
_DAY_NAMES = {d: i for i, d in enumerate(en.WEEKDAYS)}
_NUMBER_WORDS = {**en.NUMBER_WORDS, **en.VAGUE_COUNTS}


@dataclass(frozen=True)
class TimeQuery:
    """What a query says about time.

    ``start``/``end`` bound the period the question is about (either may be open);
    ``anchor`` is an event the period is relative to ("the trip to Paris"), with
    ``relation`` "before", "after" or "during"; ``recency`` marks questions that say they
    are about the present ("where do I live now?"), ``present`` also those asked in the
    present tense ("where does she live?"); ``text`` is the query without the time
    expression, for lexical matching.
    """

    text: str
    start: datetime | None = None
    end: datetime | None = None
    anchor: str | None = None
    relation: str | None = None
    recency: bool = False
    expression: str | None = None
    kind: str | None = None  # the rule that matched: "month_day_year", "relative", "past_n", ...

    @property
    def present(self) -> bool:
        # "Where does the user live?" asks for the current state even without "now"
        return self.recency or bool(en.PRESENT_TENSE.search(self.text) and not en.PAST_TENSE.search(self.text))

    @property
    def has_range(self) -> bool:
        return self.start is not None or self.end is not None


def _day(dt: datetime) -> datetime:
    return datetime(dt.year, dt.month, dt.day)


def _whole_day(d: datetime) -> tuple[datetime, datetime]:
    return d, d + timedelta(days=1) - _TICK


def _month_range(year: int, month: int) -> tuple[datetime, datetime]:
    start = datetime(year, month, 1)
    nxt = datetime(year + (month == 12), month % 12 + 1, 1)
    return start, nxt - _TICK


def _month(name: str) -> int:
    return _MONTHS[name.lower()[:3]]


def _number(word: str) -> int | None:
    word = word.lower().strip()
    if word.isdigit():
        return int(word)
    return _NUMBER_WORDS.get(word)


def _year_of(month: int, day: int | None, now: datetime) -> int:
    """A month named without a year is the latest one not after ``now``."""
    probe = datetime(now.year, month, min(day or 1, 28))
    return now.year if probe <= now else now.year - 1


def _part(start: datetime, end: datetime, part: str | None) -> tuple[datetime, datetime]:
    if not part:
        return start, end
    third = (end - start) / 3
    i = en.PART_OF_PERIOD[part.lower()]
    return start + third * i, start + third * (i + 1)


def _resolve(kind: str, m: re.Match[str], now: datetime) -> tuple[datetime, datetime] | None:
    g = m.groupdict()
    today = _day(now)
    try:
        if kind == "iso_date":
            d = datetime(int(g["y"]), int(g["m"]), int(g["d"]))
            return _whole_day(d)
        if kind in ("day_month_year", "month_day_year"):
            d = datetime(int(g["y"]), _month(g["month"]), int(g["d"]))
            return _whole_day(d)
        if kind in ("day_month", "month_day"):
            month = _month(g["month"])
            day = int(g["d"])
            d = datetime(_year_of(month, day, now), month, day)
            return _whole_day(d)
        if kind == "month_year":
            return _part(*_month_range(int(g["y"]), _month(g["month"])), g.get("part"))
        if kind == "month":
            month = _month(g["month"])
            return _part(*_month_range(_year_of(month, None, now), month), g.get("part"))
        if kind == "year":
            y = int(g["y"])
            return _part(datetime(y, 1, 1), datetime(y + 1, 1, 1) - _TICK, g.get("part"))
    except (ValueError, KeyError):
        return None
    if kind == "ago":
        n = _number(re.sub(r"\s+", " ", g["n"]))
        if n is None:
            return None
        days = n * en.DAYS_PER_UNIT[g["unit"].lower()]
        centre = today - timedelta(days=days)
        slack = timedelta(days=max(1.0, days * 0.25))
        return centre - slack, centre + slack + timedelta(days=1) - _TICK
    if kind == "past_n":
        n = _number(re.sub(r"\s+", " ", g["n"]))
        if n is None:
            return None
        return today - timedelta(days=n * en.DAYS_PER_UNIT[g["unit"].lower()]), now
    if kind == "relative":
        which, unit = g["which"].lower(), g["unit"].lower()
        back = which in en.BACKWARD
        if which in en.FORWARD:
            return None  # memory is about the past; a future period has no entries to find
        if unit == "week":
            monday = today - timedelta(days=today.weekday())
            start = monday - timedelta(days=7) if back else monday
            return start, start + timedelta(days=7) - _TICK
        if unit == "weekend":
            saturday = today - timedelta(days=(today.weekday() - 5) % 7)
            if back and saturday + timedelta(days=2) > now:
                saturday -= timedelta(days=7)
            return saturday, saturday + timedelta(days=2) - _TICK
        if unit == "month":
            y, mo = (now.year, now.month)
            if back:
                y, mo = (y - 1, 12) if mo == 1 else (y, mo - 1)
            return _month_range(y, mo)
        if unit == "year":
            y = now.year - 1 if back else now.year
            return datetime(y, 1, 1), datetime(y + 1, 1, 1) - _TICK
        first, last = en.SEASONS[unit]
        y = now.year
        start = datetime(y if first != 12 else y - 1, first, 1)
        if back or start > now:
            start = start.replace(year=start.year - 1)
        end_month_year = start.year + (1 if first == 12 else 0)
        return start, _month_range(end_month_year, last)[1]
    if kind == "weekday":
        wd = _DAY_NAMES[g["wd"].lower()]
        delta = (today.weekday() - wd) % 7
        if delta == 0 and (g.get("which") or "").lower() in en.BACKWARD:
            delta = 7
        d = today - timedelta(days=delta)
        return _whole_day(d)
    if kind == "named_day":
        which = g["which"].lower()
        days_back = en.DAYS_BACK.get(which, 0)
        d = today - timedelta(days=days_back)
        return _whole_day(d)
    return None


def parse_query_time(query: str, now: datetime | None = None) -> TimeQuery:
    """Find the period a question is about, relative to ``now`` (default: the clock).

    The first time expression wins; "before"/"after"/"since" in front of it open the
    range on one side. "before the trip to Paris" has no date of its own: it comes back
    as an anchor for the caller to date from memory.
    """
    now = now or utcnow()
    recency = bool(en.RECENCY.search(query))
    for kind, pattern in en.TIME_EXPRESSIONS:
        m = pattern.search(query)
        if not m:
            continue
        span = _resolve(kind, m, now)
        if span is None:
            continue
        lo, hi = span
        start: datetime | None = lo
        end: datetime | None = hi
        lead = query[max(0, m.start() - 12) : m.start()].lower()
        own = m.group(0).lower()
        if en.ENDS_BEFORE.search(lead):
            start, end = None, lo - _TICK
        elif en.ENDS_WITH.search(lead) or own.startswith(en.OWN_ENDS_WITH):
            start = None
        elif en.STARTS_AFTER.search(lead):
            start, end = hi + _TICK, None
        elif en.STARTS_WITH.search(lead) or own.startswith(en.OWN_STARTS_WITH):
            end = None
        text = (query[: m.start()] + " " + query[m.end() :]).strip()
        return TimeQuery(
            re.sub(r"\s+", " ", text) or query,
            start=start,
            end=end,
            recency=recency and kind != "named_day",
            expression=m.group(0).strip(),
            kind=kind,
        )
    a = en.EVENT_ANCHOR.search(query)
    if a:
        relation = en.ANCHOR_RELATION.get(a.group("rel").lower(), "after")
        return TimeQuery(
            query, anchor=a.group("event").strip(), relation=relation, recency=recency, expression=a.group(0).strip()
        )
    return TimeQuery(query, recency=recency)
