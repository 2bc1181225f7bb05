"""Which sentence of a turn a hit shows.

Offline entries are the sentences of a turn, indexed with the turn around them, so the
fusion picks among a turn's sentences almost by chance. ``closest_sentence`` shows the
one closest in meaning to the question; for a question about the present, the
preferences below go first, in this order. Only what a turn shows changes, never which
turns come back or their order.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Optional, Sequence

from ... import textproc
from ...cues import en
from ...drive import Op
from ...store.base import Record
from ..candidates import CandidateList
from ..fusion import Ranked
from ..query import QueryAnalysis
from .base import HitStage, ReadState, Stage


def said(text: str, payload: Mapping[str, Any]) -> str:
    """The text without its "Caroline: " prefix: the speaker's own name answers nothing."""
    speaker = payload.get("speaker_name") or payload.get("speaker_id")
    return text[len(speaker) + 2 :] if speaker and text.startswith(f"{speaker}: ") else text


def names_in(text: str) -> list[str]:
    """Capitalised names in a text, without numbers and capitalised stop words. Read from
    the text rather than the entry's ``entities``, which an LLM extractor fills its own way."""
    return [e for e in textproc.entities(text) if any(c.isalpha() for c in e) and e.lower() not in textproc.STOPWORDS]


def asks_only(text: str) -> bool:
    """A question that tells nothing about the asker: no name, and "I" only as the
    subject of the question itself ("How should I start?"), never of a statement inside
    it ("Any tips for Denver now that I live here?"). Such a sentence resembles a
    question in form, so the vector ranks it high against any question, yet it answers none."""
    if not text.rstrip().endswith("?") or names_in(text):
        return False
    return not en.FIRST_PERSON.search(en.INVERTED_FIRST_PERSON.sub(" ", text))


class SentencePreference(Stage):
    """One reason to show a sentence before its turn's others, for a present-state question.

    ``demerit`` is 1 for a sentence this preference puts later, else 0."""

    def demerit(self, text: str, spoken: str, analysis: QueryAnalysis) -> int:
        raise NotImplementedError


class StatementFirst(SentencePreference):
    """A statement before a bare request that tells nothing about the asker (``asks_only``)."""

    name: ClassVar[str] = "statement_first"

    def demerit(self, text: str, spoken: str, analysis: QueryAnalysis) -> int:
        return int(asks_only(spoken))


class NameForName(SentencePreference):
    """When the question asks for a name (who, where, which city), a sentence holding one."""

    name: ClassVar[str] = "name_for_name"

    def demerit(self, text: str, spoken: str, analysis: QueryAnalysis) -> int:
        return int(analysis.wants_name and not names_in(spoken))


# Two more were measured and removed (benchmarks/README.md, "Ablation"): a sentence saying a state
# ended goes last, and one saying "now" goes first; on the knowledge-update sets the first cost
# four cases of 360 and the second changed none.
PREFERENCES: tuple[type[SentencePreference], ...] = (StatementFirst, NameForName)


class ClosestSentence(HitStage):
    """Each kept hit replaced by the sentence of its turn that best matches the question.

    "Best" is the sentence's own similarity, recovered from the vector list's score and
    the blend norm ``_dn`` (the lexical list mostly sees the turn's shared context words;
    without ``_dn`` the vector list's order). The hit keeps its fused score.
    """

    name: ClassVar[str] = "closest_sentence"

    def __init__(self, settings: Any = None, preferences: Sequence[SentencePreference] = ()) -> None:
        super().__init__(settings)
        self.preferences = tuple(preferences)

    def apply(self, state: ReadState) -> Op[None]:
        state.ranked = choose_sentences(
            state.ranked, state.siblings, state.lists, state.payloads, self.preferences, state.analysis
        )
        return
        yield  # pragma: no cover


def choose_sentences(
    ranked: Sequence[Ranked],
    siblings: Mapping[str, Sequence[str]],
    lists: Sequence[CandidateList],
    payloads: Mapping[str, Mapping[str, Any]],
    preferences: Sequence[SentencePreference] = (),
    analysis: Optional[QueryAnalysis] = None,
) -> list[Ranked]:
    """Per ranked hit, the sentence of its turn to show; ``preferences`` apply only to a
    question about the present."""
    if not siblings:
        return list(ranked)
    if analysis is None or not analysis.present:
        preferences = ()
    # n * cosine(query, blended vector) = (1 - w) * cosine(query, fact) + w * cosine(query, context):
    # the context term is the same for every sentence of a turn, so this orders them by
    # their own meaning alone. Stores written before "_dn" fall back to the list's order.
    dense: list[Record] = next((cl.records for cl in lists if cl.is_base_vector_list), [])
    position = {r.id: float(i) for i, r in enumerate(dense)}
    own = {
        r.id: -float(r.score or 0.0) * float(payloads[r.id]["_dn"])
        for r in dense
        if "_dn" in (payloads.get(r.id) or {})
    }
    by_id = {r.id: r for cl in lists for r in cl.records}

    def key(rid: str) -> tuple[Any, ...]:
        payload = payloads.get(rid) or {}
        text = str(payload.get("memory") or "")
        spoken = said(text, payload)
        return (
            *(p.demerit(text, spoken, analysis) for p in preferences),  # type: ignore[arg-type]
            own.get(rid, 0.0),
            position.get(rid, float(len(position))),
        )

    out: list[Ranked] = []
    for rec, score, found in ranked:
        group = [rid for rid in (rec.id, *siblings.get(rec.id, ())) if rid in payloads]
        best = min(group, key=key) if len(group) > 1 else rec.id
        out.append((by_id[best] if best != rec.id else rec, score, found))
    return out
