"""For a question about the present, the current state before the one it replaced.

Offline memory keeps every version of a fact ("I live in London", later "I moved to
Manchester"); the question "where do I live?" needs the newer first. Only the order
changes, and the older stays in the list.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Mapping, Optional, Sequence

from pydantic import BaseModel, ConfigDict, Field

from ...cues import en
from ...drive import Op
from ...indexing import from_payload
from ...types import Hit
from ...update import attributes
from ..query import QueryAnalysis
from .base import HitStage, ReadState


class CurrentStateSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    now_reach: Optional[float] = Field(
        1.5,
        gt=0,
        description="A newer turn that says 'now' goes before an older one that does not when the older's score is "
        "at most this many times the newer's (None: no such rule).",
    )
    close: Optional[float] = Field(
        0.05,
        ge=0,
        description="Cosine margin within which two turns count as equally about the question, so the newer goes "
        "first (None: no such rule). Read on the vector list alone: the lexical list rewards an old statement for "
        "repeating the question's words, which is how an original fact is phrased and its update is not.",
    )
    close_needs_now: bool = Field(
        True,
        description="Apply the 'close' rule only to questions that say they are about now ('where do I live now?'), "
        "not to every present-tense one: 'What does Caroline like?' is as much about the past.",
    )


class CurrentStateFirst(HitStage):
    name: ClassVar[str] = "current_state_first"
    Settings: ClassVar[type[BaseModel]] = CurrentStateSettings

    def apply(self, state: ReadState) -> Op[None]:
        if not state.analysis.present:
            return
        turns = {
            rec.id: [state.payloads[i] for i in group if i in state.payloads]
            for (rec, _, _), group in zip(state.ranked, state.groups)
        }
        # a turn's closeness to the question: its best sentence in the vector list
        cosine = state.base_vector_scores()
        similarity = {
            rec.id: max(cosine[i] for i in group if i in cosine)
            for (rec, _, _), group in zip(state.ranked, state.groups)
            if any(i in cosine for i in group)
        }
        assert isinstance(self.settings, CurrentStateSettings)
        state.hits = current_state_first(
            state.hits, attributes, turns, similarity, rules_for(self.settings, state.analysis)
        )
        return
        yield  # pragma: no cover


def rules_for(settings: CurrentStateSettings, analysis: QueryAnalysis) -> CurrentStateSettings:
    """The rules that apply to this question: ``close`` only when it says it is about now,
    unless ``close_needs_now`` is off."""
    if settings.close is None or analysis.says_recent or not settings.close_needs_now:
        return settings
    return settings.model_copy(update={"close": None})


def current_state_first(
    hits: list[Hit],
    attributes: Callable[[str], Any],
    turns: Optional[Mapping[str, Sequence[Mapping[str, Any]]]] = None,
    similarity: Optional[Mapping[str, float]] = None,
    settings: Optional[CurrentStateSettings] = None,
) -> list[Hit]:
    """A newer hit about the same single-valued attribute (where one lives, works, who
    one is with), said by the same speaker, goes before the older one it contradicts;
    ``attributes(text)`` names the attributes a text is about (``update.attributes``).

    ``turns`` gives, per hit id, the payloads of every sentence of its turn: a turn is
    about what any of its sentences is about ("Minneapolis winters are something else. I
    live near Lake Harriet."), and a hit moved ahead for an attribute shows its turn's
    sentence that states it, if the one it showed does not. Whatever the attribute, a
    newer turn that states something "now" goes before an older one that does not, when
    their scores are within ``now_reach`` of each other (the user marked it current).

    ``similarity`` gives, per hit id, its turn's best cosine to the question. A newer turn
    about as close in meaning (within ``close``) goes before an older one of the same
    speaker whatever it says: for a question about the present, the latest of two equally
    fitting answers is the better guess.
    """
    turns = turns or {}
    sim = similarity or {}
    rules = settings or CurrentStateSettings()

    def texts(hit: Hit) -> list[str]:
        return [str(p.get("memory") or "") for p in turns.get(hit.entry.id, ())] or [hit.entry.memory]

    def says_now(text: str) -> bool:
        return bool(en.SAID_NOW.search(text)) and not text.rstrip().endswith("?")

    # per hit: what its turn is about, whether it says "now", its closeness (keyed by the
    # id it came with: a hit moved ahead for an attribute may show another sentence)
    out: list[tuple[Hit, frozenset[str], bool, Optional[float]]] = []
    for hit in hits:
        own = texts(hit)
        mine: frozenset[str] = frozenset().union(*(attributes(t) for t in own))  # once per hit, not once per pair
        now = any(says_now(t) for t in own)
        mine_sim = sim.get(hit.entry.id)
        when = hit.entry.time_stamp or hit.entry.recorded_at
        at, shared = len(out), frozenset[str]()
        if when is not None:
            for i, (prev, theirs, prev_now, their_sim) in enumerate(out):
                then = prev.entry.time_stamp or prev.entry.recorded_at
                if then is None or then >= when or prev.entry.speaker_id != hit.entry.speaker_id:
                    continue
                if mine & theirs:
                    at, shared = i, mine & theirs
                    break
                if rules.now_reach is not None and now and not prev_now and prev.score <= hit.score * rules.now_reach:
                    at = i
                    break
                if (
                    rules.close is not None
                    and mine_sim is not None
                    and their_sim is not None
                    and mine_sim >= their_sim - rules.close
                ):
                    at = i
                    break
        if shared and not attributes(hit.entry.memory) & shared:
            stating = [(p, t) for p, t in zip(turns.get(hit.entry.id, ()), own) if attributes(t) & shared]
            stating.sort(key=lambda pt: bool(en.ENDED.search(pt[1])))  # stable: a current state first
            if stating:
                hit = hit.model_copy(update={"entry": from_payload(stating[0][0])})
        out.insert(at, (hit, mine, now, mine_sim))
    return [h.model_copy(update={"rank": i + 1}) for i, (h, *_) in enumerate(out)]
