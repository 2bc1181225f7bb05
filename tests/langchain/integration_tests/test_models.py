"""Model bridges: a LangChain chat model as LightMem's memory manager (usage counted per
stage) and LangChain ``Embeddings`` as its embedder."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings
from langchain_core.messages import BaseMessage

from lightmem_langchain import ChatModelLLM, LangChainEmbedder
from tests.fake_llm import default_responder
from tests.langchain.scripted import ScriptedChatModel

_ROLE = {"human": "user", "ai": "assistant", "system": "system"}
TURNS = [
    {"id": "t1", "role": "user", "content": "I adopted a cat named Miso last week.", "time_stamp": "2025-03-01T10:00"},
    {"id": "t2", "role": "assistant", "content": "Miso is a lovely name for a cat.", "time_stamp": "2025-03-01T10:01"},
]


def _answer(messages: list[BaseMessage]) -> str:
    """The loopback server's deterministic answers (tests/fake_llm.py), given LangChain messages."""
    return default_responder({"messages": [{"role": _ROLE[m.type], "content": m.text} for m in messages]})


def test_chat_model_as_memory_manager_with_usage_per_stage(make_memory: Any) -> None:
    model = ScriptedChatModel(default=_answer, usage={"input_tokens": 40, "output_tokens": 12})
    memory = make_memory(llm=ChatModelLLM(model))
    result = memory.add_memory(TURNS, user_id="maya", force_extract=True)
    assert [e.memory for e in result.added] == [
        "user said: I adopted a cat named Miso last week (2025-W08).",
        "assistant said: Miso is a lovely name for a cat.",
    ]
    assert [e.source_ids for e in result.added] == [["t1"], ["t2"]]
    assert "[1] user: I adopted a cat" in model.requests[0][-1].text  # the core's extraction prompt reached the model

    memory.summarize(user_id="maya")
    stats = memory.get_token_statistics()
    assert stats["extraction"]["calls"] == 1 and stats["summary"]["calls"] == 1
    assert stats["extraction"]["prompt_tokens"] == 40 and stats["extraction"]["completion_tokens"] == 12
    assert stats["total"]["total_tokens"] == 2 * 52 and len(model.requests) == 2


@pytest.mark.asyncio
async def test_async_path_and_estimated_usage(make_memory: Any) -> None:
    model = ScriptedChatModel(default=_answer)  # reports no usage_metadata
    llm = ChatModelLLM(model)
    memory = make_memory(llm=llm, config={"extract_tokens": 100_000})
    result = await memory.aadd_memory(TURNS, user_id="maya")
    assert result.added == [] and len(model.requests) == 0  # buffered: no LLM call yet
    flushed = await memory.aflush(user_id="maya")
    assert len(flushed.added) == 2 and len(model.requests) == 1
    completion = await llm.acomplete([{"role": "user", "content": "hello there"}], stage="probe")
    assert completion.usage_estimated and completion.text.startswith("ECHO")
    stats = memory.get_token_statistics()
    assert stats["extraction"]["prompt_tokens"] > 0 and stats["probe"]["calls"] == 1


class MiniLMEmbeddings(Embeddings):
    """A real LangChain ``Embeddings`` over the session's MiniLM model."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.calls = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return (self.model.embed(texts) * 3.0).tolist()  # scaled: the bridge must normalise

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def test_langchain_embeddings_as_the_embedder(make_memory: Any, embedder: Any) -> None:
    lc = MiniLMEmbeddings(embedder)
    bridge = LangChainEmbedder(lc)
    assert bridge.dims == 384
    vectors = bridge.embed(["a", "b c"])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)

    memory = make_memory(embedder=bridge)
    memory.add_memory("My sister Ana works as a nurse in Braga.", user_id="maya")
    memory.add_memory("I bought a red bicycle on Saturday.", user_id="maya")
    before = lc.calls
    hits = memory.retrieve("What is Ana's job?", user_id="maya")
    assert "nurse" in hits[0].entry.memory and lc.calls == before + 1
    with pytest.raises(ValueError):
        LangChainEmbedder(lc, dims=128).embed(["wrong size"])
