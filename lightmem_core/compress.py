"""Pre-compression of incoming turns (LightMem stage 1).

Every turn is shortened before memory extraction so the extractor sees fewer tokens.
Unlike upstream LightMem, which overwrites ``message["content"]``, the original text is
always kept beside the compressed one (:class:`Compressed`).

Three providers (``CompressorConfig.provider``):

``"none"``         :class:`NoCompressor` - identity.
``"entropy"``      :class:`EntropyCompressor` - keeps the most informative words by
                   self-information; zero-model by default (word frequency from the
                   cl100k BPE ranks), or a causal LM's surprisal when ``model_path`` is set.
``"llmlingua-2"``  :class:`LLMLingua2Compressor` - the LLMLingua-2 token classifier
                   (``microsoft/llmlingua-2-bert-base-multilingual-cased-meetingbank``
                   by default; must be a local folder or already in the HF cache).

Common rules (both real compressors):

* ``rate`` is the share of words to KEEP (like LLMLingua's ``rate``); the default comes
  from ``CompressorConfig.rate``. ``rate >= 1`` returns the text unchanged.
* The unit that is kept or dropped is a whitespace-delimited chunk ("Caroline's",
  "3:30pm,", "2023-05-08"), so facts are never cut in half. Chunks without a letter or
  digit (emoji, dashes) are dropped and do not count as words.
* Fact-carrying words are always kept, even beyond the budget (they count towards it,
  but at least ``rate / 2`` of the other words stay too): anything with a digit,
  month and weekday names, number words, "yesterday"/"today"/..., time phrases such as
  "last week" / "two days ago" / "3 pm", and (option ``keep_names``, on by default)
  names: capitalised words that are not sentence-initial (or that appear capitalised
  mid-sentence elsewhere in the same batch), and acronyms.
* Word order is kept; sentence-final ``.!?`` of a dropped word moves to the last kept
  word so sentence boundaries survive. A non-empty input never gives an empty text.
* ``kept_ratio`` = ``len(textproc.words(text)) / len(textproc.words(original))``.

Reusing the LLMLingua-2 model (``precomp_topic_shared``): ``LLMLingua2Compressor.model``
and ``.tokenizer`` are the loaded Hugging Face objects (``.inner_compressor`` gives the
llmlingua ``PromptCompressor`` with the ``"llmlingua"`` backend, else the compressor
itself, so upstream's ``compressor.inner_compressor.model`` works), and
:meth:`LLMLingua2Compressor.compress_with_attention` runs ONE forward pass over the
concatenated texts that yields both the compressions and the mean attention of the
chosen layers (plus, optionally, the last hidden states) for a topic segmenter.
"""

from __future__ import annotations

import bisect
import math
import os
import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Optional, Protocol, Sequence, runtime_checkable

from ._quiet import quiet_model_load
from .config import CompressorConfig
from .errors import ConfigError, InvalidInputError, StageNotAvailableError
from .llm import cl100k_encoding, cl100k_ready
from .textproc import STOPWORDS
from .textproc import words as _words

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = [
    "DEFAULT_LLMLINGUA2_MODEL",
    "AttentionWindow",
    "Compressed",
    "Compressor",
    "CompressorModelError",
    "EntropyCompressor",
    "LLMLingua2Compressor",
    "NoCompressor",
    "SharedPass",
    "create_compressor",
]

DEFAULT_LLMLINGUA2_MODEL = "microsoft/llmlingua-2-bert-base-multilingual-cased-meetingbank"
_MODEL_PATH_FIELD = "compressor.model_path"


# --- results and protocol ---------------------------------------------------------------


@dataclass(frozen=True)
class Compressed:
    """One compressed text. ``original`` is always the untouched input.

    ``units`` are the whitespace-delimited chunks of ``original`` that were kept or
    dropped and ``kept_mask`` says which were kept; both are empty when the provider
    does not work per chunk (``none``, or the exact ``llmlingua`` backend).
    """

    original: str
    text: str
    kept_ratio: float
    units: tuple[str, ...] = ()
    kept_mask: tuple[bool, ...] = ()


@runtime_checkable
class Compressor(Protocol):
    def compress(self, texts: Sequence[str], rate: float | None = None) -> list[Compressed]:
        """Compress each text; ``rate`` = share of words to keep (default from config)."""
        ...


