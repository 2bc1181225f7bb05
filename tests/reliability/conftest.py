"""Shared pieces of the reliability suite: LLM and embedder wiring to the loopback server.

Every test here talks to real components: the embedded store in a temp dir, the SQLite
journal, the real ``openai`` client against the loopback server of ``tests/fake_llm.py``
(no LLM can be installed on the test machine), and the packaged MiniLM where the
semantics of the vectors matter.
"""

from __future__ import annotations

import time
from typing import Any, Iterator, Optional

import pytest

from lightmem_core.config import LLMConfig
from lightmem_core.llm import OpenAICompatibleLLM
from tests.fake_llm import FakeLLMServer


class TimedFakeLLMServer(FakeLLMServer):
    """The loopback server, also noting when each request arrived (to see the backoff)."""

    def reset(self) -> None:
        super().reset()
        self.times: list[tuple[str, float]] = []

    def _record(self, endpoint: str, body: Any) -> Any:
        with self._lock:
            self.times.append((endpoint, time.monotonic()))
        return super()._record(endpoint, body)

    def gaps(self, endpoint: str = "chat") -> list[float]:
        """Seconds between consecutive requests to ``endpoint``."""
        ts = [t for e, t in self.times if e == endpoint]
        return [b - a for a, b in zip(ts, ts[1:])]


@pytest.fixture
def timed_llm() -> Iterator[TimedFakeLLMServer]:
    with TimedFakeLLMServer() as server:
        yield server


def llm_for(
    server: FakeLLMServer,
    *,
    max_retries: int = 2,
    timeout: float = 2.0,
    backoff_base: float = 0.02,
    max_backoff: float = 0.2,
) -> OpenAICompatibleLLM:
    """A real OpenAI-compatible client for the loopback server, with test-sized waits."""
    cfg = LLMConfig(base_url=server.base_url, model="fake", api_key="k", max_retries=max_retries, timeout=timeout)
    return OpenAICompatibleLLM(cfg, backoff_base=backoff_base, max_backoff=max_backoff, max_retry_after=1.0)


def remote_config(
    server: FakeLLMServer, path: Any, *, llm: bool = True, extract_tokens: Optional[int] = None, **extra: Any
) -> dict[str, Any]:
    """A native config whose LLM *and* embedder are the loopback server.

    The embedder is the library's OpenAI-compatible one (``embedder.provider="openai"``)
    so a child process needs neither torch nor the MiniLM weights: it starts in about a
    second, which is what lets the crash test restart it dozens of times.
    """
    cfg: dict[str, Any] = {
        "store": {"path": str(path)},
        "embedder": {
            "provider": "openai",
            "base_url": server.base_url,
            "model": "fake-embed",
            "api_key": "k",
            "timeout": 5.0,
        },
    }
    if llm:
        cfg["llm"] = {
            "provider": "openai",
            "base_url": server.base_url,
            "model": "fake",
            "api_key": "k",
            "max_retries": 2,
            "timeout": 5.0,
        }
    if extract_tokens is not None:
        cfg["extract_tokens"] = extract_tokens
    cfg.update(extra)
    return cfg
