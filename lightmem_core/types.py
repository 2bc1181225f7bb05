"""The data the library exchanges with its callers: turns in, entries and hits out."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from enum import Enum
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from . import timeparse

MAX_ID_LEN = 256
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value: str, *, what: str = "text") -> str:
    """Drop control characters and refuse text that cannot be stored as UTF-8.

    Lone surrogates (what Python makes of undecodable bytes) would fail deep inside
    SQLite or the engine, after part of a batch was written; refusing them here keeps
    writes all-or-nothing.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what} is not valid UTF-8 (position {exc.start})") from None
    return _CONTROL.sub("", value)


def check_metadata(value: Any) -> Any:
    """Refuse metadata the store cannot hold: a lone surrogate anywhere in it (a key of a
    nested dict as much as a value) passes pydantic and the journal's ASCII JSON, then
    fails inside the engine at extraction, leaving the turn pending for ever."""
    try:
        json.dumps(value, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"metadata holds text that is not valid UTF-8 ({exc.object[exc.start : exc.end]!r})") from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metadata must be JSON-serialisable: {exc}") from None
    return value


def repair_text(value: str) -> str:
    """Text a model produced, repaired rather than refused: it is not the caller's input,
    and one bad character must not fail a whole batch (or reach SQLite and the engine).
    Control characters are dropped, what UTF-8 cannot hold (lone surrogates) becomes "?"."""
    return _CONTROL.sub("", value.encode("utf-8", "replace").decode("utf-8"))


def is_blank(content: Any) -> bool:
    """Whether a turn's content says nothing: empty, whitespace or control characters only.

    Real chat exports and agent logs carry such turns (an assistant turn that only
    called a tool, a message that failed to send). They are skipped and reported, not
    refused, so one of them never stops a whole batch or a bulk import.
    """
    return isinstance(content, str) and not _CONTROL.sub("", content).strip()


def _check_id(value: Optional[str], what: str) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string")
    value = value.strip()
    if not value:
        raise ValueError(f"{what} must not be empty")
    if len(value) > MAX_ID_LEN:
        raise ValueError(f"{what} is longer than {MAX_ID_LEN} characters")
    if _CONTROL.search(value) or "\n" in value:
        raise ValueError(f"{what} contains control characters")
    clean_text(value, what=what)
    return value


class EntryType(str, Enum):
    FACT = "fact"
    RELATION = "relation"
    SUMMARY = "summary"


class Scope(BaseModel):
    """Who a memory belongs to. ``user_id`` is always set; the others narrow it.

    Reads match every entry of the user, narrowed by agent/session when those are
    given; writes stamp all three on the entry.
    """

    model_config = ConfigDict(frozen=True)

    user_id: str
    agent_id: Optional[str] = None
    session_id: Optional[str] = None

    @field_validator("user_id", "agent_id", "session_id", mode="before")
    @classmethod
    def _valid(cls, v: Any, info: Any) -> Any:
        return _check_id(v, info.field_name)

    def as_payload(self) -> dict[str, Optional[str]]:
        return {"user_id": self.user_id, "agent_id": self.agent_id, "session_id": self.session_id}


class Message(BaseModel):
    """One conversation turn as accepted by ``add_memory``.

    Speakers are explicit so chats with more than two people (LoCoMo) need no fake
    user/assistant pairing; ``role`` only says which side of the agent spoke.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    role: Literal["user", "assistant", "system", "tool"]
    content: str
    time_stamp: Optional[datetime] = None
    speaker_id: Optional[str] = None
    speaker_name: Optional[str] = Field(default=None, alias="name")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id", "speaker_id", "speaker_name", mode="before")
    @classmethod
    def _ids(cls, v: Any, info: Any) -> Any:
        return _check_id(v, info.field_name)

    @field_validator("content", mode="before")
    @classmethod
    def _content(cls, v: Any) -> str:
        if not isinstance(v, str):
            raise ValueError(f"content must be a string, got {type(v).__name__}")
        v = clean_text(v, what="content")
        if not v.strip():
            raise ValueError("content is empty")
        return v

    @field_validator("time_stamp", mode="before")
    @classmethod
    def _ts(cls, v: Any) -> Any:
        return None if v is None else timeparse.parse_time(v)

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata(cls, v: Any) -> Any:
        return check_metadata(v)

    @property
    def speaker(self) -> str:
        return self.speaker_name or self.speaker_id or self.role


class MemoryEntry(BaseModel):
    """A unit of long-term memory, with its provenance and time line.

    ``time_stamp`` is when the thing happened (the turn's time), ``recorded_at`` when
    the library learned it; ``valid_from``/``valid_to`` bound the period in which the
    entry is the current truth (``valid_to`` is set when a newer entry supersedes it).
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    memory: str
    speaker_id: Optional[str] = None
    speaker_name: Optional[str] = None
    time_stamp: Optional[datetime] = None
    recorded_at: datetime = Field(default_factory=timeparse.utcnow)
    weekday: Optional[str] = None
    valid_from: Optional[datetime] = None
    valid_to: Optional[datetime] = None
    superseded_by: Optional[str] = None
    topic_id: Optional[int] = None
    topic_label: Optional[str] = None
    entities: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    source_ids: list[str] = Field(default_factory=list)
    position: Optional[int] = Field(
        default=None,
        ge=0,
        description="Which piece of its source turn this entry is (0 = first sentence), for entries cut from one turn; "
        "a hit shows its neighbours in this order.",
    )
    entry_type: EntryType = EntryType.FACT
    user_id: str
    agent_id: Optional[str] = None
    session_id: Optional[str] = None
    context: Optional[str] = Field(
        default=None,
        description="Text around the fact (its turn and neighbours) that is indexed with it "
        "but never shown as the memory.",
    )
    metadata: dict[str, Any] = Field(default_factory=dict)
    version: int = 1

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, v: Any) -> str:
        if not isinstance(v, str):
            raise ValueError(f"memory must be a string, got {type(v).__name__}")
        v = clean_text(v, what="memory")
        if not v.strip():
            raise ValueError("memory is empty")
        return v

    @field_validator("time_stamp", "recorded_at", "valid_from", "valid_to", mode="before")
    @classmethod
    def _times(cls, v: Any) -> Any:
        return None if v is None else timeparse.parse_time(v)

    @model_validator(mode="after")
    def _derive(self) -> "MemoryEntry":
        if self.time_stamp is not None and self.weekday is None:
            self.weekday = timeparse.weekday(self.time_stamp)
        return self

    @property
    def scope(self) -> Scope:
        return Scope(user_id=self.user_id, agent_id=self.agent_id, session_id=self.session_id)

    @property
    def is_current(self) -> bool:
        return self.superseded_by is None and self.valid_to is None

    def prompt_line(self) -> str:
        """``{time_stamp} {weekday} {memory}``, the line format of upstream LightMem."""
        parts = [timeparse.format_time(self.time_stamp), self.weekday or "", self.memory]
        return " ".join(p for p in parts if p)


