"""What every compressor shares: the result type, the model error, argument checks, and "none".

Kept apart from the providers so that the rules, the model loaders and each provider can
use the same checks and result without importing one another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from ..config import CompressorConfig
from ..errors import ConfigError, InvalidInputError, StageNotAvailableError
from ..textproc import words as _words

__all__ = ["Compressed", "CompressorModelError", "NoCompressor"]


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


class CompressorModelError(StageNotAvailableError):
    """The compressor's model cannot be loaded (offline, missing folder, bad files).

    ``field`` is the config field to fix, normally ``compressor.model_path``.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.reason = message
        super().__init__(f"{field}: {message}")


# --- argument checks shared by the providers ---------------------------------------------


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
