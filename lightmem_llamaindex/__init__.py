"""LlamaIndex adapter for LightMem: long-term memory for chat engines, agents and query engines.

* ``LightMemMemoryBlock`` — a block for ``Memory.from_defaults(memory_blocks=[...])``;
  ``LightMemChatMemory`` — that ``Memory`` saving every turn, not only overflow flushes.
* ``LightMemMemory`` — a complete ``BaseMemory`` (recent chat + recalled memories), like ``Mem0Memory``.
* ``LightMemRetriever`` — memories as ``NodeWithScore`` for query engines and retriever tools.
* ``LlamaIndexLLM`` / ``LlamaIndexEmbedder`` / ``create_lightmemory`` — LlamaIndex models as LightMem's.

Requires ``llama-index-core`` (``pip install "lightmem-agents[llamaindex]"``).
"""

from ._convert import TURN_ID_KEY, stamp_turn_ids
from .block import LightMemChatMemory, LightMemMemoryBlock
from .memory import LightMemMemory
from .models import LlamaIndexEmbedder, LlamaIndexLLM, create_lightmemory, usage_from_response
from .retriever import LightMemRetriever, entry_metadata, hit_to_node

__all__ = [
    "LightMemChatMemory",
    "LightMemMemory",
    "LightMemMemoryBlock",
    "LightMemRetriever",
    "LlamaIndexEmbedder",
    "LlamaIndexLLM",
    "TURN_ID_KEY",
    "create_lightmemory",
    "entry_metadata",
    "hit_to_node",
    "stamp_turn_ids",
    "usage_from_response",
]
