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
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import random
import re
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Protocol, Sequence, runtime_checkable

from .config import LLMConfig
from .drive import Op, call, run_async, run_sync
from .errors import AnswerTruncatedError, ContextWindowError, InvalidInputError, LLMError

log = logging.getLogger(__name__)

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

Messages = Sequence[dict[str, Any]]


# --- results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Token counts of one completion (as reported by the server, or estimated)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Completion:
    """What a backend returns: the text, its usage, and the backend's raw object.

    ``attempts`` is how many HTTP requests the answer took (retries included), so the
    accounting can show how flaky an endpoint is; ``usage_estimated`` says the server
    did not report usage and the counts come from ``estimate_tokens``.
    """

    text: str
    usage: Usage = field(default_factory=Usage)
    raw: Any = None
    model: Optional[str] = None
    finish_reason: Optional[str] = None
    attempts: int = 1
    usage_estimated: bool = False


@runtime_checkable
class LLM(Protocol):
    """Anything that answers chat messages. ``stage`` only labels the accounting."""

    def complete(
        self, messages: list[dict[str, Any]], *, json_schema: dict[str, Any] | None = None, stage: str = "extraction"
    ) -> Completion: ...

    async def acomplete(
        self, messages: list[dict[str, Any]], *, json_schema: dict[str, Any] | None = None, stage: str = "extraction"
    ) -> Completion: ...


# --- accounting ------------------------------------------------------------------------

_COUNTERS = ("calls", "failures", "attempts", "prompt_tokens", "completion_tokens", "total_tokens")


class TokenStats:
    """Thread-safe per-stage counters of LLM use.

    ``calls`` counts logical calls that returned, ``failures`` those that raised,
    ``attempts`` the HTTP requests behind both (retries included). Stages are free
    strings; the memory pipeline uses "extraction", "update" and "summary".
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stages: dict[str, dict[str, int]] = {}

    def _row(self, stage: str) -> dict[str, int]:
        row = self._stages.get(stage)
        if row is None:
            row = self._stages[stage] = {k: 0 for k in _COUNTERS}
        return row

    def record(self, stage: str, usage: Usage, *, attempts: int = 1) -> None:
        with self._lock:
            row = self._row(stage)
            row["calls"] += 1
            row["attempts"] += attempts
            row["prompt_tokens"] += usage.prompt_tokens
            row["completion_tokens"] += usage.completion_tokens
            row["total_tokens"] += usage.total_tokens

    def record_failure(self, stage: str, *, attempts: int = 1) -> None:
        with self._lock:
            row = self._row(stage)
            row["failures"] += 1
            row["attempts"] += attempts

    def snapshot(self) -> dict[str, dict[str, int]]:
        """A copy: ``{stage: {counter: n}}`` plus a ``"total"`` row summing all stages."""
        with self._lock:
            out = {stage: dict(row) for stage, row in self._stages.items()}
        total = {k: 0 for k in _COUNTERS}
        for row in out.values():
            for k in _COUNTERS:
                total[k] += row[k]
        out["total"] = total
        return out

    def reset(self) -> None:
        with self._lock:
            self._stages.clear()


def _check_messages(messages: Any) -> list[dict[str, Any]]:
    """Fail before the network on shapes no server accepts, naming the bad item."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise InvalidInputError("messages", "must be a non-empty list of {'role', 'content'} dicts")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise InvalidInputError(f"messages[{i}]", "must be a dict with 'role' and 'content'")
        out.append(m)
    return out


