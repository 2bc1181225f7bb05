"""The local embedder in each precision it can compute in, on any CPU.

CI runs on whichever machine a session gets: some CPUs compute bf16 natively, some
emulate it (slower, still correct). Each test here forces ``fp32`` and ``bf16`` so
neither path can break unseen, and the CPU probe that ``auto`` consults is set both
ways (it is the one input that differs between machines; the model, the store and the
vectors are all real).
"""

from __future__ import annotations

import logging
from typing import Any, Iterator

import numpy as np
import pytest
import torch

from lightmem_core import LightMemory, MemoryConfig
from lightmem_core import embed as embed_module
from lightmem_core.config import EmbedderConfig
from lightmem_core.embed import SentenceTransformerEmbedder
from lightmem_core.errors import ConfigError

PRECISIONS = ("fp32", "bf16")
TEXTS = [
    "hi",
    "Where does Maya work these days?",
    "Émile moved to Lyon last spring 😀",
    "We booked flights to Lisbon for June 14.",
    "My sister Jana adopted a grey cat called Miso; he sleeps on the piano all afternoon.",
    "word " * 300,  # longer than the model takes: truncated alike on both paths
]


@pytest.fixture(scope="module", params=PRECISIONS)
def forced(request: Any) -> SentenceTransformerEmbedder:
    emb = SentenceTransformerEmbedder(EmbedderConfig(precision=request.param))
    emb.embed(["warm up"])
    return emb


def test_each_precision_computes_in_what_it_says(forced: SentenceTransformerEmbedder) -> None:
    dtype = next(forced.model.parameters()).dtype
    assert forced.precision == forced.config.precision
    assert dtype == {"fp32": torch.float32, "bf16": torch.bfloat16}[forced.precision]
    assert forced.embed(TEXTS).dtype == np.float32


def test_a_text_gets_one_vector_alone_and_in_any_batch(forced: SentenceTransformerEmbedder) -> None:
    """Regression: on CPUs with native bf16 a query vector and the same text's vector
    from a batch had cosine 0.998 (bf16 pooling, normalisation and padding rounded
    differently). A stored vector is made in a batch, a query alone."""
    alone = np.stack([forced.embed([t])[0] for t in TEXTS])
    batched = forced.embed(TEXTS)
    reordered = forced.embed(list(reversed(TEXTS)) + ["another text to pad the batch"])[: len(TEXTS)][::-1]
    for vectors in (batched, reordered):
        cosines = np.sum(alone * vectors, axis=1)
        assert cosines.min() >= 0.9999, cosines
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Same-length batches need no padding: the eager batch is the eager single vector up to
    # float rounding. Not bit for bit on every CPU: two texts of one length (here the second
    # and third) go through the matrix kernels as two rows, which some CPUs sum in another
    # order than one row (seen: 1.5e-7 apart on an AVX-512-bf16 machine, equal on others).
    eager = SentenceTransformerEmbedder(
        EmbedderConfig(precision=forced.precision, trace_queries=False), model=forced.model
    )
    eager_alone = np.stack([eager.embed([t])[0] for t in TEXTS])
    assert np.allclose(eager_alone, eager.embed(TEXTS), rtol=0, atol=1e-6)


def test_the_query_trace_gives_the_eager_vectors(forced: SentenceTransformerEmbedder) -> None:
    eager = SentenceTransformerEmbedder(
        EmbedderConfig(precision=forced.precision, trace_queries=False), model=forced.model
    )
    for text in TEXTS:
        assert np.allclose(forced.embed([text])[0], eager.embed([text])[0], atol=1e-5)
    assert isinstance(forced._traced, torch.jit.ScriptModule)
    assert eager._traced is False


def test_bf16_stays_close_to_fp32() -> None:
    fp32 = SentenceTransformerEmbedder(EmbedderConfig(precision="fp32"))
    bf16 = SentenceTransformerEmbedder(EmbedderConfig(precision="bf16"))
    a, b = fp32.embed(TEXTS), bf16.embed(TEXTS)
    assert np.sum(a * b, axis=1).min() >= embed_module.BF16_CHECK.min_cosine
    assert ((b @ a.T).argmax(axis=1) == np.arange(len(TEXTS))).all()


