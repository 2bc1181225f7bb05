"""LLMLingua-2 and causal-LM entropy compression on tiny models the tests build themselves."""

from __future__ import annotations

import json
import os
import random
import re
from importlib import resources
from pathlib import Path

import pytest

from tests._tiny_models import build_tiny_causal_lm, build_tiny_llmlingua2

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from lightmem_core.compress import (  # noqa: E402
    DEFAULT_LLMLINGUA2_MODEL,
    CompressorModelError,
    EntropyCompressor,
    LLMLingua2Compressor,
    create_compressor,
)
from lightmem_core.config import CompressorConfig  # noqa: E402
from lightmem_core.errors import ConfigError, StageNotAvailableError  # noqa: E402
from lightmem_core.textproc import words  # noqa: E402

TEXTS = [
    "Hey Mel! Good to see you! How have you been?",
    "I went to a LGBTQ support group on 7 May 2023 and it was so powerful.",
    "Caroline said the pottery class costs $45 and starts at 3:30pm, two weeks from now.",
    "Honestly the weekend was great because I met Jon at the Riverside Cafe near the library.",
    "",
    "😊",
]


def _turns() -> list[str]:
    data = json.loads(resources.files("lightmem_core").joinpath("data/sample_conversation.json").read_text())
    return [m["content"] for s in data["sessions"] for m in s["messages"]]


def _digit_words(text: str) -> list[str]:
    return [w for w in words(text) if any(c.isdigit() for c in w)]


def _is_subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(any(w == b for b in it) for w in small)


@pytest.fixture(scope="session")
def tiny_lingua_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llmlingua2(tmp_path_factory.mktemp("lingua"))


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_causal_lm(tmp_path_factory.mktemp("causal"))


@pytest.fixture(scope="module")
def lingua(tiny_lingua_dir: Path) -> LLMLingua2Compressor:
    comp = create_compressor(CompressorConfig(provider="llmlingua-2", model_path=str(tiny_lingua_dir), rate=0.5))
    assert isinstance(comp, LLMLingua2Compressor)
    return comp


@pytest.fixture(scope="module")
def lingua_exact(tiny_lingua_dir: Path) -> LLMLingua2Compressor:
    pytest.importorskip("llmlingua")
    cfg = CompressorConfig(
        provider="llmlingua-2", model_path=str(tiny_lingua_dir), rate=0.5, options={"backend": "llmlingua"}
    )
    return LLMLingua2Compressor(cfg)


# --- LLMLingua-2, fast backend ---------------------------------------------------------------


def test_llmlingua2_compresses_a_batch_offline(lingua: LLMLingua2Compressor) -> None:
    res = lingua.compress(TEXTS)
    assert [r.original for r in res] == TEXTS
    for r, t in zip(res, TEXTS):
        assert _is_subsequence(words(r.text), words(t))
        assert set(_digit_words(t)) <= set(words(r.text)), (r.text, t)
        if t.strip():
            assert r.text.strip()
    assert res[4].text == "" and res[5].text == "😊"
    for name in ("Caroline", "Jon", "Riverside", "LGBTQ"):
        assert any(name in r.text for r in res), name
    assert "7 May 2023" in res[1].text and "$45" in res[2].text and "3:30pm," in res[2].text


@pytest.mark.parametrize("rate", [0.4, 0.7])
def test_llmlingua2_rate_roughly_respected(lingua: LLMLingua2Compressor, rate: float) -> None:
    res = lingua.compress(_turns(), rate=rate)
    mean = sum(r.kept_ratio for r in res) / len(res)
    assert rate - 0.05 <= mean <= rate + 0.2, mean


def test_llmlingua2_exposes_model_and_tokenizer(lingua: LLMLingua2Compressor) -> None:
    from transformers import PreTrainedModel

    assert isinstance(lingua.model, PreTrainedModel)
    assert lingua.tokenizer.is_fast
    assert lingua.inner_compressor.model is lingua.model  # upstream's segmenter path
    assert lingua.inner_compressor.tokenizer is lingua.tokenizer


