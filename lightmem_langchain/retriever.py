"""``LightMemRetriever``: LightMem retrieval as a LangChain ``BaseRetriever``.

Each ``Document`` is one memory: ``page_content`` is the memory text and the
metadata carries what a chain needs to cite or filter it (id, score, rank, the
retrievers that found it, ``time_stamp``, ``recorded_at``, speaker, ``source_ids``,
``entry_type``, scope and the entry's own metadata). ``Document.id`` is the memory id.

The retriever's fields are its defaults; any of them can be overridden per call
(``retriever.invoke(q, k=3, user_id="maya")``), and, being pydantic fields, they
work with ``configurable_fields`` so one chain can serve many users.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from lightmem_core import Hit, InvalidInputError

from ._common import hit_to_document, retrieve_kwargs

_OVERRIDABLE = frozenset(
    {"k", "filters", "user_id", "agent_id", "session_id", "strategy", "hierarchical", "include_superseded", "min_score"}
)


class LightMemRetriever(BaseRetriever):
    """Memories of one scope for a query, best first.

    ``user_id`` left unset means the memory's ``default_user_id`` (single-user apps);
    multi-user chains should set it per call or through ``configurable_fields``.
    With ``hierarchical=True`` the core ranks period summaries first and returns them
    in front of the ``k`` entries.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    memory: Any = Field(description="A LightMemory.", exclude=True)
    user_id: Optional[str] = None
    agent_id: Optional[str] = None
    session_id: Optional[str] = None
    k: int = Field(4, ge=1, le=1000, description="How many memories to return.")
    strategy: Optional[Literal["embedding", "context", "hybrid"]] = None
    filters: Optional[dict[str, Any]] = Field(
        None, description="Core filters, e.g. {'time_stamp': {'gte': '2025-01-01'}}."
    )
    hierarchical: Optional[bool] = None
    include_superseded: bool = False
    min_score: Optional[float] = None

    def _options(self, overrides: dict[str, Any]) -> tuple[int, dict[str, Any], Optional[float]]:
        unknown = set(overrides) - _OVERRIDABLE
        if unknown:
            raise InvalidInputError(
                ",".join(sorted(unknown)),
                f"not an option of {type(self).__name__}; expected some of {sorted(_OVERRIDABLE)}",
            )
        opts = {name: overrides.get(name, getattr(self, name)) for name in _OVERRIDABLE}
        kwargs = retrieve_kwargs(
            strategy=opts["strategy"], hierarchical=opts["hierarchical"], include_superseded=opts["include_superseded"]
        )
        kwargs.update(
            filters=opts["filters"], user_id=opts["user_id"], agent_id=opts["agent_id"], session_id=opts["session_id"]
        )
        return opts["k"], kwargs, opts["min_score"]

    @staticmethod
    def _documents(hits: list[Hit], min_score: Optional[float]) -> list[Document]:
        return [hit_to_document(h) for h in hits if min_score is None or h.score >= min_score]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        k, opts, min_score = self._options(kwargs)
        return self._documents(self.memory.retrieve(query, k, **opts), min_score)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        k, opts, min_score = self._options(kwargs)
        return self._documents(await self.memory.aretrieve(query, k, **opts), min_score)
