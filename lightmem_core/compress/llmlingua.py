"""The "llmlingua-2" provider: the LLMLingua-2 token classifier decides what is kept.

``microsoft/llmlingua-2-bert-base-multilingual-cased-meetingbank`` by default; it must be
a local folder or already in the HF cache. Reusing the model (``precomp_topic_shared``):
``LLMLingua2Compressor.model`` and ``.tokenizer`` are the loaded Hugging Face objects
(``.inner_compressor`` gives the llmlingua ``PromptCompressor`` with the ``"llmlingua"``
backend, else the compressor itself, so upstream's ``compressor.inner_compressor.model``
works), and :meth:`LLMLingua2Compressor.compress_with_attention` runs ONE forward pass
over the concatenated texts that yields both the compressions and the mean attention of
the chosen layers (plus, optionally, the last hidden states) for a topic segmenter.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Sequence

from .._quiet import quiet_model_load
from ..config import CompressorConfig
from ..errors import ConfigError, StageNotAvailableError
from ..llm import cl100k_ready
from .base import Compressed, CompressorModelError, _check_rate, _check_texts, _identity, _options, _ratio
from .models import (
    _MODEL_PATH_FIELD,
    _batches,
    _load_failed,
    _maybe_quantize,
    _offline_model_source,
    _require_fast,
    _require_torch,
    _windows,
)
from .rules import (
    _EDGE,
    _HAS_ALNUM,
    _analyse_batch,
    _Analysis,
    _mid_sentence_names,
    _scan,
    _select,
    _unit_index,
    _unit_of,
)

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["DEFAULT_LLMLINGUA2_MODEL", "AttentionWindow", "LLMLingua2Compressor", "SharedPass"]

DEFAULT_LLMLINGUA2_MODEL = "microsoft/llmlingua-2-bert-base-multilingual-cased-meetingbank"


@dataclass
class AttentionWindow:
    """One forward window of :meth:`LLMLingua2Compressor.compress_with_attention`.

    ``attention``: ``[T, T]`` attention averaged over the chosen layers and all heads,
    ``T`` = window tokens including the leading CLS and trailing SEP.
    ``spans``: ``(text_index, start, end)`` token positions (in this window) of each text.
    ``hidden``: ``[T, H]`` last hidden states when requested.
    """

    attention: "np.ndarray"
    spans: list[tuple[int, int, int]]
    hidden: Optional["np.ndarray"] = None


@dataclass
class SharedPass:
    """Compressions and attention from one shared forward pass."""

    compressed: list[Compressed]
    windows: list[AttentionWindow] = field(default_factory=list)

    def sentence_attention(self, edge: int = 3) -> "np.ndarray":
        """``[n, n]`` matrix ``M[i, j]`` (``j < i``): how much text ``i`` attends to
        text ``j`` - mean over ``i``'s tokens of the attention mass on ``j``'s tokens,
        each row normalised to sum 1. Same computation as upstream LightMem's
        ``LlmLingua2Segmenter.sentence_level_attention`` (``edge`` tokens at both ends of
        a window are ignored); texts in different windows get 0.
        """
        import numpy as np

        n = len(self.compressed)
        M = np.zeros((n, n), dtype=float)
        for w in self.windows:
            T = w.attention.shape[0]
            valid = np.ones(T, dtype=bool)
            if T >= 2 * edge:
                valid[:edge] = False
                valid[-edge:] = False
            else:
                cut = T // 10
                if cut:
                    valid[:cut] = False
                    valid[-cut:] = False
            pos: dict[int, np.ndarray] = {}
            for t, s, e in w.spans:
                p = np.arange(s, e)
                pos[t] = np.concatenate([pos[t], p]) if t in pos else p
            pos = {t: p[valid[p]] for t, p in pos.items()}
            texts = sorted(pos)
            for i in texts:
                if pos[i].size == 0:
                    continue
                for j in texts:
                    if j >= i or pos[j].size == 0:
                        continue
                    M[i, j] = float(w.attention[np.ix_(pos[i], pos[j])].sum(axis=1).mean())
        sums = M.sum(axis=1, keepdims=True)
        np.divide(M, sums, out=M, where=sums > 0)
        return M


class LLMLingua2Compressor:
    """LLMLingua-2: a token classifier scores each token's probability of being kept.

    Backends (``options.backend``):

    * ``"fast"`` (default): the model and tokenizer are loaded with ``transformers``
      and run here - texts are batched by length and padded only to the longest in
      the batch (llmlingua pads every chunk to 512 tokens: same probabilities, ~25x
      slower on chat sentences with a bert-base model on CPU). A chunk's score is the mean keep-probability of its
      tokens (LLMLingua's word score); the fact rules and the word-level
      ``rate`` of :mod:`.rules` apply.
    * ``"llmlingua"``: llmlingua's own ``PromptCompressor(..., use_llmlingua2=True)``
      and ``compress_prompt(texts, rate=..., use_context_level_filter=False,
      force_reserve_digit=True, force_tokens=..., drop_consecutive=True)`` - exact
      upstream behaviour (the text comes back re-tokenised, e.g. lower-cased by an
      uncased model). Single-token names are added to ``force_tokens``. Needs the
      ``llmlingua`` package and a folder name containing ``bert-base-multilingual-cased``
      or ``xlm-roberta-large`` (llmlingua picks its word splitter from the name).

    Reuse: ``.model`` / ``.tokenizer`` are the HF objects, ``.inner_compressor`` the
    llmlingua ``PromptCompressor`` (or this object), and :meth:`compress_with_attention`
    gives compressions plus attention from a single forward pass.

    Options: ``backend``, ``keep_names`` (True), ``force_tokens``
    ([]), ``batch_size`` (32), ``max_length`` (512), ``attention_layers`` (None = last
    4), ``llmlingua2_config`` ({}), ``trust_remote_code`` (False), ``allow_download``
    (False), ``quantize`` (False; "fast" backend, CPU: int8 dynamic quantisation, ~5x
    faster for bert-base, a few percent of keep decisions change).

    Upstream keys are accepted as well: ``max_batch_size`` (= ``batch_size``),
    ``max_force_token``, ``target_token`` (> 0: keep about that many words per text -
    tokens with the llmlingua backend - instead of ``rate``), ``token_to_word``
    ("mean" | "first"), ``use_token_level_filter`` (False = no compression),
    ``drop_consecutive`` / ``chunk_end_tokens`` (llmlingua backend only) and
    ``instruction``, ``question``, ``use_context_level_filter``, ``force_reserve_digit``,
    ``use_llmlingua2`` (no effect, as upstream calls llmlingua once per message;
    digits are always kept). ``ignored_options`` lists the given ones without effect.
    """

    provider = "llmlingua-2"
    # Keys of upstream's ``llmlingua2_config`` / ``compress_config`` (flattened into options).
    _UPSTREAM = frozenset(
        "max_batch_size max_force_token use_llmlingua2 instruction question target_token force_reserve_digit "
        "drop_consecutive token_to_word chunk_end_tokens use_context_level_filter use_token_level_filter".split()
    )
    # ... and which of them only the "llmlingua" backend uses.
    _LLMLINGUA_ONLY = frozenset({"max_force_token", "drop_consecutive", "chunk_end_tokens"})
    # ... and which have no effect at all (as upstream, which compresses one message per call
    # with llmlingua ignoring instruction/question; digits are always kept here).
    _NO_EFFECT = frozenset(
        {"instruction", "question", "use_context_level_filter", "force_reserve_digit", "use_llmlingua2"}
    )
    _DEFAULTS: dict[str, Any] = {
        "backend": "fast",
        "keep_names": True,
        "force_tokens": [],
        "batch_size": 32,
        "max_length": 512,
        "attention_layers": None,
        "llmlingua2_config": {},
        "trust_remote_code": False,
        "allow_download": False,
        "quantize": False,
    }
    # Set by _load_fast / _load_llmlingua (a transformers model and tokenizer); None after close().
    model: Any
    tokenizer: Any

    def __init__(self, config: CompressorConfig | None = None) -> None:
        self.config = config or CompressorConfig(provider="llmlingua-2")
        self.options = _options(self.config, self._DEFAULTS, self._UPSTREAM)
        given = set(self.config.options)
        if self.options.get("use_llmlingua2", True) is not True:
            raise ConfigError(
                "compressor.options.use_llmlingua2", "only LLMLingua-2 is supported (LLMLingua-1 needs a causal LM)"
            )
        if "max_batch_size" in given and "batch_size" not in given:
            self.options["batch_size"] = self.options["max_batch_size"]
        if self.options.get("token_to_word", "mean") not in ("mean", "first"):
            raise ConfigError("compressor.options.token_to_word", "expected 'mean' or 'first'")
        target = self.options.get("target_token", -1)
        if isinstance(target, bool) or not isinstance(target, (int, float)):
            raise ConfigError("compressor.options.target_token", f"expected a number, got {target!r}")
        backend = self.options["backend"]
        #: Options that were given but change nothing with this backend (for stage_status).
        self.ignored_options = sorted(
            given & (self._NO_EFFECT | (self._LLMLINGUA_ONLY if backend != "llmlingua" else frozenset()))
        )
        if backend not in ("fast", "llmlingua"):
            raise ConfigError("compressor.options.backend", f"expected 'fast' or 'llmlingua', got {backend!r}")
        if not isinstance(self.options["force_tokens"], (list, tuple)) or not all(
            isinstance(t, str) for t in self.options["force_tokens"]
        ):
            raise ConfigError("compressor.options.force_tokens", "expected a list of strings")
        self.model_path = self.config.model_path or DEFAULT_LLMLINGUA2_MODEL
        self.backend = backend
        self._pc: Any = None
        self._lock = threading.Lock()
        self._torch = _require_torch()
        src = _offline_model_source(self.model_path, self.options["allow_download"])
        if backend == "llmlingua":
            self._load_llmlingua(src)
        else:
            self._load_fast(src)

    # -- loading --

    def _load_fast(self, src: str) -> None:
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        kw = {
            "local_files_only": not self.options["allow_download"],
            "trust_remote_code": self.options["trust_remote_code"],
        }
        try:
            with quiet_model_load():
                self.tokenizer = AutoTokenizer.from_pretrained(src, **kw)
                self.model = AutoModelForTokenClassification.from_pretrained(src, **kw).to(self.config.device).eval()
        except Exception as exc:  # noqa: BLE001
            raise _load_failed(self.model_path, exc) from exc
        _require_fast(self.tokenizer, self.model_path)
        if getattr(self.model.config, "num_labels", 2) < 2:
            raise CompressorModelError(
                _MODEL_PATH_FIELD, f"{self.model_path!r} is not a 2-label (drop/keep) token classifier"
            )
        self.model = _maybe_quantize(self.model, self.config.device, bool(self.options["quantize"]))

    def _load_llmlingua(self, src: str) -> None:
        name = os.path.basename(os.path.normpath(src))
        if "bert-base-multilingual-cased" not in src and "xlm-roberta-large" not in src:
            raise ConfigError(
                _MODEL_PATH_FIELD,
                f"llmlingua picks its word splitter from the model name; {name!r} contains neither "
                "'bert-base-multilingual-cased' nor 'xlm-roberta-large' (use options.backend='fast')",
            )
        try:
            from llmlingua import PromptCompressor
        except ImportError as exc:
            raise StageNotAvailableError(
                "compressor backend 'llmlingua' needs the llmlingua package; install the 'llmlingua' extra"
            ) from exc
        if not cl100k_ready():
            raise StageNotAvailableError(
                "llmlingua needs tiktoken's cl100k_base file offline; set TIKTOKEN_CACHE_DIR to a folder holding it"
            )
        import random

        import numpy as np

        torch = self._torch
        states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        model_config = {
            "local_files_only": not self.options["allow_download"],
            "trust_remote_code": self.options["trust_remote_code"],
        }
        try:
            with quiet_model_load():
                self._pc = PromptCompressor(
                    model_name=src,
                    use_llmlingua2=True,
                    device_map=self.config.device,
                    model_config=model_config,
                    llmlingua2_config=self._llmlingua2_config(),
                )
        except Exception as exc:  # noqa: BLE001
            raise _load_failed(self.model_path, exc) from exc
        finally:  # llmlingua re-seeds every global RNG (seed_everything(42)); undo that
            random.setstate(states[0])
            np.random.set_state(states[1])
            torch.set_rng_state(states[2])
        self.model = self._pc.model
        self.tokenizer = self._pc.tokenizer

    def _llmlingua2_config(self) -> dict[str, Any]:
        cfg = dict(self.options["llmlingua2_config"])
        for key in ("max_batch_size", "max_force_token"):
            if key in self.config.options:
                cfg[key] = self.options[key]
        cfg.setdefault("max_batch_size", self.options["batch_size"])
        return cfg

    @property
    def inner_compressor(self) -> Any:
        """llmlingua's PromptCompressor (backend 'llmlingua'), else self; both have ``.model``/``.tokenizer``."""
        return self._pc if self._pc is not None else self

    def close(self) -> None:
        self.model = None
        self.tokenizer = None
        self._pc = None

    # -- public API --

    def compress(self, texts: Sequence[str], rate: float | None = None) -> list[Compressed]:
        texts = _check_texts(texts)
        rate = _check_rate(rate, self.config.rate)
        if rate >= 1.0 or not texts or self.options.get("use_token_level_filter") is False:
            return [_identity(t) for t in texts]
        if self.backend == "llmlingua":
            return self._compress_llmlingua(texts, rate)
        analyses = self._analyse(texts)
        probs = self.token_scores(texts)
        return [
            _select(a, self._unit_scores(a, offs, p), self._text_rate(a, rate)) for a, (offs, p) in zip(analyses, probs)
        ]

    def _text_rate(self, a: _Analysis, rate: float) -> float:
        target = self.options.get("target_token", -1)
        if target and target > 0:
            n = sum(a.is_word)
            return 1.0 if n <= target else max(target / n, 1e-6)
        return rate

    def unit_scores(self, texts: Sequence[str]) -> list[list[float]]:
        """Mean keep-probability of every whitespace chunk (0 for chunks without letters/digits)."""
        texts = _check_texts(texts)
        analyses = self._analyse(texts)
        return [self._unit_scores(a, offs, p) for a, (offs, p) in zip(analyses, self.token_scores(texts))]

    def token_scores(self, texts: Sequence[str]) -> list[tuple[list[tuple[int, int]], list[float]]]:
        """Per text: character offsets of its tokens and each token's keep-probability
        (softmax of label 1), one batched forward per ``batch_size`` windows."""
        texts = _check_texts(texts)
        enc = self._encode(texts)
        items: list[tuple[int, int, int]] = []
        limit = self._limit()
        for t, ids in enumerate(enc["input_ids"]):
            for st, ed in _windows(ids, enc["offset_mapping"][t], texts[t], limit):
                items.append((t, st, ed))
        probs: list[list[float]] = [[0.0] * len(ids) for ids in enc["input_ids"]]
        order = sorted(range(len(items)), key=lambda k: items[k][2] - items[k][1])
        for batch in _batches(order, self.options["batch_size"]):
            seqs = [enc["input_ids"][items[k][0]][items[k][1] : items[k][2]] for k in batch]
            p, _, _ = self._forward(seqs)
            for b, k in enumerate(batch):
                t, st, ed = items[k]
                probs[t][st:ed] = p[b]
        return [([tuple(o) for o in enc["offset_mapping"][t]], probs[t]) for t in range(len(texts))]

    def compress_with_attention(
        self,
        texts: Sequence[str],
        rate: float | None = None,
        *,
        layers: Sequence[int] | None = None,
        hidden_states: bool = False,
    ) -> SharedPass:
        """Compress ``texts`` and return the attention of the same forward pass.

        The texts are concatenated (in order, as upstream's segmenter does) into windows
        of up to ``max_length`` tokens: ``[CLS] t0 t1 ... [SEP]``. Keep-probabilities
        therefore see the neighbouring texts as context, which can differ slightly from
        :meth:`compress`. ``layers`` (default ``options.attention_layers`` or the last
        4, upstream's 8-11 of 12) are averaged together with all heads.
        """
        texts = _check_texts(texts)
        rate = _check_rate(rate, self.config.rate)
        enc = self._encode(texts)
        limit = self._limit()
        # Pack whole texts into windows; a text longer than a window gets windows of its own.
        windows: list[list[tuple[int, int, int]]] = []
        cur: list[tuple[int, int, int]] = []
        used = 0
        for t, ids in enumerate(enc["input_ids"]):
            if not ids:
                continue
            if len(ids) > limit:
                if cur:
                    windows.append(cur)
                    cur, used = [], 0
                for st, ed in _windows(ids, enc["offset_mapping"][t], texts[t], limit):
                    windows.append([(t, st, ed)])
                continue
            if used + len(ids) > limit and cur:
                windows.append(cur)
                cur, used = [], 0
            cur.append((t, 0, len(ids)))
            used += len(ids)
        if cur:
            windows.append(cur)
        n_layers = int(getattr(self.model.config, "num_hidden_layers", 1))
        chosen = layers if layers is not None else self.options["attention_layers"]
        if chosen is None:
            chosen = list(range(max(0, n_layers - 4), n_layers))
        chosen = [int(i) % n_layers for i in chosen]
        probs: list[list[float]] = [[0.0] * len(ids) for ids in enc["input_ids"]]
        out_windows: list[AttentionWindow] = []
        for batch in _batches(list(range(len(windows))), self.options["batch_size"]):
            seqs = []
            for w in batch:
                seq: list[int] = []
                for t, st, ed in windows[w]:
                    seq.extend(enc["input_ids"][t][st:ed])
                seqs.append(seq)
            p, att, hid = self._forward(seqs, layers=chosen, hidden=hidden_states)
            for b, w in enumerate(batch):
                pos = 0
                spans = []
                for t, st, ed in windows[w]:
                    probs[t][st:ed] = p[b][pos : pos + ed - st]
                    spans.append((t, pos + 1, pos + 1 + ed - st))
                    pos += ed - st
                out_windows.append(
                    AttentionWindow(attention=att[b], spans=spans, hidden=hid[b] if hid is not None else None)
                )
        if rate >= 1.0 or self.options.get("use_token_level_filter") is False:
            compressed = [_identity(t) for t in texts]
        else:
            analyses = self._analyse(texts)
            compressed = [
                _select(
                    a,
                    self._unit_scores(a, [tuple(o) for o in enc["offset_mapping"][t]], probs[t]),
                    self._text_rate(a, rate),
                )
                for t, a in enumerate(analyses)
            ]
        return SharedPass(compressed=compressed, windows=out_windows)

    # -- internals --

    def _limit(self) -> int:
        maxpos = int(getattr(self.model.config, "max_position_embeddings", 512) or 512)
        return min(self.options["max_length"], maxpos) - 2

    def _encode(self, texts: list[str]) -> Any:
        if self.model is None:
            raise StageNotAvailableError("compressor is closed")
        if not texts:
            return {"input_ids": [], "offset_mapping": []}
        return self.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, return_attention_mask=False)

    def _special(self) -> tuple[int, int, int]:
        tok = self.tokenizer
        cls = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
        sep = tok.sep_token_id if tok.sep_token_id is not None else tok.eos_token_id
        pad = tok.convert_tokens_to_ids(tok.pad_token) if tok.pad_token is not None else 0
        return cls, sep, pad if isinstance(pad, int) else 0

    def _forward(
        self, seqs: list[list[int]], layers: Sequence[int] | None = None, hidden: bool = False
    ) -> tuple[list[list[float]], Any, Any]:
        """Right-padded batch ``[CLS] seq [SEP]``: keep-probabilities of the ``seq``
        tokens, and (if ``layers``) mean attention ``[T, T]`` / last hidden ``[T, H]``."""
        torch = self._torch
        cls, sep, pad = self._special()
        full = [([cls] if cls is not None else []) + s + ([sep] if sep is not None else []) for s in seqs]
        lead = 1 if cls is not None else 0
        width = max(len(s) for s in full)
        ids = torch.full((len(full), width), pad, dtype=torch.long)
        mask = torch.zeros((len(full), width), dtype=torch.long)
        for b, s in enumerate(full):
            ids[b, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[b, : len(s)] = 1
        dev = self.config.device
        want_att = layers is not None
        with self._lock, torch.inference_mode():
            restore = None
            if want_att and getattr(self.model.config, "_attn_implementation", "eager") != "eager":
                restore = self.model.config._attn_implementation
                self.model.set_attn_implementation("eager")
            try:
                out = self.model(
                    input_ids=ids.to(dev),
                    attention_mask=mask.to(dev),
                    output_attentions=want_att,
                    output_hidden_states=hidden,
                )
            finally:
                if restore is not None:
                    self.model.set_attn_implementation(restore)
            p = torch.softmax(out.logits.float(), dim=-1)[..., 1].cpu()
            probs = [p[b, lead : lead + len(seqs[b])].tolist() for b in range(len(seqs))]
            att = hid = None
            if layers is not None:  # want_att
                if not out.attentions:
                    raise StageNotAvailableError("the compressor model did not return attentions")
                stack = torch.stack([out.attentions[i] for i in layers], dim=0).float().mean(dim=(0, 2)).cpu().numpy()
                att = [stack[b, : len(full[b]), : len(full[b])] for b in range(len(full))]
            if hidden:
                last = out.hidden_states[-1].float().cpu().numpy()
                hid = [last[b, : len(full[b])] for b in range(len(full))]
        return probs, att, hid

    def _analyse(self, texts: list[str]) -> list[_Analysis]:
        analyses = _analyse_batch(texts, bool(self.options["keep_names"]))
        forced_tokens = set(self.options["force_tokens"])
        if forced_tokens:
            for a in analyses:
                for i, chunk in enumerate(a.chunks):
                    if chunk in forced_tokens or chunk.strip(_EDGE) in forced_tokens:
                        a.forced[i] = True
        return analyses

    def _unit_scores(self, a: _Analysis, offsets: Sequence[tuple[int, int]], probs: Sequence[float]) -> list[float]:
        first = self.options.get("token_to_word") == "first"
        n = len(a.chunks)
        if not n:
            return []
        starts, ends = _unit_index(a.spans)
        sums = [0.0] * n
        counts = [0] * n
        psum = [0.0] * n
        pcount = [0] * n
        text = a.text
        for (s, e), v in zip(offsets, probs):
            if e <= s:
                continue
            j = _unit_of(starts, ends, s)
            if _HAS_ALNUM.search(text[s:e]):
                if first and counts[j]:
                    continue
                sums[j] += v
                counts[j] += 1
            else:
                psum[j] += v
                pcount[j] += 1
        return [
            sums[j] / counts[j] if counts[j] else (psum[j] / pcount[j] if pcount[j] else 0.0) if a.is_word[j] else 0.0
            for j in range(n)
        ]

    def _compress_llmlingua(self, texts: list[str], rate: float) -> list[Compressed]:
        force = list(self.options["force_tokens"])
        if self.options["keep_names"]:
            room = int(getattr(self._pc, "max_force_token", 100)) - len(force)
            names = sorted(_mid_sentence_names(_scan(t) for t in texts))
            for name in names:
                if room <= 0:
                    break
                if len(self.tokenizer.tokenize(name)) == 1 and name not in force:
                    force.append(name)
                    room -= 1
        extra: dict[str, Any] = {"drop_consecutive": self.options.get("drop_consecutive", True)}
        for key in ("target_token", "token_to_word", "chunk_end_tokens"):
            if key in self.config.options:
                extra[key] = self.options[key]
        # llmlingua fails on a text with no ordinary token (e.g. only an emoji -> [UNK]).
        todo = [i for i, t in enumerate(texts) if _HAS_ALNUM.search(t)]
        out = [_identity(t) for t in texts]
        if not todo:
            return out

        def run(batch: list[str]) -> list[str]:
            with self._lock:
                res = self._pc.compress_prompt(
                    batch,
                    rate=rate,
                    use_context_level_filter=False,  # every text on its own, as upstream
                    force_tokens=force,
                    force_reserve_digit=True,
                    **extra,
                )
            return list(res["compressed_prompt_list"])

        try:
            results = run([texts[i] for i in todo])
        except (IndexError, ValueError):  # one bad text spoils the batch: retry one by one
            results = []
            for i in todo:
                try:
                    results.append(run([texts[i]])[0])
                except (IndexError, ValueError):
                    results.append("")
        for i, comp in zip(todo, results):
            comp = comp.strip()
            if comp and _HAS_ALNUM.search(comp):
                out[i] = Compressed(texts[i], comp, _ratio(texts[i], comp))
            # else: llmlingua kept nothing - keep the original rather than return nothing
        return out
