"""Loading a Hugging Face model offline, and feeding it token windows in batches.

Shared by the two model-backed providers (the entropy compressor's causal LM and
LLMLingua-2's token classifier): both must refuse to download, fail with one clear
:class:`CompressorModelError` naming the config field to fix, and cut long texts at
sentence ends. torch and transformers are imported only inside these functions, so
importing the package costs nothing when no model is configured.
"""

from __future__ import annotations

import os
from typing import Any, Iterable

from ..errors import StageNotAvailableError
from .base import CompressorModelError

_MODEL_PATH_FIELD = "compressor.model_path"


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
