"""What an LLM is to this library: the tiny protocol, its results, and the accounting.

``LLM`` is deliberately tiny (``complete`` / ``acomplete``) so that adapters can wrap
LangChain or LlamaIndex chat models behind it without dragging their abstractions into
the core. ``BaseLLM`` does the token accounting once; every backend (and every adapter
bridge) only implements ``_complete`` and gets ``get_token_statistics()``.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, Sequence, runtime_checkable

from ..errors import InvalidInputError, LLMError

__all__ = ["LLM", "BaseLLM", "Completion", "Messages", "TokenStats", "Usage"]

Messages = Sequence[dict[str, Any]]


# --- results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Token counts of one completion (as reported by the server, or estimated)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Completion:
    """What a backend returns: the text, its usage, and the backend's raw object.

    ``attempts`` is how many HTTP requests the answer took (retries included), so the
    accounting can show how flaky an endpoint is; ``usage_estimated`` says the server
    did not report usage and the counts come from ``estimate_tokens``.
    """

    text: str
    usage: Usage = field(default_factory=Usage)
    raw: Any = None
    model: Optional[str] = None
    finish_reason: Optional[str] = None
    attempts: int = 1
    usage_estimated: bool = False


@runtime_checkable
class LLM(Protocol):
    """Anything that answers chat messages. ``stage`` only labels the accounting."""

    def complete(
        self, messages: list[dict[str, Any]], *, json_schema: dict[str, Any] | None = None, stage: str = "extraction"
    ) -> Completion: ...

    async def acomplete(
        self, messages: list[dict[str, Any]], *, json_schema: dict[str, Any] | None = None, stage: str = "extraction"
    ) -> Completion: ...


# --- accounting ------------------------------------------------------------------------

_COUNTERS = ("calls", "failures", "attempts", "prompt_tokens", "completion_tokens", "total_tokens")


class TokenStats:
    """Thread-safe per-stage counters of LLM use.

    ``calls`` counts logical calls that returned, ``failures`` those that raised,
    ``attempts`` the HTTP requests behind both (retries included). Stages are free
    strings; the memory pipeline uses "extraction", "update" and "summary".
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stages: dict[str, dict[str, int]] = {}

    def _row(self, stage: str) -> dict[str, int]:
        row = self._stages.get(stage)
        if row is None:
            row = self._stages[stage] = {k: 0 for k in _COUNTERS}
        return row

    def record(self, stage: str, usage: Usage, *, attempts: int = 1) -> None:
        with self._lock:
            row = self._row(stage)
            row["calls"] += 1
            row["attempts"] += attempts
            row["prompt_tokens"] += usage.prompt_tokens
            row["completion_tokens"] += usage.completion_tokens
            row["total_tokens"] += usage.total_tokens

    def record_failure(self, stage: str, *, attempts: int = 1) -> None:
        with self._lock:
            row = self._row(stage)
            row["failures"] += 1
            row["attempts"] += attempts

    def snapshot(self) -> dict[str, dict[str, int]]:
        """A copy: ``{stage: {counter: n}}`` plus a ``"total"`` row summing all stages."""
        with self._lock:
            out = {stage: dict(row) for stage, row in self._stages.items()}
        total = {k: 0 for k in _COUNTERS}
        for row in out.values():
            for k in _COUNTERS:
                total[k] += row[k]
        out["total"] = total
        return out

    def reset(self) -> None:
        with self._lock:
            self._stages.clear()


def _check_messages(messages: Any) -> list[dict[str, Any]]:
    """Fail before the network on shapes no server accepts, naming the bad item."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise InvalidInputError("messages", "must be a non-empty list of {'role', 'content'} dicts")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise InvalidInputError(f"messages[{i}]", "must be a dict with 'role' and 'content'")
        out.append(m)
    return out


class BaseLLM:
    """Accounting and error wrapping shared by every backend.

    Subclasses implement ``_complete(messages, json_schema) -> Completion`` and may
    implement ``_acomplete``; without it the sync path runs in a worker thread so the
    event loop never blocks. Any non-``LLMError`` exception is wrapped in ``LLMError``
    so callers catch one type whatever the backend.
    """

    def __init__(self) -> None:
        self._token_stats = TokenStats()

    @property
    def stats(self) -> TokenStats:
        """The counters; created on demand so a subclass that forgets ``super().__init__()``
        still gets accounting (``dict.setdefault`` keeps it to one instance)."""
        stats = self.__dict__.get("_token_stats")
        if stats is None:
            stats = self.__dict__.setdefault("_token_stats", TokenStats())
        return stats

    # subclass hooks
    def _complete(self, messages: list[dict[str, Any]], json_schema: dict[str, Any] | None) -> Completion:
        raise NotImplementedError

    async def _acomplete(self, messages: list[dict[str, Any]], json_schema: dict[str, Any] | None) -> Completion:
        return await asyncio.to_thread(self._complete, messages, json_schema)

    # public API
    def complete(
        self, messages: list[dict[str, Any]], *, json_schema: dict[str, Any] | None = None, stage: str = "extraction"
    ) -> Completion:
        msgs = _check_messages(messages)
        try:
            result = self._complete(msgs, json_schema)
        except BaseException as exc:
            err = self._failed(stage, exc)
            if err is exc:
                raise
            raise err from exc
        return self._done(stage, result)

    async def acomplete(
        self, messages: list[dict[str, Any]], *, json_schema: dict[str, Any] | None = None, stage: str = "extraction"
    ) -> Completion:
        msgs = _check_messages(messages)
        try:
            result = await self._acomplete(msgs, json_schema)
        except BaseException as exc:
            err = self._failed(stage, exc)
            if err is exc:
                raise
            raise err from exc
        return self._done(stage, result)

    def get_token_statistics(self) -> dict[str, dict[str, int]]:
        return self.stats.snapshot()

    def reset_token_statistics(self) -> None:
        self.stats.reset()

    def _done(self, stage: str, result: Completion) -> Completion:
        if not isinstance(result, Completion):
            raise LLMError(f"{type(self).__name__}._complete returned {type(result).__name__}, expected Completion")
        self.stats.record(stage, result.usage, attempts=result.attempts)
        return result

    def _failed(self, stage: str, exc: BaseException) -> BaseException:
        """Count a failure and return what to raise (cancellation is not a failure)."""
        if isinstance(exc, (KeyboardInterrupt, SystemExit, asyncio.CancelledError, GeneratorExit)):
            return exc
        self.stats.record_failure(stage, attempts=int(getattr(exc, "attempts", 1) or 1))
        if isinstance(exc, LLMError):
            return exc
        return LLMError(f"{stage}: {type(exc).__name__}: {exc}")
