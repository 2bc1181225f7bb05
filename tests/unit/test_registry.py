"""A provider added with ``registry.register`` can be named in a config; an unknown one is
refused by validation, naming the field."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pytest

from lightmem_core import ConfigError, LightMemory, MemoryConfig, registry
from lightmem_core.config import CompressorConfig, EmbedderConfig, SegmenterConfig
from lightmem_core.segment import create_segmenter


class HashEmbedder:
    """A model-free embedder: each word hashed into one of 64 dimensions."""

    def __init__(self, config: EmbedderConfig) -> None:
        self.config = config

    @property
    def dims(self) -> int:
        return 64

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, hashlib.sha1(word.strip(".,!?").encode()).digest()[0] % 64] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


class KeepAllSegmenter:
    def __init__(self, config: SegmenterConfig, *, embedder: Any = None, compressor: Any = None) -> None:
        self.config, self.embedder = config, embedder


@pytest.fixture
def registered() -> Iterator[None]:
    registry.register("embedder", "test-hash", HashEmbedder)
    registry.register("segmenter", "test-keep-all", KeepAllSegmenter)
    registry.register("compressor", "test-none", "lightmem_core.compress:NoCompressor")
    yield
    for kind, name in (("embedder", "test-hash"), ("segmenter", "test-keep-all"), ("compressor", "test-none")):
        registry._REGISTRY[kind].pop(name)


def test_a_registered_embedder_builds_a_memory(registered: None, tmp_path: Path) -> None:
    config = MemoryConfig.from_dict({"embedder": {"provider": "test-hash"}, "store": {"path": str(tmp_path / "s")}})
    with LightMemory(config) as memory:
        assert isinstance(memory.embedder, HashEmbedder) and memory.dims == 64
        memory.add_memory([{"role": "user", "content": "My dog is called Biscuit."}], force_extract=True)
        hits = memory.retrieve("What is my dog called?")
        assert hits and "Biscuit" in hits[0].entry.memory


def test_registered_names_pass_validation_for_each_kind(registered: None) -> None:
    assert CompressorConfig(provider="test-none").provider == "test-none"
    seg = create_segmenter(SegmenterConfig(provider="test-keep-all"), embedder="e")
    assert isinstance(seg, KeepAllSegmenter) and seg.embedder == "e"


@pytest.mark.parametrize("section", ["embedder", "compressor", "segmenter", "store", "llm"])
def test_an_unknown_provider_names_the_field_and_the_known_names(section: str) -> None:
    with pytest.raises(ConfigError) as err:
        MemoryConfig.from_dict({section: {"provider": "nope"}})
    assert err.value.field == f"{section}.provider"
    assert "'nope'" in str(err.value) and all(repr(name) in str(err.value) for name in registry.names(section))


def test_an_unregistered_name_is_refused_once_more(registered: None) -> None:
    registry._REGISTRY["embedder"].pop("test-hash")
    try:
        with pytest.raises(ConfigError) as err:
            MemoryConfig.from_dict({"embedder": {"provider": "test-hash"}})
        assert err.value.field == "embedder.provider"
    finally:
        registry.register("embedder", "test-hash", HashEmbedder)
