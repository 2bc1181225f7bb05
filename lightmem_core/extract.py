"""Extraction: turns in, structured memory entries out.

The extractive extractor needs no model: each turn becomes sentence-level entries
carrying speaker, time, entities, keywords and the ids of the turns they came from.
Entry ids are derived from (user, turn id, position), so extracting the same turns
again after a crash rewrites the same entries instead of adding copies.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Optional, Protocol, Sequence

from . import textproc
from .journal import TurnRow
from .types import EntryType, MemoryEntry

_NS = uuid.UUID("6c1f8a52-3e0b-4d0a-9d0e-5b8f4c3a2e71")


def entry_id(user_id: str, *parts: object) -> str:
    return str(uuid.uuid5(_NS, "\x1f".join([user_id, *map(str, parts)])))


@dataclass
class ExtractionBatch:
    """Turns to extract from, plus the turn before them for context."""

    turns: Sequence[TurnRow]
    previous: Optional[TurnRow] = None
    use_roles: frozenset[str] = field(default_factory=lambda: frozenset({"user", "assistant"}))
    index_context: str = "neighbors"


class Extractor(Protocol):
    def extract(self, batch: ExtractionBatch) -> list[MemoryEntry]: ...


def _speaker_line(turn: TurnRow) -> str:
    return f"{turn.speaker}: {turn.content}"


class ExtractiveExtractor:
    """Offline default: sentence-level entries, no LLM."""

    def __init__(self, *, min_words: int = 5) -> None:
        self.min_words = min_words

    def extract(self, batch: ExtractionBatch) -> list[MemoryEntry]:
        out: list[MemoryEntry] = []
        previous = batch.previous
        for turn in batch.turns:
            if turn.role in batch.use_roles:
                out.extend(self._turn_entries(turn, previous, batch.index_context))
            previous = turn
        return out

    def _turn_entries(self, turn: TurnRow, previous: Optional[TurnRow], mode: str) -> list[MemoryEntry]:
        chunks = textproc.chunk_sentences(turn.content, min_words=self.min_words) or [turn.content.strip()]
        context_parts: list[str] = []
        if mode == "neighbors" and previous is not None:
            context_parts.append(_speaker_line(previous))
        if mode in ("turn", "neighbors") and len(chunks) > 1:
            context_parts.append(_speaker_line(turn))
        context = "\n".join(context_parts) or None
        ts = turn.time_stamp or turn.accepted_at
        entries = []
        for k, chunk in enumerate(chunks):
            entries.append(
                MemoryEntry(
                    id=entry_id(turn.user_id, turn.id, k),
                    memory=f"{turn.speaker}: {chunk}",
                    speaker_id=turn.speaker_id or turn.role,
                    speaker_name=turn.speaker_name,
                    time_stamp=ts,
                    valid_from=ts,
                    entities=textproc.entities(chunk),
                    keywords=textproc.keywords(chunk),
                    source_ids=[turn.id],
                    entry_type=EntryType.FACT,
                    user_id=turn.user_id,
                    agent_id=turn.agent_id,
                    session_id=turn.session_id,
                    context=context,
                    metadata={**turn.metadata, "role": turn.role} if turn.metadata else {"role": turn.role},
                )
            )
        return entries