class CompressorModelError(StageNotAvailableError):
    """The compressor's model cannot be loaded (offline, missing folder, bad files).

    ``field`` is the config field to fix, normally ``compressor.model_path``.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.reason = message
        super().__init__(f"{field}: {message}")


# --- shared helpers ---------------------------------------------------------------------


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise InvalidInputError("texts", "expected a sequence of strings, got a single str")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise InvalidInputError(f"texts[{i}]", f"expected str, got {type(t).__name__}")
    return out


def _check_rate(rate: float | None, default: float) -> float:
    if rate is None:
        return default
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (0 < rate <= 1) or math.isnan(rate):
        raise InvalidInputError("rate", f"must be a number in (0, 1], got {rate!r}")
    return float(rate)


def _ratio(original: str, text: str) -> float:
    n = len(_words(original))
    return 1.0 if n == 0 else len(_words(text)) / n


def _identity(text: str) -> Compressed:
    return Compressed(original=text, text=text, kept_ratio=1.0)


def _options(
    config: CompressorConfig, defaults: dict[str, Any], upstream: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Defaults + ``config.options``. ``upstream`` names keys of upstream LightMem's
    configs that are accepted too (the config mapping flattens them into ``options``)."""
    unknown = sorted(set(config.options) - set(defaults) - upstream)
    if unknown:
        raise ConfigError(
            f"compressor.options.{unknown[0]}",
            f"unknown option for provider {config.provider!r}; expected one of {sorted(set(defaults) | upstream)}",
        )
    opts = {**defaults, **config.options}
    for key in ("batch_size", "max_length", "max_batch_size", "max_force_token"):
        if key in opts and (not isinstance(opts[key], int) or isinstance(opts[key], bool) or opts[key] < 1):
            raise ConfigError(f"compressor.options.{key}", f"must be a positive int, got {opts[key]!r}")
    if "max_length" in opts and opts["max_length"] < 8:
        raise ConfigError("compressor.options.max_length", "must be at least 8")
    return opts


# --- chunk analysis and the fact rules ----------------------------------------------------

_CHUNK = re.compile(r"\S+")
_HAS_ALNUM = re.compile(r"[^\W_]")
_HAS_DIGIT = re.compile(r"\d")
_SENT_END = re.compile(r"[.!?…]+[\"'”’)\]]*$")
_EDGE = "\"'“”‘’«»()[]{}<>.,;:!?…*_~`-–—/\\|"

_MONTHS = frozenset(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_WEEKDAYS = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs fri sat sun".split()
)
_DAY_WORDS = frozenset("yesterday today tomorrow tonight noon midnight o'clock o’clock".split())
_NUMBER_WORDS = frozenset(
    "two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million billion "
    "dozen".split()
)
_QUANTITY = _NUMBER_WORDS | {"one", "a", "an", "few", "couple", "several"}
_TIME_UNITS = frozenset(
    "minute minutes hour hours day days week weeks weekend weekends month months year years decade decades "
    "morning afternoon evening night summer winter spring autumn fall semester".split()
)
_TIME_MODIFIERS = frozenset("last next this past coming every previous few couple several".split())
_AMPM = frozenset("am pm a.m p.m a.m. p.m.".split())
_NOT_NAMES = frozenset("i i'm i’m i've i’ve i'll i’ll i'd i’d".split())


@dataclass
class _Analysis:
    text: str
    chunks: list[str]
    spans: list[tuple[int, int]]
    cores: list[str]  # chunk without edge punctuation ("" for chunks without letters/digits)
    lower: list[str]
    is_word: list[bool]
    initial: list[bool]  # first word of a sentence
    sent_end: list[bool]  # chunk ends with . ! ? (possibly followed by quotes/brackets)
    forced: list[bool] = field(default_factory=list)


def _is_acronym(core: str) -> bool:
    letters = [c for c in core if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters) and core.lower() not in STOPWORDS


def _scan(text: str) -> _Analysis:
    chunks: list[str] = []
    spans: list[tuple[int, int]] = []
    cores: list[str] = []
    is_word: list[bool] = []
    sent_end: list[bool] = []
    initial: list[bool] = []
    new_sentence = True
    prev_end = 0
    for m in _CHUNK.finditer(text):
        chunk = m.group(0)
        start = m.start()
        if start > prev_end + 1 and "\n" in text[prev_end:start]:
            new_sentence = True
        prev_end = m.end()
        core = chunk.strip(_EDGE)
        word = bool(core) and bool(_HAS_ALNUM.search(core))
        end = bool(_SENT_END.search(chunk))
        chunks.append(chunk)
        spans.append((start, prev_end))
        cores.append(core if word else "")
        is_word.append(word)
        initial.append(new_sentence and word)
        sent_end.append(end)
        if word:
            new_sentence = end
        elif end:
            new_sentence = True
    lower = [c.lower() for c in cores]
    return _Analysis(text, chunks, spans, cores, lower, is_word, initial, sent_end)