def test_dynamic_padding_matches_full_512_padding(lingua: LLMLingua2Compressor) -> None:
    """llmlingua pads every chunk to 512 tokens; padding to the batch's longest must not change a probability."""
    texts = TEXTS[:4]
    fast = lingua.token_scores(texts)
    tok, model = lingua.tokenizer, lingua.model
    for text, (offsets, probs) in zip(texts, fast):
        ids = [tok.cls_token_id] + tok(text, add_special_tokens=False)["input_ids"] + [tok.sep_token_id]
        assert len(ids) - 2 == len(offsets) == len(probs)
        padded = torch.full((1, 512), tok.pad_token_id, dtype=torch.long)
        padded[0, : len(ids)] = torch.tensor(ids)
        mask = (torch.arange(512) < len(ids)).long()[None]
        with torch.inference_mode():
            ref = torch.softmax(model(input_ids=padded, attention_mask=mask).logits, -1)[0, 1 : len(ids) - 1, 1]
        assert torch.allclose(ref, torch.tensor(probs), atol=1e-5)


def test_long_text_is_windowed(lingua: LLMLingua2Compressor) -> None:
    long = " ".join(_turns()) * 2  # well over 512 tokens
    ((offsets, probs),) = lingua.token_scores([long])
    assert len(offsets) == len(probs) > 600
    (r,) = lingua.compress([long], rate=0.5)
    assert r.original == long and 0.4 < r.kept_ratio < 0.75
    assert set(_digit_words(long)) <= set(words(r.text))


def test_shared_forward_gives_attention(lingua: LLMLingua2Compressor) -> None:
    shared = lingua.compress_with_attention(TEXTS, hidden_states=True)
    assert [r.original for r in shared.compressed] == TEXTS
    assert set(_digit_words(TEXTS[2])) <= set(words(shared.compressed[2].text))
    (win,) = shared.windows  # all texts fit one window
    T = win.attention.shape[0]
    assert win.attention.shape == (T, T) and win.hidden is not None and win.hidden.shape == (T, 32)
    assert [t for t, _, _ in win.spans] == [0, 1, 2, 3, 5]  # the empty text has no tokens
    assert win.spans[0][1] == 1 and win.spans[-1][2] == T - 1  # [CLS] ... [SEP]
    assert abs(float(win.attention[5].sum()) - 1.0) < 1e-4  # rows are attention distributions
    M = shared.sentence_attention()
    assert M.shape == (6, 6)
    assert (M[[1, 2, 3]].sum(axis=1).round(6) == 1.0).all()
    assert (M.diagonal() == 0).all() and (M[0] == 0).all()
    # the eager switch for attentions is undone afterwards
    first = lingua.compress_with_attention(TEXTS[:2], layers=[-1]).windows[0].attention
    assert first.shape[0] == first.shape[1]


# --- LLMLingua-2, llmlingua's own PromptCompressor -------------------------------------------------


def test_llmlingua_backend(lingua_exact: LLMLingua2Compressor) -> None:
    from llmlingua import PromptCompressor

    assert isinstance(lingua_exact.inner_compressor, PromptCompressor)
    assert lingua_exact.model is lingua_exact.inner_compressor.model
    res = lingua_exact.compress(TEXTS)
    assert [r.original for r in res] == TEXTS
    for r, t in zip(res, TEXTS):
        if t.strip():
            assert r.text.strip()
        # force_reserve_digit keeps every token with a digit (the uncased tokenizer lower-cases text)
        for d in re.findall(r"\d+", t):
            assert d in r.text, (d, r.text)
    mean = sum(r.kept_ratio for r in lingua_exact.compress(_turns())) / len(_turns())
    assert 0.35 <= mean <= 0.75, mean


def test_llmlingua_backend_leaves_global_rng_alone(tiny_lingua_dir: Path) -> None:
    pytest.importorskip("llmlingua")
    random.seed(1234)
    expected = random.random()
    random.seed(1234)
    LLMLingua2Compressor(
        CompressorConfig(provider="llmlingua-2", model_path=str(tiny_lingua_dir), options={"backend": "llmlingua"})
    )
    assert random.random() == expected


