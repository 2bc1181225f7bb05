"""One registry from config names to implementations.

Entries are import strings, so a heavy dependency (torch, llmlingua, qdrant-client)
is imported only when its implementation is chosen. Third parties can register more
with ``register``.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import ConfigError, StageNotAvailableError

_REGISTRY: dict[str, dict[str, str]] = {
    "embedder": {
        "sentence-transformers": "lightmem_core.embed:SentenceTransformerEmbedder",
        "openai": "lightmem_core.embed:OpenAIEmbedder",
    },
    "llm": {
        "openai": "lightmem_core.llm:OpenAICompatibleLLM",
        "ollama": "lightmem_core.llm:OpenAICompatibleLLM",
        "vllm": "lightmem_core.llm:OpenAICompatibleLLM",
        "deepseek": "lightmem_core.llm:OpenAICompatibleLLM",
    },
    "compressor": {
        "none": "lightmem_core.compress:NoCompressor",
        "entropy": "lightmem_core.compress:EntropyCompressor",
        "llmlingua-2": "lightmem_core.compress:LLMLingua2Compressor",
    },
    "segmenter": {
        "attention": "lightmem_core.segment:AttentionSegmenter",
        "similarity": "lightmem_core.segment:SimilaritySegmenter",
    },
    "store": {
        "edge": "lightmem_core.store.edge:EdgeStore",
        "qdrant": "lightmem_core.store.client:QdrantClientStore",
    },
}


def register(kind: str, name: str, target: str | type) -> None:
    """Add an implementation; ``target`` is a class or a ``"module:attr"`` string.

    From then on the config's ``<kind>.provider`` field accepts ``name`` (it is checked
    against this registry, not a fixed list). The target is called with the section's
    config: ``embedder`` and ``compressor`` as ``target(config)``, ``llm`` as
    ``target(config, **kwargs)``, ``store`` as ``target(config, spec)``, ``segmenter`` as
    ``target(config, embedder=..., compressor=...)``.
    """
    if isinstance(target, type):
        target = f"{target.__module__}:{target.__qualname__}"
    _REGISTRY.setdefault(kind, {})[name] = target


def names(kind: str) -> list[str]:
    return sorted(_REGISTRY.get(kind, {}))


def resolve(kind: str, name: str) -> Any:
    try:
        target = _REGISTRY[kind][name]
    except KeyError:
        raise ConfigError(f"{kind}.provider", f"unknown {kind} {name!r}; expected one of {names(kind)}") from None
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StageNotAvailableError(
            f"{kind} {name!r} needs a package that is not installed ({exc.name}); install the matching extra"
        ) from exc
    return getattr(module, attr)


def create(kind: str, name: str, *args: Any, **kwargs: Any) -> Any:
    return resolve(kind, name)(*args, **kwargs)
