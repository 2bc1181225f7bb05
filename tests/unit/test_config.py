"""Upstream LightMem config keys map onto the native config with the same meaning."""

from __future__ import annotations

import logging

import pytest

from lightmem_core import ConfigError, MemoryConfig

UPSTREAM = {
    "pre_compress": True,
    "pre_compressor": {
        "model_name": "llmlingua-2",
        "configs": {
            "llmlingua_config": {"model_name": "/models/llmlingua-2", "device_map": "cpu", "use_llmlingua2": True},
            "compress_config": {"rate": 0.6},
        },
    },
    "topic_segment": True,
    "precomp_topic_shared": True,
    "topic_segmenter": {"model_name": "llmlingua-2"},
    "messages_use": "user_only",
    "metadata_generate": True,
    "text_summary": True,
    "memory_manager": {
        "model_name": "openai",
        "configs": {"model": "gpt-4o-mini", "api_key": "sk-x", "max_tokens": 16000, "openai_base_url": "http://h:1/v1"},
    },
    "extract_threshold": 0.1,
    "index_strategy": "embedding",
    "text_embedder": {
        "model_name": "huggingface",
        "configs": {
            "model": "sentence-transformers/all-MiniLM-L6-v2",
            "embedding_dims": 384,
            "model_kwargs": {"device": "cpu"},
        },
    },
    "retrieve_strategy": "embedding",
    "embedding_retriever": {
        "model_name": "qdrant",
        "configs": {"collection_name": "my_long_term_chat", "embedding_model_dims": 384, "path": "./my_long_term_chat"},
    },
    "update": "offline",
    "extraction_mode": "event",
    "logging": {"level": "DEBUG"},
}


def test_upstream_example_maps_field_by_field() -> None:
    c = MemoryConfig.from_dict(UPSTREAM)
    assert c.pre_compress and c.compressor.provider == "llmlingua-2"
    assert (
        c.compressor.model_path == "/models/llmlingua-2" and c.compressor.rate == 0.6 and c.compressor.device == "cpu"
    )
    assert c.topic_segment and c.precomp_topic_shared and c.segmenter.provider == "attention"
    assert c.messages_use == "user_only" and c.extract_threshold == 0.1
    assert c.llm is not None and c.llm.model == "gpt-4o-mini" and c.llm.api_key == "sk-x"
    assert c.llm.max_tokens == 16000 and c.llm.base_url == "http://h:1/v1"
    assert c.index_strategy == "embedding" and c.retrieval.strategy == "embedding"
    # the upstream name of the packaged model resolves to the packaged copy (no download)
    assert c.embedder.provider == "sentence-transformers" and c.embedder.model is None and c.embedder.dims == 384
    assert c.store.provider == "edge" and c.store.collection_name == "my_long_term_chat"
    assert c.store.path == "./my_long_term_chat"
    assert c.update == "offline" and c.extraction_mode == "event"


def test_server_address_keeps_qdrant_client_and_local_llms_get_their_urls() -> None:
    c = MemoryConfig.from_dict(
        {
            "embedding_retriever": {"model_name": "qdrant", "configs": {"url": "http://q:6333", "api_key": "k"}},
            "memory_manager": {"model_name": "ollama", "configs": {"model": "llama3"}},
            "text_embedder": {"model_name": "openai", "configs": {"model": "text-embedding-3-small", "api_key": "k"}},
        }
    )
    assert c.store.provider == "qdrant" and c.store.url == "http://q:6333" and c.store.api_key == "k"
    assert c.llm.provider == "ollama" and c.llm.base_url == "http://localhost:11434/v1"
    assert c.embedder.provider == "openai" and c.embedder.model == "text-embedding-3-small"


def test_native_keys_mix_with_upstream_and_win() -> None:
    c = MemoryConfig.from_dict({"retrieve_strategy": "context", "retrieval": {"limit": 3}, "store": {"path": "/x"}})
    assert c.retrieval.strategy == "context" and c.retrieval.limit == 3 and c.store.path == "/x"


def test_unbuilt_upstream_options_are_kept_for_reporting() -> None:
    c = MemoryConfig.from_dict({"kv_cache": True, "graph_mem": True, "kv_cache_path": "x"})
    assert c.unsupported == {"kv_cache": True, "graph_mem": True}


@pytest.mark.parametrize(
    "data, field",
    [
        ({"pre_compressor": {"model_name": "gzip"}}, "pre_compressor.model_name"),
        ({"pre_compressor": {"model_name": "llmlingua-2", "configs": {"x": 1}}}, "pre_compressor.configs.x"),
        (
            {"pre_compressor": {"model_name": "llmlingua-2", "configs": {"compress_config": {"rate": 3}}}},
            "compressor.rate",
        ),
        ({"memory_manager": "openai"}, "memory_manager"),
        ({"memory_manager": {"model_name": "openai", "configs": {"colour": 1}}}, "memory_manager.configs.colour"),
        ({"messages_use": "everyone"}, "messages_use"),
        ({"extraction_mode": "graph"}, "extraction_mode"),
        ({"embedder": {"batch_size": 0}}, "embedder.batch_size"),
        ({"embedder": {"provider": "sentence-transformers", "colour": 1}}, "embedder.colour"),
        ([1, 2], "config"),
    ],
)
def test_errors_name_the_field(data, field) -> None:
    with pytest.raises(ConfigError) as err:
        MemoryConfig.from_dict(data)  # type: ignore[arg-type]
    assert err.value.field == field


def test_extract_threshold_is_reported_as_unsupported(caplog: pytest.LogCaptureFixture, make_memory, tmp_path) -> None:
    # upstream declares extract_threshold but never reads it: nothing to reproduce, so it is reported
    with caplog.at_level(logging.WARNING, logger="lightmem_core.config"):
        c = MemoryConfig.from_dict({"extract_threshold": 0.1})
    assert c.extract_threshold == 0.1 and c.unsupported == {"extract_threshold": 0.1}
    assert [r.levelno for r in caplog.records if "extract_threshold=0.1" in r.getMessage()] == [logging.WARNING]
    memory = make_memory({"extract_threshold": 0.1})
    assert memory.stage_status()["extract_threshold"].startswith("not available")

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lightmem_core.config"):
        default = MemoryConfig.from_dict({"extract_threshold": 0.5})
    assert "extract_threshold" not in default.unsupported and not caplog.records
    assert "extract_threshold" not in make_memory({}, path=tmp_path / "default").stage_status()