def test_llmlingua_backend_needs_a_known_model_name(tiny_lingua_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("llmlingua")
    other = tmp_path / "tiny-token-classifier"
    os.symlink(tiny_lingua_dir, other)
    with pytest.raises(ConfigError) as e:
        LLMLingua2Compressor(
            CompressorConfig(provider="llmlingua-2", model_path=str(other), options={"backend": "llmlingua"})
        )
    assert e.value.field == "compressor.model_path"
    # the fast backend does not care about the name
    assert (
        LLMLingua2Compressor(CompressorConfig(provider="llmlingua-2", model_path=str(other)))
        .compress(["on 5 June"])[0]
        .text
    )


# --- errors -------------------------------------------------------------------------------------


def test_missing_model_path_names_the_field(tmp_path: Path) -> None:
    for path in (str(tmp_path / "nope"), "someone/not-a-cached-model-xyz"):
        with pytest.raises(StageNotAvailableError) as e:
            LLMLingua2Compressor(CompressorConfig(provider="llmlingua-2", model_path=path))
        assert isinstance(e.value, CompressorModelError)
        assert e.value.field == "compressor.model_path"
        assert "compressor.model_path" in str(e.value) and path in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CompressorModelError, match="compressor.model_path.*config.json"):
        EntropyCompressor(CompressorConfig(provider="entropy", model_path=str(tmp_path / "empty")))


def test_default_model_is_not_downloaded() -> None:
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(DEFAULT_LLMLINGUA2_MODEL, "config.json"), str):
        pytest.skip("the default model is in the local HF cache")
    with pytest.raises(CompressorModelError) as e:
        create_compressor(CompressorConfig(provider="llmlingua-2"))
    assert e.value.field == "compressor.model_path" and DEFAULT_LLMLINGUA2_MODEL in str(e.value)


def test_unknown_backend(tiny_lingua_dir: Path) -> None:
    with pytest.raises(ConfigError) as e:
        LLMLingua2Compressor(
            CompressorConfig(provider="llmlingua-2", model_path=str(tiny_lingua_dir), options={"backend": "gpu"})
        )
    assert e.value.field == "compressor.options.backend"


# --- entropy with a causal LM -----------------------------------------------------------------


@pytest.fixture(scope="module")
def lm_entropy(tiny_lm_dir: Path) -> EntropyCompressor:
    comp = create_compressor(CompressorConfig(provider="entropy", model_path=str(tiny_lm_dir), rate=0.5))
    assert isinstance(comp, EntropyCompressor)
    return comp


def test_entropy_with_causal_lm(lm_entropy: EntropyCompressor) -> None:
    assert lm_entropy.scorer == "causal-lm"
    res = lm_entropy.compress(TEXTS)
    assert [r.original for r in res] == TEXTS
    for r, t in zip(res, TEXTS):
        assert _is_subsequence(words(r.text), words(t))
        assert set(_digit_words(t)) <= set(words(r.text))
        if t.strip():
            assert r.text.strip()
    mean = sum(r.kept_ratio for r in lm_entropy.compress(_turns())) / len(_turns())
    assert 0.45 <= mean <= 0.7, mean


def test_causal_lm_scores_are_summed_token_surprisal(lm_entropy: EntropyCompressor) -> None:
    text = "pottery classes rock"
    (scores,) = lm_entropy.unit_scores([text])
    tok, model = lm_entropy.tokenizer, lm_entropy.model
    ids = [tok.cls_token_id] + tok(text, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, :-1], -1)
    nll = [-float(logp[i, ids[i + 1]]) for i in range(len(ids) - 1)]
    words_tokens = [len(tok(w, add_special_tokens=False)["input_ids"]) for w in text.split()]
    expected, k = [], 0
    for n in words_tokens:
        expected.append(sum(nll[k : k + n]))
        k += n
    assert scores == pytest.approx(expected, rel=1e-4)


def test_causal_lm_long_text_uses_windows(lm_entropy: EntropyCompressor) -> None:
    long = " ".join(_turns()[:8])  # > 128 positions of the tiny GPT-2
    (r,) = lm_entropy.compress([long])
    assert r.original == long and 0.4 < r.kept_ratio < 0.75
    assert set(_digit_words(long)) <= set(words(r.text))


