"""LangChain models inside LightMem: any ``BaseChatModel`` as the memory-manager LLM,
any ``Embeddings`` as the embedder.

::

    memory = LightMemory(config, llm=ChatModelLLM(ChatOpenAI(model="gpt-4o-mini")),
                         embedder=LangChainEmbedder(OpenAIEmbeddings()))

``ChatModelLLM`` builds on the core's ``BaseLLM`` so the accounting is the core's
own: ``memory.get_token_statistics()`` shows calls and tokens per stage
(extraction, update, summary) from the model's ``usage_metadata``; a model that
reports no usage is estimated and the completion says so (``usage_estimated``).
"""

from __future__ import annotations

import logging
from typing import Any, Optional, Sequence

import numpy as np
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, convert_to_messages

from lightmem_core import BaseLLM, Completion, Usage, embedding_matrix, estimate_tokens

from ._common import message_text

log = logging.getLogger("lightmem_langchain.models")


class ChatModelLLM(BaseLLM):
    """A LangChain chat model speaking LightMem's ``LLM`` protocol.

    Args:
        model: any ``BaseChatModel`` (ChatOpenAI, ChatAnthropic, ChatOllama, ...).
        json_mode: when the core asks for JSON, bind ``response_format=json_object``
            (OpenAI-style models). Off by default because not every provider accepts it;
            the core repairs prose-wrapped JSON either way.
        invoke_kwargs: extra keyword arguments for every ``invoke`` (e.g. ``temperature``).
    """

    def __init__(
        self, model: BaseChatModel, *, json_mode: bool = False, invoke_kwargs: Optional[dict[str, Any]] = None
    ) -> None:
        super().__init__()
        self.model = model
        self.json_mode = json_mode
        self.invoke_kwargs = dict(invoke_kwargs or {})

    def _kwargs(self, json_schema: Optional[dict[str, Any]]) -> dict[str, Any]:
        kw = dict(self.invoke_kwargs)
        if json_schema is not None and self.json_mode:
            kw.setdefault("response_format", {"type": "json_object"})
        return kw

    def _completion(self, messages: list[dict[str, Any]], answer: Any) -> Completion:
        if not isinstance(answer, AIMessage):
            answer = AIMessage(content=str(getattr(answer, "content", answer)))
        text = message_text(answer)
        usage = answer.usage_metadata
        estimated = usage is None
        if usage is not None:
            counted = Usage(int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0)))
        else:
            prompt = sum(estimate_tokens(str(m.get("content", ""))) for m in messages)
            counted = Usage(prompt, estimate_tokens(text))
        meta = answer.response_metadata or {}
        return Completion(
            text=text,
            usage=counted,
            raw=answer,
            model=meta.get("model_name") or meta.get("model"),
            finish_reason=meta.get("finish_reason"),
            usage_estimated=estimated,
        )

    def _complete(self, messages: list[dict[str, Any]], json_schema: Optional[dict[str, Any]]) -> Completion:
        answer = self.model.invoke(convert_to_messages(messages), **self._kwargs(json_schema))
        return self._completion(messages, answer)

    async def _acomplete(self, messages: list[dict[str, Any]], json_schema: Optional[dict[str, Any]]) -> Completion:
        answer = await self.model.ainvoke(convert_to_messages(messages), **self._kwargs(json_schema))
        return self._completion(messages, answer)


class LangChainEmbedder:
    """LangChain ``Embeddings`` speaking LightMem's ``Embedder`` protocol.

    Vectors are L2-normalised (the store compares by cosine, and the core's own
    embedders normalise too). ``dims`` is probed with one call when not given. Pass
    ``embedder.provider``/``model`` in the memory's config that name this model, so
    the store can refuse to mix vectors of different models.
    """

    def __init__(self, embeddings: Embeddings, *, dims: Optional[int] = None, normalize: bool = True) -> None:
        self.embeddings = embeddings
        self._dims = dims
        self.normalize = normalize

    @property
    def dims(self) -> int:
        if self._dims is None:
            self._dims = len(self.embeddings.embed_query("dimension probe"))
        return self._dims

    def _matrix(self, rows: Sequence[Sequence[float]], n: int) -> np.ndarray:
        arr = embedding_matrix(rows, n, self._dims, normalize=self.normalize, source=type(self.embeddings).__name__)
        if self._dims is None and n:
            self._dims = int(arr.shape[1])
        return arr

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        return self._matrix(self.embeddings.embed_documents(texts) if texts else [], len(texts))

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        return self._matrix(await self.embeddings.aembed_documents(texts) if texts else [], len(texts))
