"""Pieces every LangChain-facing class shares: scope resolution, hits as documents,
and LangChain messages as turns.

Adapter operations are written once and run sync or async by the core's own driver
(``lightmem_core.drive``), so the async path never blocks the event loop, never diverges
from the sync one, and there is one driver to keep right rather than two.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Iterable, Mapping, Optional, Sequence, TypeVar

from pydantic import BaseModel, ConfigDict

from lightmem_core import Hit, InvalidInputError, MemoryEntry, Scope

log = logging.getLogger("lightmem_langchain")

T = TypeVar("T")

SCOPE_FIELDS = ("user_id", "agent_id", "session_id")


# --- scope --------------------------------------------------------------------------------


def _field(source: Any, name: str) -> Optional[str]:
    """``name`` from a context object of any usual shape: dataclass, pydantic model, TypedDict/dict."""
    if source is None:
        return None
    value = source.get(name) if isinstance(source, Mapping) else getattr(source, name, None)
    if value is None:
        return None
    return str(value)


class ScopePolicy(BaseModel):
    """Where a run's scope comes from, and how reads relate to writes.

    Each field is taken from, in order: the value fixed here, the run's context
    (``create_agent(..., context_schema=...)`` / ``invoke(..., context=...)``), then
    ``config["configurable"]``. ``session_id`` falls back to the LangGraph
    ``thread_id`` when ``session_from_thread`` is set. There is never a process-wide
    default: a run without a ``user_id`` is refused, so one user's memories cannot
    silently land in a shared bucket.

    Writes are stamped with the whole scope. Reads drop the session when
    ``share_across_sessions`` is set (the default): what a user said in one thread is
    recalled in the next, which is the point of long-term memory.
    """

    model_config = ConfigDict(frozen=True)

    user_id: Optional[str] = None
    agent_id: Optional[str] = None
    session_id: Optional[str] = None
    session_from_thread: bool = True
    share_across_sessions: bool = True

    def resolve(self, context: Any = None, config: Optional[Mapping[str, Any]] = None) -> Scope:
        configurable = (config or {}).get("configurable") or {}
        values: dict[str, Optional[str]] = {}
        for name in SCOPE_FIELDS:
            values[name] = getattr(self, name) or _field(context, name) or _field(configurable, name)
        if values["session_id"] is None and self.session_from_thread:
            values["session_id"] = _field(configurable, "thread_id")
        if values["user_id"] is None:
            raise InvalidInputError(
                "scope.user_id",
                "no user_id for this run: pass it in the run's context (context_schema with a user_id field) "
                "or in config['configurable']['user_id'], or fix it on the adapter",
            )
        try:
            return Scope(**values)
        except ValueError as exc:
            raise InvalidInputError("scope", str(exc)) from None

    def read_scope(self, scope: Scope) -> Scope:
        if self.share_across_sessions:
            return Scope(user_id=scope.user_id, agent_id=scope.agent_id)
        return scope


def as_scope(scope: Any) -> Optional[Scope]:
    """A ``Scope`` from a Scope, a mapping, a bare user id, or None."""
    if scope is None or isinstance(scope, Scope):
        return scope
    if isinstance(scope, str):
        return Scope(user_id=scope)
    if isinstance(scope, Mapping):
        return Scope(**{k: scope.get(k) for k in SCOPE_FIELDS})
    raise InvalidInputError("scope", f"expected a Scope, a dict or a user id, got {type(scope).__name__}")


def scope_kwargs(scope: Scope) -> dict[str, Optional[str]]:
    return scope.as_payload()


def retrieve_kwargs(
    *, strategy: Optional[str], hierarchical: Optional[bool], include_superseded: bool = False
) -> dict[str, Any]:
    """Options for ``LightMemory.retrieve``; unset ones are left to the memory's config."""
    out: dict[str, Any] = {"strategy": strategy}
    if include_superseded:
        out["include_superseded"] = True
    if hierarchical is not None:
        out["hierarchical"] = hierarchical
    return out


