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

Common rules (both real compressors; :mod:`.rules` says them in full):

* ``rate`` is the share of words to KEEP (like LLMLingua's ``rate``); the default comes
  from ``CompressorConfig.rate``. ``rate >= 1`` returns the text unchanged.
* Whitespace-delimited chunks are kept or dropped whole, and fact-carrying chunks
  (digits, dates, times, names) are always kept.
* ``kept_ratio`` = ``len(textproc.words(text)) / len(textproc.words(original))``.

The package, one concept a module: ``base`` (the result, the model error, argument
checks, "none"), ``rules`` (chunk analysis, the keep-rules, selection by rate),
``models`` (offline model loading, token windows and batches), ``entropy`` and
``llmlingua`` (the two real providers). Everything callers use is importable from here.
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from ..config import CompressorConfig
from .base import Compressed, CompressorModelError, NoCompressor
from .entropy import _SHARED_INFO as _SHARED_INFO  # not public: the compression benchmark clears it
from .entropy import EntropyCompressor
from .llmlingua import DEFAULT_LLMLINGUA2_MODEL, AttentionWindow, LLMLingua2Compressor, SharedPass
from .rules import _analyse_batch as _analyse_batch  # not public: the rule tests read an analysis

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


@runtime_checkable
class Compressor(Protocol):
    def compress(self, texts: Sequence[str], rate: float | None = None) -> list[Compressed]:
        """Compress each text; ``rate`` = share of words to keep (default from config)."""
        ...


# --- factory ------------------------------------------------------------------------------


def create_compressor(config: CompressorConfig | None = None) -> Compressor:
    """Build the compressor named by ``config.provider`` (models load here, once). The
    built-in names are registered in ``lightmem_core.registry`` like any other, and the
    config accepts only names the registry knows, so the registry is the one list."""
    config = config or CompressorConfig()
    from .. import registry

    return registry.create("compressor", config.provider, config)
