"""LightMemRetriever in a real query engine; LlamaIndex models running LightMem's stages."""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine

from lightmem_core import InvalidInputError, LightMemory, MemoryConfig
from lightmem_llamaindex import (
    LightMemMemory,
    LightMemMemoryBlock,
    LightMemRetriever,
    LlamaIndexLLM,
    create_lightmemory,
)
from tests.fake_llm import count_tokens
from tests.llamaindex.conftest import ScriptedChatLLM, text_of

TURNS = [
    {
        "id": "m-1",
        "role": "user",
        "speaker_name": "Maya",
        "content": "My dog Biscuit is a corgi.",
        "time_stamp": "2025-01-12T09:14:00",
    },
    {"id": "m-2", "role": "assistant", "content": "Biscuit sounds adorable!", "time_stamp": "2025-01-12T09:15:00"},
    {
        "id": "m-3",
        "role": "user",
        "speaker_name": "Maya",
        "content": "I start at Brightline Health on April 28.",
        "time_stamp": "2025-04-06T10:05:00",
    },
]


def test_retriever_in_a_query_engine_cites_memories(lightmem: Any) -> None:
    lightmem.add_memory(TURNS, user_id="maya", session_id="2025-01-12")
    retriever = LightMemRetriever(lightmem, user_id="maya", limit=3)
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())  # MockLLM echoes its prompt
    response = engine.query("What breed is Maya's dog?")
    assert "Biscuit is a corgi" in str(response)  # the memory reached the answering LLM...
    assert "2025-01-12T09:14:00" in str(response)  # ...with its time stamp
    top = response.source_nodes[0]
    assert "corgi" in top.node.get_content()
    md = top.node.metadata
    assert md["memory_id"] == top.node.node_id and lightmem.get(md["memory_id"], user_id="maya").memory == top.node.text
    assert md["source_ids"] == ["m-1"] and md["speaker"] == "Maya" and md["weekday"] == "Sun"
    assert md["time_stamp"] == "2025-01-12T09:14:00" and md["recorded_at"] and md["session_id"] == "2025-01-12"
    assert top.score is not None and top.score > 0

    assert LightMemRetriever(lightmem, user_id="nobody").retrieve("What breed is Maya's dog?") == []


@pytest.mark.asyncio
async def test_retriever_async_and_filters(lightmem: Any) -> None:
    lightmem.add_memory(TURNS, user_id="maya")
    recent = LightMemRetriever(lightmem, user_id="maya", filters={"time_stamp": {"gte": "2025-03-01"}})
    nodes = await recent.aretrieve("Where does Maya work?")
    assert nodes and all(n.node.metadata["time_stamp"] >= "2025-03-01" for n in nodes)
    assert "Brightline" in nodes[0].node.text
    engine = RetrieverQueryEngine.from_args(recent, llm=MockLLM())
    assert "Brightline" in str(await engine.aquery("Where does Maya work?"))


def test_llamaindex_llm_as_memory_manager_counts_usage_per_stage(make_memory: Any, tmp_path: Any) -> None:
    scripted = ScriptedChatLLM()
    bridge = LlamaIndexLLM(scripted)
    memory = make_memory(path=tmp_path / "llm", llm=bridge)
    result = memory.add_memory(TURNS, user_id="maya", force_extract=True)
    assert result.error is None
    # the scripted model answers extraction prompts with "<Speaker> said: <sentence>" per turn line
    assert any("Maya said: My dog Biscuit is a corgi." in e.memory and e.source_ids == ["m-1"] for e in result.added)
    assert "Maya: My dog Biscuit is a corgi." in text_of(scripted.prompts[0])

    memory.summarize(user_id="maya", window="session")
    stats = memory.get_token_statistics()
    expected = sum(count_tokens(m.content) + 3 for m in scripted.prompts[0])
    assert stats["extraction"]["calls"] == 1 and stats["extraction"]["prompt_tokens"] == expected
    assert stats["summary"]["calls"] >= 1 and stats["summary"]["completion_tokens"] > 0
    assert stats["total"]["calls"] == len(scripted.prompts)


def test_same_llamaindex_llm_chats_and_manages_memory(tmp_path: Any, embedder: Any) -> None:
    scripted = ScriptedChatLLM(reply="Noted.")
    config = MemoryConfig(store={"path": str(tmp_path / "shared")})
    lightmem = create_lightmemory(config, llm=scripted, embedder=embedder)
    try:
        s1 = LightMemMemory.from_defaults(lightmem, user_id="nia", session_id="n1", force_extract=True)
        SimpleChatEngine.from_defaults(llm=scripted, memory=s1).chat("I keep bees on my roof in Ghent.")
        s2 = LightMemMemory.from_defaults(lightmem, user_id="nia", session_id="n2", force_extract=True)
        SimpleChatEngine.from_defaults(llm=scripted, memory=s2).chat("What do I keep on my roof?")
        chats = [p for p in scripted.prompts if "Conversation (data)" not in text_of(p)]
        assert len(chats) == 2 and "bees" in text_of(chats[-1])  # the chat call saw the memory
        assert lightmem.get_token_statistics()["extraction"]["calls"] >= 2
    finally:
        lightmem.close()


@pytest.mark.asyncio
async def test_hierarchical_block_puts_session_summaries_first(lightmem: Any) -> None:
    lightmem.add_memory(TURNS[:2], user_id="maya", session_id="pets")
    lightmem.add_memory(TURNS[2:], user_id="maya", session_id="work")
    lightmem.summarize(user_id="maya", window="session")
    block = LightMemMemoryBlock(lightmem=lightmem, user_id="maya", limit=2)
    text = await block.aget([ChatMessage(role="user", content="What breed is my dog?")])
    lines = text.splitlines()
    assert lines[1] == "Summaries:" and "Details:" in lines
    assert any("corgi" in line for line in lines[lines.index("Details:") :])
    flat = LightMemMemoryBlock(lightmem=lightmem, user_id="maya", limit=2, hierarchical=False)
    assert "Summaries:" not in await flat.aget([ChatMessage(role="user", content="What breed is my dog?")])


def test_llamaindex_embedding_model_as_embedder_and_store_identity(tmp_path: Any) -> None:
    path = str(tmp_path / "mockemb")
    memory = create_lightmemory({"store": {"path": path}}, embed_model=MockEmbedding(embed_dim=16))
    try:
        memory.add_memory(TURNS, user_id="maya")
        # MockEmbedding's vectors are all the same, so the dense side ties; BM25 finds the fact
        hits = memory.retrieve("Biscuit corgi", user_id="maya", limit=3)
        assert any("corgi" in h.entry.memory for h in hits)
        assert memory.embedder.dims == 16 and len(memory.get_all(user_id="maya")) >= 3
    finally:
        memory.close()
    # vectors of another model are not comparable: reopening with the packaged MiniLM is refused
    with pytest.raises(InvalidInputError):
        LightMemory(MemoryConfig(store={"path": path}))