def _mid_sentence_names(scans: Iterable[_Analysis]) -> set[str]:
    """Capitalised words seen mid-sentence anywhere in the batch: names even at a sentence start."""
    names: set[str] = set()
    for a in scans:
        for i, core in enumerate(a.cores):
            if core and not a.initial[i] and core[0].isupper() and a.lower[i] not in _NOT_NAMES:
                names.add(core)
    return names


def _mark_facts(a: _Analysis, keep_names: bool, known_names: set[str] | frozenset[str] = frozenset()) -> _Analysis:
    """Set ``a.forced``: chunks that carry numbers, dates, times or names."""
    cores, lower = a.cores, a.lower
    forced = [False] * len(a.chunks)
    for i, core in enumerate(cores):
        if not core:
            continue
        low = lower[i]
        if _HAS_DIGIT.search(core) or low in _NUMBER_WORDS or low in _DAY_WORDS:
            forced[i] = True
        elif core[0].isupper():
            if low in _MONTHS or low in _WEEKDAYS:
                forced[i] = True
            elif (
                keep_names and low not in _NOT_NAMES and (not a.initial[i] or core in known_names or _is_acronym(core))
            ):
                forced[i] = True
        elif keep_names and _is_acronym(core):
            forced[i] = True
    # Time phrases: "last week", "two days ago", "3 pm", "next Friday".
    word_idx = [i for i, w in enumerate(a.is_word) if w]
    for k, i in enumerate(word_idx):
        low = lower[i]
        if k:
            prev = word_idx[k - 1]
            p = lower[prev]
            if low in _TIME_UNITS and (forced[prev] or p in _QUANTITY or p in _TIME_MODIFIERS):
                forced[i] = True
                if p not in ("a", "an"):
                    forced[prev] = True
            elif low == "ago":
                forced[i] = forced[prev] = True
            elif low in _AMPM and _HAS_DIGIT.search(cores[prev]):
                forced[i] = True
        if low in _TIME_MODIFIERS and k + 1 < len(word_idx):
            nxt = word_idx[k + 1]
            if (lower[nxt] in _WEEKDAYS or lower[nxt] in _MONTHS) and cores[nxt][0].isupper():
                forced[i] = forced[nxt] = True
    a.forced = forced
    return a


def _analyse_batch(texts: Sequence[str], keep_names: bool) -> list[_Analysis]:
    scans = [_scan(t) for t in texts]
    names = _mid_sentence_names(scans) if keep_names else set()
    return [_mark_facts(a, keep_names, names) for a in scans]


def _select(a: _Analysis, scores: Sequence[float], rate: float) -> Compressed:
    """Keep forced words plus the best-scored others up to ``rate`` of the words."""
    text = a.text
    word_idx = [i for i, w in enumerate(a.is_word) if w]
    n = len(word_idx)
    if n == 0 or rate >= 1.0:
        return Compressed(text, text, 1.0, tuple(a.chunks), tuple([True] * len(a.chunks)))
    keep = [False] * len(a.chunks)
    kept = 0
    for i in word_idx:
        if a.forced[i]:
            keep[i] = True
            kept += 1
    # Forced words count towards the budget, but at least half of the free words' own
    # share stays, so a fact-dense turn keeps its verbs and nouns beside its facts.
    free = [i for i in word_idx if not keep[i]]
    take = max(int(rate * n + 0.5) - kept, int(0.5 * rate * len(free) + 0.5), 0 if kept else 1)
    if take and free:
        free.sort(key=lambda i: (-scores[i], i))
        for i in free[:take]:
            keep[i] = True
    if all(keep[i] for i in word_idx) and not any(not w for w in a.is_word):
        return Compressed(text, text, 1.0, tuple(a.chunks), tuple(keep))
    out: list[str] = []
    for i, chunk in enumerate(a.chunks):
        if keep[i]:
            out.append(chunk)
        elif a.sent_end[i] and out:
            m = _SENT_END.search(chunk)
            punct = m.group(0) if m else "."
            last = out[-1]
            if not _SENT_END.search(last):
                out[-1] = last.rstrip(",;:") + punct.rstrip("\"'”’)]")
    compressed = " ".join(out)
    return Compressed(text, compressed, _ratio(text, compressed), tuple(a.chunks), tuple(keep))


def _unit_index(spans: Sequence[tuple[int, int]]) -> tuple[list[int], list[int]]:
    return [s for s, _ in spans], [e for _, e in spans]


def _unit_of(starts: list[int], ends: list[int], pos: int) -> int:
    """Chunk holding character ``pos`` (or the next chunk when ``pos`` is whitespace)."""
    j = bisect.bisect_right(starts, pos) - 1
    if j < 0:
        return 0
    if pos >= ends[j] and j + 1 < len(starts):
        return j + 1
    return j


