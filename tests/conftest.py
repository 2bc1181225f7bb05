"""Shared fixtures: the real MiniLM (loaded once per session) and temp stores."""

from __future__ import annotations

import os

# Before torch loads: one BLAS thread (3x faster on this 2-core machine) and no hub access.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from typing import Any, Callable, Iterator  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def embedder() -> Any:
    from lightmem_core.embed import SentenceTransformerEmbedder

    emb = SentenceTransformerEmbedder()
    emb.embed(["warm up"])
    return emb


@pytest.fixture
def make_memory(tmp_path: Any, embedder: Any) -> Iterator[Callable[..., Any]]:
    """Build LightMemory instances on a temp embedded store, sharing the session's model."""
    from lightmem_core import LightMemory, MemoryConfig

    opened: list[Any] = []

    def factory(config: dict[str, Any] | None = None, *, path: Any = None, **kwargs: Any) -> Any:
        cfg = dict(config or {})
        store = dict(cfg.pop("store", {}) or {})
        store.setdefault("path", str(path or tmp_path / "store"))
        mem = LightMemory(
            MemoryConfig.from_dict({"store": store, **cfg}), embedder=kwargs.pop("embedder", embedder), **kwargs
        )
        opened.append(mem)
        return mem

    yield factory
    for mem in opened:
        mem.close()


from hypothesis import settings as _hsettings  # noqa: E402

from tests.fake_llm import fake_llm  # noqa: E402,F401  (the loopback LLM server fixture, for every test)

# CI runs on a fresh clone: the same examples every run, so a submission cannot fail on
# a draw it has never seen. Locally, hypothesis explores (and remembers failures).
_hsettings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    _hsettings.load_profile("ci")
