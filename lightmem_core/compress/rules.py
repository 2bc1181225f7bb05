"""The keep-rules: which chunks of a turn carry facts, and which chunks a rate keeps.

The unit that is kept or dropped is a whitespace-delimited chunk ("Caroline's", "3:30pm,",
"2023-05-08"), so facts are never cut in half. Chunks without a letter or digit (emoji,
dashes) are dropped and do not count as words.

Fact-carrying words are always kept, even beyond the budget (they count towards it, but
at least ``rate / 2`` of the other words stay too): anything with a digit, month and
weekday names, number words, "yesterday"/"today"/..., time phrases such as "last week" /
"two days ago" / "3 pm", and (option ``keep_names``, on by default) names: capitalised
words that are not sentence-initial (or that appear capitalised mid-sentence elsewhere in
the same batch), and acronyms.

Word order is kept; sentence-final ``.!?`` of a dropped word moves to the last kept word
so sentence boundaries survive. A non-empty input never gives an empty text.

Every provider scores chunks its own way (word frequency, a causal LM's surprisal, the
LLMLingua-2 classifier); these rules are what they have in common, so a model never
decides alone whether a date or a name survives.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from ..cues import en
from .base import Compressed, _ratio

# --- chunk analysis ----------------------------------------------------------------------

_CHUNK = re.compile(r"\S+")
_HAS_ALNUM = re.compile(r"[^\W_]")
_HAS_DIGIT = re.compile(r"\d")
_SENT_END = re.compile(r"[.!?…]+[\"'”’)\]]*$")
_EDGE = "\"'“”‘’«»()[]{}<>.,;:!?…*_~`-–—/\\|"

# The words are English cues (cues.en); these are the sets the rules look words up in.
_MONTHS = frozenset(en.MONTHS) | en.MONTH_ABBREVIATIONS
_WEEKDAYS = frozenset(en.WEEKDAYS) | en.WEEKDAY_ABBREVIATIONS
_NUMBER_WORDS = frozenset(en.NUMBER_WORDS) - en.PRONOUN_NUMBERS
_QUANTITY = frozenset(en.NUMBER_WORDS) | en.QUANTIFIERS


@dataclass
class _Analysis:
    text: str
    chunks: list[str]
    spans: list[tuple[int, int]]
    cores: list[str]  # chunk without edge punctuation ("" for chunks without letters/digits)
    lower: list[str]
    is_word: list[bool]
    initial: list[bool]  # first word of a sentence
    sent_end: list[bool]  # chunk ends with . ! ? (possibly followed by quotes/brackets)
    forced: list[bool] = field(default_factory=list)


# --- the fact rules: what is always kept -------------------------------------------------


def _is_acronym(core: str) -> bool:
    letters = [c for c in core if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters) and core.lower() not in en.STOPWORDS


def _scan(text: str) -> _Analysis:
    chunks: list[str] = []
    spans: list[tuple[int, int]] = []
    cores: list[str] = []
    is_word: list[bool] = []
    sent_end: list[bool] = []
    initial: list[bool] = []
    new_sentence = True
    prev_end = 0
    for m in _CHUNK.finditer(text):
        chunk = m.group(0)
        start = m.start()
        if start > prev_end + 1 and "\n" in text[prev_end:start]:
            new_sentence = True
        prev_end = m.end()
        core = chunk.strip(_EDGE)
        word = bool(core) and bool(_HAS_ALNUM.search(core))
        end = bool(_SENT_END.search(chunk))
        chunks.append(chunk)
        spans.append((start, prev_end))
        cores.append(core if word else "")
        is_word.append(word)
        initial.append(new_sentence and word)
        sent_end.append(end)
        if word:
            new_sentence = end
        elif end:
            new_sentence = True
    lower = [c.lower() for c in cores]
    return _Analysis(text, chunks, spans, cores, lower, is_word, initial, sent_end)


def _mid_sentence_names(scans: Iterable[_Analysis]) -> set[str]:
    """Capitalised words seen mid-sentence anywhere in the batch: names even at a sentence start."""
    names: set[str] = set()
    for a in scans:
        for i, core in enumerate(a.cores):
            if core and not a.initial[i] and core[0].isupper() and a.lower[i] not in en.NOT_NAMES:
                names.add(core)
    return names


def _mark_facts(a: _Analysis, keep_names: bool, known_names: set[str] | frozenset[str] = frozenset()) -> _Analysis:
    """Set ``a.forced``: chunks that carry numbers, dates, times or names."""
    cores, lower = a.cores, a.lower
    forced = [False] * len(a.chunks)
    for i, core in enumerate(cores):
        if not core:
            continue
        low = lower[i]
        if _HAS_DIGIT.search(core) or low in _NUMBER_WORDS or low in en.DAY_WORDS:
            forced[i] = True
        elif core[0].isupper():
            if low in _MONTHS or low in _WEEKDAYS:
                forced[i] = True
            elif (
                keep_names
                and low not in en.NOT_NAMES
                and (not a.initial[i] or core in known_names or _is_acronym(core))
            ):
                forced[i] = True
        elif keep_names and _is_acronym(core):
            forced[i] = True
    # Time phrases: "last week", "two days ago", "3 pm", "next Friday".
    word_idx = [i for i, w in enumerate(a.is_word) if w]
    for k, i in enumerate(word_idx):
        low = lower[i]
        if k:
            prev = word_idx[k - 1]
            p = lower[prev]
            if low in en.TIME_UNITS and (forced[prev] or p in _QUANTITY or p in en.TIME_MODIFIERS):
                forced[i] = True
                if p not in en.ARTICLES:
                    forced[prev] = True
            elif low in en.AGO:
                forced[i] = forced[prev] = True
            elif low in en.AM_PM and _HAS_DIGIT.search(cores[prev]):
                forced[i] = True
        if low in en.TIME_MODIFIERS and k + 1 < len(word_idx):
            nxt = word_idx[k + 1]
            if (lower[nxt] in _WEEKDAYS or lower[nxt] in _MONTHS) and cores[nxt][0].isupper():
                forced[i] = forced[nxt] = True
    a.forced = forced
    return a


def _analyse_batch(texts: Sequence[str], keep_names: bool) -> list[_Analysis]:
    scans = [_scan(t) for t in texts]
    names = _mid_sentence_names(scans) if keep_names else set()
    return [_mark_facts(a, keep_names, names) for a in scans]


# --- selection by rate, and chunks <-> model tokens --------------------------------------


def _select(a: _Analysis, scores: Sequence[float], rate: float) -> Compressed:
    """Keep forced words plus the best-scored others up to ``rate`` of the words."""
    text = a.text
    word_idx = [i for i, w in enumerate(a.is_word) if w]
    n = len(word_idx)
    if n == 0 or rate >= 1.0:
        return Compressed(text, text, 1.0, tuple(a.chunks), tuple([True] * len(a.chunks)))
    keep = [False] * len(a.chunks)
    kept = 0
    for i in word_idx:
        if a.forced[i]:
            keep[i] = True
            kept += 1
    # Forced words count towards the budget, but at least half of the free words' own
    # share stays, so a fact-dense turn keeps its verbs and nouns beside its facts.
    free = [i for i in word_idx if not keep[i]]
    take = max(int(rate * n + 0.5) - kept, int(0.5 * rate * len(free) + 0.5), 0 if kept else 1)
    if take and free:
        free.sort(key=lambda i: (-scores[i], i))
        for i in free[:take]:
            keep[i] = True
    if all(keep[i] for i in word_idx) and not any(not w for w in a.is_word):
        return Compressed(text, text, 1.0, tuple(a.chunks), tuple(keep))
    out: list[str] = []
    for i, chunk in enumerate(a.chunks):
        if keep[i]:
            out.append(chunk)
        elif a.sent_end[i] and out:
            m = _SENT_END.search(chunk)
            punct = m.group(0) if m else "."
            last = out[-1]
            if not _SENT_END.search(last):
                out[-1] = last.rstrip(",;:") + punct.rstrip("\"'”’)]")
    compressed = " ".join(out)
    return Compressed(text, compressed, _ratio(text, compressed), tuple(a.chunks), tuple(keep))


def _unit_index(spans: Sequence[tuple[int, int]]) -> tuple[list[int], list[int]]:
    return [s for s, _ in spans], [e for _, e in spans]


def _unit_of(starts: list[int], ends: list[int], pos: int) -> int:
    """Chunk holding character ``pos`` (or the next chunk when ``pos`` is whitespace)."""
    j = bisect.bisect_right(starts, pos) - 1
    if j < 0:
        return 0
    if pos >= ends[j] and j + 1 < len(starts):
        return j + 1
    return j
