"""What a question says before anything is searched: its time, its speakers, its tense.

Read once per request; every later step reads the ``QueryAnalysis`` instead of the
raw text, so each cue is matched in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Optional, Sequence

from .. import textproc, timeparse
from ..cues import en
from ..store.base import Condition, Filter, Match


def without_roles(query: str) -> str:
    """The query without "the user"/"the assistant", for matching text.

    In a user's own memory the role names nobody in particular: it would only match the
    "user:" prefix of every entry, most of all the shortest ones. Who spoke is left to
    the speaker boost (``speaker_filter``).
    """
    text = re.sub(r"\s+", " ", en.ROLE_WORDS.sub(" ", query)).strip()
    return text if textproc.content_words(text) else query


def without_names(text: str, names: Sequence[str]) -> str:
    """The text without these names (and their possessive), unless nothing would be left
    to match; the speaker boost takes their place, as it does for the roles."""
    if not names:
        return text
    pattern = r"\b(?:" + "|".join(map(re.escape, names)) + r")(?:'s)?\b"
    stripped = re.sub(r"\s+", " ", re.sub(pattern, " ", text)).strip()
    return stripped if textproc.content_words(stripped) else text


def named_speakers(query: str, limit: int = 4) -> tuple[str, ...]:
    """Capitalised words of the query that may name a speaker ("What did Caroline paint?",
    "What do Melanie's kids like?").

    Only candidates: a filter on ``speaker_name`` that matches nobody returns nothing, so a
    wrong guess costs a little time, never a result.
    """
    words = [w.removesuffix("'s") for w in en.CAPITALISED.findall(query) if w.lower() not in textproc.STOPWORDS]
    return tuple(dict.fromkeys(words))[:limit]


ASKER_ROLE = "user"  # who "I" is in a question put to the memory: the user whose chats it holds


def speaker_filter(query: str, *, asker: bool = True) -> Optional[Filter]:
    """Entries said by someone the query names: a person ("Caroline"), a role ("the user"),
    or, with ``asker``, the asker ("what did I buy?": the user's own turns)."""
    names = named_speakers(query)
    roles = tuple(dict.fromkeys(m.lower() for m in en.ROLE_WORDS.findall(query)))
    if asker and not roles and en.ASKER.search(query):
        roles = (ASKER_ROLE,)
    conds: list[Condition] = []
    if names:
        conds.append(Match("speaker_name", any=names))
    if roles:
        conds.append(Match("speaker_id", any=roles))
    if not conds:
        return None
    return Filter(must=tuple(conds)) if len(conds) == 1 else Filter(should=tuple(conds))


def asks_for_name(query: str) -> bool:
    return bool(en.NAME_QUESTION.search(query))


@dataclass(frozen=True)
class QueryAnalysis:
    """The question as the read path sees it.

    ``text`` is what is matched (without the time expression when it bounds a period,
    without role words); ``time`` what it says about time (None when temporal parsing
    is off).
    """

    query: str
    text: str
    time: Optional[timeparse.TimeQuery]

    @classmethod
    def of(cls, query: str, now: Optional[datetime], *, temporal: bool) -> QueryAnalysis:
        tq = timeparse.parse_query_time(query, now) if temporal else None
        return cls(query, without_roles(tq.text if tq is not None and tq.has_range else query), tq)

    @property
    def period(self) -> Optional[tuple[Optional[datetime], Optional[datetime]]]:
        """The period the question names outright ("last week", "in May 2023")."""
        tq = self.time
        return (tq.start, tq.end) if tq is not None and tq.has_range else None

    @property
    def present(self) -> bool:
        """A question about the present state ("where does she live?"), with no period."""
        tq = self.time
        return tq is not None and not tq.has_range and tq.present

    @property
    def counts(self) -> bool:
        """The question counts or totals ("how many classes do I attend?")."""
        return bool(en.COUNTING.search(self.query))

    @property
    def says_recent(self) -> bool:
        """The question says it is about now ("where do I live now?")."""
        tq = self.time
        return tq is not None and not tq.has_range and tq.recency

    @property
    def wants_name(self) -> bool:
        return self.present and asks_for_name(self.query)
