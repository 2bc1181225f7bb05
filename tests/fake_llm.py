"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests (no mocks).

Use it as a context manager or through the ``fake_llm`` pytest fixture::

    from tests.fake_llm import FakeLLMServer, FaultSpec, fake_llm  # noqa: F401 (fixture)

    with FakeLLMServer() as server:
        cfg = LLMConfig(base_url=server.base_url, model="fake", api_key="k")
        ...
        assert server.calls["chat"] == 1

Endpoints (``/v1`` prefix optional)
-----------------------------------
* ``POST /v1/chat/completions`` — OpenAI response shape (id, object, created, model,
  choices[0].message.content, finish_reason, usage). The content comes from
  ``server.responder(request_json) -> str | None`` (``None`` = use the default).
* ``POST /v1/embeddings`` — deterministic vectors from ``server.embed_fn(text, dims)``
  (default: each lower-cased word hashed into ``dims`` buckets with a +/-1 sign, NOT
  normalised, so client-side normalisation is observable). Honours the request's
  ``dimensions`` and ``encoding_format`` ("float" or "base64", which the openai
  client asks for by default).
* ``GET /v1/models`` — lists the one model, for health checks.

Token counts are deterministic: ``tokens(text) = round(1.3 * len(text.split()))``;
prompt tokens = sum over messages of ``tokens(content) + 3``; completion tokens =
``max(1, tokens(answer))``. Totals of the answered (not faulted) chat calls are in
``server.prompt_tokens`` / ``server.completion_tokens`` (answers sent with
``omit_usage`` are not counted); ``server.embedding_tokens`` for embeddings.

Default responder contract (``default_responder``)
--------------------------------------------------
"Prompt text" = the contents of every system and user message (assistant turns are
ignored, so a ``complete_json`` repair round-trip gets the same answer as the
original request). Checked in this order:

1. ``UPDATE_DECISION`` anywhere in the prompt text ->
   ``{"action": "ignore", "reason": "fake server: nothing to change"}``
2. ``SUMMARIZE`` anywhere in the prompt text ->
   ``{"summary": "<first 30 words of the last user message, the marker word removed>"}``