# --- model loading ------------------------------------------------------------------------


def _offline_model_source(path: str, allow_download: bool) -> str:
    """A local folder, or a hub id already in the HF cache; otherwise a clear error."""
    if os.path.isdir(path):
        if not os.path.exists(os.path.join(path, "config.json")):
            raise CompressorModelError(
                _MODEL_PATH_FIELD, f"folder {path!r} has no config.json; it is not a Hugging Face model folder"
            )
        return path
    if os.path.exists(path):
        raise CompressorModelError(_MODEL_PATH_FIELD, f"{path!r} is a file; expected a model folder")
    if allow_download:
        return path
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(path, "config.json")
    except Exception:  # noqa: BLE001 - not a valid repo id either
        cached = None
    if isinstance(cached, str):
        return path
    raise CompressorModelError(
        _MODEL_PATH_FIELD,
        f"{path!r} is not a local model folder and is not in the Hugging Face cache; models are never downloaded "
        "(set compressor.options.allow_download=true to allow it). Point compressor.model_path at a folder with "
        "config.json, the weights and the tokenizer files",
    )


def _load_failed(path: str, exc: BaseException) -> CompressorModelError:
    return CompressorModelError(_MODEL_PATH_FIELD, f"could not load {path!r} offline: {type(exc).__name__}: {exc}")


def _require_torch() -> Any:
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise StageNotAvailableError(
            f"compressor needs torch and transformers ({exc.name} is missing); install the 'llmlingua' extra"
        ) from exc
    return torch


def _require_fast(tokenizer: Any, path: str) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise CompressorModelError(
            _MODEL_PATH_FIELD, f"the tokenizer of {path!r} is not a fast tokenizer (character offsets are needed)"
        )


def _maybe_quantize(model: Any, device: str, enabled: bool) -> Any:
    """Dynamic int8 quantisation of the Linear layers (CPU only, opt-in).

    ~5x faster for a bert-base token classifier on CPU; keep masks differ from fp32 on
    a few percent of the words. Uses ``torch.ao.quantization.quantize_dynamic``, which
    torch marks deprecated: if it is gone, the model stays fp32.
    """
    if not enabled or not str(device).startswith("cpu"):
        return model
    import warnings

    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    except Exception:  # noqa: BLE001 - quantisation is an optimisation only
        return model


def _batches(order: list[int], size: int) -> Iterable[list[int]]:
    for k in range(0, len(order), size):
        yield order[k : k + size]


def _windows(ids: list[int], offsets: list[tuple[int, int]], text: str, limit: int) -> list[tuple[int, int]]:
    """Split a token sequence into windows of at most ``limit`` tokens, cutting after a
    sentence end (``. ! ? newline``) when there is one in the second half of the window."""
    out: list[tuple[int, int]] = []
    st, n = 0, len(ids)
    while st < n:
        ed = min(n, st + limit)
        if ed < n:
            for j in range(ed - 1, st + limit // 2, -1):
                s, e = offsets[j]
                piece = text[s:e]
                if piece in (".", "!", "?", "…") or "\n" in text[e : offsets[j + 1][0]]:
                    ed = j + 1
                    break
        out.append((st, ed))
        st = ed
    return out


# --- "none" -------------------------------------------------------------------------------


class NoCompressor:
    """Identity: ``text == original``."""

    provider = "none"

    def __init__(self, config: CompressorConfig | None = None) -> None:
        self.config = config or CompressorConfig(provider="none")

    def compress(self, texts: Sequence[str], rate: float | None = None) -> list[Compressed]:
        _check_rate(rate, self.config.rate)
        return [_identity(t) for t in _check_texts(texts)]

    def close(self) -> None:
        pass


# --- "entropy" ----------------------------------------------------------------------------


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


# --- "llmlingua-2" -----------------------------------------------------------------------


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
      tokens (LLMLingua's word score); the fact rules of this module and the
      word-level ``rate`` apply (see the module docstring).
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


# --- factory ------------------------------------------------------------------------------

_PROVIDERS: dict[str, type] = {
    "none": NoCompressor,
    "entropy": EntropyCompressor,
    "llmlingua-2": LLMLingua2Compressor,
}


def create_compressor(config: CompressorConfig | None = None) -> Compressor:
    """Build the compressor named by ``config.provider`` (models load here, once)."""
    config = config or CompressorConfig()
    from . import registry

    if config.provider in registry.names("compressor"):
        return registry.create("compressor", config.provider, config)
    try:
        cls = _PROVIDERS[config.provider]
    except KeyError:
        raise ConfigError(
            "compressor.provider", f"unknown compressor {config.provider!r}; expected one of {sorted(_PROVIDERS)}"
        ) from None
    return cls(config)
