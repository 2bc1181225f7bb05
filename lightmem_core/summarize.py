"""Summaries: many entries of one period consolidated into one entry.

StructMem's cross-event consolidation: events extracted batch by batch are merged
per session (or day, week, month) into a summary that hierarchical retrieval can rank
before drilling into the entries. Offline, the summary is extractive: the entries
that share the most content words with the rest of their period.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from . import textproc
from .extract import entry_id
from .prompts import Prompts, memory_lines
from .types import EntryType, MemoryEntry, Scope, repair_text

MAX_SUMMARY_SOURCES = 500


def window_key(entry: MemoryEntry, window: str) -> str:
    ts = entry.time_stamp or entry.recorded_at
    if window == "session":
        return entry.session_id or ts.strftime("%Y-%m-%d")
    if window == "day":
        return ts.strftime("%Y-%m-%d")
    if window == "week":
        year, week, _ = ts.isocalendar()
        return f"{year}-W{week:02d}"
    return ts.strftime("%Y-%m")


def group_entries(entries: Sequence[MemoryEntry], window: str) -> dict[str, list[MemoryEntry]]:
    groups: dict[str, list[MemoryEntry]] = {}
    for e in entries:
        if e.entry_type != EntryType.SUMMARY:
            groups.setdefault(window_key(e, window), []).append(e)
    return groups


def summary_messages(prompts: Prompts, group: Sequence[MemoryEntry]) -> list[dict[str, str]]:
    items = [(e.time_stamp.strftime("%Y-%m-%d") if e.time_stamp else "?", e.memory) for e in group]
    return [
        {"role": "system", "content": prompts.system(prompts.summary)},
        {"role": "user", "content": "Memories (data):\n" + memory_lines(items)},
    ]


def extractive_summary(group: Sequence[MemoryEntry], max_items: int = 5) -> str:
    """The most central entries of the period, in time order."""
    bags = [set(textproc.content_words(e.memory)) for e in group]
    df = Counter(w for bag in bags for w in bag)
    scored = sorted(range(len(group)), key=lambda i: -sum(df[w] - 1 for w in bags[i]) / (1 + len(bags[i])) ** 0.5)
    keep = sorted(scored[:max_items])
    return " ".join(group[i].memory.rstrip(".") + "." for i in keep)


def summary_entry(scope: Scope, window: str, key: str, group: Sequence[MemoryEntry], text: str) -> MemoryEntry:
    # A model's summary may hold what cannot be stored; with nothing left, the extractive one stands in.
    text = " ".join(repair_text(text).split()) or extractive_summary(group)
    times = [e.time_stamp for e in group if e.time_stamp]
    start, end = (min(times), max(times)) if times else (None, None)
    sources = list(dict.fromkeys(s for e in group for s in e.source_ids))[:MAX_SUMMARY_SOURCES]
    session = key if window == "session" and any(e.session_id == key for e in group) else scope.session_id
    return MemoryEntry(
        id=entry_id(scope.user_id, scope.agent_id or "", scope.session_id or "", "summary", window, key),
        memory=text,
        time_stamp=start,
        valid_from=start,
        entities=list(dict.fromkeys(x for e in group for x in e.entities))[:30],
        keywords=textproc.keywords(text, limit=12),
        source_ids=sources,
        entry_type=EntryType.SUMMARY,
        user_id=scope.user_id,
        agent_id=scope.agent_id,
        session_id=session,
        metadata={
            "window": window,
            "period": key,
            "period_start": start.isoformat() if start else None,
            "period_end": end.isoformat() if end else None,
            "entry_ids": [e.id for e in group][:MAX_SUMMARY_SOURCES],
            "entry_count": len(group),
        },
    )
