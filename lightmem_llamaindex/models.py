"""Bridges from LlamaIndex models to the core's small model protocols.

The core speaks two protocols: an ``LLM`` (``complete`` / ``acomplete`` over plain
role/content dicts, returning a ``Completion`` with usage) and an ``Embedder``
(``embed(texts) -> array`` plus ``dims``). LlamaIndex users already have an ``LLM``
and a ``BaseEmbedding`` configured (often in ``Settings``); these wrappers let the
same objects run LightMem's extraction, update and summary stages, so a project has
one place where models and keys are set up.

Usage is counted per stage by ``lightmem_core.llm.BaseLLM``; what a LlamaIndex
response says about tokens differs by integration, so ``usage_from_response`` reads
the usual places and falls back to an estimate (flagged as such).
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole
from llama_index.core.llms.llm import LLM as LlamaLLM

from lightmem_core import BaseLLM, Completion, LightMemory, MemoryConfig, Usage, embedding_matrix, estimate_tokens

log = logging.getLogger(__name__)

__all__ = ["LlamaIndexEmbedder", "LlamaIndexLLM", "create_lightmemory", "usage_from_response"]

_ROLES = {
    "system": MessageRole.SYSTEM,
    "user": MessageRole.USER,
    "assistant": MessageRole.ASSISTANT,
    "tool": MessageRole.TOOL,
}


def _to_chat_messages(messages: Sequence[Mapping[str, Any]]) -> list[ChatMessage]:
    out = []
    for m in messages:
        role = _ROLES.get(str(m.get("role", "user")), MessageRole.USER)
        content = m.get("content")
        out.append(ChatMessage(role=role, content=content if isinstance(content, str) else str(content or "")))
    return out


def _field(obj: Any, *names: str) -> Optional[int]:
    """First integer found under any of ``names`` (attribute or key)."""
    if obj is None:
        return None
    for name in names:
        value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
    return None


def usage_from_response(response: ChatResponse) -> Optional[Usage]:
    """Token counts a LlamaIndex response reports, wherever its integration put them.

    OpenAI-style integrations copy them into ``additional_kwargs``; others leave them
    in ``raw.usage`` (OpenAI, vLLM: prompt/completion tokens; Anthropic: input/output
    tokens) or at the top of ``raw`` (Ollama: prompt_eval_count/eval_count).
    """
    prompt_names = ("prompt_tokens", "input_tokens", "prompt_eval_count")
    completion_names = ("completion_tokens", "output_tokens", "eval_count")
    raw = response.raw
    usage = raw.get("usage") if isinstance(raw, Mapping) else getattr(raw, "usage", None)
    for source in (response.additional_kwargs, usage, raw):
        p, c = _field(source, *prompt_names), _field(source, *completion_names)
        if p is not None or c is not None:
            return Usage(prompt_tokens=p or 0, completion_tokens=c or 0)
    return None


class LlamaIndexLLM(BaseLLM):
    """Any LlamaIndex ``LLM`` as LightMem's memory manager.

    ``json_kwargs`` are passed to ``chat`` when the core asks for JSON (for an
    OpenAI-compatible integration: ``{"response_format": {"type": "json_object"}}``);
    by default nothing is passed, because LlamaIndex has no portable JSON switch and
    the core's prompts ask for JSON and parse tolerant answers anyway. ``chat_kwargs``
    go to every call.
    """

    def __init__(
        self,
        llm: LlamaLLM,
        *,
        json_kwargs: Optional[Mapping[str, Any]] = None,
        chat_kwargs: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__()
        if not isinstance(llm, LlamaLLM):
            raise TypeError(f"expected a llama_index LLM, got {type(llm).__name__}")
        self.llm = llm
        self.json_kwargs = dict(json_kwargs or {})
        self.chat_kwargs = dict(chat_kwargs or {})

    def _kwargs(self, json_schema: Optional[dict[str, Any]]) -> dict[str, Any]:
        return {**self.chat_kwargs, **(self.json_kwargs if json_schema is not None else {})}

    def _completion(self, response: ChatResponse, messages: list[dict[str, Any]]) -> Completion:
        text = response.message.content or ""
        usage = usage_from_response(response)
        estimated = usage is None
        if usage is None:
            prompt = sum(estimate_tokens(str(m.get("content") or "")) + 4 for m in messages) + 3
            usage = Usage(prompt_tokens=prompt, completion_tokens=estimate_tokens(text))
        model = getattr(self.llm.metadata, "model_name", None)
        return Completion(text=text, usage=usage, raw=response, model=model, usage_estimated=estimated)

    def _complete(self, messages: list[dict[str, Any]], json_schema: Optional[dict[str, Any]]) -> Completion:
        response = self.llm.chat(_to_chat_messages(messages), **self._kwargs(json_schema))
        return self._completion(response, messages)

    async def _acomplete(self, messages: list[dict[str, Any]], json_schema: Optional[dict[str, Any]]) -> Completion:
        response = await self.llm.achat(_to_chat_messages(messages), **self._kwargs(json_schema))
        return self._completion(response, messages)

    def __repr__(self) -> str:
        return f"LlamaIndexLLM({type(self.llm).__name__})"


class LlamaIndexEmbedder:
    """Any LlamaIndex ``BaseEmbedding`` as LightMem's embedder.

    Documents and queries go through ``get_text_embedding_batch`` alike: the store
    compares a query with facts and with other facts (update neighbours), so both
    sides must live in the same space. ``dims`` is probed once when not given.
    """

    def __init__(self, embed_model: BaseEmbedding, *, dims: Optional[int] = None) -> None:
        if not isinstance(embed_model, BaseEmbedding):
            raise TypeError(f"expected a llama_index BaseEmbedding, got {type(embed_model).__name__}")
        self.embed_model = embed_model
        self._dims = dims

    @property
    def name(self) -> str:
        return f"llamaindex:{type(self.embed_model).__name__}:{self.embed_model.model_name}"

    @property
    def dims(self) -> int:
        if self._dims is None:
            self._dims = int(self.embed(["dimension probe"]).shape[1])
        return self._dims

    def _matrix(self, rows: Sequence[Sequence[float]], n: int) -> np.ndarray:
        arr = embedding_matrix(rows, n, self._dims, source=self.name)
        if self._dims is None and n:
            self._dims = int(arr.shape[1])
        return arr

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        rows = self.embed_model.get_text_embedding_batch(texts) if texts else []
        return self._matrix(rows, len(texts))

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        rows = await self.embed_model.aget_text_embedding_batch(texts) if texts else []
        return self._matrix(rows, len(texts))


def create_lightmemory(
    config: Union[MemoryConfig, Mapping[str, Any], None] = None,
    *,
    llm: Any = None,
    embed_model: Any = None,
    **kwargs: Any,
) -> LightMemory:
    """A ``LightMemory`` whose models may be LlamaIndex objects.

    ``llm`` may be a LlamaIndex ``LLM`` (wrapped in ``LlamaIndexLLM``) or anything the
    core accepts; ``embed_model`` a ``BaseEmbedding`` (wrapped in ``LlamaIndexEmbedder``)
    or a core ``Embedder``. A wrapped embedding model's name is written into the
    config, so the store refuses to be reopened later with a different model (vectors of
    two models are not comparable).
    """
    if config is None:
        cfg = MemoryConfig()
    elif isinstance(config, MemoryConfig):
        cfg = config
    else:
        cfg = MemoryConfig.from_dict(dict(config))
    if isinstance(llm, LlamaLLM):
        llm = LlamaIndexLLM(llm)
    if isinstance(embed_model, BaseEmbedding):
        embed_model = LlamaIndexEmbedder(embed_model, dims=cfg.embedder.dims)
        if cfg.embedder.model is None:
            cfg = cfg.model_copy(update={"embedder": cfg.embedder.model_copy(update={"model": embed_model.name})})
    if llm is not None:
        kwargs["llm"] = llm
    if embed_model is not None:
        kwargs["embedder"] = embed_model
    return LightMemory(cfg, **kwargs)