def test_entropy_missing_model_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(CompressorModelError) as e:
        EntropyCompressor(CompressorConfig(provider="entropy", model_path=str(tmp_path / "missing")))
    assert e.value.field == "compressor.model_path"


def test_empty_batches(lingua: LLMLingua2Compressor, lm_entropy: EntropyCompressor) -> None:
    assert lingua.compress([]) == [] and lingua.token_scores([]) == [] and lingua.unit_scores([]) == []
    shared = lingua.compress_with_attention([])
    assert shared.compressed == [] and shared.windows == [] and shared.sentence_attention().shape == (0, 0)
    assert lm_entropy.compress([]) == [] and lm_entropy.unit_scores([]) == []


def test_int8_quantize_option(tiny_lingua_dir: Path) -> None:
    comp = LLMLingua2Compressor(
        CompressorConfig(provider="llmlingua-2", model_path=str(tiny_lingua_dir), options={"quantize": True})
    )
    (r,) = comp.compress(["I went to Paris on 3 June with my old friend Bob and it rained all day long."], rate=0.5)
    assert {"Paris", "3", "June", "Bob"} <= set(words(r.text))
    assert comp.compress_with_attention(["a b 1", "c d"]).windows[0].attention.shape == (7, 7)


# --- upstream LightMem config keys -----------------------------------------------------------------


def test_upstream_pre_compressor_config_works(tiny_lingua_dir: Path) -> None:
    from lightmem_core.config import MemoryConfig

    cfg = MemoryConfig.from_dict(
        {
            "pre_compress": True,
            "pre_compressor": {
                "model_name": "llmlingua-2",
                "configs": {
                    "llmlingua_config": {
                        "model_name": str(tiny_lingua_dir),
                        "device_map": "cpu",
                        "use_llmlingua2": True,
                    },
                    "llmlingua2_config": {"max_batch_size": 50, "max_force_token": 100},
                    "compress_config": {"instruction": "", "rate": 0.6, "target_token": -1},
                },
            },
        }
    )
    comp = create_compressor(cfg.compressor)
    assert isinstance(comp, LLMLingua2Compressor) and comp.config.rate == 0.6
    assert comp.options["batch_size"] == 50
    assert comp.ignored_options == ["instruction", "max_force_token"]
    (r,) = comp.compress(["We moved to Denver on 2 March 2021 after my wife got a new job at the hospital there."])
    assert {"Denver", "2", "March", "2021"} <= set(words(r.text))


def test_upstream_compress_keys(tiny_lingua_dir: Path) -> None:
    def make(**opts: object) -> LLMLingua2Compressor:
        return LLMLingua2Compressor(
            CompressorConfig(provider="llmlingua-2", model_path=str(tiny_lingua_dir), options=opts)
        )

    long = "the quick brown fox jumps over the lazy dog and then runs far away into the deep green forest"
    (r,) = make(target_token=5).compress([long])
    assert len(words(r.text)) == 5
    assert make(use_token_level_filter=False).compress([long])[0].text == long
    assert make(token_to_word="first").compress([long], rate=0.5)[0].kept_ratio == pytest.approx(0.5, abs=0.06)
    with pytest.raises(ConfigError) as e:
        make(use_llmlingua2=False)
    assert e.value.field == "compressor.options.use_llmlingua2"
    with pytest.raises(ConfigError) as e:
        make(max_batch_size=0)
    assert e.value.field == "compressor.options.max_batch_size"


def test_upstream_word_level_strategy(tiny_lm_dir: Path) -> None:
    text = "pottery classes rock"

    def scores(strategy: str) -> list[float]:
        comp = EntropyCompressor(
            CompressorConfig(provider="entropy", model_path=str(tiny_lm_dir), options={"word_level_strategy": strategy})
        )
        return comp.unit_scores([text])[0]

    total, mean, first = scores("sum"), scores("average"), scores("first_token")
    for t, m, f in zip(total, mean, first):
        assert f <= t + 1e-6 and m <= t + 1e-6
    with pytest.raises(ConfigError):
        EntropyCompressor(CompressorConfig(provider="entropy", options={"word_level_strategy": "max"}))
