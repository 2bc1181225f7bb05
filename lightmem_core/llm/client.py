"""The OpenAI-compatible client: OpenAI, vLLM, Ollama, llama.cpp server and DeepSeek.

It retries by itself (the openai client's own retries are switched off) so attempts can
be counted, ``Retry-After`` is honoured with a cap, and the backoff base can be made tiny
in tests. What an endpoint refused (a response_format step of the ladder json_schema ->
json_object -> prompt-only, a parameter, a context window) is remembered per endpoint.
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
from typing import Any, Optional

from ..config import PROVIDER_BASE_URLS, LLMConfig
from ..drive import Op, call, run_async, run_sync
from ..errors import ContextWindowError, LLMError
from .protocol import BaseLLM, Completion, Usage
from .tokens import _content_text, _estimate_prompt, estimate_tokens

__all__ = ["OpenAICompatibleLLM"]

log = logging.getLogger(__package__)  # the package's logger, as before the split into modules


# --- OpenAI-compatible backend ---------------------------------------------------------

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
    retry logic is written once as a generator and driven by ``drive``."""

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
        self.base_url: Optional[str] = self.config.base_url or PROVIDER_BASE_URLS.get(provider)
        key = self.config.api_key or (os.environ.get(_KEY_ENV[provider]) if provider in _KEY_ENV else None)
        if not key and provider in _KEY_ENV and self.base_url in (None, PROVIDER_BASE_URLS.get(provider)):
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
