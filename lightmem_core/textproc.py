"""Light text processing shared by extraction, indexing and compression.

Rule-based on purpose: the offline path must run with no model, and these rules are
cheap enough to apply to every turn.
"""

from __future__ import annotations

import re

from .cues import en

STOPWORDS = en.STOPWORDS  # function words and chat fillers (cues.en)

# Sentence ends at . ! ? (or …), with any closing quotes or brackets after it, followed by
# space and an upper-case letter, digit or opening quote, unless the word before the dot is
# a common abbreviation. Only the space between two sentences is cut (group 1), so the
# closing quote stays with its sentence: the pieces joined with spaces are the text.
_ABBREV = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|Prof|Sr|Jr|St|vs|etc|e\.g|i\.e|approx|No)\.$", re.I)
_CLOSERS = "\"'”’)]"
_BOUNDARY = re.compile(r"[.!?…][\"'”’)\]]*(\s+)(?=[\"'“‘(\[]?[A-Z0-9])")
# Initials ("J.K. Rowling", "George R. R. Martin"): single capitals with a dot. They end a
# sentence only when a function word follows ("... in the U.S. It was"), since a name's
# next part ("Rowling") is not one.
_INITIALS = re.compile(r"(?:^|[\s\"'“‘(\[])(?:[A-Z]\.\s?)*[A-Z]\.$")
_NEXT_WORD = re.compile(r"[\"'“‘(\[]?([A-Za-z]+)")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’\-]*")
_POSSESSIVE = re.compile(r"['’]s?$")  # "Jonas's" -> "Jonas", "Jonas'" -> "Jonas"; "Jonas" stays Jonas
_PROPER = re.compile(r"\b[A-Z][a-zA-Z'’\-]+(?:\s+(?:of\s+|de\s+|the\s+)?[A-Z][a-zA-Z'’\-]+)*")
_NUMBER = re.compile(r"\b\d[\d:/.,\-]*\d\b|\b\d\b")


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, whitespace normalised; every other character is kept,
    since the pieces are what extraction stores (``" ".join(parts) == " ".join(text.split())``)."""
    text = " ".join(text.split())
    if not text:
        return []
    parts: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        candidate = text[start : m.start(1)].strip()
        if _ABBREV.search(candidate.rstrip(_CLOSERS)) or _joins_initials(candidate, text, m.end(1)):
            continue
        if candidate:
            parts.append(candidate)
        start = m.end(1)
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return parts


def _joins_initials(candidate: str, text: str, nxt: int) -> bool:
    """True when ``candidate`` ends in initials that the next word continues (a name)."""
    if not _INITIALS.search(candidate):
        return False
    m = _NEXT_WORD.match(text, nxt)
    return not (m and m.group(1).lower() in STOPWORDS)


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def content_words(text: str) -> list[str]:
    return [w.lower() for w in words(text) if w.lower().strip("'’") not in STOPWORDS and len(w) > 1]


def chunk_sentences(text: str, *, min_words: int = 5) -> list[str]:
    """Sentences, with fragments too short to stand alone ("Wow!", "Thanks.") merged
    into a neighbour, so every chunk is a statement and no text is dropped."""
    out: list[str] = []
    carry = ""
    for s in split_sentences(text):
        s = f"{carry} {s}".strip() if carry else s
        if len(content_words(s)) < 2 and len(words(s)) < min_words:
            carry = s
            continue
        out.append(s)
        carry = ""
    if carry:
        if out:
            out[-1] = f"{out[-1]} {carry}"
        else:
            out.append(carry)
    return out


def entities(text: str) -> list[str]:
    """Capitalised word runs that are not just a capitalised stop word, plus numbers."""
    found: list[str] = []
    for m in _PROPER.finditer(text):
        tokens = m.group(0).split()
        while tokens and tokens[0].lower().strip("'’") in STOPWORDS:
            tokens.pop(0)
        if tokens:
            found.append(_POSSESSIVE.sub("", " ".join(tokens)).strip("-'’"))
    found += _NUMBER.findall(text)
    return list(dict.fromkeys(e for e in found if e))


def keywords(text: str, limit: int = 8) -> list[str]:
    return list(dict.fromkeys(w.strip("'’") for w in content_words(text) if len(w) > 2))[:limit]