class BaseLLM:
    """Accounting and error wrapping shared by every backend.

    Subclasses implement ``_complete(messages, json_schema) -> Completion`` and may
    implement ``_acomplete``; without it the sync path runs in a worker thread so the
    event loop never blocks. Any non-``LLMError`` exception is wrapped in ``LLMError``
    so callers catch one type whatever the backend.
    """

    def __init__(self) -> None:
        self._token_stats = TokenStats()

    @property
    def stats(self) -> TokenStats:
        """The counters; created on demand so a subclass that forgets ``super().__init__()``
        still gets accounting (``dict.setdefault`` keeps it to one instance)."""
        stats = self.__dict__.get("_token_stats")
        if stats is None:
            stats = self.__dict__.setdefault("_token_stats", TokenStats())
        return stats

    # subclass hooks
    def _complete(self, messages: list[dict[str, Any]], json_schema: dict[str, Any] | None) -> Completion:
        raise NotImplementedError

    async def _acomplete(self, messages: list[dict[str, Any]], json_schema: dict[str, Any] | None) -> Completion:
        return await asyncio.to_thread(self._complete, messages, json_schema)

    # public API
    def complete(
        self, messages: list[dict[str, Any]], *, json_schema: dict[str, Any] | None = None, stage: str = "extraction"
    ) -> Completion:
        msgs = _check_messages(messages)
        try:
            result = self._complete(msgs, json_schema)
        except BaseException as exc:
            err = self._failed(stage, exc)
            if err is exc:
                raise
            raise err from exc
        return self._done(stage, result)

    async def acomplete(
        self, messages: list[dict[str, Any]], *, json_schema: dict[str, Any] | None = None, stage: str = "extraction"
    ) -> Completion:
        msgs = _check_messages(messages)
        try:
            result = await self._acomplete(msgs, json_schema)
        except BaseException as exc:
            err = self._failed(stage, exc)
            if err is exc:
                raise
            raise err from exc
        return self._done(stage, result)

    def get_token_statistics(self) -> dict[str, dict[str, int]]:
        return self.stats.snapshot()

    def reset_token_statistics(self) -> None:
        self.stats.reset()

    def _done(self, stage: str, result: Completion) -> Completion:
        if not isinstance(result, Completion):
            raise LLMError(f"{type(self).__name__}._complete returned {type(result).__name__}, expected Completion")
        self.stats.record(stage, result.usage, attempts=result.attempts)
        return result

    def _failed(self, stage: str, exc: BaseException) -> BaseException:
        """Count a failure and return what to raise (cancellation is not a failure)."""
        if isinstance(exc, (KeyboardInterrupt, SystemExit, asyncio.CancelledError, GeneratorExit)):
            return exc
        self.stats.record_failure(stage, attempts=int(getattr(exc, "attempts", 1) or 1))
        if isinstance(exc, LLMError):
            return exc
        return LLMError(f"{stage}: {type(exc).__name__}: {exc}")


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


# --- OpenAI-compatible backend ---------------------------------------------------------

_DEFAULT_BASE_URLS: dict[str, Optional[str]] = {
    "openai": None,  # the openai package's default, api.openai.com
    "ollama": "http://localhost:11434/v1",
    "vllm": "http://localhost:8000/v1",
    "deepseek": "https://api.deepseek.com/v1",
}
_KEY_ENV = {"openai": "OPENAI_API_KEY", "deepseek": "DEEPSEEK_API_KEY"}
_RETRY_STATUS = {408, 409, 425, 429}


