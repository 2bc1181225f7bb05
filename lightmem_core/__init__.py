"""LightMem for agent frameworks: long-term memory with an embedded Qdrant, offline by default.

Public API only; everything else is an implementation detail that may change. Besides these
names, ``lightmem_core.drive`` is public: the adapters write their operations with it.
"""

from .config import EmbedderConfig, LLMConfig, MemoryConfig
from .embed import Embedder, embedding_matrix
from .errors import (
    AuthError,
    ConfigError,
    ConflictError,
    EmbeddingError,
    InvalidInputError,
    LightMemError,
    LLMError,
    NotFoundError,
    StageNotAvailableError,
    StoreError,
    StoreLockedError,
)
from .journal import TurnRow
from .llm import LLM, BaseLLM, Completion, OpenAICompatibleLLM, Usage, estimate_tokens
from .memory import LightMemory
from .remote import RemoteMemory
from .types import (
    AddResult,
    EntryPage,
    EntryType,
    HistoryRecord,
    Hit,
    MemoryEntry,
    Message,
    Scope,
    SkippedTurn,
    format_hits,
)

__all__ = [
    "LLM",
    "AddResult",
    "BaseLLM",
    "Completion",
    "Embedder",
    "EmbedderConfig",
    "LLMConfig",
    "OpenAICompatibleLLM",
    "RemoteMemory",
    "Usage",
    "embedding_matrix",
    "estimate_tokens",
    "AuthError",
    "ConfigError",
    "ConflictError",
    "EmbeddingError",
    "EntryPage",
    "EntryType",
    "Hit",
    "HistoryRecord",
    "InvalidInputError",
    "LLMError",
    "LightMemError",
    "LightMemory",
    "MemoryConfig",
    "MemoryEntry",
    "Message",
    "NotFoundError",
    "Scope",
    "SkippedTurn",
    "StageNotAvailableError",
    "StoreError",
    "StoreLockedError",
    "TurnRow",
    "format_hits",
]
__version__ = "0.1.0"