def test_a_stored_vector_is_the_query_vector_of_its_words(forced: SentenceTransformerEmbedder, tmp_path: Any) -> None:
    """End to end: entries are embedded in one batch at ingest; the query of the same words
    must find each with (almost) cosine 1 in either precision."""
    texts = TEXTS[:5]
    with LightMemory(
        MemoryConfig.from_dict({"store": {"path": str(tmp_path)}, "dense_context": 0.0}), embedder=forced
    ) as memory:
        memory.add_memory(
            [{"id": f"t{i}", "role": "user", "content": t} for i, t in enumerate(texts)], user_id="u", infer=False
        )
        for text in texts:
            hits = memory.retrieve(text, user_id="u", strategy="embedding", limit=1)
            assert hits[0].entry.memory == text.strip()
        stored = memory._store.vectors(memory._scope("u", None, None), [e.id for e in memory.get_all(user_id="u")])
        by_text = {e.memory: stored[e.id] for e in memory.get_all(user_id="u")}
        for text in texts:
            assert float(np.dot(by_text[text.strip()], forced.embed([text.strip()])[0])) >= 0.9999


# --- what "auto" picks, on each kind of CPU ------------------------------------------------------
@pytest.fixture
def cpu(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Set what the CPU probe reports: the only thing that differs between CI machines."""

    def report(native: bool) -> None:
        monkeypatch.setattr(embed_module, "bf16_supported", lambda: native)

    yield report


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_follows_the_cpu(cpu: Any, native: bool, expected: str) -> None:
    cpu(native)
    emb = SentenceTransformerEmbedder(EmbedderConfig(precision="auto"))
    assert emb.precision == expected


def test_auto_falls_back_to_fp32_when_bf16_vectors_are_off(
    cpu: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A CPU may report bf16 (or AMX) and compute it wrongly. The check compares bf16
    probe vectors with fp32 ones; a bound no real bf16 can meet stands in for that CPU."""
    cpu(True)
    monkeypatch.setattr(embed_module, "BF16_CHECK", embed_module.Bf16Check(min_cosine=1.5))
    with caplog.at_level(logging.WARNING, logger="lightmem_core.embed"):
        emb = SentenceTransformerEmbedder(EmbedderConfig(precision="auto"))
        assert emb.precision == "fp32"
    assert next(emb.model.parameters()).dtype == torch.float32
    assert "using fp32" in caplog.text
    # the fp32 fallback gives the real fp32 vectors (the weights were loaded again, not cast back)
    ref = SentenceTransformerEmbedder(EmbedderConfig(precision="fp32"), model=None)
    assert np.array_equal(emb.embed(TEXTS[:3]), ref.embed(TEXTS[:3]))
    with pytest.raises(ConfigError) as err:
        SentenceTransformerEmbedder(EmbedderConfig(precision="bf16")).embed(["x"])
    assert err.value.field == "embedder.precision" and "cosine" in str(err.value)


# --- a store keeps the precision it was written in -------------------------------------------------
def test_a_store_written_in_bf16_keeps_bf16_where_auto_would_pick_fp32(cpu: Any, tmp_path: Any) -> None:
    cpu(True)
    config = {"store": {"path": str(tmp_path)}}
    with LightMemory(config) as memory:
        memory.add_memory("My sister Jana lives in Brno.", user_id="u")
        assert memory.embedder_identity()["precision"] == "bf16"
        written = memory.retrieve("Where does Jana live?", user_id="u")[0].entry.id
    cpu(False)  # the same store opened on a machine without native bf16
    with LightMemory(config) as memory:
        assert memory.embedder.precision == "bf16"
        assert memory.retrieve("Where does Jana live?", user_id="u")[0].entry.id == written
        assert "bf16" in memory.stage_status()["embedder"]
    # an explicit other precision is refused by name, and the failed open leaves the store usable
    with pytest.raises(ConfigError) as err:
        LightMemory({**config, "embedder": {"precision": "fp32"}})
    assert err.value.field == "embedder.precision" and "bf16" in str(err.value)
    fp32_loaded = SentenceTransformerEmbedder(EmbedderConfig(precision="auto"))
    assert fp32_loaded.precision == "fp32"
    with pytest.raises(ConfigError) as err:
        LightMemory(config, embedder=fp32_loaded)
    assert err.value.field == "embedder.precision"
    with LightMemory({**config, "embedder": {"precision": "bf16"}}) as memory:
        assert len(memory.get_all(user_id="u")) == 1


def test_a_store_written_in_fp32_stays_fp32_on_a_bf16_cpu(cpu: Any, tmp_path: Any) -> None:
    cpu(False)
    config = {"store": {"path": str(tmp_path)}}
    with LightMemory(config) as memory:
        memory.add_memory("Tom plays the cello.", user_id="u")
    cpu(True)
    with LightMemory(config) as memory:
        assert memory.embedder.precision == "fp32"
        assert memory.embedder_identity() == {
            "embedder": "sentence-transformers:packaged-all-MiniLM-L6-v2",
            "precision": "fp32",
        }
