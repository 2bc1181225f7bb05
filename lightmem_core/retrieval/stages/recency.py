"""For a question about the present, the newest of the chosen hits a little higher."""

from __future__ import annotations

from typing import ClassVar

from .base import ReadState, Stage


class Recency(Stage):
    """One more fusion list over the chosen hits, newest first (``fusion.rank``): its
    weight is ``retrieval.recency_weight`` when the question says "now", and
    ``retrieval.recency_prior`` when it is only asked in the present tense."""

    name: ClassVar[str] = "recency"

    def weight(self, state: ReadState) -> float:
        if state.analysis.says_recent:
            return state.config.recency_weight
        return state.config.recency_prior if state.analysis.present else 0.0
