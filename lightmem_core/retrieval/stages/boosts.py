"""Lists that only re-weigh: the same query within a period, a speaker's turns, or the
entries under the best summaries. An entry they find counts once more in the fusion."""

from __future__ import annotations

from typing import ClassVar, Optional

from ... import timeparse
from ...config import RetrievalConfig
from ...drive import Op
from ...store.base import Filter, HasIds
from ..candidates import Boost
from ..filters import time_filter
from ..query import speaker_filter
from ..search import ranked_search_op
from .base import BoostStage, ReadState


class PeriodBoost(BoostStage):
    """The period the question names ("last week", "in May 2023"), or the one around an
    event it names ("before the trip to Paris"), dated from the best entry about it.
    With ``retrieval.temporal="filter"`` the period restricts every list instead."""

    name: ClassVar[str] = "period"
    boost: ClassVar[Boost] = Boost.PERIOD

    def prepare(self, state: ReadState) -> Op[Optional[Filter]]:
        a = state.analysis
        if a.period is not None:
            return time_filter(*a.period)
        if a.anchor is None or a.time is None:
            return None
        best = yield from ranked_search_op(
            state.sources.entries,
            state.scope,
            state.request.strategy,
            dense=state.anchor_dense,
            sparse=state.sources.sparse(a.anchor, state.request.strategy),
            limit=1,
            flt=state.filter,
            config=state.config,
        )
        if not best:
            return None
        when = best[0].entry.time_stamp or best[0].entry.recorded_at
        return time_filter(*timeparse.period_around(when, a.time.relation))

    def restricts(self, config: RetrievalConfig) -> bool:
        return config.temporal == "filter"

    def weight(self, config: RetrievalConfig) -> float:
        return config.temporal_weight


class SpeakerBoost(BoostStage):
    """Turns said by someone the question names ("What did Caroline paint?", "the user")."""

    name: ClassVar[str] = "speaker"
    boost: ClassVar[Boost] = Boost.SPEAKER

    def prepare(self, state: ReadState) -> Op[Optional[Filter]]:
        return speaker_filter(state.request.query) if state.config.speaker_weight else None
        yield  # pragma: no cover

    def weight(self, config: RetrievalConfig) -> float:
        return config.speaker_weight


class Hierarchical(BoostStage):
    """Level one: the best session summaries, returned ahead of the entries; level two:
    the entries they cover, favoured in the fusion. Runs when a request asks for it
    (``retrieve(hierarchical=True)`` or ``retrieval.hierarchical``)."""

    name: ClassVar[str] = "hierarchical"
    boost: ClassVar[Boost] = Boost.SUMMARY

    def prepare(self, state: ReadState) -> Op[Optional[Filter]]:
        if not state.request.hierarchical or state.request.summaries_only:
            return None
        state.summaries = yield from ranked_search_op(
            state.sources.summaries,
            state.scope,
            state.request.strategy,
            dense=state.dense,
            sparse=state.sparse,
            limit=state.config.summary_limit,
            flt=state.request.filter,
            config=state.config,
            boost=Boost.SUMMARY,
        )
        ids = tuple(dict.fromkeys(i for h in state.summaries for i in h.entry.metadata.get("entry_ids") or ()))
        return Filter(must=(HasIds(ids),)) if ids else None

    def weight(self, config: RetrievalConfig) -> float:
        return config.drill_weight
