"""What a stage is, and the state of one request that the stages read and change."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Optional, Sequence

from pydantic import BaseModel, ConfigDict

from ...config import RetrievalConfig
from ...drive import Op
from ...embed import Embedder
from ...lexical import Bm25Encoder, SparseVec
from ...store.base import Filter, MemoryStore
from ...types import Hit, Scope
from ..candidates import Boost, CandidateList
from ..fusion import Ranked
from ..query import QueryAnalysis
from ..request import RetrieveRequest


class NoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Sources:
    """What the read path searches: the entries, the summaries, and the two encoders."""

    entries: MemoryStore
    summaries: MemoryStore
    embedder: Embedder
    bm25: Bm25Encoder
    # per turn id of a scope: the turns just before and after it in its session
    neighbour_turns: Optional[Callable[[Scope, Sequence[str]], Mapping[str, Sequence[str]]]] = None

    def sparse(self, text: str, strategy: str) -> Optional[SparseVec]:
        return self.bm25.query(text) if strategy in ("context", "hybrid") else None


@dataclass
class ReadState:
    """One request on its way through the read path; each stage reads and fills its part."""

    request: RetrieveRequest
    analysis: QueryAnalysis
    config: RetrievalConfig
    scope: Scope
    sources: Sources
    store: MemoryStore  # the collection this request ranks: entries, or summaries when filtered so
    dense: Optional[list[float]] = None
    sparse: Optional[SparseVec] = None
    filter: Optional[Filter] = None  # the request's own filter, and current-only unless asked otherwise
    summaries: list[Hit] = field(default_factory=list)  # returned ahead of the entries
    lists: list[CandidateList] = field(default_factory=list)
    ranked: list[Ranked] = field(default_factory=list)
    payloads: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    siblings: dict[str, list[str]] = field(default_factory=dict)  # per kept hit, the other sentences of its turn
    groups: list[list[str]] = field(default_factory=list)  # per ranked hit, every sentence id of its turn
    hits: list[Hit] = field(default_factory=list)

    def base_vector_scores(self) -> dict[str, float]:
        """Cosine of each candidate of the plain vector list to the question."""
        return {r.id: float(r.score or 0.0) for cl in self.lists if cl.is_base_vector_list for r in cl.records}


class Stage:
    """A named step of the read path that can be switched off on its own.

    ``retrieval.stages`` lists the stages that run; ``retrieval.stage_settings[name]``
    sets the typed ``Settings`` of one.
    """

    name: ClassVar[str]
    Settings: ClassVar[type[BaseModel]] = NoSettings

    def __init__(self, settings: Optional[BaseModel] = None) -> None:
        self.settings = settings if settings is not None else self.Settings()


class BoostStage(Stage):
    """Adds a candidate list that only re-weighs: the same query, restricted to a subset
    (a period, a speaker, the entries under the best summaries)."""

    boost: ClassVar[Boost]

    def prepare(self, state: ReadState) -> Op[Optional[Filter]]:
        """The subset this boost searches, or None when the question gives it none."""
        raise NotImplementedError
        yield  # pragma: no cover

    def restricts(self, config: RetrievalConfig) -> bool:
        """Whether the subset restricts every list instead of adding a boost list."""
        return False

    def weight(self, config: RetrievalConfig) -> float:
        raise NotImplementedError


class HitStage(Stage):
    """Changes the hits after fusion: which sentence a turn shows, their order, their window."""

    def apply(self, state: ReadState) -> Op[None]:
        raise NotImplementedError
        yield  # pragma: no cover
