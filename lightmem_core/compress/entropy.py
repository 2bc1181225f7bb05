"""The "entropy" provider: keep the words with the most self-information.

Zero-model by default (a word's frequency from the cl100k BPE ranks), or a causal LM's
surprisal when ``model_path`` is set; the keep-rules of :mod:`.rules` decide the rest.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Sequence

from .._quiet import quiet_model_load
from ..config import CompressorConfig
from ..errors import ConfigError, InvalidInputError
from ..llm import cl100k_encoding
from ..textproc import STOPWORDS
from .base import Compressed, _check_rate, _check_texts, _identity, _options
from .models import (
    _batches,
    _load_failed,
    _maybe_quantize,
    _offline_model_source,
    _require_fast,
    _require_torch,
    _windows,
)
from .rules import _analyse_batch, _Analysis, _select, _unit_index, _unit_of

__all__ = ["EntropyCompressor"]


class _FrequencyInfo:
    """Self-information of a word from a frequency proxy, without any download.

    With the cl100k BPE table (shipped with tiktoken's offline cache): BPE merges are
    learned in order of pair frequency, so a token's rank is a usable frequency rank;
    Zipf's law (p(r) ~ 1/(r * H)) turns it into bits: ``log2(r + 2) + 3.6``. A word is
    encoded as " word" (lower-cased) and its bits are summed over its tokens, so a word
    BPE had to split (rare: "pottery", "LGBTQ") scores higher than a word with its own
    token (frequent: "the", "went"). Without the table the fallback is length-based
    (Zipf's law of abbreviation: frequent words are short). Chat fillers and function
    words (``textproc.STOPWORDS``) are scaled by ``filler_weight``.
    """

    def __init__(self, filler_weight: float = 0.5, table: str = "cl100k") -> None:
        self.filler_weight = filler_weight
        self._enc = cl100k_encoding() if table == "cl100k" else None  # None: the length heuristic
        self._cache: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def table(self) -> str:
        return "cl100k" if self._enc is not None else "length"

    def __call__(self, word: str) -> float:
        v = self._cache.get(word)
        if v is not None:
            return v
        head, _, tail = word.replace("’", "'").partition("'")
        base = head if head and tail in _CLITICS else word  # "that's" is as common as "that"
        if self._enc is not None:
            v = sum(math.log2(r + 2) + 3.6 for r in self._enc.encode_ordinary(" " + base))
        else:
            v = 6.0 + 2.5 * len(base)
        if word in STOPWORDS or word.strip("'’") in STOPWORDS:
            v *= self.filler_weight
        if len(self._cache) > 500_000:
            with self._lock:
                self._cache.clear()
        self._cache[word] = v
        return v


_CLITICS = frozenset(["s", "m", "re", "ve", "ll", "d", "t"])
_SHARED_INFO: dict[tuple[float, str], _FrequencyInfo] = {}


class EntropyCompressor:
    """Keeps the words with the highest self-information (Selective-Context style).

    * Zero-model (``model_path`` unset): ``-log p(word)`` from a frequency proxy, see
      :class:`_FrequencyInfo`; pure Python, tens of thousands of sentences/s.
    * ``model_path`` set: a causal LM (``AutoModelForCausalLM``) computes each token's
      surprisal ``-log p(token | prefix)``; a word's information is the sum over its
      tokens. Batched, right-padded, windows of ``options.max_length`` tokens.

    Options: ``keep_names`` (True), ``filler_weight`` (0.5), ``frequency_table``
    ("cl100k" | "length"), ``batch_size`` (8), ``max_length`` (512),
    ``trust_remote_code`` (False), ``allow_download`` (False), ``quantize`` (False: int8
    dynamic quantisation of the LM on CPU), ``word_level_strategy`` (LM only: "sum" of
    the word's token surprisals, or upstream's "average" / "first_token").
    """

    provider = "entropy"
    _DEFAULTS: dict[str, Any] = {
        "keep_names": True,
        "filler_weight": 0.5,
        "frequency_table": "cl100k",
        "batch_size": 8,
        "max_length": 512,
        "trust_remote_code": False,
        "allow_download": False,
        "quantize": False,
        "word_level_strategy": "sum",
    }

    def __init__(self, config: CompressorConfig | None = None, *, model: Any = None, tokenizer: Any = None) -> None:
        self.config = config or CompressorConfig(provider="entropy")
        self.options = _options(self.config, self._DEFAULTS)
        if self.options["frequency_table"] not in ("cl100k", "length"):
            raise ConfigError("compressor.options.frequency_table", "expected 'cl100k' or 'length'")
        if self.options["word_level_strategy"] not in ("sum", "average", "first_token"):
            raise ConfigError("compressor.options.word_level_strategy", "expected 'sum', 'average' or 'first_token'")
        fw = self.options["filler_weight"]
        if isinstance(fw, bool) or not isinstance(fw, (int, float)) or not 0 <= fw <= 1:
            raise ConfigError("compressor.options.filler_weight", f"must be a number in [0, 1], got {fw!r}")
        key = (float(fw), self.options["frequency_table"])
        if key not in _SHARED_INFO:
            _SHARED_INFO[key] = _FrequencyInfo(*key)
        self._info = _SHARED_INFO[key]
        self.model: Any = model
        self.tokenizer: Any = tokenizer
        self._lock = threading.Lock()
        if model is None and self.config.model_path:
            self._load(self.config.model_path)
        elif model is not None:
            if tokenizer is None:
                raise InvalidInputError("tokenizer", "a tokenizer is required with a model")
            self._torch = _require_torch()

    @property
    def scorer(self) -> str:
        """'causal-lm', 'cl100k' or 'length': where the information comes from."""
        return "causal-lm" if self.model is not None else self._info.table

    def _load(self, path: str) -> None:
        self._torch = _require_torch()
        from transformers import AutoModelForCausalLM, AutoTokenizer

        src = _offline_model_source(path, self.options["allow_download"])
        kw = {
            "local_files_only": not self.options["allow_download"],
            "trust_remote_code": self.options["trust_remote_code"],
        }
        try:
            with quiet_model_load():
                self.tokenizer = AutoTokenizer.from_pretrained(src, **kw)
                model = AutoModelForCausalLM.from_pretrained(src, **kw)
                # transformers decorates PreTrainedModel.to with functools.wraps, which types it unbound
                self.model = model.to(self.config.device).eval()  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - every loader error becomes one clear error
            raise _load_failed(path, exc) from exc
        self.model = _maybe_quantize(self.model, self.config.device, bool(self.options["quantize"]))
        _require_fast(self.tokenizer, path)

    def close(self) -> None:
        self.model = None
        self.tokenizer = None

    def compress(self, texts: Sequence[str], rate: float | None = None) -> list[Compressed]:
        texts = _check_texts(texts)
        rate = _check_rate(rate, self.config.rate)
        if rate >= 1.0:
            return [_identity(t) for t in texts]
        analyses = self._analyse(texts)
        scores = self._scores(analyses)
        return [_select(a, s, rate) for a, s in zip(analyses, scores)]

    def unit_scores(self, texts: Sequence[str]) -> list[list[float]]:
        """Information (bits for the frequency table, nats for the LM) of every chunk."""
        return self._scores(self._analyse(_check_texts(texts)))

    def _analyse(self, texts: list[str]) -> list[_Analysis]:
        return _analyse_batch(texts, bool(self.options["keep_names"]))

    def _scores(self, analyses: list[_Analysis]) -> list[list[float]]:
        if self.model is not None:
            return self._lm_scores(analyses)
        info = self._info
        return [[info(low) if low else 0.0 for low in a.lower] for a in analyses]

    def _lm_scores(self, analyses: list[_Analysis]) -> list[list[float]]:
        torch = self._torch
        tok = self.tokenizer
        texts = [a.text for a in analyses]
        if not texts:
            return []
        enc = tok(texts, add_special_tokens=False, return_offsets_mapping=True, return_attention_mask=False)
        prefix = next((t for t in (tok.bos_token_id, tok.eos_token_id, tok.cls_token_id) if t is not None), None)
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        limit = min(
            self.options["max_length"],
            int(
                getattr(self.model.config, "n_positions", 0)
                or getattr(self.model.config, "max_position_embeddings", 0)
                or 10**9
            ),
        )
        limit -= 1 if prefix is not None else 0
        # One work item per window: (text index, token start, token end).
        items: list[tuple[int, int, int]] = []
        for t, ids in enumerate(enc["input_ids"]):
            for st, ed in _windows(ids, enc["offset_mapping"][t], texts[t], limit):
                items.append((t, st, ed))
        surprisal: list[list[float]] = [[0.0] * len(ids) for ids in enc["input_ids"]]
        order = sorted(range(len(items)), key=lambda k: items[k][2] - items[k][1])
        with self._lock, torch.inference_mode():
            for batch in _batches(order, self.options["batch_size"]):
                seqs = []
                for k in batch:
                    t, st, ed = items[k]
                    ids = enc["input_ids"][t][st:ed]
                    seqs.append(([prefix] if prefix is not None else []) + ids)
                width = max(len(s) for s in seqs)
                ids_t = torch.full((len(seqs), width), pad, dtype=torch.long)
                mask = torch.zeros((len(seqs), width), dtype=torch.long)
                for b, s in enumerate(seqs):
                    ids_t[b, : len(s)] = torch.tensor(s, dtype=torch.long)
                    mask[b, : len(s)] = 1
                dev = self.config.device
                logits = self.model(input_ids=ids_t.to(dev), attention_mask=mask.to(dev)).logits[:, :-1].float()
                # -log softmax at the target, without materialising the full log-softmax
                target = logits.gather(-1, ids_t[:, 1:, None].to(dev)).squeeze(-1)
                nll = (torch.logsumexp(logits, dim=-1) - target).cpu()
                for b, k in enumerate(batch):
                    t, st, ed = items[k]
                    vals = nll[b, : len(seqs[b]) - 1].tolist()
                    if prefix is None:  # first token has no context: give it the window's mean
                        vals = [sum(vals) / len(vals) if vals else 0.0] + vals
                    surprisal[t][st:ed] = vals
        strategy = self.options["word_level_strategy"]
        out: list[list[float]] = []
        for t, a in enumerate(analyses):
            scores = [0.0] * len(a.chunks)
            counts = [0] * len(a.chunks)
            if a.chunks:
                starts, ends = _unit_index(a.spans)
                for (s, e), v in zip(enc["offset_mapping"][t], surprisal[t]):
                    if e > s:
                        j = _unit_of(starts, ends, s)
                        if strategy != "first_token" or not counts[j]:
                            scores[j] += v
                        counts[j] += 1
                if strategy == "average":
                    scores = [v / c if c else v for v, c in zip(scores, counts)]
            out.append(scores)
        return out
