"""Pure logic of the LlamaIndex adapter: message conversion, queries, prompt text, usage, nodes."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import numpy as np
import pytest
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, ToolCallBlock
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.schema import MetadataMode

from lightmem_core import Hit, MemoryEntry
from lightmem_llamaindex import LlamaIndexEmbedder, LlamaIndexLLM, hit_to_node, usage_from_response
from lightmem_llamaindex._convert import (
    TURN_ID_KEY,
    fetch_limit,
    query_from,
    recent_turn_ids,
    render_hits,
    stamp_turn_ids,
    to_turns,
    without_recent,
)
from tests.llamaindex.conftest import ScriptedChatLLM


def _hit(text: str, when: str, rank: int, *, kind: str = "fact", **extra: object) -> Hit:
    entry = MemoryEntry(memory=text, time_stamp=when, user_id="u", entry_type=kind, **extra)
    return Hit(entry=entry, score=1.0 / (rank + 1), rank=rank, retrievers=["embedding"])


def test_to_turns_maps_roles_and_skips_what_carries_no_text() -> None:
    messages = [
        ChatMessage(role="system", content="You are helpful."),
        ChatMessage(role="user", content="My dog is a corgi.", additional_kwargs={TURN_ID_KEY: "t-1"}),
        ChatMessage(role="assistant", blocks=[ToolCallBlock(tool_call_id="c", tool_name="f", tool_kwargs={})]),
        ChatMessage(role="tool", content="sunny", additional_kwargs={"tool_call_id": "c"}),
        ChatMessage(
            role="chatbot",
            content="Nice!",
            additional_kwargs={"time_stamp": "2025-01-12T09:15:00", "speaker_name": "Bot"},
        ),
    ]
    turns = to_turns(messages)
    assert [t["role"] for t in turns] == ["user", "tool", "assistant"]
    assert turns[0]["id"] == "t-1" and turns[0]["content"] == "My dog is a corgi."
    assert "id" not in turns[1]
    assert turns[2]["time_stamp"] == "2025-01-12T09:15:00" and turns[2]["speaker_name"] == "Bot"
    assert isinstance(turns[0]["time_stamp"], datetime)
    assert [t["role"] for t in to_turns(messages, include_system=True)][0] == "system"


def test_query_prefers_input_then_latest_user_messages() -> None:
    history = [
        ChatMessage(role="user", content="first question"),
        ChatMessage(role="assistant", content="answer"),
        ChatMessage(role="user", content="second question"),
        ChatMessage(role="tool", content="tool output"),
    ]
    assert query_from(history) == "second question"
    assert query_from(history, window=2) == "first question\nsecond question"
    assert query_from(history, "explicit") == "explicit"
    assert query_from(history, ChatMessage(role="user", content="as message")) == "as message"
    assert query_from([ChatMessage(role="assistant", content="only bot")]) == "only bot"
    assert query_from([]) == ""


def test_render_puts_summaries_first_and_entries_on_a_time_line() -> None:
    hits = [
        _hit("Session about pets.", "2025-01-12T00:00:00", 0, kind="summary"),
        _hit("Maya adopted a cat.", "2025-03-01T10:00:00", 1),
        _hit("Maya has a corgi.", "2025-01-12T09:14:00", 2),
    ]
    text = render_hits(hits, "HEADER")
    lines = text.splitlines()
    assert lines[0] == "HEADER"
    assert lines.index("Summaries:") < lines.index("Details:")
    assert lines.index("- 2025-01-12 00:00 Sun Session about pets.") == 2
    assert lines[-2:] == ["2025-01-12 09:14 Sun Maya has a corgi.", "2025-03-01 10:00 Sat Maya adopted a cat."]
    assert render_hits([], "HEADER") == ""


@pytest.mark.parametrize(
    ("raw", "extra", "expected"),
    [
        ({"usage": {"prompt_tokens": 11, "completion_tokens": 3}}, {}, (11, 3)),  # OpenAI-style dict
        (SimpleNamespace(usage=SimpleNamespace(input_tokens=7, output_tokens=2)), {}, (7, 2)),  # Anthropic object
        ({"prompt_eval_count": 5, "eval_count": 4}, {}, (5, 4)),  # Ollama
        (None, {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}, (9, 1)),  # additional_kwargs
    ],
)
def test_usage_is_read_where_each_integration_puts_it(raw: object, extra: dict, expected: tuple) -> None:
    response = ChatResponse(message=ChatMessage(role="assistant", content="x"), raw=raw, additional_kwargs=extra)
    usage = usage_from_response(response)
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == expected


def test_usage_is_none_when_not_reported() -> None:
    assert usage_from_response(ChatResponse(message=ChatMessage(role="assistant", content="x"))) is None


def test_llm_bridge_counts_usage_per_stage_and_estimates_when_missing() -> None:
    scripted = ScriptedChatLLM(reply="hello there")
    bridge = LlamaIndexLLM(scripted)
    c = bridge.complete(
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi you"}], stage="summary"
    )
    assert c.text == "hello there" and not c.usage_estimated
    assert scripted.prompts[0][0].role.value == "system" and scripted.prompts[0][1].content == "hi you"
    stats = bridge.get_token_statistics()
    assert stats["summary"]["calls"] == 1
    assert stats["summary"]["prompt_tokens"] == c.usage.prompt_tokens > 0
    assert stats["total"]["completion_tokens"] == 3  # the scripted count: round(1.3 * 2 words)

    mock = LlamaIndexLLM(MockLLM(max_tokens=4))  # MockLLM reports no usage: estimated, and said so
    c2 = mock.complete([{"role": "user", "content": "anything at all"}], stage="extraction")
    assert c2.text == "text text text text" and c2.usage_estimated and c2.usage.prompt_tokens > 0
    assert mock.get_token_statistics()["extraction"]["calls"] == 1


@pytest.mark.asyncio
async def test_llm_bridge_async_is_native_and_counted() -> None:
    scripted = ScriptedChatLLM(reply="async answer")
    bridge = LlamaIndexLLM(scripted, json_kwargs={"response_format": {"type": "json_object"}})
    c = await bridge.acomplete([{"role": "user", "content": "q"}], json_schema={"type": "object"}, stage="update")
    assert c.text == "async answer"
    assert bridge.get_token_statistics()["update"]["calls"] == 1


def test_llm_bridge_rejects_what_is_not_a_llamaindex_llm() -> None:
    with pytest.raises(TypeError):
        LlamaIndexLLM(object())  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_embedder_bridge_shapes_and_dims() -> None:
    emb = LlamaIndexEmbedder(MockEmbedding(embed_dim=12))
    assert emb.dims == 12
    arr = emb.embed(["a", "b", "c"])
    assert arr.shape == (3, 12) and arr.dtype == np.float32
    assert (await emb.aembed(["x"])).shape == (1, 12)
    assert emb.embed([]).shape == (0, 12)
    assert emb.name.startswith("llamaindex:MockEmbedding")


def test_hit_to_node_keeps_ids_times_speaker_and_sources() -> None:
    hit = _hit(
        "Maya has a corgi.",
        "2025-01-12T09:14:00",
        0,
        speaker_name="Maya",
        speaker_id="user",
        source_ids=["t1", "t2"],
        session_id="s1",
    )
    nws = hit_to_node(hit)
    md = nws.node.metadata
    assert nws.node.node_id == hit.entry.id == md["memory_id"]
    assert nws.score == hit.score
    assert md["time_stamp"] == "2025-01-12T09:14:00" and md["weekday"] == "Sun"
    assert md["speaker"] == "Maya" and md["source_ids"] == ["t1", "t2"] and md["session_id"] == "s1"
    assert md["recorded_at"] and md["retrievers"] == ["embedding"]
    llm_view = nws.node.get_content(metadata_mode=MetadataMode.LLM)
    assert "Maya has a corgi." in llm_view and "2025-01-12T09:14:00" in llm_view
    assert "t1" not in llm_view and hit.entry.id not in llm_view
    assert nws.node.get_content(metadata_mode=MetadataMode.EMBED) == "Maya has a corgi."


def test_a_hit_with_a_window_gives_the_window_as_node_text() -> None:
    hit = _hit("user: I whisk up a bowl every morning.", "2025-06-18T08:05:00", 0).model_copy(
        update={"window": "user: Is matcha worth it? I whisk up a bowl every morning."}
    )
    node = hit_to_node(hit).node
    assert node.text == hit.window and node.metadata["memory"] == hit.entry.memory
    assert "matcha" in node.get_content(metadata_mode=MetadataMode.LLM)
    assert hit.entry.memory not in node.get_content(metadata_mode=MetadataMode.LLM).replace(hit.window, "")


def test_memories_of_the_recent_chat_are_left_out_but_summaries_kept() -> None:
    chat = [
        ChatMessage(role="user", content="q", additional_kwargs={TURN_ID_KEY: "now-1"}),
        ChatMessage(role="assistant", content="a"),
    ]
    recent = recent_turn_ids(chat)
    assert recent == {"now-1"}
    hits = [
        _hit("Current question.", "2025-05-01T10:00:00", 0, source_ids=["now-1"]),
        _hit("Old fact.", "2025-01-01T10:00:00", 1, source_ids=["old-1"]),
        _hit("Old and new.", "2025-01-01T10:00:00", 2, source_ids=["old-2", "now-1"]),
        _hit("A summary.", "2025-01-01T00:00:00", 3, kind="summary", source_ids=["now-1"]),
        _hit("Another old fact.", "2025-01-02T10:00:00", 4, source_ids=["old-3"]),
    ]
    kept = without_recent(hits, recent, limit=2)
    assert [h.entry.memory for h in kept] == ["A summary.", "Old fact.", "Old and new."]
    assert fetch_limit(8, recent) == 9 and fetch_limit(999, {str(i) for i in range(5)}) == 1000
    stamp_turn_ids(chat)
    assert chat[0].additional_kwargs[TURN_ID_KEY] == "now-1" and len(recent_turn_ids(chat)) == 2


def test_overlong_messages_are_cut_not_refused() -> None:
    huge = ChatMessage(role="tool", content="x" * 500)
    (turn,) = to_turns([huge], max_chars=100)
    assert len(turn["content"]) == 100 and turn["content"].endswith("…")
    assert to_turns([huge])[0]["content"] == "x" * 500
