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

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# Upstream LightMem writes "2023/05/20 (Sat) 00:44"; the weekday is redundant and
# confuses dateutil, so it is dropped before parsing.
_WEEKDAY_PAREN = re.compile(r"\(\s*(mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?\s*\)", re.I)
# LoCoMo writes "1:56 pm on 8 May, 2023".
_LOCOMO = re.compile(r"^\s*(\d{1,2}:\d{2}\s*[ap]\.?m\.?)\s+on\s+(.+)$", re.I)


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
    m = _LOCOMO.match(s)
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

_MONTHS = {
    m[:3]: i
    for i, m in enumerate(
        (
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ),
        1,
    )
}
_MONTH_RE = (
    r"(?P<month>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_TICK = timedelta(microseconds=1)
_DAY_NAMES = {
    d: i for i, d in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))
}
_NUMBER_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "few": 3,
    "couple of": 2,
    "a couple of": 2,
    "a few": 3,
}
_UNIT_DAYS = {"day": 1, "week": 7, "month": 30.44, "year": 365.25}
_RECENCY = re.compile(
    r"\b(now|currently|current|these days|nowadays|at the moment|anymore|still|latest|most recent(?:ly)?|"
    r"recently|lately|today|at present|presently|at this point|as of now)\b",
    re.I,
)


_PRESENT = re.compile(r"^\s*(?:\w+\s+){0,4}?(?:do|does|is|are|am)\b(?!\s+\w+\s+(?:ever|been)\b)", re.I)
_PAST = re.compile(r"\b(did|was|were|had|used to|ago|last|before|previous(?:ly)?|first|ever)\b", re.I)


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

    @property
    def present(self) -> bool:
        # "Where does the user live?" asks for the current state even without "now"
        return self.recency or bool(_PRESENT.search(self.text) and not _PAST.search(self.text))

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


_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("iso_date", re.compile(r"\b(?:on\s+)?(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})\b", re.I)),
    (
        "day_month_year",
        re.compile(
            rf"\b(?:on\s+)?(?:the\s+)?(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?:\s+of)?\s+{_MONTH_RE}\.?,?\s+(?P<y>\d{{4}})\b",
            re.I,
        ),
    ),
    (
        "month_day_year",
        re.compile(rf"\b(?:on\s+)?{_MONTH_RE}\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y>\d{{4}})\b", re.I),
    ),
    (
        "month_year",
        re.compile(
            rf"\b(?:(?:in|during|around|by)\s+)?(?:(?P<part>early|mid|late)[\s-]+)?{_MONTH_RE}\.?,?\s+(?:of\s+)?(?P<y>\d{{4}})\b",
            re.I,
        ),
    ),
    (
        "day_month",
        re.compile(rf"\b(?:on\s+)?(?:the\s+)?(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?:\s+of)?\s+{_MONTH_RE}\b", re.I),
    ),
    ("month_day", re.compile(rf"\b(?:on\s+)?{_MONTH_RE}\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\b(?!\s*(?::|am|pm))", re.I)),
    (
        "month",
        re.compile(rf"\b(?:in|during|since|by)\s+(?:(?P<part>early|mid|late)[\s-]+)?{_MONTH_RE}\b(?!\s+\d)", re.I),
    ),
    (
        "year",
        re.compile(r"\b(?:in|during|since|by)\s+(?:(?P<part>early|mid|late)[\s-]+)?(?P<y>(?:19|20)\d{2})\b", re.I),
    ),
    (
        "ago",
        re.compile(
            r"\b(?P<n>\d+|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|(?:a\s+)?few|(?:a\s+)?couple\s+of)\s+(?P<unit>day|week|month|year)s?\s+ago\b",
            re.I,
        ),
    ),
    (
        "relative",
        re.compile(
            r"\b(?P<which>last|this|past|previous|next)\s+(?P<unit>week(?:end)?|month|year|summer|winter|spring|fall|autumn)\b",
            re.I,
        ),
    ),
    (
        "past_n",
        re.compile(
            r"\b(?:in\s+|over\s+|during\s+)?the\s+(?:last|past)\s+(?P<n>\d+|two|three|four|five|six|seven|eight|nine|ten|few|couple\s+of)\s+(?P<unit>day|week|month|year)s\b",
            re.I,
        ),
    ),
    (
        "weekday",
        re.compile(
            r"\b(?:(?P<which>last|this|on)\s+)(?P<wd>monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b", re.I
        ),
    ),
    (
        "named_day",
        re.compile(
            r"\b(?P<which>yesterday|today|tonight|this morning|this afternoon|this evening|the day before yesterday)\b",
            re.I,
        ),
    ),
]
_SEASONS = {"spring": (3, 5), "summer": (6, 8), "fall": (9, 11), "autumn": (9, 11), "winter": (12, 2)}
_ANCHOR = re.compile(
    r"\b(?P<rel>before|after|since|prior to|following|during|while)\s+"
    r"(?P<event>(?:the|my|our|his|her|their|your|a|an)\s+[^?.!,;]{2,60}?)"
    r"(?=\s*(?:[?.!,;]|$|\b(?:and|but|when|did|was|were)\b))",
    re.I,
)


