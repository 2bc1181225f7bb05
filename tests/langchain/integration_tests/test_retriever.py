"""LightMemRetriever: LangChain's standard retriever suite, an LCEL chain, metadata and scope."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import ConfigurableField, RunnablePassthrough
from langchain_tests.integration_tests import RetrieversIntegrationTests

from lightmem_core import InvalidInputError, LightMemory, MemoryConfig
from lightmem_langchain import LightMemRetriever
from tests.langchain.scripted import ScriptedChatModel

TURNS = [
    {"role": "user", "content": "My dog Biscuit is a corgi who loves the beach.", "time_stamp": "2025-01-12T09:14:00"},
    {"role": "assistant", "content": "Biscuit the corgi sounds like a happy dog.", "time_stamp": "2025-01-12T09:15:00"},
    {"role": "user", "content": "I adopted Biscuit from a shelter in Porto.", "time_stamp": "2025-02-02T10:00:00"},
    {"role": "user", "content": "My cat Miso sleeps on the dog's bed.", "time_stamp": "2025-03-05T18:30:00"},
    {"role": "user", "content": "I walk the dog every morning before work.", "time_stamp": "2025-03-06T07:00:00"},
    {"role": "user", "content": "The dog's vet appointment is on April 3rd.", "time_stamp": "2025-03-20T12:00:00"},
]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: Any, embedder: Any) -> Iterator[LightMemory]:
    memory = LightMemory(
        MemoryConfig.from_dict({"store": {"path": str(tmp_path_factory.mktemp("retriever"))}}), embedder=embedder
    )
    memory.add_memory(TURNS, user_id="maya", session_id="s1")
    memory.add_memory("My dog Rex is a poodle who hates the beach.", user_id="omar")
    yield memory
    memory.close()


class TestLightMemRetrieverStandard(RetrieversIntegrationTests):
    """The langchain-tests suite every LangChain retriever integration is held to."""

    @pytest.fixture(autouse=True)
    def _memory(self, seeded: LightMemory) -> None:
        self._seeded = seeded

    @property
    def retriever_constructor(self) -> type[LightMemRetriever]:
        return LightMemRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"memory": self._seeded, "user_id": "maya"}

    @property
    def retriever_query_example(self) -> str:
        return "What kind of dog does Maya have?"


def test_documents_carry_memory_metadata(seeded: LightMemory) -> None:
    docs = LightMemRetriever(memory=seeded, user_id="maya", k=3).invoke("What breed is Biscuit?")
    top = next(d for d in docs if "corgi who loves" in d.page_content)
    meta = top.metadata
    assert top.id == meta["id"] and seeded.get(meta["id"], user_id="maya").memory == top.page_content
    assert meta["time_stamp"].startswith("2025-01-12T09:1") and meta["recorded_at"]
    assert meta["speaker"] == "user" and meta["entry_type"] == "fact" and meta["session_id"] == "s1"
    assert meta["source_ids"] and seeded.source_turns(meta["id"], user_id="maya")[0].id == meta["source_ids"][0]
    assert isinstance(meta["score"], float) and meta["retrievers"]
    assert [d.metadata["rank"] for d in docs] == [1, 2, 3]
    assert [d.metadata["score"] for d in docs] == sorted((d.metadata["score"] for d in docs), reverse=True)


def test_scope_filters_strategy_and_per_call_overrides(seeded: LightMemory) -> None:
    maya = LightMemRetriever(memory=seeded, user_id="maya", k=5)
    assert all("poodle" not in d.page_content for d in maya.invoke("poodle Rex beach"))
    omar = maya.invoke("poodle Rex beach", user_id="omar")
    assert omar and all(d.metadata["user_id"] == "omar" for d in omar)

    march = maya.invoke("dog", filters={"time_stamp": {"gte": "2025-03-01"}})
    assert march and all(d.metadata["time_stamp"] >= "2025-03" for d in march)
    bm25 = LightMemRetriever(memory=seeded, user_id="maya", k=2, strategy="context").invoke("vet appointment")
    assert "vet appointment" in bm25[0].page_content and bm25[0].metadata["retrievers"] == ["context"]
    with pytest.raises(InvalidInputError):
        maya.invoke("dog", top_k=3)


@pytest.mark.asyncio
async def test_async_matches_sync(seeded: LightMemory) -> None:
    r = LightMemRetriever(memory=seeded, user_id="maya", k=3)
    sync = [d.id for d in r.invoke("Where was Biscuit adopted?")]
    assert [d.id for d in await r.ainvoke("Where was Biscuit adopted?")] == sync


def test_in_an_lcel_chain_with_per_request_user(seeded: LightMemory) -> None:
    retriever = LightMemRetriever(memory=seeded, user_id="maya", k=2).configurable_fields(
        user_id=ConfigurableField(id="user_id")
    )
    model = ScriptedChatModel(default=lambda msgs: "Answer: " + msgs[-1].text.split("Memories:")[1].strip())
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer from memory."), ("human", "Question: {question}\nMemories:\n{memories}")]
    )

    def lines(docs: list[Document]) -> str:
        return "\n".join(f"{d.metadata['time_stamp'][:10]} {d.page_content}" for d in docs)

    chain = {"memories": retriever | lines, "question": RunnablePassthrough()} | prompt | model | StrOutputParser()
    answer = chain.invoke("What breed is the dog?")
    assert answer.startswith("Answer: ") and "corgi" in answer
    assert "corgi" in model.requests[-1][-1].text

    other = chain.invoke("What breed is the dog?", config={"configurable": {"user_id": "omar"}})
    assert "poodle" in other and "corgi" not in other


def test_a_sentence_hit_reaches_the_chain_with_its_window(make_memory) -> None:
    """The retriever's page_content is what the model reads: the sentence with the turn around it."""
    memory = make_memory()
    memory.add_memory(
        [
            {
                "role": "user",
                "time_stamp": "2025-06-18T08:05:00",
                "content": "Is ceremonial grade matcha worth the price? I whisk up a bowl every single "
                "morning now and want to upgrade.",
            }
        ],
        user_id="maya",
    )
    docs = LightMemRetriever(memory=memory, user_id="maya", k=2).invoke("What does Maya whisk every morning?")
    top = next(d for d in docs if "whisk" in d.metadata["memory"])
    assert "matcha" not in top.metadata["memory"] and "matcha" in top.page_content
    assert memory.get(top.id, user_id="maya").memory == top.metadata["memory"]