def _retry_after_seconds(exc: Any) -> Optional[float]:
    """Seconds the server asked us to wait (``retry-after-ms`` / ``retry-after``), if any."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class _EndpointFacts:
    """What one (base URL, model) endpoint refused or told us, shared by its clients."""

    refused_formats: set[str] = field(default_factory=set)  # "json_schema", "json_object"
    max_completion_tokens: bool = False
    dropped: set[str] = field(default_factory=set)
    context_window: Optional[int] = None


_ENDPOINTS: dict[tuple[str, str], _EndpointFacts] = {}
_ENDPOINTS_LOCK = threading.Lock()


def _endpoint_facts(base_url: Optional[str], model: str) -> _EndpointFacts:
    with _ENDPOINTS_LOCK:
        return _ENDPOINTS.setdefault((base_url or "", model), _EndpointFacts())


# How servers say a prompt is too long: llama-cpp-python ("Requested tokens (9000) exceed
# context window of 8192"), OpenAI and vLLM ("maximum context length is 8192 tokens"),
# llama-server ("exceeds the available context size", n_ctx in the error body).
_OVERFLOW = (
    re.compile(r"exceeds? (?:the )?context window of (\d+)", re.I),
    re.compile(r"maximum context length is (\d+)", re.I),
    re.compile(r"available context size \(?(\d+)?", re.I),
    re.compile(r"context[_ ]length[_ ]exceeded()", re.I),
)


def _context_overflow(exc: BaseException) -> Optional[int]:
    """The window a 400 says the prompt overflowed (0 when it does not say); None if it is another error."""
    status = getattr(exc, "status_code", None)
    if status not in (400, 413, 500):
        return None
    body = getattr(exc, "body", None)
    text = f"{getattr(exc, 'message', '') or exc} {json.dumps(body) if isinstance(body, (dict, list)) else ''}"
    for pattern in _OVERFLOW:
        m = pattern.search(text)
        if m:
            n_ctx = re.search(r'"n_ctx":\s*(\d+)', text)
            found = m.group(1) if m.groups() and m.group(1) else (n_ctx.group(1) if n_ctx else "")
            return int(found) if found else 0
    return None


class _Retry(Exception):
    """Internal: this attempt failed in a way worth retrying."""

    def __init__(self, cause: BaseException, wait_hint: Optional[float] = None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.wait_hint = wait_hint


class _Transport:
    """The side effects of one request (HTTP call, sleep) as sync/async twins, so the
    retry logic is written once as a generator and driven by ``_drive``."""

    def __init__(self, owner: "OpenAICompatibleLLM") -> None:
        self.owner = owner

    def create(self, kwargs: dict[str, Any]) -> Any:
        return self.owner.client.chat.completions.create(**kwargs)

    async def acreate(self, kwargs: dict[str, Any]) -> Any:
        return await self.owner._loop_aclient().chat.completions.create(**kwargs)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class OpenAICompatibleLLM(BaseLLM):
    """Chat completions over the ``openai`` package: OpenAI, vLLM, Ollama, llama.cpp, DeepSeek.

    ``backoff_base`` is the first retry wait (doubled each retry, with jitter, capped
    by ``max_backoff``); a server's ``Retry-After`` replaces it, capped by
    ``max_retry_after`` so a hostile header cannot stall the pipeline. ``client`` /
    ``aclient`` inject prebuilt openai clients (e.g. with custom httpx settings).
    """

    def __init__(
        self,
        config: LLMConfig | None = None,
        *,
        backoff_base: float = 0.5,
        max_backoff: float = 10.0,
        max_retry_after: float = 10.0,
        client: Any = None,
        aclient: Any = None,
    ) -> None:
        super().__init__()
        self.config = config or LLMConfig()
        self.backoff_base = backoff_base
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        provider = self.config.provider
        self.base_url: Optional[str] = self.config.base_url or _DEFAULT_BASE_URLS.get(provider)
        key = self.config.api_key or (os.environ.get(_KEY_ENV[provider]) if provider in _KEY_ENV else None)
        if not key and provider in _KEY_ENV and self.base_url in (None, _DEFAULT_BASE_URLS.get(provider)):
            log.warning(
                "LLM provider %r has no api_key (nor $%s); the endpoint will likely answer 401",
                provider,
                _KEY_ENV[provider],
            )
        self.api_key: str = key or "not-needed"  # the openai client refuses an empty key
        self._client = client
        self._aclient_fixed = aclient
        self._aclients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any]" = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        # What the server refused once is remembered per endpoint (not per client), so a
        # new LightMemory on the same server does not pay the 400 again.
        self._facts = _endpoint_facts(self.base_url, self.config.model)
        self._transport = _Transport(self)

    @property
    def json_mode_supported(self) -> bool:
        return "json_object" not in self._facts.refused_formats

    @property
    def response_format(self) -> Optional[str]:
        """The response_format type sent with JSON requests now: the configured one, or the
        step below it after this endpoint refused it; None = JSON asked for in the prompt."""
        mode = self.config.json_mode
        wanted = "json_schema" if mode == "json_schema" else ("json_object" if mode else None)
        ladder = ("json_schema", "json_object")
        for kind in ladder[ladder.index(wanted) :] if wanted else ():
            if kind not in self._facts.refused_formats:
                return kind
        return None

    @property
    def context_window(self) -> Optional[int]:
        """The model's window in tokens: configured, or learned from a refusal; None if unknown."""
        return self.config.context_window or self._facts.context_window

    # clients -----------------------------------------------------------------------
    def _client_kwargs(self) -> dict[str, Any]:
        return {"api_key": self.api_key, "base_url": self.base_url, "timeout": self.config.timeout, "max_retries": 0}

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import openai

                    self._client = openai.OpenAI(**self._client_kwargs())
        return self._client

    def _loop_aclient(self) -> Any:
        """One AsyncOpenAI per event loop: pooled connections must not outlive their loop
        (reusing one across ``asyncio.run`` calls fails with 'Event loop is closed')."""
        if self._aclient_fixed is not None:
            return self._aclient_fixed
        loop = asyncio.get_running_loop()
        with self._lock:
            aclient = self._aclients.get(loop)
            if aclient is None:
                import openai

                aclient = self._aclients[loop] = openai.AsyncOpenAI(**self._client_kwargs())
        return aclient

    def close(self) -> None:
        """Close the sync client's connection pool (async ones die with their loop)."""
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # pragma: no cover - best effort
                pass

    # request shaping -----------------------------------------------------------------
    def _request(self, messages: list[dict[str, Any]], json_schema: dict[str, Any] | None) -> dict[str, Any]:
        c = self.config
        kw: dict[str, Any] = {"model": c.model, "messages": list(messages)}
        facts = self._facts
        if "temperature" not in facts.dropped:
            kw["temperature"] = c.temperature
        if c.top_p is not None and "top_p" not in facts.dropped:
            kw["top_p"] = c.top_p
        kw["max_completion_tokens" if facts.max_completion_tokens else "max_tokens"] = c.max_tokens
        kind = self.response_format if json_schema is not None else None
        if kind == "json_schema" and json_schema and set(json_schema) - {"type"}:
            kw["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": json_schema}}
        elif kind is not None:
            kw["response_format"] = {"type": "json_object"}
        if kind is not None:
            # OpenAI rejects json_object mode unless "json" appears in the messages. The
            # note goes into the (first) system message: several chat templates served by
            # vLLM / llama.cpp reject a system message anywhere but first.
            if not any("json" in _content_text(m.get("content")).lower() for m in messages):
                note = "Answer with a single JSON object."
                first = kw["messages"][0]
                if first.get("role") == "system" and isinstance(first.get("content"), str):
                    kw["messages"][0] = {**first, "content": f"{first['content']}\n\n{note}"}
                else:
                    kw["messages"].insert(0, {"role": "system", "content": note})
        return kw

    def _refused_format(self, kw: dict[str, Any], exc: Any) -> bool:
        """A server that refuses the response_format sent (llama-cpp-python answers 500 to
        json_schema, some proxies 400 to json_object) gets the next step down, and this
        endpoint is not asked for the refused one again; True = resend."""
        sent = (kw.get("response_format") or {}).get("type")
        if sent is None or getattr(exc, "status_code", None) not in (400, 422, 500):
            return False
        text = f"{getattr(exc, 'param', '') or ''} {getattr(exc, 'message', '') or exc}".lower()
        if not any(word in text for word in ("response_format", "json_object", "json_schema", "json mode")):
            return False
        # a server without json_object has no json_schema either
        self._facts.refused_formats.update({sent, "json_schema"} if sent == "json_object" else {sent})
        nxt = self.response_format
        log.warning(
            "LLM endpoint refused response_format %s; using %s from now on: %s",
            sent,
            nxt or "plain-text JSON prompts",
            self._describe(exc),
        )
        if nxt is None:
            kw.pop("response_format")
        else:
            kw["response_format"] = {"type": nxt}
        return True

    def _adapt(self, kw: dict[str, Any], exc: Any) -> bool:
        """After a 400, drop/rename an optional parameter the server rejected; True = resend."""
        text = f"{getattr(exc, 'param', '') or ''} {getattr(exc, 'message', '') or exc}".lower()
        if "max_tokens" in kw and "max_tokens" in text and "max_completion_tokens" in text:
            self._facts.max_completion_tokens = True
            kw["max_completion_tokens"] = kw.pop("max_tokens")
            return True
        for name in ("temperature", "top_p"):
            if name in kw and name in text and ("unsupported" in text or "not support" in text):
                log.warning("LLM endpoint rejected %s; not sending it again: %s", name, exc)
                self._facts.dropped.add(name)
                kw.pop(name)
                return True
        return False

    def _classify(self, exc: BaseException) -> BaseException:
        """Map an openai exception to ``_Retry`` (transient) or itself (permanent)."""
        import openai

        if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)):
            return _Retry(exc)
        if isinstance(exc, openai.APIStatusError):
            if exc.status_code in _RETRY_STATUS or exc.status_code >= 500:
                return _Retry(exc, _retry_after_seconds(exc))
            return exc
        # A 200 whose body is not the API's JSON is usually a proxy or load balancer
        # hiccup (an HTML error page), so it is worth another try.
        if isinstance(exc, (openai.APIResponseValidationError, json.JSONDecodeError)):
            return _Retry(exc)
        return exc

    def _wait(self, retry_index: int, hint: Optional[float]) -> float:
        if hint is not None:
            return min(hint, self.max_retry_after)
        backoff = min(self.max_backoff, self.backoff_base * (2**retry_index))
        return backoff * random.uniform(0.5, 1.0)

    def _op(self, messages: list[dict[str, Any]], json_schema: dict[str, Any] | None) -> Op[Completion]:
        kw = self._request(messages, json_schema)
        attempts = 0
        retries = 0
        adaptations = 0
        while True:
            attempts += 1
            try:
                response = yield call(self._transport.create, kw)
                return self._completion(response, kw["messages"], attempts)
            except _Retry as r:  # raised by _completion on an unusable 200
                failure: BaseException = r
            except (LLMError, asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception as exc:
                overflow = _context_overflow(exc)
                if overflow is not None:  # no retry can make the prompt fit: the caller cuts it smaller
                    limit = overflow or None
                    if limit:
                        self._facts.context_window = limit
                    raise ContextWindowError(
                        f"the prompt does not fit the model's context window "
                        f"({limit or 'size not given'} tokens): {self._describe(exc)}",
                        limit,
                    ) from exc
                if adaptations < 3 and self._refused_format(kw, exc):
                    adaptations += 1
                    continue
                failure = self._classify(exc)
                if not isinstance(failure, _Retry):
                    import openai

                    if isinstance(exc, openai.BadRequestError) and adaptations < 3 and self._adapt(kw, exc):
                        adaptations += 1
                        continue
                    raise self._error(
                        f"LLM request failed ({self._describe(exc)}); not retryable", exc, attempts
                    ) from exc
            assert isinstance(failure, _Retry)
            if retries >= self.config.max_retries:
                raise self._error(
                    f"LLM request failed after {attempts} attempts ({self._describe(failure.cause)})",
                    failure.cause,
                    attempts,
                )
            wait = self._wait(retries, failure.wait_hint)
            retries += 1
            log.warning("LLM attempt %d failed (%s); retrying in %.2fs", attempts, self._describe(failure.cause), wait)
            if wait > 0:
                yield call(self._transport.sleep, wait)

    @staticmethod
    def _describe(exc: BaseException) -> str:
        status = getattr(exc, "status_code", None)
        return f"{type(exc).__name__}{f' {status}' if status else ''}: {exc}"

    def _error(self, message: str, cause: BaseException, attempts: int) -> LLMError:
        err = LLMError(f"{message} [model={self.config.model!r}, base_url={self.base_url or 'api.openai.com'}]")
        err.__cause__ = cause
        err.attempts = attempts  # read by BaseLLM accounting
        return err

    def _completion(self, response: Any, messages: list[dict[str, Any]], attempts: int) -> Completion:
        choices = getattr(response, "choices", None)
        if not choices:
            raise _Retry(LLMError(f"endpoint returned no choices: {str(response)[:200]!r}"))
        choice = choices[0]
        message = getattr(choice, "message", None)
        text = _content_text(getattr(message, "content", None))
        if not text:
            log.warning("LLM returned empty content (finish_reason=%s)", getattr(choice, "finish_reason", None))
        usage = getattr(response, "usage", None)
        prompt_tokens = getattr(usage, "prompt_tokens", None)  # None too when there is no usage
        estimated = prompt_tokens is None
        if estimated:
            u = Usage(_estimate_prompt(messages), estimate_tokens(text))
        else:
            u = Usage(int(prompt_tokens or 0), int(getattr(usage, "completion_tokens", 0) or 0))
        return Completion(
            text=text,
            usage=u,
            raw=response,
            model=getattr(response, "model", None),
            finish_reason=getattr(choice, "finish_reason", None),
            attempts=attempts,
            usage_estimated=estimated,
        )

    # BaseLLM hooks ---------------------------------------------------------------------
    def _complete(self, messages: list[dict[str, Any]], json_schema: dict[str, Any] | None) -> Completion:
        return run_sync(self._op(messages, json_schema))

    async def _acomplete(self, messages: list[dict[str, Any]], json_schema: dict[str, Any] | None) -> Completion:
        return await run_async(self._op(messages, json_schema))

    def __repr__(self) -> str:
        return (
            f"OpenAICompatibleLLM(provider={self.config.provider!r}, model={self.config.model!r}, "
            f"base_url={self.base_url!r})"
        )


def create_llm(config: LLMConfig, **kwargs: Any) -> LLM:
    """Build the LLM for ``config``. A provider registered under kind ``"llm"`` in
    ``lightmem_core.registry`` wins; every built-in provider speaks the OpenAI API."""
    from . import registry

    if not isinstance(config, LLMConfig):
        raise LLMError(f"create_llm expects an LLMConfig, got {type(config).__name__}")
    if config.provider in registry.names("llm"):
        return registry.create("llm", config.provider, config, **kwargs)
    return OpenAICompatibleLLM(config, **kwargs)


# --- tolerant JSON ---------------------------------------------------------------------


class JSONParseError(ValueError):
    """The text holds no parseable JSON value."""


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n?(.*?)(?:```|\Z)", re.S)
_MAX_CANDIDATES = 20


def _balanced_end(text: str, start: int) -> int:
    """Index just past the bracket matching ``text[start]`` (``{`` or ``[``), or -1.

    Quote-aware for both ``"`` and ``'`` so braces inside strings do not count.
    """
    stack: list[str] = []
    quote: Optional[str] = None
    i = start
    n = len(text)
    while i < n:
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            # an apostrophe inside a bare word (don't) is not a quote
            if ch == "'" and i > 0 and text[i - 1].isalnum():
                pass
            else:
                quote = ch
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if not stack or stack.pop() != ch:
                return -1
            if not stack:
                return i + 1
        i += 1
    return -1


_BARE = {"True": "true", "False": "false", "None": "null"}


def _relax(text: str) -> str:
    """Cheap repairs of near-JSON: trailing commas, single-quoted strings, Python literals."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif ch == "'":
            j = i + 1
            buf: list[str] = []
            while j < n and text[j] != "'":
                if text[j] == "\\" and j + 1 < n:
                    nxt = text[j + 1]
                    buf.append("'" if nxt == "'" else "\\" + nxt)
                    j += 2
                    continue
                buf.append('\\"' if text[j] == '"' else text[j])
                j += 1
            out.append('"' + "".join(buf) + '"')
            i = j + 1
        elif ch == ",":
            j = i + 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j < n and text[j] in "}]":
                i += 1  # drop the trailing comma
            else:
                out.append(ch)
                i += 1
        elif ch.isalpha():
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word = text[i:j]
            out.append(_BARE.get(word, word))
            i = j
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _loads(candidate: str) -> tuple[bool, Any, Optional[str]]:
    """json.loads, then (only for objects/arrays) once more after ``_relax``: relaxing
    bare prose would turn an answer like "None" into a JSON null."""
    try:
        return True, json.loads(candidate), None
    except ValueError as exc:
        first_error = str(exc)
    if candidate[:1] in "{[":
        try:
            return True, json.loads(_relax(candidate)), None
        except ValueError:
            pass
    return False, None, first_error


_OPEN = re.compile(r"[\[{]")


def _structures(text: str) -> Iterator[str]:
    """Top-level balanced ``{...}`` / ``[...]`` spans of ``text``, left to right.

    Never yields a span nested in an earlier one: if an object is cut off, its inner
    objects are fragments, and returning one as "the answer" would lose data quietly.
    """
    pos = 0
    for _ in range(_MAX_CANDIDATES):
        m = _OPEN.search(text, pos)
        if m is None:
            return
        end = _balanced_end(text, m.start())
        if end < 0:
            return  # unbalanced: everything after it lies inside it
        yield text[m.start() : end]
        pos = end


def parse_json(text: str) -> Any:
    """Parse a model's answer that should be JSON but may not be clean.

    Tries, in order: the whole text; the contents of ``` fences (``json`` or not,
    closed or cut off); the first balanced object/array inside surrounding prose.
    Each candidate is retried after cheap repairs (trailing commas, single quotes,
    ``True``/``False``/``None``). Truncated JSON is *not* guessed at: losing the
    tail silently is worse than a repair round-trip. Raises ``JSONParseError``.
    """
    if not isinstance(text, str):
        raise JSONParseError(f"expected text, got {type(text).__name__}")
    stripped = text.strip().lstrip("\ufeff")
    if not stripped:
        raise JSONParseError("empty answer")
    ok, value, error = _loads(stripped)
    if ok:
        return value
    first_error = error
    regions = [m.group(2).strip() for m in _FENCE.finditer(stripped)] + [stripped]
    seen: set[str] = set()
    for region in regions:
        if not region:
            continue
        if region != stripped and region not in seen:
            seen.add(region)
            ok, value, _ = _loads(region)
            if ok:
                return value
        for candidate in _structures(region):
            if candidate in seen:
                continue
            seen.add(candidate)
            ok, value, _ = _loads(candidate)
            if ok:
                return value
    snippet = stripped[:120].replace("\n", " ")
    if not any(ch in stripped for ch in "{["):
        raise JSONParseError(f"no JSON object or array in the answer: {snippet!r}")
    raise JSONParseError(f"no complete JSON value found ({first_error}); answer began {snippet!r}")


# --- complete_json ----------------------------------------------------------------------

_REPAIR_PROMPT = (
    "Your previous answer could not be used: {error}\n"
    "Reply again with valid JSON only: no prose, no code fences, no comments, no trailing commas."
)
_MAX_ECHO = 4000


def _check(value: Any, validate: Optional[Callable[[Any], Any]]) -> Any:
    """Apply ``validate``: raising or returning False rejects; a non-bool, non-None
    return value replaces the parsed value (so ``Model.model_validate`` works)."""
    if validate is None:
        return value
    result = validate(value)
    if result is False:
        raise ValueError("the JSON does not have the expected shape")
    if result is None or result is True:
        return value
    return result


def _json_op(
    llm: Any,
    messages: list[dict[str, Any]],
    stage: str,
    schema: Optional[dict[str, Any]],
    validate: Optional[Callable[[Any], Any]],
) -> Op[Any]:
    json_schema = schema if schema is not None else {"type": "object"}

    def ask(msgs: list[dict[str, Any]]) -> Op[tuple[str, Optional[str]]]:
        try:
            completion = yield call(llm.complete, msgs, json_schema=json_schema, stage=stage)
        except LLMError:
            raise
        except Exception as exc:  # an adapter's own exception type: callers catch LLMError
            raise LLMError(f"{stage}: {type(exc).__name__}: {exc}") from exc
        text = getattr(completion, "text", completion)
        return (text if isinstance(text, str) else str(text)), getattr(completion, "finish_reason", None)

    text, finish = yield from ask(messages)
    try:
        return _check(parse_json(text), validate)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if finish == "length":
            raise AnswerTruncatedError(
                f"{stage}: the answer reached the completion limit before its JSON ended "
                f"({error}); ask for less per call"
            ) from exc
    log.info("%s: LLM answer is not usable JSON (%s); asking once for a repair", stage, error)
    hint = f"\nThe JSON must match this schema: {json.dumps(schema)}" if schema else ""
    repair = list(messages) + [
        {"role": "assistant", "content": text[:_MAX_ECHO] or "(empty)"},
        {"role": "user", "content": _REPAIR_PROMPT.format(error=error) + hint},
    ]
    text, _ = yield from ask(repair)
    try:
        return _check(parse_json(text), validate)
    except Exception as exc:
        raise LLMError(
            f"{stage}: no valid JSON after one repair ({type(exc).__name__}: {exc}); answer began {text[:200]!r}"
        ) from exc


def complete_json(
    llm: LLM,
    messages: list[dict[str, Any]],
    *,
    stage: str = "extraction",
    schema: Optional[dict[str, Any]] = None,
    validate: Optional[Callable[[Any], Any]] = None,
) -> Any:
    """Ask for JSON and return the parsed value, with one repair call if needed.

    ``schema`` is passed as ``json_schema`` (turning on JSON mode) and quoted in the
    repair prompt. ``validate(value)`` may raise or return False to reject the value,
    or return a replacement (e.g. a pydantic model). Raises ``LLMError``.
    """
    return run_sync(_json_op(llm, _check_messages(messages), stage, schema, validate))


async def acomplete_json(
    llm: LLM,
    messages: list[dict[str, Any]],
    *,
    stage: str = "extraction",
    schema: Optional[dict[str, Any]] = None,
    validate: Optional[Callable[[Any], Any]] = None,
) -> Any:
    """Async twin of ``complete_json`` (same logic, driven by ``run_async``)."""
    return await run_async(_json_op(llm, _check_messages(messages), stage, schema, validate))


def complete_json_op(
    llm: LLM,
    messages: list[dict[str, Any]],
    *,
    stage: str = "extraction",
    schema: Optional[dict[str, Any]] = None,
    validate: Optional[Callable[[Any], Any]] = None,
) -> Op[Any]:
    """``complete_json`` as an operation, for callers that are operations themselves
    (``yield from complete_json_op(...)`` inside a generator run by ``_drive``)."""
    return _json_op(llm, _check_messages(messages), stage, schema, validate)
