"""Candidates are ranked on a few payload keys; full payloads only for the kept few."""

from __future__ import annotations

from typing import ClassVar, Optional

from ...drive import Op, call
from ..fusion import RANKING_FIELDS
from .base import ReadState, Stage


class Hydrate(Stage):
    """Each list returns up to ``retrieval.candidates`` records: carrying only the ranking
    keys through the search and reading whole payloads by id for the hits (and the other
    sentences of their turns) moves far less data than full payloads for all."""

    name: ClassVar[str] = "hydrate"

    @property
    def search_fields(self) -> Optional[tuple[str, ...]]:
        return RANKING_FIELDS

    def apply(self, state: ReadState) -> Op[None]:
        ids = [rec.id for rec, _, _ in state.ranked] + [i for group in state.siblings.values() for i in group]
        state.payloads = {r.id: r.payload for r in (yield call(state.store.get, state.scope, ids))}
