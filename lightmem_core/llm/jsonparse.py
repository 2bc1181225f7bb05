"""Tolerant JSON: the value in a model's answer that should be JSON but may not be clean.

Models wrap JSON in fences and prose, use single quotes or Python literals, leave
trailing commas; cheap repairs fix those. A cut-off answer is never guessed at.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterator, Optional

__all__ = ["JSONParseError", "complete_items", "parse_json"]


class JSONParseError(ValueError):
    """The text holds no parseable JSON value."""


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n?(.*?)(?:```|\Z)", re.S)
_MAX_CANDIDATES = 20


def _balanced_end(text: str, start: int) -> int:
    """Index just past the bracket matching ``text[start]`` (``{`` or ``[``), or -1.

    Quote-aware for both ``"`` and ``'`` so braces inside strings do not count.
    """
    stack: list[str] = []
    quote: Optional[str] = None
    i = start
    n = len(text)
    while i < n:
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            # an apostrophe inside a bare word (don't) is not a quote
            if ch == "'" and i > 0 and text[i - 1].isalnum():
                pass
            else:
                quote = ch
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if not stack or stack.pop() != ch:
                return -1
            if not stack:
                return i + 1
        i += 1
    return -1


_BARE = {"True": "true", "False": "false", "None": "null"}


def _relax(text: str) -> str:
    """Cheap repairs of near-JSON: trailing commas, single-quoted strings, Python literals."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif ch == "'":
            j = i + 1
            buf: list[str] = []
            while j < n and text[j] != "'":
                if text[j] == "\\" and j + 1 < n:
                    nxt = text[j + 1]
                    buf.append("'" if nxt == "'" else "\\" + nxt)
                    j += 2
                    continue
                buf.append('\\"' if text[j] == '"' else text[j])
                j += 1
            out.append('"' + "".join(buf) + '"')
            i = j + 1
        elif ch == ",":
            j = i + 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j < n and text[j] in "}]":
                i += 1  # drop the trailing comma
            else:
                out.append(ch)
                i += 1
        elif ch.isalpha():
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word = text[i:j]
            out.append(_BARE.get(word, word))
            i = j
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _loads(candidate: str) -> tuple[bool, Any, Optional[str]]:
    """json.loads, then (only for objects/arrays) once more after ``_relax``: relaxing
    bare prose would turn an answer like "None" into a JSON null."""
    try:
        return True, json.loads(candidate), None
    except ValueError as exc:
        first_error = str(exc)
    if candidate[:1] in "{[":
        try:
            return True, json.loads(_relax(candidate)), None
        except ValueError:
            pass
    return False, None, first_error


_OPEN = re.compile(r"[\[{]")


def _structures(text: str) -> Iterator[str]:
    """Top-level balanced ``{...}`` / ``[...]`` spans of ``text``, left to right.

    Never yields a span nested in an earlier one: if an object is cut off, its inner
    objects are fragments, and returning one as "the answer" would lose data quietly.
    """
    pos = 0
    for _ in range(_MAX_CANDIDATES):
        m = _OPEN.search(text, pos)
        if m is None:
            return
        end = _balanced_end(text, m.start())
        if end < 0:
            return  # unbalanced: everything after it lies inside it
        yield text[m.start() : end]
        pos = end


def parse_json(text: str) -> Any:
    """Parse a model's answer that should be JSON but may not be clean.

    Tries, in order: the whole text; the contents of ``` fences (``json`` or not,
    closed or cut off); the first balanced object/array inside surrounding prose.
    Each candidate is retried after cheap repairs (trailing commas, single quotes,
    ``True``/``False``/``None``). Truncated JSON is *not* guessed at: losing the
    tail silently is worse than a repair round-trip. Raises ``JSONParseError``.
    """
    if not isinstance(text, str):
        raise JSONParseError(f"expected text, got {type(text).__name__}")
    stripped = text.strip().lstrip("\ufeff")
    if not stripped:
        raise JSONParseError("empty answer")
    ok, value, error = _loads(stripped)
    if ok:
        return value
    first_error = error
    regions = [m.group(2).strip() for m in _FENCE.finditer(stripped)] + [stripped]
    seen: set[str] = set()
    for region in regions:
        if not region:
            continue
        if region != stripped and region not in seen:
            seen.add(region)
            ok, value, _ = _loads(region)
            if ok:
                return value
        for candidate in _structures(region):
            if candidate in seen:
                continue
            seen.add(candidate)
            ok, value, _ = _loads(candidate)
            if ok:
                return value
    snippet = stripped[:120].replace("\n", " ")
    if not any(ch in stripped for ch in "{["):
        raise JSONParseError(f"no JSON object or array in the answer: {snippet!r}")
    raise JSONParseError(f"no complete JSON value found ({first_error}); answer began {snippet!r}")


def complete_items(text: str, key: str) -> list[Any]:
    """The elements of the array under ``key`` that an answer cut mid-way wrote in full.

    Nothing is guessed: an element counts only if it parses whole, and reading stops at the
    first one that does not (where the cut fell). ``[]`` when ``key`` opens no array.
    """
    found = re.search(r'["\']' + re.escape(key) + r'["\']\s*:\s*\[', text)
    if found is None:
        return []
    decoder, at = json.JSONDecoder(), found.end()
    items: list[Any] = []
    while True:
        while at < len(text) and text[at] in " \t\r\n,":
            at += 1
        if at >= len(text) or text[at] == "]":
            return items
        try:
            item, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            return items
        items.append(item)
