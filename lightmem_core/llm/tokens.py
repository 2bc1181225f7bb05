"""Token counting: cl100k when tiktoken has it offline, else a length estimate.

Never downloads: ``cl100k_ready`` points tiktoken at a copy that is already on disk, or
says there is none. Shared by the usage estimate of servers that report no usage, the
entropy compressor's rank table and LLMLingua-2.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from .protocol import Messages

__all__ = ["cl100k_encoding", "cl100k_ready", "estimate_tokens"]

log = logging.getLogger(__package__)  # the package's logger, as before the split into modules


# --- token estimation ------------------------------------------------------------------

_CL100K_CACHE_FILE = "9b5ad71b2ce5302211f9c61530b329a4922fc6a4"  # sha1 of tiktoken's cl100k_base URL
_encoding: Any = None
_encoding_tried = False
_encoding_lock = threading.Lock()


def cl100k_ready() -> bool:
    """Make sure tiktoken finds cl100k offline; never lets it try a download.

    When ``TIKTOKEN_CACHE_DIR`` is unset and tiktoken's default cache lacks the file,
    point it at the copy shipped inside llama-index-core (if installed). Shared by token
    estimation, the entropy compressor's rank table and LLMLingua-2.
    """
    import tempfile

    explicit = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    if explicit:
        return os.path.exists(os.path.join(explicit, _CL100K_CACHE_FILE))
    if os.path.exists(os.path.join(tempfile.gettempdir(), "data-gym-cache", _CL100K_CACHE_FILE)):
        return True
    try:
        import importlib.util

        spec = importlib.util.find_spec("llama_index.core")
    except Exception:  # noqa: BLE001 - any import problem just means "not there"
        spec = None
    for base in (spec.submodule_search_locations or []) if spec is not None else []:
        folder = os.path.join(base, "_static", "tiktoken_cache")
        if os.path.exists(os.path.join(folder, _CL100K_CACHE_FILE)):
            os.environ["TIKTOKEN_CACHE_DIR"] = folder
            return True
    return False


def cl100k_encoding() -> Any:
    """The cl100k encoding, loaded once, or None when it is not available offline."""
    global _encoding, _encoding_tried
    if _encoding_tried:
        return _encoding
    with _encoding_lock:
        if _encoding_tried:
            return _encoding
        try:
            if cl100k_ready():
                import tiktoken

                _encoding = tiktoken.get_encoding("cl100k_base")
            else:
                log.debug("tiktoken cl100k not cached offline; estimating tokens as len/4")
        except Exception as exc:  # tiktoken missing or broken: the crude estimate will do
            log.debug("tiktoken unavailable (%s); estimating tokens as len/4", exc)
            _encoding = None
        _encoding_tried = True
    return _encoding


def estimate_tokens(text: str) -> int:
    """Token count of ``text``: cl100k when available offline, else ``len(text) // 4``."""
    if not text:
        return 0
    enc = cl100k_encoding()
    if enc is not None:
        try:
            return len(enc.encode(text, disallowed_special=()))
        except Exception:  # pragma: no cover - defensive
            pass
    return max(1, len(text) // 4)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multimodal parts: count the text ones
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _estimate_prompt(messages: Messages) -> int:
    # ~4 tokens of chat framing per message, as OpenAI's cookbook counts them.
    return sum(estimate_tokens(_content_text(m.get("content"))) + 4 for m in messages) + 3
