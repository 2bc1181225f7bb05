"""User filters (mem0's spelling: fields, operators, AND/OR/NOT) as store filters.

Every rejection names the offending path (``filters.time_stamp.gte``) so a caller can
fix its request; nothing here touches the store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Optional

from .. import timeparse
from ..errors import InvalidInputError
from ..store.base import Condition, Filter, Match, Range

_TIME_FIELDS = {"time_stamp": "_ts", "recorded_at": "_rec"}
_KEYWORD_FIELDS = {
    "speaker_id",
    "speaker_name",
    "entry_type",
    "session_id",
    "agent_id",
    "topic_label",
    "entities",
    "keywords",
    "source_ids",
    "id",
}
_NUMBER_FIELDS = {"topic_id", "version"}
_RANGE_OPS = {"gt", "gte", "lt", "lte"}
_ALL_OPS = _RANGE_OPS | {"eq", "ne", "in", "nin"}
FILTER_FIELDS = sorted([*_TIME_FIELDS, *_KEYWORD_FIELDS, *_NUMBER_FIELDS, "metadata"])
LOGICAL = ("AND", "OR", "NOT")  # mem0's spelling: lists of filter dicts combined


def _scalar(value: Any, field: str) -> Any:
    if isinstance(value, bool):
        # qdrant-edge 0.9 never matches booleans; an error beats a silently empty result.
        raise InvalidInputError(field, "boolean values cannot be filtered on; store them as strings or 0/1")
    if isinstance(value, (str, int)):
        return value
    if hasattr(value, "value") and isinstance(value.value, str):  # enums such as EntryType
        return value.value
    raise InvalidInputError(field, f"expected a string, integer or boolean, got {type(value).__name__}")


def _convert(value: Any, field: str, kind: str) -> Any:
    if kind == "metadata":  # a metadata value: text or a number
        if isinstance(value, float):
            return value
        return _scalar(value, field)
    if kind == "time":
        try:
            return timeparse.to_epoch(timeparse.parse_time(value))
        except ValueError as exc:
            raise InvalidInputError(field, str(exc)) from None
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInputError(field, f"expected a number, got {type(value).__name__}")
        return value
    return _scalar(value, field)


def _field_conditions(key: str, spec: Any, field: str, kind: str) -> tuple[list[Condition], list[Condition]]:
    """Conditions for one filter field; returns (must, must_not)."""
    must: list[Condition] = []
    must_not: list[Condition] = []
    if isinstance(spec, Mapping):
        if not spec:
            raise InvalidInputError(field, "empty operator dict")
        for op, value in spec.items():
            path = f"{field}.{op}"
            if op not in _ALL_OPS:
                raise InvalidInputError(path, f"unknown operator; expected one of {sorted(_ALL_OPS)}")
            if op in _RANGE_OPS:
                if kind == "keyword" or (
                    kind == "metadata" and (isinstance(value, bool) or not isinstance(value, (int, float)))
                ):
                    raise InvalidInputError(path, "range operators need a time or number field (or a number)")
                must.append(Range(key, **{op: float(_convert(value, path, kind))}))
            elif op in ("in", "nin"):
                if not isinstance(value, (list, tuple)) or not value:
                    raise InvalidInputError(path, "expected a non-empty list")
                vals = tuple(_convert(v, f"{path}[{i}]", kind) for i, v in enumerate(value))
                if kind == "time" or any(isinstance(v, float) for v in vals):
                    conds: list[Condition] = [Range(key, gte=v, lte=v) for v in vals]
                    (must if op == "in" else must_not).append(Filter(should=tuple(conds)))
                else:
                    (must if op == "in" else must_not).append(Match(key, any=vals))
            else:
                target = must if op == "eq" else must_not
                v = _convert(value, path, kind)
                # equal times and fractional numbers as a one-point range; text and integers as a match
                target.append(Range(key, gte=v, lte=v) if kind == "time" or isinstance(v, float) else Match(key, v))
    elif isinstance(spec, (list, tuple)):
        if not spec:
            raise InvalidInputError(field, "expected a non-empty list")
        return _field_conditions(key, {"in": list(spec)}, field, kind)
    else:
        return _field_conditions(key, {"eq": spec}, field, kind)
    return must, must_not


def parse_filters(filters: Optional[Mapping[str, Any]], *, field: str = "filters") -> Optional[Filter]:
    """Turn ``{"time_stamp": {"gte": ...}, "speaker_name": "Maya", "metadata": {...}}`` into a store filter."""
    if filters is None:
        return None
    if not isinstance(filters, Mapping):
        raise InvalidInputError(field, f"expected a dict, got {type(filters).__name__}")
    must: list[Condition] = []
    must_not: list[Condition] = []
    for name, spec in filters.items():
        path = f"{field}.{name}"
        if not isinstance(name, str):
            raise InvalidInputError(field, f"filter keys must be strings, got {name!r}")
        if name == "metadata":
            if not isinstance(spec, Mapping) or not spec:
                raise InvalidInputError(path, "expected a non-empty dict of metadata keys")
            for mk, mv in spec.items():
                m, n = _field_conditions(f"metadata.{mk}", mv, f"{path}.{mk}", "metadata")
                must += m
                must_not += n
            continue
        if name in LOGICAL:
            parts = [spec] if name == "NOT" and isinstance(spec, Mapping) else spec
            if not isinstance(parts, (list, tuple)) or not parts:
                raise InvalidInputError(path, "expected a non-empty list of filter dicts")
            parsed = [parse_filters(p, field=f"{path}[{i}]") for i, p in enumerate(parts)]
            subs: list[Condition] = [f for f in parsed if f is not None]
            if name == "AND":
                must += subs
            elif name == "OR":
                must.append(Filter(should=tuple(subs)))
            else:  # none of them may hold
                must_not += subs
            continue
        if name.startswith("metadata."):
            key, kind = name, "metadata"
        elif name in _TIME_FIELDS:
            key, kind = _TIME_FIELDS[name], "time"
        elif name in _KEYWORD_FIELDS:
            key, kind = name, "keyword"
        elif name in _NUMBER_FIELDS:
            key, kind = name, "number"
        elif name == "user_id":
            raise InvalidInputError(path, "the user is chosen by the user_id argument, not by a filter")
        else:
            raise InvalidInputError(
                path, f"unknown filter field; expected one of {FILTER_FIELDS}, 'metadata.<key>' or {list(LOGICAL)}"
            )
        m, n = _field_conditions(key, spec, path, kind)
        must += m
        must_not += n
    if not must and not must_not:
        return None
    return Filter(must=tuple(must), must_not=tuple(must_not))


def reads_summaries(filters: Optional[Mapping[str, Any]]) -> bool:
    """``entry_type="summary"`` reads the summaries' own collection, not the entries'."""
    kind = filters.get("entry_type") if isinstance(filters, Mapping) else None
    return getattr(kind, "value", kind) == "summary"


def time_filter(start: Optional[datetime], end: Optional[datetime]) -> Optional[Filter]:
    """Entries whose event time falls in the period (either end may be open)."""
    if start is None and end is None:
        return None
    bounds = {}
    if start is not None:
        bounds["gte"] = timeparse.to_epoch(start)
    if end is not None:
        bounds["lte"] = timeparse.to_epoch(end)
    return Filter(must=(Range("_ts", **bounds),))
