"""Exception types of the library.

Engines (qdrant-edge, qdrant-client, SQLite, HTTP clients) raise their own, often
bare, exceptions. Callers should only ever need to catch these, so every engine
error is wrapped at the module boundary where it happens.
"""

from __future__ import annotations


class LightMemError(Exception):
    """Base class of every error this library raises on purpose."""


class InvalidInputError(LightMemError, ValueError):
    """Input was rejected before anything was written.

    ``field`` names the offending field (dotted path, e.g. ``messages[2].content``)
    so callers and agents can correct the call without reading a traceback.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.reason = message
        super().__init__(f"{field}: {message}")


class ConfigError(InvalidInputError):
    """A configuration key is unknown or has a bad value."""


class StageNotAvailableError(LightMemError):
    """A configured stage (e.g. an LLM) is needed but not configured or installed."""


class NotFoundError(LightMemError, KeyError):
    """No entry with that id exists *in the caller's scope*.

    Deliberately the same error whether the id does not exist at all or belongs to
    another user: telling them apart would leak that the id exists.
    """

    def __init__(self, memory_id: str) -> None:
        self.memory_id = memory_id
        super().__init__(memory_id)

    def __str__(self) -> str:
        return f"memory {self.memory_id!r} not found in this scope"


class ConflictError(LightMemError):
    """A concurrent writer changed the entry between read and write."""


class StoreError(LightMemError):
    """The vector store failed; the message keeps the engine's own text."""


class StoreLockedError(StoreError):
    """Another process (or another open LightMemory) holds the embedded store."""


class LLMError(LightMemError):
    """The LLM endpoint failed after retries; the work it was for stays pending."""

    attempts: int = 1


class ContextWindowError(LLMError):
    """The prompt did not fit the model's context window. ``limit`` is the window the
    server reported (None when it did not say); the caller cuts the work smaller."""

    def __init__(self, message: str, limit: int | None = None) -> None:
        super().__init__(message)
        self.limit = limit


class AnswerTruncatedError(LLMError):
    """The answer hit the completion limit (``max_tokens``) before its JSON was complete.
    No repair call is made (it would be cut the same way); the caller keeps what is whole
    in ``text`` (the cut answer) or asks for less, e.g. fewer turns per extraction call."""

    def __init__(self, message: str, text: str = "") -> None:
        super().__init__(message)
        self.text = text


class EmbeddingError(LightMemError):
    """The embedding endpoint failed (after the client's retries); on the write path the
    batch stays pending, exactly as after an ``LLMError``."""


class EmbeddingShapeError(LightMemError, ValueError):
    """An embedding model answered with the wrong number of rows or dimensions."""


class AuthError(LightMemError):
    """A served memory refused the caller: no key, an unknown or revoked one (``status``
    401), or a scope or operation the key does not reach (403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