def _part(start: datetime, end: datetime, part: str | None) -> tuple[datetime, datetime]:
    if not part:
        return start, end
    third = (end - start) / 3
    i = {"early": 0, "mid": 1, "late": 2}[part.lower()]
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
        days = n * _UNIT_DAYS[g["unit"].lower()]
        centre = today - timedelta(days=days)
        slack = timedelta(days=max(1.0, days * 0.25))
        return centre - slack, centre + slack + timedelta(days=1) - _TICK
    if kind == "past_n":
        n = _number(re.sub(r"\s+", " ", g["n"]))
        if n is None:
            return None
        return today - timedelta(days=n * _UNIT_DAYS[g["unit"].lower()]), now
    if kind == "relative":
        which, unit = g["which"].lower(), g["unit"].lower()
        back = which in ("last", "past", "previous")
        if which == "next":
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
        first, last = _SEASONS[unit]
        y = now.year
        start = datetime(y if first != 12 else y - 1, first, 1)
        if back or start > now:
            start = start.replace(year=start.year - 1)
        end_month_year = start.year + (1 if first == 12 else 0)
        return start, _month_range(end_month_year, last)[1]
    if kind == "weekday":
        wd = _DAY_NAMES[g["wd"].lower()]
        delta = (today.weekday() - wd) % 7
        if delta == 0 and (g.get("which") or "").lower() == "last":
            delta = 7
        d = today - timedelta(days=delta)
        return _whole_day(d)
    if kind == "named_day":
        which = g["which"].lower()
        days_back = 2 if which == "the day before yesterday" else 1 if which == "yesterday" else 0
        d = today - timedelta(days=days_back)
        return _whole_day(d)
    return None


def period_around(when: datetime, relation: str | None) -> tuple[datetime | None, datetime | None]:
    """The period "before", "after" or "during" (the day before to the day after) an event."""
    day = _day(when)
    if relation == "before":
        return None, day - _TICK
    if relation == "after":
        return day + timedelta(days=1), None
    return day - timedelta(days=1), day + timedelta(days=2)


def parse_query_time(query: str, now: datetime | None = None) -> TimeQuery:
    """Find the period a question is about, relative to ``now`` (default: the clock).

    The first time expression wins; "before"/"after"/"since" in front of it open the
    range on one side. "before the trip to Paris" has no date of its own: it comes back
    as an anchor for the caller to date from memory.
    """
    now = now or utcnow()
    recency = bool(_RECENCY.search(query))
    for kind, pattern in _PATTERNS:
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
        if re.search(r"\b(before|prior to)\s*$", lead):
            start, end = None, lo - _TICK
        elif re.search(r"\b(until|till|by)\s*$", lead) or own.startswith("by "):
            start = None
        elif re.search(r"\b(after|following)\s*$", lead):
            start, end = hi + _TICK, None
        elif re.search(r"\bsince\s*$", lead) or own.startswith("since "):
            end = None
        text = (query[: m.start()] + " " + query[m.end() :]).strip()
        return TimeQuery(
            re.sub(r"\s+", " ", text) or query,
            start=start,
            end=end,
            recency=recency and kind != "named_day",
            expression=m.group(0).strip(),
        )
    a = _ANCHOR.search(query)
    if a:
        rel = a.group("rel").lower()
        relation = "before" if rel in ("before", "prior to") else "during" if rel in ("during", "while") else "after"
        return TimeQuery(
            query, anchor=a.group("event").strip(), relation=relation, recency=recency, expression=a.group(0).strip()
        )
    return TimeQuery(query, recency=recency)
