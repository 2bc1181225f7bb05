"""A conversation stays on a topic for a few turns, so the turn next to a strong match is
often the one that answers: "How'd they like it?" matches the question, the reply after
it holds the answer; "Since I was 17" answers the matched "How long have you been into
art?" before it.

One more list for the fusion: the candidates whose neighbouring turn (the one before or
after it among its session's turns) is among the best turns of a first fusion, in the
order of that neighbour's rank. It only re-weighs what the plain lists found; it adds no
candidate and no search, only one journal read of the best turns' neighbours.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from ...drive import Op, call
from ...store.base import Record
from ..candidates import Boost, CandidateList, ListKind
from ..fusion import rank
from .base import ReadState, Stage


class NeighbourSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    depth: int = Field(
        10, gt=0, description="How many of the first fusion's best turns lend weight to their neighbours."
    )
    weight: float = Field(0.25, ge=0, description="Weight of the neighbours' list against a plain list.")
    counting: bool = Field(
        False,
        description="Also for questions that count ('how many plants did I buy?'): they want every mention, and the "
        "turns around the best one are not more mentions but push the last ones out.",
    )
    said_now: bool = Field(
        False,
        description="Also for questions that say they are about now ('who is the user dating now?'): there the "
        "latest statement is wanted, and the turns around an older match only crowd it out.",
    )


class Neighbours(Stage):
    name: ClassVar[str] = "neighbours"
    Settings: ClassVar[type[BaseModel]] = NeighbourSettings

    def extend_op(self, state: ReadState) -> Op[None]:
        """Appends the neighbours' list to ``state.lists`` (before the fusion runs)."""
        assert isinstance(self.settings, NeighbourSettings)
        lookup = state.sources.neighbour_turns
        if lookup is None or not self.settings.weight or len(state.lists) < 2:
            return
        if (state.analysis.says_recent and not self.settings.said_now) or (
            state.analysis.counts and not self.settings.counting
        ):
            return
        first = rank(state.lists, limit=self.settings.depth, rrf_k=state.config.rrf_k, per_source_limit=1)
        # only the best turns' neighbours are read: one indexed step each way per turn
        anchors = list(dict.fromkeys(t for rec, _, _ in first if (t := first_turn(rec.payload))))
        around = yield call(lookup, state.scope, anchors)
        candidates = list({r.id: r for cl in state.lists for r in cl.records}.values())
        ordered = neighbour_order(anchors, candidates, around)
        if ordered:  # labelled by the retriever of the plain list: "neighbour:context" for BM25 alone
            kind = ListKind(state.lists[0].kind.retriever, Boost.NEIGHBOUR)
            state.lists.append(CandidateList(kind, ordered, self.settings.weight))


def neighbour_order(
    anchors: Sequence[str], candidates: Sequence[Record], around: Mapping[str, Sequence[str]]
) -> list[Record]:
    """The candidates whose turn is next to one of ``anchors`` (turn ids, best first;
    ``around`` gives each one's neighbours in its session), ordered by the best anchor
    they are next to; an anchor may be one too."""
    support: dict[str, int] = {}
    for n, turn in enumerate(anchors):
        for near in around.get(turn, ()):
            support.setdefault(near, n)
    placed = [(support[t], i, rec) for i, rec in enumerate(candidates) if (t := first_turn(rec.payload)) in support]
    return [rec for _, _, rec in sorted(placed, key=lambda p: p[:2])]


def first_turn(payload: Mapping[str, Any]) -> str:
    ids = payload.get("source_ids")
    return str(ids[0]) if ids else ""


__all__ = ["NeighbourSettings", "Neighbours", "neighbour_order"]
