"""Evidence gathers in sessions: a session where several turns match the question is
more likely the one it is about than a session with one stray match."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from .base import ReadState, Stage


class SessionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weight: float = Field(1.0, gt=0, description="Fusion weight of the session-evidence list.")
    depth: int = Field(1, ge=1, le=20, description="A session's evidence: the summed score of its best this-many.")


class SessionEvidence(Stage):
    """One more fusion list (``fusion.with_session_evidence``): the candidates ordered by
    their session's evidence. Not for a question about the present state, which the
    latest mention answers, not the session that talked most about it."""

    name: ClassVar[str] = "session_evidence"
    Settings: ClassVar[type[BaseModel]] = SessionSettings

    @property
    def depth(self) -> int:
        assert isinstance(self.settings, SessionSettings)
        return self.settings.depth

    def weight(self, state: ReadState) -> float:
        assert isinstance(self.settings, SessionSettings)
        return 0.0 if state.analysis.present else self.settings.weight
