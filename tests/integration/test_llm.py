"""The LLM layer against a real loopback HTTP server, through the real openai client.

Timeouts and backoff are tiny so the whole file runs in a few seconds; every retry
claim is checked by counting the requests the server actually received.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import numpy as np
import openai
import pytest

from lightmem_core.config import EmbedderConfig, LLMConfig, MemoryConfig
from lightmem_core.errors import LLMError
from lightmem_core.llm import (
    LLM,
    BaseLLM,
    Completion,
    OpenAICompatibleLLM,
    Usage,
    acomplete_json,
    complete_json,
    create_llm,
)
from tests.fake_llm import FakeLLMServer, FaultSpec, count_tokens, fake_llm  # noqa: F401 (fixture)

TAGGED = [
    {"role": "system", "content": 'Extract the facts. Answer in JSON: {"facts": [...]}'},
    {"role": "user", "content": "[t1] Alice: I moved to Lisbon in 2021.\n[t2] Bob: My dog is called Rex."},
]
EXPECTED_FACTS = {
    "facts": [
        {"fact": "Alice said: I moved to Lisbon in 2021.", "source_ids": ["t1"]},
        {"fact": "Bob said: My dog is called Rex.", "source_ids": ["t2"]},
    ]
}


def make_llm(server: FakeLLMServer, **overrides: Any) -> OpenAICompatibleLLM:
    backoff = overrides.pop("backoff_base", 0.001)
    cfg = {"base_url": server.base_url, "model": "fake-model", "api_key": "k", "timeout": 2.0, "max_retries": 3}
    cfg.update(overrides)
    return OpenAICompatibleLLM(LLMConfig(**cfg), backoff_base=backoff)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# --- plain completions and accounting -------------------------------------------------


def test_completion_counts_usage_per_stage(fake_llm: FakeLLMServer) -> None:
    llm = make_llm(fake_llm)
    assert isinstance(llm, LLM)
    c = llm.complete(user("hello there fake model"), stage="extraction")
    assert isinstance(c, Completion)
    assert c.text == "ECHO: hello there fake model"
    assert c.usage == Usage(count_tokens("hello there fake model") + 3, count_tokens(c.text))
    assert not c.usage_estimated and c.attempts == 1 and c.finish_reason == "stop"
    llm.complete(TAGGED, stage="extraction")
    llm.complete([{"role": "user", "content": "UPDATE_DECISION: old vs new"}], stage="update")
    llm.complete(user("SUMMARIZE: one two three"), stage="summary")

    stats = llm.get_token_statistics()
    assert set(stats) == {"extraction", "update", "summary", "total"}
    assert stats["extraction"]["calls"] == 2 and stats["update"]["calls"] == 1 and stats["summary"]["calls"] == 1
    assert stats["total"]["calls"] == 4 == fake_llm.calls["chat"]
    assert stats["total"]["attempts"] == 4 and stats["total"]["failures"] == 0
    assert stats["total"]["prompt_tokens"] == fake_llm.prompt_tokens
    assert stats["total"]["completion_tokens"] == fake_llm.completion_tokens
    assert stats["total"]["total_tokens"] == fake_llm.prompt_tokens + fake_llm.completion_tokens
    assert sum(stats[s]["prompt_tokens"] for s in ("extraction", "update", "summary")) == fake_llm.prompt_tokens

    llm.reset_token_statistics()
    assert llm.get_token_statistics() == {"total": {k: 0 for k in stats["total"]}}


def test_default_responder_contract(fake_llm: FakeLLMServer) -> None:
    llm = make_llm(fake_llm)
    assert complete_json(llm, TAGGED) == EXPECTED_FACTS
    assert complete_json(llm, user("UPDATE_DECISION\nold: a\nnew: b"), stage="update")["action"] == "ignore"
    assert complete_json(llm, user("SUMMARIZE: alpha beta gamma"), stage="summary") == {"summary": "alpha beta gamma"}
    timed = user("Conversation (data):\n```\n[s1:0] Alice (2023-05-01 14:30): I got a cat.\n[s1:1] Bob: Nice!\n```")
    assert complete_json(llm, timed) == {
        "facts": [
            {"fact": "Alice said: I got a cat.", "source_ids": ["s1:0"]},
            {"fact": "Bob said: Nice!", "source_ids": ["s1:1"]},
        ]
    }
    fake_llm.responder = lambda req: json.dumps({"custom": len(req["messages"])})
    assert complete_json(llm, TAGGED) == {"custom": 2}
    fake_llm.responder = lambda req: None  # None falls back to the default
    assert complete_json(llm, TAGGED) == EXPECTED_FACTS


def test_usage_estimated_when_server_omits_it(fake_llm: FakeLLMServer) -> None:
    llm = make_llm(fake_llm)
    fake_llm.script(FaultSpec(omit_usage=True))
    c = llm.complete(user("a few words to count here"))
    assert c.usage_estimated
    assert c.usage.prompt_tokens > 0 and c.usage.completion_tokens > 0
    assert llm.get_token_statistics()["total"]["prompt_tokens"] == c.usage.prompt_tokens


def test_concurrent_calls_are_counted_exactly(fake_llm: FakeLLMServer) -> None:
    llm = make_llm(fake_llm)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for j in range(3):
                llm.complete(user(f"thread {i} call {j} " + "word " * i), stage=f"s{i % 2}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    total = llm.get_token_statistics()["total"]
    assert total["calls"] == 18 == fake_llm.calls["chat"]
    assert total["prompt_tokens"] == fake_llm.prompt_tokens
    assert total["completion_tokens"] == fake_llm.completion_tokens


# --- JSON mode ---------------------------------------------------------------------------


def test_json_mode_sends_response_format(fake_llm: FakeLLMServer) -> None:
    llm = make_llm(fake_llm)
    llm.complete(TAGGED, json_schema={"type": "object"})
    llm.complete(TAGGED)
    with_schema, without = fake_llm.requests
    assert with_schema["response_format"] == {"type": "json_object"}
    assert "response_format" not in without
    assert with_schema["model"] == "fake-model" and with_schema["max_tokens"] == 2000
    assert with_schema["messages"] == TAGGED  # the prompt already says JSON: left untouched

    # OpenAI demands the word "json" in the prompt for json_object mode; we add it.
    llm.complete(user("no format word here"), json_schema={})
    sent = fake_llm.requests[-1]["messages"]
    assert sent[0]["role"] == "system" and "JSON" in sent[0]["content"]

    off = make_llm(fake_llm, json_mode=False)
    off.complete(TAGGED, json_schema={"type": "object"})
    assert "response_format" not in fake_llm.requests[-1]


def test_response_format_rejected_falls_back_once_per_instance(fake_llm: FakeLLMServer) -> None:
    llm = make_llm(fake_llm)
    fake_llm.script(FaultSpec(status=400, message="response_format json_object is not supported by this server"))
    assert complete_json(llm, TAGGED) == EXPECTED_FACTS
    assert fake_llm.calls["chat"] == 2
    assert "response_format" in fake_llm.requests[0] and "response_format" not in fake_llm.requests[1]
    assert llm.json_mode_supported is False
    complete_json(llm, TAGGED)
    assert fake_llm.calls["chat"] == 3 and "response_format" not in fake_llm.requests[2]
    assert llm.get_token_statistics()["total"]["attempts"] == 3


def test_rejected_optional_parameters_are_adapted(fake_llm: FakeLLMServer) -> None:
    llm = make_llm(fake_llm)
    fake_llm.script(
        FaultSpec(
            status=400,
            message="Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
        ),
        FaultSpec(status=400, message="Unsupported value: 'temperature' does not support 0.1 with this model."),
    )
    assert llm.complete(user("reasoning model")).text == "ECHO: reasoning model"
    first, second, third = fake_llm.requests
    assert "max_tokens" in first and "max_completion_tokens" not in first
    assert second["max_completion_tokens"] == 2000 and "max_tokens" not in second and "temperature" in second
    assert "temperature" not in third
    llm.complete(user("remembered"))
    assert fake_llm.calls["chat"] == 4 and "temperature" not in fake_llm.requests[-1]
    assert "max_completion_tokens" in fake_llm.requests[-1]


# --- retries -----------------------------------------------------------------------------


def test_500_twice_then_success(fake_llm: FakeLLMServer) -> None:
    llm = make_llm(fake_llm)
    fake_llm.script(FaultSpec(status=500), FaultSpec(status=503))
    c = llm.complete(user("retry me"))
    assert c.text == "ECHO: retry me" and c.attempts == 3
    assert fake_llm.calls["chat"] == 3
    stats = llm.get_token_statistics()["total"]
    assert stats["calls"] == 1 and stats["attempts"] == 3 and stats["failures"] == 0
    assert stats["prompt_tokens"] == fake_llm.prompt_tokens  # faulted answers carry no usage


def test_dropped_connection_and_garbage_body_are_retried(fake_llm: FakeLLMServer) -> None:
    llm = make_llm(fake_llm)
    fake_llm.script(FaultSpec(drop=True), FaultSpec(raw_body="<html>502 bad gateway</html>"))
    assert llm.complete(user("still here")).text == "ECHO: still here"
    assert fake_llm.calls["chat"] == 3


def test_429_retry_after_is_honoured(fake_llm: FakeLLMServer) -> None:
    llm = make_llm(fake_llm, backoff_base=0.0)
    fake_llm.script(FaultSpec(status=429, retry_after=0.4))
    t0 = time.monotonic()
    llm.complete(user("rate limited"))
    assert time.monotonic() - t0 >= 0.38
    assert fake_llm.calls["chat"] == 2


def test_retry_after_is_capped(fake_llm: FakeLLMServer) -> None:
    llm = make_llm(fake_llm)
    llm.max_retry_after = 0.05
    fake_llm.script(FaultSpec(status=429, retry_after=3600))
    t0 = time.monotonic()
    llm.complete(user("capped"))
    assert time.monotonic() - t0 < 1.5
    assert fake_llm.calls["chat"] == 2


def test_timeouts_exhaust_retries(fake_llm: FakeLLMServer) -> None:
    llm = make_llm(fake_llm, timeout=0.2, max_retries=2)
    fake_llm.script(*[FaultSpec(delay=1.0) for _ in range(3)])
    with pytest.raises(LLMError, match="after 3 attempts") as info:
        llm.complete(user("slow"), stage="update")
    assert isinstance(info.value.__cause__, openai.APITimeoutError)
    assert fake_llm.calls["chat"] == 3
    stats = llm.get_token_statistics()["update"]
    assert stats["failures"] == 1 and stats["calls"] == 0 and stats["attempts"] == 3


def test_no_retries_when_max_retries_is_zero(fake_llm: FakeLLMServer) -> None:
    llm = make_llm(fake_llm, max_retries=0)
    fake_llm.script(FaultSpec(status=500))
    with pytest.raises(LLMError):
        llm.complete(user("once"))
    assert fake_llm.calls["chat"] == 1


@pytest.mark.parametrize(
    "status, exc_type", [(400, openai.BadRequestError), (401, openai.AuthenticationError), (404, openai.NotFoundError)]
)
def test_client_errors_fail_at_once(fake_llm: FakeLLMServer, status: int, exc_type: type) -> None:
    llm = make_llm(fake_llm)
    fake_llm.script(FaultSpec(status=status, message="nope"))
    with pytest.raises(LLMError, match="not retryable") as info:
        llm.complete(user("bad"), json_schema={"type": "object"})
    assert isinstance(info.value.__cause__, exc_type)
    assert fake_llm.calls["chat"] == 1
    assert llm.get_token_statistics()["total"]["failures"] == 1
    assert llm.json_mode_supported  # an unrelated 400 does not switch JSON mode off


# --- complete_json -------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "```json\n" + json.dumps(EXPECTED_FACTS) + "\n```",
        "Sure! Here are the facts:\n```\n"
        + json.dumps(EXPECTED_FACTS, indent=2)
        + "\n```\nLet me know if you need more.",
        "The answer is " + json.dumps(EXPECTED_FACTS) + " -- hope that helps {really}.",
    ],
    ids=["fenced", "fenced-with-prose", "prose-around"],
)
def test_complete_json_tolerates_wrapping(fake_llm: FakeLLMServer, body: str) -> None:
    llm = make_llm(fake_llm)
    fake_llm.script(FaultSpec(body=body))
    assert complete_json(llm, TAGGED) == EXPECTED_FACTS
    assert fake_llm.calls["chat"] == 1


def test_truncated_json_gets_one_repair_call(fake_llm: FakeLLMServer) -> None:
    llm = make_llm(fake_llm)
    bad = '{"facts": [ {"fact": "x"'
    fake_llm.script(FaultSpec(body=bad))
    assert complete_json(llm, TAGGED, stage="extraction") == EXPECTED_FACTS
    assert fake_llm.calls["chat"] == 2
    repair = fake_llm.requests[1]["messages"]
    assert repair[: len(TAGGED)] == TAGGED
    assert repair[-2] == {"role": "assistant", "content": bad}
    assert repair[-1]["role"] == "user" and "valid JSON only" in repair[-1]["content"]
    stats = llm.get_token_statistics()
    assert stats["extraction"]["calls"] == 2 and stats["total"]["prompt_tokens"] == fake_llm.prompt_tokens


def test_garbage_twice_raises(fake_llm: FakeLLMServer) -> None:
    llm = make_llm(fake_llm)
    fake_llm.script(FaultSpec(body="I cannot help with that."), FaultSpec(body="Still no JSON, sorry."))
    with pytest.raises(LLMError, match="no valid JSON after one repair"):
        complete_json(llm, TAGGED)
    assert fake_llm.calls["chat"] == 2


def test_validate_rejects_and_transforms(fake_llm: FakeLLMServer) -> None:
    llm = make_llm(fake_llm)

    def facts_only(value: Any) -> list[str]:
        if not isinstance(value, dict) or "facts" not in value:
            raise ValueError("expected an object with 'facts'")
        return [f["fact"] for f in value["facts"]]

    fake_llm.script(FaultSpec(body='{"wrong": 1}'))
    schema = {"type": "object", "required": ["facts"]}
    assert complete_json(llm, TAGGED, schema=schema, validate=facts_only) == [
        "Alice said: I moved to Lisbon in 2021.",
        "Bob said: My dog is called Rex.",
    ]
    assert fake_llm.calls["chat"] == 2
    repair = fake_llm.requests[1]["messages"][-1]["content"]
    assert "expected an object with 'facts'" in repair and '"required"' in repair

    fake_llm.script(FaultSpec(body='{"wrong": 1}'), FaultSpec(body='{"wrong": 2}'))
    with pytest.raises(LLMError):
        complete_json(llm, TAGGED, validate=lambda v: "facts" in v)  # False rejects


def test_complete_json_wraps_endpoint_failure(fake_llm: FakeLLMServer) -> None:
    llm = make_llm(fake_llm, max_retries=1)
    fake_llm.script(FaultSpec(status=500), FaultSpec(status=500))
    with pytest.raises(LLMError):
        complete_json(llm, TAGGED)
    assert fake_llm.calls["chat"] == 2  # retries happen inside; no repair call for a dead endpoint


# --- async twin --------------------------------------------------------------------------


def test_async_twin(fake_llm: FakeLLMServer) -> None:
    llm = make_llm(fake_llm, timeout=0.3)
    fake_llm.script(FaultSpec(status=500), FaultSpec(delay=1.0))

    async def main() -> tuple[Completion, Any, Any]:
        c = await llm.acomplete(user("async hello"), stage="summary")
        fake_llm.script(FaultSpec(body='{"facts": [ {"fact": "x"'))
        repaired = await acomplete_json(llm, TAGGED)
        both = await asyncio.gather(acomplete_json(llm, TAGGED), llm.acomplete(user("x y"), stage="summary"))
        return c, repaired, both

    c, repaired, (facts, _) = asyncio.run(main())
    assert c.text == "ECHO: async hello" and c.attempts == 3
    assert repaired == facts == EXPECTED_FACTS
    assert fake_llm.calls["chat"] == 3 + 2 + 2
    stats = llm.get_token_statistics()
    assert stats["summary"]["calls"] == 2 and stats["extraction"]["calls"] == 3
    assert stats["total"]["attempts"] == fake_llm.calls["chat"]
    assert stats["total"]["prompt_tokens"] == fake_llm.prompt_tokens
    assert stats["total"]["completion_tokens"] == fake_llm.completion_tokens

    # a second event loop must get a working client of its own
    assert asyncio.run(llm.acomplete(user("again"))).text == "ECHO: again"


def test_async_failure_raises_llm_error(fake_llm: FakeLLMServer) -> None:
    llm = make_llm(fake_llm, max_retries=1)
    fake_llm.script(FaultSpec(status=502), FaultSpec(status=502))
    with pytest.raises(LLMError):
        asyncio.run(llm.acomplete(user("down")))
    assert fake_llm.calls["chat"] == 2


def test_base_llm_gives_accounting_to_other_backends() -> None:
    class Canned(BaseLLM):
        def _complete(self, messages: list[dict[str, Any]], json_schema: dict[str, Any] | None) -> Completion:
            if messages[-1]["content"] == "boom":
                raise RuntimeError("backend exploded")
            return Completion('```json\n{"ok": true}\n```', Usage(5, 2))

    class NoSuperInit(Canned):
        def __init__(self) -> None:  # forgets super().__init__(); accounting still works
            pass

    assert NoSuperInit().complete(user("hi")).usage == Usage(5, 2)
    llm = Canned()
    assert complete_json(llm, user("hi"), stage="summary") == {"ok": True}
    assert asyncio.run(acomplete_json(llm, user("hi"), stage="summary")) == {"ok": True}
    with pytest.raises(LLMError, match="backend exploded"):
        llm.complete(user("boom"))
    stats = llm.get_token_statistics()
    assert stats["summary"] == {
        "calls": 2,
        "failures": 0,
        "attempts": 2,
        "prompt_tokens": 10,
        "completion_tokens": 4,
        "total_tokens": 14,
    }
    assert stats["extraction"]["failures"] == 1


# --- construction ------------------------------------------------------------------------


def test_upstream_memory_manager_config_talks_to_server(fake_llm: FakeLLMServer) -> None:
    cfg = MemoryConfig.from_dict(
        {
            "memory_manager": {
                "model_name": "openai",
                "configs": {"model": "m", "api_key": "k", "max_tokens": 100, "openai_base_url": fake_llm.base_url},
            }
        }
    )
    assert cfg.llm is not None
    llm = create_llm(cfg.llm)
    assert complete_json(llm, TAGGED) == EXPECTED_FACTS
    sent = fake_llm.requests[-1]
    assert sent["model"] == "m" and sent["max_tokens"] == 100
    assert llm.get_token_statistics()["total"]["calls"] == 1 == fake_llm.calls["chat"]


def test_provider_defaults() -> None:
    ollama = create_llm(LLMConfig(provider="ollama", model="llama3"))
    assert isinstance(ollama, OpenAICompatibleLLM)
    assert ollama.base_url == "http://localhost:11434/v1" and ollama.api_key == "not-needed"
    assert create_llm(LLMConfig(provider="vllm")).base_url == "http://localhost:8000/v1"
    assert create_llm(LLMConfig(provider="deepseek", api_key="x")).base_url == "https://api.deepseek.com/v1"
    assert create_llm(LLMConfig(provider="openai", api_key="x")).base_url is None
    assert ollama.client.max_retries == 0  # we retry ourselves, countably


def test_bad_messages_rejected_before_the_network(fake_llm: FakeLLMServer) -> None:
    from lightmem_core.errors import InvalidInputError

    llm = make_llm(fake_llm)
    with pytest.raises(InvalidInputError):
        llm.complete([])
    with pytest.raises(InvalidInputError, match=r"messages\[0\]"):
        llm.complete([{"text": "no role"}])
    assert fake_llm.calls["chat"] == 0


# --- embeddings over HTTP ------------------------------------------------------------------


def test_openai_embedder_against_fake_server(fake_llm: FakeLLMServer) -> None:
    from lightmem_core.embed import OpenAIEmbedder

    emb = OpenAIEmbedder(
        EmbedderConfig(provider="openai", base_url=fake_llm.base_url, model="fake-embed", batch_size=4)
    )
    texts = [f"text number {i} about tea" for i in range(10)]
    vecs = emb.embed(texts)
    assert vecs.shape == (10, 64) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert fake_llm.calls["embeddings"] == 3  # ceil(10 / 4)
    assert [len(r["input"]) for r in fake_llm.requests_for("embeddings")] == [4, 4, 2]
    assert emb.dims == 64
    # deterministic, and related texts are closer than unrelated ones
    again = emb.embed(["text number 0 about tea", "quantum chromodynamics lecture"])
    assert np.allclose(again[0], vecs[0])
    assert float(vecs[0] @ vecs[1]) > float(again[1] @ vecs[0])
    asv = asyncio.run(emb.aembed(texts[:3]))
    assert np.allclose(asv, vecs[:3])

    unnorm = OpenAIEmbedder(
        EmbedderConfig(provider="openai", base_url=fake_llm.base_url, model="fake-embed", normalize=False)
    )
    raw = unnorm.embed(["tea tea tea"])
    assert np.linalg.norm(raw[0]) > 1.5  # the server's vectors are not unit length
