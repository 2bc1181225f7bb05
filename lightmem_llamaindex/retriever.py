"""``LightMemRetriever``: LightMem memories as LlamaIndex nodes.

Anything that takes a ``BaseRetriever`` can read memories this way:
``RetrieverQueryEngine``, ``CondensePlusContextChatEngine``, a
``RetrieverTool`` for an agent, fusion retrievers. Each node is one memory: its
text is the memory, its id the memory id, and its metadata carries the time line
and provenance (time stamps, speaker, the ids of the turns it came from) so answers
can cite where a memory came from.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, List, Mapping, Optional

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from lightmem_core import Hit, LightMemory, MemoryEntry, RemoteMemory

__all__ = ["LightMemRetriever", "entry_metadata", "hit_to_node"]

# What the answering LLM sees next to each memory; ids and provenance stay in metadata
# for the application (and never go into an embedding).
LLM_METADATA_KEYS = ("time_stamp", "weekday", "speaker")


def _iso(value: Optional[datetime]) -> Optional[str]:
    return value.isoformat() if value is not None else None


def entry_metadata(entry: MemoryEntry) -> dict[str, Any]:
    """A memory's metadata as flat JSON-friendly values."""
    return {
        "memory_id": entry.id,
        "time_stamp": _iso(entry.time_stamp),
        "weekday": entry.weekday,
        "recorded_at": _iso(entry.recorded_at),
        "valid_from": _iso(entry.valid_from),
        "valid_to": _iso(entry.valid_to),
        "superseded_by": entry.superseded_by,
        "speaker": entry.speaker_name or entry.speaker_id,
        "speaker_id": entry.speaker_id,
        "speaker_name": entry.speaker_name,
        "source_ids": list(entry.source_ids),
        "entry_type": getattr(entry.entry_type, "value", entry.entry_type),
        "user_id": entry.user_id,
        "agent_id": entry.agent_id,
        "session_id": entry.session_id,
        "topic_label": entry.topic_label,
        "entities": list(entry.entities),
        "version": entry.version,
    }


def hit_to_node(hit: Hit) -> NodeWithScore:
    """One hit as a ``NodeWithScore`` whose node id is the memory id."""
    metadata = entry_metadata(hit.entry)
    metadata["retrievers"] = list(hit.retrievers)
    metadata["rank"] = hit.rank
    metadata["memory"] = hit.entry.memory
    node = TextNode(
        id_=hit.entry.id,
        text=hit.text,  # the sentence with its window, as LlamaIndex's sentence-window retrieval shows it
        metadata=metadata,
        excluded_llm_metadata_keys=[k for k in metadata if k not in LLM_METADATA_KEYS],
        excluded_embed_metadata_keys=list(metadata),
    )
    return NodeWithScore(node=node, score=hit.score)


class LightMemRetriever(BaseRetriever):
    """Retrieve a user's memories for a query, scoped at construction.

    ``hierarchical=True`` puts the session summaries first (then ``limit`` entries;
    None = the store's configured default);
    ``filters`` are the core's filters (time ranges, speaker, entry type, metadata).
    """

    def __init__(
        self,
        lightmem: LightMemory,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        limit: int = 10,
        filters: Optional[Mapping[str, Any]] = None,
        strategy: Optional[str] = None,
        hierarchical: Optional[bool] = None,
        include_superseded: bool = False,
        callback_manager: Optional[CallbackManager] = None,
        verbose: bool = False,
    ) -> None:
        if not isinstance(lightmem, (LightMemory, RemoteMemory)):
            raise TypeError(
                f"lightmem must be a lightmem_core.LightMemory or RemoteMemory, got {type(lightmem).__name__}"
            )
        super().__init__(callback_manager=callback_manager, verbose=verbose)
        self.lightmem = lightmem
        self.user_id = user_id
        self.agent_id = agent_id
        self.session_id = session_id
        self.limit = limit
        self.filters = dict(filters) if filters else None
        self.strategy = strategy
        self.hierarchical = hierarchical
        self.include_superseded = include_superseded

    def _kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "user_id": self.user_id,
            "agent_id": self.agent_id,
            "session_id": self.session_id,
            "strategy": self.strategy,
            "include_superseded": self.include_superseded,
            "hierarchical": self.hierarchical,
        }
        return kwargs

    def _retrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        hits = self.lightmem.retrieve(query_bundle.query_str, self.limit, self.filters, **self._kwargs())
        return [hit_to_node(h) for h in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        hits = await self.lightmem.aretrieve(query_bundle.query_str, self.limit, self.filters, **self._kwargs())
        return [hit_to_node(h) for h in hits]
