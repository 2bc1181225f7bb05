"""LightMem for LangChain v1 and LangGraph: long-term memory for agents in one line.

::

    from lightmem_langchain import LightMemoryMiddleware
    agent = create_agent(model, tools, middleware=[LightMemoryMiddleware(memory)], context_schema=Context)

Exports are resolved lazily: ``import lightmem_langchain`` loads neither LangChain,
LangGraph nor the legacy ``langchain-classic``; each name imports its own module on
first use, so ``LightMemClassicMemory`` needs ``langchain-classic`` only when touched.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "LightMemoryMiddleware": "middleware",
    "LightMemRetriever": "retriever",
    "LightMemStore": "store",
    "NamespaceMapping": "store",
    "create_memory_tools": "tools",
    "ChatModelLLM": "models",
    "LangChainEmbedder": "models",
    "LightMemClassicMemory": "classic",
    "ScopePolicy": "_common",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from ._common import ScopePolicy as ScopePolicy
    from .classic import LightMemClassicMemory as LightMemClassicMemory
    from .middleware import LightMemoryMiddleware as LightMemoryMiddleware
    from .models import ChatModelLLM as ChatModelLLM
    from .models import LangChainEmbedder as LangChainEmbedder
    from .retriever import LightMemRetriever as LightMemRetriever
    from .store import LightMemStore as LightMemStore
    from .store import NamespaceMapping as NamespaceMapping
    from .tools import create_memory_tools as create_memory_tools


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lightmem_langchain' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
