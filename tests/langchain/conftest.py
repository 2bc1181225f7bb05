"""Fixtures of the LangChain adapter tests: a memory on a temp store with the session's MiniLM."""

from __future__ import annotations

import inspect
from typing import Any

import pytest


@pytest.fixture(params=["local", "remote"])
def memory(request: Any, make_memory: Any) -> Any:
    """An offline LightMemory (extractive, no LLM) on a fresh embedded store, used in
    process ("local") or through ``RemoteMemory`` and a real server on loopback
    ("remote"): every adapter test runs both ways."""
    from tests._served import local_or_remote

    yield from local_or_remote(request.param, make_memory())


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_pycollect_makeitem(collector: Any, name: str, obj: Any) -> Any:
    """Mark coroutine tests of this folder for pytest-asyncio.

    langchain-tests' standard suites are written for ``asyncio_mode=auto`` (bare
    ``async def`` tests) and forbid overriding their tests; this project runs strict
    mode. Running innermost, this adds the marker before pytest-asyncio's own wrapper
    turns marked coroutines into async test items, for this folder only.
    """
    outcome = yield
    if not inspect.iscoroutinefunction(obj):
        return
    result = outcome.get_result()
    for node in result if isinstance(result, list) else [result]:
        if isinstance(node, pytest.Function) and node.get_closest_marker("asyncio") is None:
            node.add_marker(pytest.mark.asyncio)
