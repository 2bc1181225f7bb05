"""``complete_json``: ask for JSON and get a parsed value, with one repair round-trip.

One repair call fixes most answers ``parse_json`` cannot read; anything else is an
``LLMError`` (``AnswerTruncatedError`` when the answer hit the completion limit), so the
caller can keep the work pending. Written once as an operation, run sync or async.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Optional

from ..drive import Op, call, run_async, run_sync
from ..errors import AnswerTruncatedError, LLMError
from .jsonparse import parse_json
from .protocol import LLM, _check_messages

__all__ = ["acomplete_json", "complete_json", "complete_json_op"]

log = logging.getLogger(__package__)  # the package's logger, as before the split into modules


_REPAIR_PROMPT = (
    "Your previous answer could not be used: {error}\n"
    "Reply again with valid JSON only: no prose, no code fences, no comments, no trailing commas."
)
_MAX_ECHO = 4000


def _check(value: Any, validate: Optional[Callable[[Any], Any]]) -> Any:
    """Apply ``validate``: raising or returning False rejects; a non-bool, non-None
    return value replaces the parsed value (so ``Model.model_validate`` works)."""
    if validate is None:
        return value
    result = validate(value)
    if result is False:
        raise ValueError("the JSON does not have the expected shape")
    if result is None or result is True:
        return value
    return result


def _json_op(
    llm: Any,
    messages: list[dict[str, Any]],
    stage: str,
    schema: Optional[dict[str, Any]],
    validate: Optional[Callable[[Any], Any]],
) -> Op[Any]:
    json_schema = schema if schema is not None else {"type": "object"}

    def ask(msgs: list[dict[str, Any]]) -> Op[tuple[str, Optional[str]]]:
        try:
            completion = yield call(llm.complete, msgs, json_schema=json_schema, stage=stage)
        except LLMError:
            raise
        except Exception as exc:  # an adapter's own exception type: callers catch LLMError
            raise LLMError(f"{stage}: {type(exc).__name__}: {exc}") from exc
        text = getattr(completion, "text", completion)
        return (text if isinstance(text, str) else str(text)), getattr(completion, "finish_reason", None)

    text, finish = yield from ask(messages)
    try:
        return _check(parse_json(text), validate)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if finish == "length":
            raise AnswerTruncatedError(
                f"{stage}: the answer reached the completion limit before its JSON ended "
                f"({error}); ask for less per call",
                text=text,
            ) from exc
    log.info("%s: LLM answer is not usable JSON (%s); asking once for a repair", stage, error)
    hint = f"\nThe JSON must match this schema: {json.dumps(schema)}" if schema else ""
    repair = list(messages) + [
        {"role": "assistant", "content": text[:_MAX_ECHO] or "(empty)"},
        {"role": "user", "content": _REPAIR_PROMPT.format(error=error) + hint},
    ]
    text, _ = yield from ask(repair)
    try:
        return _check(parse_json(text), validate)
    except Exception as exc:
        raise LLMError(
            f"{stage}: no valid JSON after one repair ({type(exc).__name__}: {exc}); answer began {text[:200]!r}"
        ) from exc


def complete_json(
    llm: LLM,
    messages: list[dict[str, Any]],
    *,
    stage: str = "extraction",
    schema: Optional[dict[str, Any]] = None,
    validate: Optional[Callable[[Any], Any]] = None,
) -> Any:
    """Ask for JSON and return the parsed value, with one repair call if needed.

    ``schema`` is passed as ``json_schema`` (turning on JSON mode) and quoted in the
    repair prompt. ``validate(value)`` may raise or return False to reject the value,
    or return a replacement (e.g. a pydantic model). Raises ``LLMError``.
    """
    return run_sync(_json_op(llm, _check_messages(messages), stage, schema, validate))


async def acomplete_json(
    llm: LLM,
    messages: list[dict[str, Any]],
    *,
    stage: str = "extraction",
    schema: Optional[dict[str, Any]] = None,
    validate: Optional[Callable[[Any], Any]] = None,
) -> Any:
    """Async twin of ``complete_json`` (same logic, driven by ``run_async``)."""
    return await run_async(_json_op(llm, _check_messages(messages), stage, schema, validate))


def complete_json_op(
    llm: LLM,
    messages: list[dict[str, Any]],
    *,
    stage: str = "extraction",
    schema: Optional[dict[str, Any]] = None,
    validate: Optional[Callable[[Any], Any]] = None,
) -> Op[Any]:
    """``complete_json`` as an operation, for callers that are operations themselves
    (``yield from complete_json_op(...)`` inside a generator run by ``drive``)."""
    return _json_op(llm, _check_messages(messages), stage, schema, validate)
