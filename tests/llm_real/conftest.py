"""A real model on a real server for the ``llm`` tests (``make test-llm``).

``LIGHTMEM_LLM_URL`` names a running OpenAI-compatible server (model alias
``LIGHTMEM_LLM_MODEL``, default "local"); without it the session starts
``tools/local_llm.py`` (llama-cpp-python + Qwen2.5-Coder-1.5B, built or fetched into its
cache on first use) on a free loopback port and stops it at the end.
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterator

import pytest

from lightmem_core.config import LLMConfig
from lightmem_core.llm import OpenAICompatibleLLM

ISO = re.compile(r"^\d{4}(-\d{2}(-\d{2})?|-W\d{2})?$")


@pytest.fixture(scope="session")
def llm_url() -> Iterator[str]:
    url = os.environ.get("LIGHTMEM_LLM_URL")
    if url:
        yield url.rstrip("/")
        return
    from tools import local_llm

    proc, url = local_llm.start("qwen1.5b")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(60)


@pytest.fixture(scope="session")
def small_window_url() -> Iterator[str]:
    """SmolLM2-135M with a 1,024-token window: a server whose window fills up."""
    from tools import local_llm

    proc, url = local_llm.start("smollm2", n_ctx=1024, threads=1)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(60)


def real_llm(url: str, **kw: Any) -> OpenAICompatibleLLM:
    cfg = {
        "provider": "vllm",
        "model": os.environ.get("LIGHTMEM_LLM_MODEL", "local"),
        "base_url": url,
        "api_key": "none",
        "timeout": 600,
        "max_tokens": 700,
        "temperature": 0.0,
        "max_retries": 1,
    } | kw
    return OpenAICompatibleLLM(LLMConfig(**cfg))


def check_entries(memory: Any, user: str, batch_ids: set[str]) -> list[Any]:
    """What every stored entry built from a real answer must satisfy."""
    entries = memory.get_all(user_id=user, limit=1000, include_superseded=True)
    for e in entries:
        if e.entry_type.value == "summary":
            continue
        assert e.source_ids and set(e.source_ids) <= batch_ids, (e.memory, e.source_ids)
        when = e.metadata.get("event_date")
        assert when is None or ISO.match(when), (e.memory, when)
        assert e.memory.strip() and e.memory.isprintable()
    return entries
