"""Lists that only re-weigh: the same query within a period, a speaker's turns, or the
entries under the best summaries. An entry they find counts once more in the fusion."""

from __future__ import annotations

from typing import ClassVar, Optional

from pydantic import BaseModel, ConfigDict, Field

from ...config import RetrievalConfig
from ...drive import Op, call
from ...store.base import Filter, HasIds, Match
from ..candidates import Boost
from ..filters import time_filter
from ..query import named_speakers, speaker_filter
from ..search import ranked_search_op
from .base import BoostStage, ReadState

# Time expressions that name the calendar ("on 3 June, 2023", "in May 2023", "in January"):
# the date something was said or done. Relative ones ("last week", "this weekend", "two weeks
# ago") are the asker's own reckoning, and chats date an event by when it was mentioned, often
# weeks off; boosting them cost LongMemEval more than it gave LoCoMo (benchmarks/README.md).
CALENDAR_KINDS = frozenset(
    {"iso_date", "day_month_year", "month_day_year", "month_year", "day_month", "month_day", "month", "year"}
)


class PeriodSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    relative: bool = Field(False, description="Also boost periods named relative to now ('last week').")


class PeriodBoost(BoostStage):
    """The period the question names on the calendar ("on 3 June, 2023", "in May 2023").
    With ``retrieval.temporal="filter"`` the period restricts every list instead."""

    name: ClassVar[str] = "period"
    boost: ClassVar[Boost] = Boost.PERIOD
    Settings: ClassVar[type[BaseModel]] = PeriodSettings

    def prepare(self, state: ReadState) -> Op[Optional[Filter]]:
        assert isinstance(self.settings, PeriodSettings)
        tq = state.analysis.time
        if state.analysis.period is None or tq is None:
            return None
        if not self.settings.relative and tq.kind not in CALENDAR_KINDS:
            return None
        return time_filter(*state.analysis.period)
        yield  # pragma: no cover

    def restricts(self, config: RetrievalConfig) -> bool:
        return config.temporal == "filter"

    def weight(self, config: RetrievalConfig) -> float:
        return config.temporal_weight


class SpeakerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    asker: bool = Field(
        True,
        description="A question in the first person ('what did I buy?') favours the user's own turns: in a memory "
        "of a user's chats the asker is the user, and the assistant's long answers otherwise crowd them out.",
    )
    embed_without_names: bool = Field(
        True,
        description="The question is embedded without the names of speakers it names ('What does Melanie do to "
        "destress?'): the boost already favours their turns, and in the embedding the name only pulls in their "
        "shortest ones ('Melanie: Everyone deserves that.'). Names that are no speaker here ('my trip to Miami') stay.",
    )


class SpeakerBoost(BoostStage):
    """Turns said by someone the question names ("What did Caroline paint?", "the user", "I")."""

    name: ClassVar[str] = "speaker"
    boost: ClassVar[Boost] = Boost.SPEAKER
    Settings: ClassVar[type[BaseModel]] = SpeakerSettings

    def prepare(self, state: ReadState) -> Op[Optional[Filter]]:
        if not state.config.speaker_weight:
            return None
        assert isinstance(self.settings, SpeakerSettings)
        return speaker_filter(state.request.query, asker=self.settings.asker)
        yield  # pragma: no cover

    def weight(self, config: RetrievalConfig) -> float:
        return config.speaker_weight

    def names_to_leave_out_op(self, state: ReadState) -> Op[tuple[str, ...]]:
        """The names in the question that are speakers of this scope, which the embedded
        question can do without (``embed_without_names``)."""
        assert isinstance(self.settings, SpeakerSettings)
        if not (self.settings.embed_without_names and state.config.speaker_weight):
            return ()
        spoken = []
        for name in named_speakers(state.request.query):
            said = yield call(state.store.count, state.scope, Filter(must=(Match("speaker_name", any=(name,)),)))
            if said:
                spoken.append(name)
        return tuple(spoken)


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