class Hit(BaseModel):
    """One retrieval result: the entry, its score, and which retrievers found it."""

    entry: MemoryEntry
    score: float
    retrievers: list[str] = Field(default_factory=list)
    rank: int = 0
    similarity: Optional[float] = Field(
        default=None,
        description="Cosine between the query and the entry's vector: comparable across queries "
        "(``score`` is a rank-fusion value that orders one result list). None for keyword-only retrieval.",
    )
    window: Optional[str] = Field(
        default=None,
        description="The entry's sentence with the sentences around it in its turn, as memory still holds them "
        "(deleted and, unless asked for, superseded ones left out); None when the entry is its turn.",
    )

    @property
    def text(self) -> str:
        """What a model reads for this hit: a sentence alone often names nothing ("I whisk up a
        bowl every morning now"); its window says what ("... ceremonial matcha ...")."""
        return self.window or self.entry.memory

    def prompt_line(self) -> str:
        """The entry's prompt line with its window in place of the bare sentence."""
        if not self.window:
            return self.entry.prompt_line()
        return self.entry.model_copy(update={"memory": self.window}).prompt_line()

    def __str__(self) -> str:
        return self.prompt_line()


class HistoryRecord(BaseModel):
    """One change to one entry, as kept in the history log."""

    memory_id: str
    event: Literal["ADD", "UPDATE", "DELETE", "MERGE", "SUPERSEDE"]
    version: int
    old_memory: Optional[str] = None
    new_memory: Optional[str] = None
    reason: Optional[str] = None
    actor: str = "system"
    source_ids: list[str] = Field(
        default_factory=list,
        description="The turns this change brought into the entry (ADD: the turns it was made from; MERGE, UPDATE, "
        "SUPERSEDE: the turns of the newer statement), so a deleted entry still says which turns it held.",
    )
    created_at: datetime = Field(default_factory=timeparse.utcnow)
    user_id: str
    agent_id: Optional[str] = None
    session_id: Optional[str] = None


class EntryPage(BaseModel):
    """One page of a listing (``get_page``) and where the next one starts."""

    entries: list[MemoryEntry] = Field(default_factory=list)
    next_cursor: Optional[str] = Field(
        None, description="Pass as ``after=`` for the next page; None when this page is the last."
    )


class SkippedTurn(BaseModel):
    """A message of an ``add_memory`` call that was not journaled, and why."""

    index: int = Field(description="Its position in the call's messages.")
    id: Optional[str] = Field(None, description="Its id, if it had one.")
    reason: str


class AddResult(BaseModel):
    """What ``add_memory`` did with the turns it was given."""

    turn_ids: list[str] = Field(default_factory=list)
    duplicate_turn_ids: list[str] = Field(default_factory=list)
    skipped: list[SkippedTurn] = Field(
        default_factory=list,
        description="Messages with nothing to remember (empty or whitespace-only content), "
        "left out of the journal; the call fails only when every message is such.",
    )
    added: list[MemoryEntry] = Field(default_factory=list)
    merged: list[str] = Field(
        default_factory=list,
        description="Existing entries that absorbed a near duplicate from these turns (online "
        "update): the turns are cited there, not by a new entry.",
    )
    pending_turns: int = Field(0, description="Turns of this scope still buffered or waiting for a retry.")
    error: Optional[str] = Field(
        None, description="Why extraction did not run (e.g. the LLM failed); the turns are safe."
    )

    @property
    def added_ids(self) -> list[str]:
        return [e.id for e in self.added]


def format_hits(hits: list[Hit] | list[MemoryEntry], *, header: Optional[str] = None) -> str:
    """Memories as prompt text, one per line, oldest first so the model reads a time line."""
    items: list[Hit | MemoryEntry] = sorted(
        hits, key=lambda h: (h.entry if isinstance(h, Hit) else h).time_stamp or datetime.min
    )
    lines = [h.prompt_line() for h in items]
    if header:
        lines.insert(0, header)
    return "\n".join(lines)
