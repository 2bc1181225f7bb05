"""The LLM layer: one small protocol, token accounting, an OpenAI-compatible client
and tolerant JSON answers.

Why it looks like this:

* ``LLM`` is deliberately tiny (``complete`` / ``acomplete``) so that adapters can
  later wrap LangChain or LlamaIndex chat models behind it without dragging their
  abstractions into the core.
* ``BaseLLM`` does the token accounting once; every backend (and every future
  adapter bridge) only implements ``_complete`` and gets ``get_token_statistics()``.
* ``OpenAICompatibleLLM`` speaks ``/v1/chat/completions``, which OpenAI, vLLM,
  Ollama, llama.cpp server and DeepSeek all serve. It retries by itself (the openai
  client's own retries are switched off) so attempts can be counted, ``Retry-After``
  is honoured with a cap, and the backoff base can be made tiny in tests.
* ``complete_json`` turns "the model's answer" into "a parsed value": models wrap JSON
  in fences and prose, or cut it off; one repair round-trip fixes most of that, and
  anything else is an ``LLMError`` so the caller can keep the work pending.

The package, one concept a module: ``protocol`` (LLM, results, accounting), ``tokens``
(cl100k counting), ``client`` (the OpenAI-compatible client, its retry loop and
response_format ladder), ``jsonparse`` (tolerant parsing) and ``jsoncall``
(``complete_json`` and its repair round-trip). Everything callers use is importable here.
"""

from __future__ import annotations

from typing import Any

from ..config import LLMConfig
from ..errors import LLMError
from .client import OpenAICompatibleLLM
from .client import _context_overflow as _context_overflow  # not public: the repair tests read it
from .jsoncall import acomplete_json, complete_json
from .jsoncall import complete_json_op as complete_json_op  # for operations: yield from complete_json_op(...)
from .jsonparse import JSONParseError, parse_json
from .protocol import LLM, BaseLLM, Completion, TokenStats, Usage
from .protocol import Messages as Messages
from .tokens import cl100k_encoding as cl100k_encoding  # the compressors' rank table
from .tokens import cl100k_ready as cl100k_ready
from .tokens import estimate_tokens

__all__ = [
    "BaseLLM",
    "Completion",
    "JSONParseError",
    "LLM",
    "OpenAICompatibleLLM",
    "TokenStats",
    "Usage",
    "acomplete_json",
    "complete_json",
    "create_llm",
    "estimate_tokens",
    "parse_json",
]


def create_llm(config: LLMConfig, **kwargs: Any) -> LLM:
    """Build the LLM for ``config`` from ``lightmem_core.registry`` (kind ``"llm"``): every
    built-in provider is registered there as ``OpenAICompatibleLLM``, and the config accepts
    only names the registry knows."""
    from .. import registry

    if not isinstance(config, LLMConfig):
        raise LLMError(f"create_llm expects an LLMConfig, got {type(config).__name__}")
    return registry.create("llm", config.provider, config, **kwargs)