# --- entries and hits ---------------------------------------------------------------------


def _iso(value: Optional[datetime]) -> Optional[str]:
    return value.isoformat() if value is not None else None


def entry_metadata(entry: MemoryEntry) -> dict[str, Any]:
    """What LangChain users filter and cite by, in JSON-friendly types."""
    return {
        "id": entry.id,
        "time_stamp": _iso(entry.time_stamp),
        "recorded_at": _iso(entry.recorded_at),
        "weekday": entry.weekday,
        "speaker": entry.speaker_name or entry.speaker_id,
        "speaker_id": entry.speaker_id,
        "speaker_name": entry.speaker_name,
        "source_ids": list(entry.source_ids),
        "entry_type": entry.entry_type.value,
        "user_id": entry.user_id,
        "agent_id": entry.agent_id,
        "session_id": entry.session_id,
        "version": entry.version,
        "metadata": dict(entry.metadata),
    }


def hit_to_document(hit: Hit) -> Any:
    from langchain_core.documents import Document

    meta = entry_metadata(hit.entry)
    meta.update(score=hit.score, rank=hit.rank, retrievers=list(hit.retrievers), memory=hit.entry.memory)
    # the window, when there is one: the sentence alone often names nothing the model can use
    return Document(page_content=hit.text, metadata=meta, id=hit.entry.id)


def memory_section(hits: Sequence[Hit], *, header: str) -> str:
    """Hits as a prompt section: summaries first (they frame the period), then entries oldest first."""
    from lightmem_core import format_hits

    summaries = [h for h in hits if h.entry.entry_type.value == "summary"]
    entries = [h for h in hits if h.entry.entry_type.value != "summary"]
    parts = [header]
    if summaries:
        parts.append("Summaries:\n" + "\n".join(f"- {h.entry.prompt_line()}" for h in summaries))
    if entries:
        lines = format_hits(entries).splitlines()
        parts.append(("Memories:\n" if summaries else "") + "\n".join(f"- {line}" for line in lines))
    return "\n".join(parts)


# --- LangChain messages as turns ----------------------------------------------------------

_ROLES = {"human": "user", "ai": "assistant"}


def message_text(message: Any) -> str:
    """The plain text of a LangChain message (content blocks joined), stripped."""
    text = getattr(message, "text", None)
    if not isinstance(text, str) and callable(text):  # langchain-core < 1.0 exposed text() as a method
        text = text()
    if not isinstance(text, str):
        content = getattr(message, "content", "")
        text = content if isinstance(content, str) else ""
    return text.strip()


def latest_user_text(messages: Sequence[Any]) -> Optional[str]:
    for m in reversed(messages):
        if getattr(m, "type", None) == "human":
            text = message_text(m)
            if text:
                return text
    return None


def exchange_turns(messages: Sequence[Any]) -> list[dict[str, Any]]:
    """The last exchange as turns for ``add_memory``: the user message(s) that started
    it and the assistant's text answers after them. Tool traffic and tool-calling
    steps are left out. Message ids become turn ids, so saving the same messages
    again (a retried run, a resumed thread) is skipped by the journal."""
    last_user = max((i for i, m in enumerate(messages) if getattr(m, "type", None) == "human"), default=None)
    if last_user is None:
        return []
    start = last_user
    while start > 0 and getattr(messages[start - 1], "type", None) == "human":
        start -= 1
    turns: list[dict[str, Any]] = []
    for m in messages[start:]:
        role = _ROLES.get(getattr(m, "type", ""))
        if role is None or (role == "assistant" and getattr(m, "tool_calls", None)):
            continue
        text = message_text(m)
        if not text:
            continue
        turn: dict[str, Any] = {"role": role, "content": text}
        if getattr(m, "id", None):
            turn["id"] = str(m.id)
        if getattr(m, "name", None):
            turn["speaker_name"] = str(m.name)
        turns.append(turn)
    return turns


def unique(items: Iterable[T]) -> list[T]:
    return list(dict.fromkeys(items))
