"""Time stamps in: the formats users actually send, normalised to one representation.

Conversation logs carry wall-clock times without a zone (LoCoMo, upstream LightMem),
so the library keeps *naive* datetimes and treats them as UTC wall time when it needs
a number for range filters. Zone-aware input is converted to UTC first, so mixing the
two never shifts an entry by the local offset of the machine running the code.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
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