3. Lines of the form ``[turn_id] Speaker: sentence`` or ``[turn_id] Speaker (time):
   sentence`` (the shape of ``lightmem_core.prompts.turn_line``; one per line; searched
   in the last user message first, then in all system/user messages) -> extraction:
   ``{"facts": [{"fact": "<Speaker> said: <sentence>", "source_ids": ["<turn_id>"]}, ...]}``
   one fact per tagged line, in order. ``turn_id`` is whatever is inside the first
   square brackets; ``Speaker`` is the text before the first colon or ``(`` (at most 60
   chars); the optional parenthesised time (colons allowed) is dropped.
4. Otherwise an echo: ``"ECHO: <first 20 words of the last user message>"``; when the
   request asked for ``response_format`` json_object, ``{"echo": "<same words>"}``.

Override per test with ``server.responder = fn`` (``fn(request_json)`` returns the
content string, or ``None`` to fall back to the default), or change the markers via
``server.markers`` (keys "update", "summary").

Faults
------
``server.script(FaultSpec(...), ...)`` queues faults; each request consumes the first
queued fault whose ``endpoint`` is ``None`` (any) or matches ("chat", "embeddings").
A ``FaultSpec()`` with no fields is a pass-through (a normal answer), useful to
order faults. Fields:

* ``status`` — answer with this HTTP status and an OpenAI-style error body
  (``message`` is the error text; ``retry_after`` adds a ``Retry-After`` header).
* ``delay`` — sleep this long first (to provoke client timeouts), then carry on.
* ``body`` — replace the *assistant content* of an otherwise valid 200 answer
  (truncated JSON, prose, fenced JSON ...).
* ``raw_body`` — replace the whole HTTP response body (e.g. a non-JSON proxy page).
* ``drop`` — close the connection without answering.
* ``omit_usage`` — leave ``usage`` out of the answer.

Every request counts in ``server.calls[endpoint]`` and its JSON body is appended to
``server.requests`` (``server.log`` has ``(endpoint, body)`` pairs), faulted or not.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator, Optional

import pytest

__all__ = ["FakeLLMServer", "FaultSpec", "default_responder", "default_embedding", "fake_llm", "count_tokens"]

Responder = Callable[[dict[str, Any]], Optional[str]]

# [turn_id] Speaker: text   or   [turn_id] Speaker (time, may hold colons): text
TURN_LINE = re.compile(r"^\s*\[([^\]\n]+)\]\s*([^:(\n]{1,60}?)\s*(?:\(([^)\n]*)\))?\s*:\s*(.+?)\s*$", re.M)
DEFAULT_MARKERS = {"update": "UPDATE_DECISION", "summary": "SUMMARIZE"}


@dataclass
class FaultSpec:
    """One scripted misbehaviour, consumed by one request (see the module docstring)."""

    status: Optional[int] = None
    retry_after: Optional[float] = None
    message: str = "fake server: scripted error"
    delay: float = 0.0
    body: Optional[str] = None
    raw_body: Optional[str] = None
    drop: bool = False
    omit_usage: bool = False
    endpoint: Optional[str] = None  # None = any endpoint; "chat" or "embeddings"
    finish_reason: str = "stop"  # e.g. "length" for an answer cut at max_tokens
    headers: dict[str, str] = field(default_factory=dict)


def count_tokens(text: str) -> int:
    """The server's deterministic token count."""
    return int(round(1.3 * len(str(text).split())))


def _content(message: dict[str, Any]) -> str:
    c = message.get("content")
    if isinstance(c, list):
        return " ".join(str(p.get("text", "")) for p in c if isinstance(p, dict))
    return "" if c is None else str(c)


def _prompt_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(_content(m) for m in messages if m.get("role") in ("system", "user", "developer"))


def _last_user(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return _content(m)
    return ""


def default_responder(request: dict[str, Any], markers: dict[str, str] | None = None) -> str:
    """The deterministic answer described in the module docstring."""
    markers = {**DEFAULT_MARKERS, **(markers or {})}
    messages = request.get("messages") or []
    prompt = _prompt_text(messages)
    last = _last_user(messages)
    if markers["update"] in prompt:
        return json.dumps({"action": "ignore", "reason": "fake server: nothing to change"})
    if markers["summary"] in prompt:
        words = re.sub(re.escape(markers["summary"]) + r":?", " ", last).split()[:30]
        return json.dumps({"summary": " ".join(words)})
    tagged = TURN_LINE.findall(last) or TURN_LINE.findall(prompt)
    if tagged:
        facts = [{"fact": f"{speaker} said: {text}", "source_ids": [tid.strip()]} for tid, speaker, _, text in tagged]
        return json.dumps({"facts": facts})
    words = " ".join(last.split()[:20])
    fmt = request.get("response_format") or {}
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        return json.dumps({"echo": words})
    return f"ECHO: {words}"


def default_embedding(text: str, dims: int) -> list[float]:
    """Bag of hashed words: texts sharing words get similar vectors; not normalised."""
    vec = [0.0] * dims
    for word in re.findall(r"\w+", str(text).lower()):
        h = hashlib.blake2b(word.encode(), digest_size=8).digest()
        idx = int.from_bytes(h[:4], "little") % dims
        vec[idx] += 1.0 if h[4] & 1 else -1.0
    if not any(vec):
        vec[0] = 1.0  # never a zero vector: cosine of it is undefined
    return vec


class _Handler(BaseHTTPRequestHandler):
    server: "_HTTPServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows failures anyway
        pass

    # plumbing ---------------------------------------------------------------------------
    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None, raw: str | None = None) -> None:
        data = (raw if raw is not None else json.dumps(payload)).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the client gave up (timeout); nothing to tell it
        self.close_connection = True

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return None

    # routes ----------------------------------------------------------------------------
    def do_GET(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        if path in ("/v1/models", "/models"):
            self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model", "owned_by": "fake"}]})
        else:
            self._send(404, {"error": {"message": f"no route {path}", "type": "not_found"}})

    def do_POST(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        endpoint = {
            "/v1/chat/completions": "chat",
            "/chat/completions": "chat",
            "/v1/embeddings": "embeddings",
            "/embeddings": "embeddings",
        }.get(path)
        body = self._read_json()
        if endpoint is None:
            self._send(404, {"error": {"message": f"no route {path}", "type": "not_found"}})
            return
        srv = self.server.owner
        fault = srv._record(endpoint, body)
        if body is None or not isinstance(body, dict):
            self._send(400, {"error": {"message": "request body is not JSON", "type": "invalid_request_error"}})
            return
        if fault is not None:
            if fault.delay:
                srv._stop.wait(fault.delay)
            if fault.drop:
                self._drop()
                return
            if fault.status is not None and fault.status >= 400:
                headers = dict(fault.headers)
                if fault.retry_after is not None:
                    ra = fault.retry_after
                    headers["Retry-After"] = str(int(ra)) if float(ra).is_integer() else str(ra)
                err = {
                    "error": {"message": fault.message, "type": "fake_error", "param": None, "code": str(fault.status)}
                }
                self._send(fault.status, err, headers, raw=fault.raw_body)
                return
            if fault.raw_body is not None:
                self._send(fault.status or 200, None, fault.headers, raw=fault.raw_body)
                return
        try:
            if endpoint == "chat":
                payload = srv._chat(body, fault)
            else:
                payload = srv._embeddings(body)
        except Exception as exc:  # a broken custom responder: make it visible as a 500
            self._send(500, {"error": {"message": f"fake server responder failed: {exc!r}", "type": "server_error"}})
            return
        self._send(200, payload, fault.headers if fault else None)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: "FakeLLMServer"

    def handle_error(self, request: Any, client_address: Any) -> None:  # no tracebacks on client hang-ups
        pass


class FakeLLMServer:
    """OpenAI-compatible loopback server with counters and scripted faults."""

    def __init__(self, responder: Responder | None = None, *, dims: int = 64, model: str = "fake-model") -> None:
        self.responder: Responder | None = responder
        self.embed_fn: Callable[[str, int], list[float]] = default_embedding
        self.markers: dict[str, str] = dict(DEFAULT_MARKERS)
        self.dims = dims
        self.model = model
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._faults: list[FaultSpec] = []
        self.reset()
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"fake-llm-{self.port}", daemon=True
        )
        self._thread.start()
        self._closed = False

    # public API --------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *faults: FaultSpec, endpoint: str | None = None) -> "FakeLLMServer":
        """Queue faults; ``endpoint`` sets it on every given spec that has none."""
        with self._lock:
            for f in faults:
                if endpoint is not None and f.endpoint is None:
                    f = FaultSpec(**{**f.__dict__, "endpoint": endpoint})
                self._faults.append(f)
        return self

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    def reset(self) -> None:
        """Zero the counters, forget requests and queued faults."""
        with self._lock:
            self.calls: dict[str, int] = {"chat": 0, "embeddings": 0}
            self.prompt_tokens = 0
            self.completion_tokens = 0
            self.embedding_tokens = 0
            self.requests: list[dict[str, Any]] = []
            self.log: list[tuple[str, Any]] = []
            self._faults = []

    def requests_for(self, endpoint: str) -> list[dict[str, Any]]:
        with self._lock:
            return [b for e, b in self.log if e == endpoint]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()  # wakes handlers sleeping on a delay fault
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "FakeLLMServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - safety net
        try:
            self.close()
        except Exception:
            pass

    # internals (called from handler threads) ---------------------------------------------
    def _record(self, endpoint: str, body: Any) -> Optional[FaultSpec]:
        with self._lock:
            self.calls[endpoint] = self.calls.get(endpoint, 0) + 1
            self.requests.append(body)
            self.log.append((endpoint, body))
            for i, f in enumerate(self._faults):
                if f.endpoint is None or f.endpoint == endpoint:
                    return self._faults.pop(i)
        return None

    def _chat(self, body: dict[str, Any], fault: Optional[FaultSpec]) -> dict[str, Any]:
        messages = body.get("messages") or []
        if fault is not None and fault.body is not None:
            content = fault.body
        else:
            content = self.responder(body) if self.responder is not None else None
            if content is None:
                content = default_responder(body, self.markers)
        prompt = sum(count_tokens(_content(m)) + 3 for m in messages)
        completion = max(1, count_tokens(content))
        payload: dict[str, Any] = {
            "id": f"chatcmpl-fake-{time.monotonic_ns()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": fault.finish_reason if fault is not None else "stop",
                    "logprobs": None,
                }
            ],
        }
        if fault is not None and fault.omit_usage:
            return payload  # not reported, so not counted: totals stay comparable with the client's
        payload["usage"] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        with self._lock:
            self.prompt_tokens += prompt
            self.completion_tokens += completion
        return payload

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs:
            raise ValueError("input must be a non-empty string or list")
        dims = int(body.get("dimensions") or self.dims)
        as_b64 = body.get("encoding_format") == "base64"
        data = []
        tokens = 0
        for i, text in enumerate(inputs):
            text = text if isinstance(text, str) else " ".join(map(str, text))
            vec = self.embed_fn(text, dims)
            tokens += count_tokens(text)
            emb: Any = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode() if as_b64 else vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        with self._lock:
            self.embedding_tokens += tokens
        return {
            "object": "list",
            "data": data,
            "model": body.get("model") or self.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


@pytest.fixture
def fake_llm() -> Iterator[FakeLLMServer]:
    """A fresh FakeLLMServer per test (import it into a test module or conftest)."""
    with FakeLLMServer() as server:
        yield server
