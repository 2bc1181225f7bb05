"""What the three adapters share: LlamaIndex messages in, prompt text out.

Kept apart so the block, the full memory and the retriever agree on how a
``ChatMessage`` becomes a journaled turn and how hits become prompt text.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any, Iterable, Optional, Sequence

from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock

from lightmem_core import Hit, format_hits

log = logging.getLogger(__name__)

# The id a turn is journaled under travels with the message (LlamaIndex persists
# additional_kwargs in its chat store), so a message saved at once and flushed again
# later by LlamaIndex is recognised by the core as the same turn and not stored twice.
TURN_ID_KEY = "lightmem_turn_id"

_ROLE_MAP = {
    MessageRole.USER: "user",
    MessageRole.ASSISTANT: "assistant",
    MessageRole.CHATBOT: "assistant",
    MessageRole.MODEL: "assistant",
    MessageRole.SYSTEM: "system",
    MessageRole.DEVELOPER: "system",
    MessageRole.TOOL: "tool",
    MessageRole.FUNCTION: "tool",
}

DEFAULT_HEADER = "Long-term memories from earlier conversations (use them when relevant):"


def stamp_turn_ids(messages: Iterable[ChatMessage]) -> None:
    """Give each message the id it will be journaled under (kept if already there)."""
    for m in messages:
        if not m.additional_kwargs.get(TURN_ID_KEY):
            m.additional_kwargs[TURN_ID_KEY] = uuid.uuid4().hex


def message_text(message: ChatMessage) -> str:
    """The text blocks of a message; images, tool calls and the like carry no text to remember."""
    return "\n".join(b.text for b in message.blocks if isinstance(b, TextBlock) and b.text).strip()


def to_turns(
    messages: Iterable[ChatMessage], *, include_system: bool = False, max_chars: Optional[int] = None
) -> list[dict[str, Any]]:
    """``ChatMessage`` objects as the core's message dicts.

    Messages without text (an assistant message that only calls tools) are skipped;
    system prompts are skipped unless asked for, since they are instructions rather
    than things the user said. A message without a time stamp gets the wall-clock time
    of now, so memories can be placed on a time line later. Text beyond ``max_chars``
    (the core's ``max_message_chars``) is cut: a huge tool result must not fail the
    agent's turn, which a refused write would.
    """
    now = datetime.now().replace(microsecond=0)
    out: list[dict[str, Any]] = []
    for m in messages:
        role = _ROLE_MAP.get(m.role, "user")
        if role == "system" and not include_system:
            continue
        text = message_text(m)
        if not text:
            continue
        if max_chars is not None and len(text) > max_chars:
            log.info("a %s message of %d characters is stored cut to %d", role, len(text), max_chars)
            text = text[: max_chars - 1].rstrip() + "…"
        kw = m.additional_kwargs or {}
        turn: dict[str, Any] = {"role": role, "content": text, "time_stamp": kw.get("time_stamp") or now}
        if kw.get(TURN_ID_KEY):
            turn["id"] = str(kw[TURN_ID_KEY])
        name = kw.get("speaker_name") or kw.get("name")
        if isinstance(name, str) and name.strip():
            turn["speaker_name"] = name
        out.append(turn)
    return out


def query_from(messages: Optional[Sequence[ChatMessage]], input: Any = None, window: int = 1) -> str:
    """What to search for: the explicit input, else the latest ``window`` user messages.

    User messages rather than the last message: after a tool call the last message is
    a tool result, which says little about what the user wants remembered.
    """
    if isinstance(input, ChatMessage):
        input = message_text(input)
    if isinstance(input, str) and input.strip():
        return input.strip()
    users = [t for t in (message_text(m) for m in (messages or []) if m.role == MessageRole.USER) if t]
    if not users and messages:
        users = [t for t in (message_text(m) for m in messages) if t][-1:]
    return "\n".join(users[-max(1, window) :])


def is_summary(hit: Hit) -> bool:
    return getattr(hit.entry.entry_type, "value", hit.entry.entry_type) == "summary"


def render_hits(hits: Sequence[Hit], header: Optional[str] = DEFAULT_HEADER) -> str:
    """Hits as prompt text: summaries (most relevant first), then entries as a time line."""
    summaries = [h for h in hits if is_summary(h)]
    entries = [h for h in hits if not is_summary(h)]
    parts: list[str] = [header] if header else []
    if summaries:
        parts.append("Summaries:")
        parts += [f"- {h.entry.prompt_line()}" for h in summaries]
        if entries:
            parts.append("Details:")
    if entries:
        parts.append(format_hits(list(entries)))
    return "\n".join(parts) if (summaries or entries) else ""


def recent_turn_ids(messages: Optional[Sequence[ChatMessage]]) -> set[str]:
    """Journal ids of the messages still in the recent chat."""
    return {str(m.additional_kwargs[TURN_ID_KEY]) for m in messages or () if m.additional_kwargs.get(TURN_ID_KEY)}


def fetch_limit(limit: int, recent: set[str]) -> int:
    """Ask the core for enough hits that ``limit`` remain after ``without_recent``."""
    return min(1000, limit + len(recent))


def without_recent(hits: Sequence[Hit], recent: set[str], limit: int) -> list[Hit]:
    """Drop entries made only from turns still in the recent chat, keep ``limit`` entries.

    Every turn is journaled as it is put, so the user's current message would otherwise
    come back as its own best "memory", crowding out the ones the prompt needs; what is
    in the recent chat is in the prompt already.
    """
    summaries = [h for h in hits if is_summary(h)]
    entries = [
        h
        for h in hits
        if not is_summary(h) and not (recent and h.entry.source_ids and set(h.entry.source_ids) <= recent)
    ]
    return summaries + entries[:limit]
