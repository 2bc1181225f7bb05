"""Extraction: a batch of turns in, structured memory entries out.

Three extractors share one interface (a generator yielding the LLM calls it needs,
see ``drive``): offline extractive (no model), LLM flat facts, and LLM events
(StructMem: facts and relations bound to an event). Provenance is strict: an LLM may
only cite turn ids that were in its batch; invented ids are dropped, never stored.
Entry ids derive from the batch's turn ids, so re-extracting the same batch after a
crash rewrites entries rather than adding copies.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional, Protocol, Sequence

from . import repairs, textproc, timeparse
from .drive import Op
from .errors import AnswerTruncatedError
from .journal import TurnRow
from .llm.jsonparse import complete_items
from .prompts import Prompts, conversation_block, time_line, turn_line
from .types import EntryType, MemoryEntry, repair_text

log = logging.getLogger(__name__)

_HEADER_GAP_S = 3600  # turns within an hour of the last time line share it
_NS = uuid.UUID("6c1f8a52-3e0b-4d0a-9d0e-5b8f4c3a2e71")


def entry_id(user_id: str, *parts: object) -> str:
    return str(uuid.uuid5(_NS, "\x1f".join([user_id, *map(str, parts)])))


@dataclass
class ExtractionBatch:
    """Turns to extract from (one or more closed topic segments), plus the turn before them."""

    turns: Sequence[TurnRow]
    previous: Optional[TurnRow] = None
    use_roles: frozenset[str] = field(default_factory=lambda: frozenset({"user", "assistant"}))
    index_context: str = "neighbors"
    # set by an extractor that read only the head of the batch (an answer cut at
    # max_tokens): these turns are not done, and the caller asks for them again
    unread: list[TurnRow] = field(default_factory=list)

    def text(self, turn: TurnRow) -> str:
        """What the extractor reads: the compressed text when pre-compression ran."""
        return turn.compressed or turn.content


class Extractor(Protocol):
    def extract(self, batch: ExtractionBatch) -> Op[list[MemoryEntry]]: ...


def _speaker_line(turn: TurnRow) -> str:
    return f"{turn.speaker}: {turn.content}"


_time = repairs.said_at


class ExtractiveExtractor:
    """Offline default, no LLM: one entry per sentence of a turn, or per whole turn.

    Sentences keep facts atomic, so a newer statement supersedes only the sentence it
    contradicts; whole turns keep a fact with the sentence that names it ("Commuting from
    Hoboken, is the PATH reliable? I miss Brooklyn." shows both), at the cost of
    superseding a turn as a whole.
    """

    def __init__(self, *, min_words: int = 5, unit: str = "sentence") -> None:
        self.min_words = min_words
        self.unit = unit

    def extract(self, batch: ExtractionBatch) -> Op[list[MemoryEntry]]:
        out: list[MemoryEntry] = []
        previous = batch.previous
        for turn in batch.turns:
            if turn.role in batch.use_roles:
                out.extend(self._turn_entries(turn, previous, batch))
            previous = turn
        return out
        yield  # a generator with no LLM calls

    def _turn_entries(self, turn: TurnRow, previous: Optional[TurnRow], batch: ExtractionBatch) -> list[MemoryEntry]:
        text = batch.text(turn)
        chunks = [] if self.unit == "turn" else textproc.chunk_sentences(text, min_words=self.min_words)
        chunks = chunks or [text.strip()]
        context_parts: list[str] = []
        if batch.index_context == "neighbors" and previous is not None and previous.speaker != turn.speaker:
            # a reply needs what it answers; a speaker's own previous turn is just another
            # statement, and blending it in made "flying to Lisbon" answer "where does she work?"
            context_parts.append(_speaker_line(previous))
        if batch.index_context in ("turn", "neighbors") and (len(chunks) > 1 or turn.compressed):
            context_parts.append(_speaker_line(turn))
        context = "\n".join(context_parts) or None
        ts = _time(turn)
        return [
            MemoryEntry(
                id=entry_id(turn.user_id, turn.id, k),
                memory=f"{turn.speaker}: {chunk}",
                speaker_id=turn.speaker_id or turn.role,
                speaker_name=turn.speaker_name,
                time_stamp=ts,
                valid_from=ts,
                topic_id=turn.topic_id,
                entities=textproc.entities(chunk),
                keywords=textproc.keywords(chunk),
                source_ids=[turn.id],
                position=k if len(chunks) > 1 else None,  # a turn of one piece has no window to show
                entry_type=EntryType.FACT,
                user_id=turn.user_id,
                agent_id=turn.agent_id,
                session_id=turn.session_id,
                context=context,
                metadata={**turn.metadata, "role": turn.role},
            )
            for k, chunk in enumerate(chunks)
        ]


class VerbatimExtractor:
    """``add_memory(..., infer=False)``: each message stored as one entry, word for word.

    For callers that already hold the memory they want kept (a LangGraph store value, a
    tool's "save this"), where extraction would only rephrase or split it.
    """

    def extract(self, batch: ExtractionBatch) -> Op[list[MemoryEntry]]:
        out = []
        for turn in batch.turns:
            ts = _time(turn)
            out.append(
                MemoryEntry(
                    id=entry_id(turn.user_id, turn.id, "verbatim"),
                    memory=turn.content.strip(),
                    speaker_id=turn.speaker_id or turn.role,
                    speaker_name=turn.speaker_name,
                    time_stamp=ts,
                    valid_from=ts,
                    entities=textproc.entities(turn.content),
                    keywords=textproc.keywords(turn.content),
                    source_ids=[turn.id],
                    entry_type=EntryType.FACT,
                    user_id=turn.user_id,
                    agent_id=turn.agent_id,
                    session_id=turn.session_id,
                    metadata={**turn.metadata, "role": turn.role, "verbatim": True},
                )
            )
        return out
        yield  # a generator with no LLM calls


def _text(value: Any) -> Optional[str]:
    if not isinstance(value, str):
        return None
    value = " ".join(repair_text(value).split())
    return value or None


_IDS = {"type": "array", "items": {"type": "string"}}
_FACT = {
    "type": "object",
    "required": ["fact", "source_ids"],
    "properties": {
        "fact": {"type": "string"},
        "source_ids": _IDS,
        "speaker": {"type": "string"},
        "time": {"type": ["string", "null"]},
        "entities": {"type": "array", "items": {"type": "string"}},
    },
}
# The answers' shapes, sent as response_format json_schema when the config asks for it
# (servers that support it then cannot answer outside them); also the repair call's hint.
FLAT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["facts"],
    "properties": {"facts": {"type": "array", "items": _FACT}},
}
EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["events"],
    "properties": {
        "events": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["event", "facts"],
                "properties": {
                    "event": {"type": "string"},
                    "time": {"type": ["string", "null"]},
                    "source_ids": _IDS,
                    "facts": {"type": "array", "items": _FACT},
                    "relations": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["subject", "relation", "object"],
                            "properties": {
                                "subject": {"type": "string"},
                                "relation": {"type": "string"},
                                "object": {"type": "string"},
                                "source_ids": _IDS,
                            },
                        },
                    },
                },
            },
        }
    },
}


class LLMExtractor:
    """LightMem's extraction with an LLM: ``mode="flat"`` facts, or ``mode="event"`` (StructMem)."""

    def __init__(
        self,
        llm: Any,
        *,
        mode: str = "flat",
        prompts: Optional[Prompts] = None,
        counts: Optional[repairs.RepairCounts] = None,
        citation: repairs.CitationRule = repairs.DEFAULT_CITATION,
        loop: repairs.LoopRule = repairs.DEFAULT_LOOP,
    ) -> None:
        self.llm = llm
        self.mode = mode
        self.prompts = prompts or Prompts()
        self.counts = counts or repairs.RepairCounts()
        self.citation = citation
        self.loop = loop

    @staticmethod
    def aliases(batch: ExtractionBatch) -> dict[str, TurnRow]:
        """Short ids the prompt cites turns by ("1", "2", ...), mapped back on parsing.

        Real turn ids ("conv-26:D1:3", UUIDs) cost ~10 tokens a line; the alias 1-2.
        """
        return {str(i): t for i, t in enumerate(batch.turns, 1)}

    def messages(self, batch: ExtractionBatch) -> list[dict[str, str]]:
        lines: list[str] = []
        header: Optional[datetime] = None
        for alias, t in self.aliases(batch).items():
            when = _time(t)
            # The time once per run of turns close together, not on every line.
            if header is None or when.date() != header.date() or abs((when - header).total_seconds()) > _HEADER_GAP_S:
                header = when
                lines.append(time_line(timeparse.format_time(when)))
            lines.append(turn_line(alias, t.speaker, None, batch.text(t)))
        template = self.prompts.event_extraction if self.mode == "event" else self.prompts.flat_extraction
        return [
            {"role": "system", "content": self.prompts.system(template)},
            {"role": "user", "content": conversation_block(lines)},
        ]

    def extract(self, batch: ExtractionBatch) -> Op[list[MemoryEntry]]:
        from .llm import complete_json_op

        schema = EVENT_SCHEMA if self.mode == "event" else FLAT_SCHEMA
        turns = {t.id: t for t in batch.turns}
        try:
            data = yield from complete_json_op(
                self.llm, self.messages(batch), stage="extraction", schema=schema, validate=self._validate
            )
        except AnswerTruncatedError as exc:
            if self.mode == "event":
                raise  # an event's facts and relations are not whole until the event is: the batch is halved
            return self._head(exc, turns, batch)
        if self.mode == "event":
            return self._events(data, turns, batch)
        return self._facts(data.get("facts", []), turns, batch, key="flat")

    def _head(self, cut: AnswerTruncatedError, turns: dict[str, TurnRow], batch: ExtractionBatch) -> list[MemoryEntry]:
        """The whole facts of a cut answer, before its loop; the turns after the last one
        they cite go to ``batch.unread``, to be asked again. Re-asking for the tail alone
        pays again only for it, where halving the batch pays again for all of it."""
        items = repairs.before_loop(complete_items(cut.text, "facts"), self.counts, self.loop)
        entries = [e for e in self._facts(items, turns, batch, key="flat") if "provenance" not in e.metadata]
        if not entries:
            raise cut  # nothing whole to keep: the caller halves the batch
        last = max(turns[i].seq for e in entries for i in e.source_ids)
        batch.unread = [t for t in batch.turns if t.seq > last]
        self.counts.add("facts_kept_from_cut", len(entries))
        log.info(
            "extraction answer cut at max_tokens: %d whole facts kept, %d turns asked again",
            len(entries),
            len(batch.unread),
        )
        return entries

    def _validate(self, data: Any) -> bool:
        key = "events" if self.mode == "event" else "facts"
        return isinstance(data, dict) and isinstance(data.get(key, []), list)

    def _entry(
        self,
        text: str,
        ids: list[str],
        turns: dict[str, TurnRow],
        key: str,
        n: int,
        entry_type: EntryType,
        extra: dict[str, Any],
    ) -> MemoryEntry:
        cited = [turns[i] for i in ids]
        first = min(cited, key=lambda t: t.seq)
        ts = _time(first)
        batch_key = "|".join(sorted(turns))
        return MemoryEntry(
            id=entry_id(first.user_id, batch_key, key, n),
            memory=text,
            speaker_id=first.speaker_id or first.role,
            speaker_name=first.speaker_name,
            time_stamp=ts,
            valid_from=ts,
            topic_id=first.topic_id,
            entities=[e for e in extra.pop("entities", None) or textproc.entities(text) if isinstance(e, str)][:20],
            keywords=textproc.keywords(text),
            source_ids=ids,
            entry_type=entry_type,
            user_id=first.user_id,
            agent_id=first.agent_id,
            session_id=first.session_id,
            metadata=extra,
        )

    def _ids(self, value: Any, batch: ExtractionBatch) -> list[str]:
        return repairs.cite(value, self.aliases(batch), self.counts, self.citation)

    def _cite(
        self, item: dict[str, Any], batch: ExtractionBatch, fallback: list[str]
    ) -> tuple[list[str], dict[str, Any]]:
        ids = self._ids(item.get("source_ids"), batch)
        meta: dict[str, Any] = {}
        if not ids:
            # The model cited nothing real: attribute the fact to the whole batch and say so.
            ids = fallback
            meta["provenance"] = "batch"
            self.counts.add("facts_cited_batch")
        return ids, meta

    def _facts(
        self,
        items: Any,
        turns: dict[str, TurnRow],
        batch: ExtractionBatch,
        *,
        key: str,
        extra: Optional[dict[str, Any]] = None,
        fallback: Optional[list[str]] = None,
        given_time: Any = None,
    ) -> list[MemoryEntry]:
        out = []
        fallback = fallback or list(turns)
        for n, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, str):
                item = {"fact": item}
            if not isinstance(item, dict) or not (text := _text(item.get("fact"))):
                continue
            ids, meta = self._cite(item, batch, fallback)
            meta.update(extra or {})
            cited = [turns[i] for i in ids]
            first = min(cited, key=lambda t: t.seq)
            # a fact's own time wins over its event's; no time of its own keeps the event's
            when, source = repairs.event_time(item.get("time") or given_time, text, first, self.counts, cited)
            if when is not None:
                meta["event_date"] = when
            if isinstance(item.get("entities"), list):
                meta["entities"] = item["entities"]
            text = repairs.dated_text(text, _time(first))
            if source == "turn" and when and when not in text:
                text = f"{text.rstrip()} ({when})"  # the date the turn spoke of, which the fact left out
            text = repairs.name_speaker(text, cited, self.counts)
            out.append(self._entry(text, ids, turns, key, n, EntryType.FACT, meta))
        return out

    def _events(self, data: Any, turns: dict[str, TurnRow], batch: ExtractionBatch) -> list[MemoryEntry]:
        out: list[MemoryEntry] = []
        for e, event in enumerate(data.get("events", []) if isinstance(data, dict) else []):
            if not isinstance(event, dict):
                continue
            label = _text(event.get("event")) or f"event {e + 1}"
            event_ids = self._ids(event.get("source_ids"), batch) or list(turns)
            bound = {"event": label, "event_id": entry_id(batch.turns[0].user_id, "|".join(sorted(turns)), "event", e)}
            first = min((turns[i] for i in event_ids), key=lambda t: t.seq)
            when, _ = repairs.event_time(event.get("time"), label, first, self.counts, [turns[i] for i in event_ids])
            if when is not None:
                bound["event_date"] = when
            out += self._facts(
                event.get("facts", []),
                turns,
                batch,
                key=f"event{e}",
                extra=bound,
                fallback=event_ids,
                given_time=event.get("time"),
            )
            for r, rel in enumerate(event.get("relations", []) if isinstance(event.get("relations"), list) else []):
                if not isinstance(rel, dict):
                    continue
                subject, relation, obj = (_text(rel.get(k)) for k in ("subject", "relation", "object"))
                if not (subject and relation and obj):
                    continue
                ids, meta = self._cite(rel, batch, event_ids)
                meta.update(bound, subject=subject, relation=relation, object=obj)
                out.append(
                    self._entry(
                        f"{subject} {relation} {obj}",
                        ids,
                        turns,
                        f"event{e}rel",
                        r,
                        EntryType.RELATION,
                        meta,
                    )
                )
        return out
