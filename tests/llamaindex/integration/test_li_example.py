"""examples/llamaindex_chat.py, offline and against an OpenAI-compatible endpoint.

The endpoint is the loopback server of tests/fake_llm.py (a real HTTP server), reached
through the example's own LlamaIndex LLM, so the LLM bridge's usage accounting is
checked against what the server actually counted.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.fake_llm import FakeLLMServer, count_tokens, fake_llm  # noqa: F401 (fixture)

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "llamaindex_chat.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("llamaindex_chat_example", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the example's annotations through it
    spec.loader.exec_module(module)
    return module


def test_example_runs_offline(example: ModuleType, tmp_path: Any, embedder: Any) -> None:
    assert example.build_llm({}) is None  # no endpoint configured: offline
    lines: list[str] = []
    answers = example.run(str(tmp_path / "store"), None, embedder=embedder, out=lines.append)
    corgi, sister, work = answers["session_2"]
    assert "Biscuit" in corgi and "Lisbon" in sister and "Brightline" in work
    assert answers["other_user"] == ["Noted."]  # nothing of maya's reaches sam's prompt
    assert "Lisbon" in answers["query"]
    assert any(md["speaker"] == "user" and md["source_ids"] for md in answers["sources"])


def test_example_against_an_openai_compatible_endpoint(
    example: ModuleType, tmp_path: Any, embedder: Any, fake_llm: FakeLLMServer
) -> None:  # noqa: F811
    llm = example.build_llm(
        {"LIGHTMEM_LLM_BASE_URL": fake_llm.base_url, "LIGHTMEM_LLM_MODEL": "fake", "LIGHTMEM_LLM_API_KEY": "k"}
    )
    assert llm is not None and llm.metadata.model_name == "fake"
    answers = example.run(str(tmp_path / "store"), llm, embedder=embedder, out=lambda *_: None)
    chats = [r for r in fake_llm.requests if "messages" in r]
    extraction = [r for r in chats if "Conversation (data)" in json.dumps(r)]
    assert extraction, "the endpoint's LLM extracted the memories"
    # session 2's questions reached the endpoint with session 1's facts in the system message
    asked = [r for r in chats if r["messages"][-1]["content"] == "Where does my sister live?"]
    assert asked and "Lisbon" in asked[0]["messages"][0]["content"]
    assert answers["session_2"][1].startswith("ECHO:")
    # usage counted per stage, from the server's own numbers (not estimated)
    usage = answers["usage"]["extraction"]
    assert usage["calls"] == len(extraction)
    assert usage["prompt_tokens"] == sum(count_tokens(m["content"]) + 3 for r in extraction for m in r["messages"])
