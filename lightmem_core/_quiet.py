"""Third-party noise the library causes, kept off the user's screen.

Loading a model makes transformers draw a "Loading weights" progress bar and warn
about config fields the checkpoint carries (``loss_type=None ...``). None of it is
about anything the user did, and it lands in demos, every CLI command and MCP server
logs. It is silenced only around the library's own model loads and first passes, and
restored afterwards, so a user's own transformers logging and progress bars (their
ingest, their training) are left as they set them.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

_LOCK = threading.RLock()


@contextmanager
def quiet_model_load() -> Iterator[None]:
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - a model load imports transformers anyway
        yield
        return
    with _LOCK:
        verbosity = hf_logging.get_verbosity()
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            yield
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()
