"""``RemoteMemory``: the ``LightMemory`` API over HTTP, against ``lightmem serve``.

The same methods, arguments, return types and exceptions as ``LightMemory`` (sync and
async), so every adapter takes either. Each method is one entry of the server's
operation table (``server/api.py``), written once as an operation the core's driver
runs blocking (httpx) or on the event loop (httpx's async client).

Connection errors and 503 answers are retried with backoff. A retried ``add_memory``
never duplicates: every message gets its id here, before the first attempt, and the
journal skips an id it already holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

from pydantic import BaseModel, ConfigDict, Field

from .drive import Op, call, run_async, run_sync
from .errors import InvalidInputError, StoreError
from .server import api
from .types import AddResult, EntryPage, HistoryRecord, Hit, MemoryEntry, Message

log = logging.getLogger(__name__)

_RETRY_STATUS = {503}


class _Transport:
    """httpx with the key, a timeout, and retries with exponential backoff."""

    def __init__(self, url: str, api_key: Optional[str], timeout: float, retries: int, backoff: float) -> None:
        import httpx

        self._httpx = httpx
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._client: Any = None
        self._aclients: dict[int, Any] = {}  # one async client per event loop

    def _args(
        self, verb: str, path: str, params: Optional[dict[str, Any]], body: Optional[dict[str, Any]]
    ) -> dict[str, Any]:
        query = {
            k: ("true" if v is True else "false" if v is False else str(v))
            for k, v in (params or {}).items()
            if v is not None
        }
        return {
            "method": verb,
            "url": self.url + path,
            "params": query or None,
            "content": None if body is None else json.dumps(body, default=str).encode(),
            "headers": {**self.headers, **({"Content-Type": "application/json"} if body is not None else {})},
        }

    def _retry(self, attempt: int, safe: bool, exc: Optional[Exception], status: Optional[int]) -> bool:
        """Whether to try again: never past the budget; always when the request could not
        be sent or the server said 503 (nothing was done); after a failure mid-request,
        only for operations that are safe to repeat."""
        if attempt >= self.retries:
            return False
        if status is not None:
            return status in _RETRY_STATUS
        return isinstance(exc, (self._httpx.ConnectError, self._httpx.ConnectTimeout)) or safe

    def _decode(self, response: Any) -> Any:
        try:
            body = response.json()
        except ValueError:
            raise StoreError(f"server answered {response.status_code} with no JSON") from None
        if response.status_code >= 400:
            api.raise_error(response.status_code, body)
        return body.get("result") if isinstance(body, dict) else body

    def _exchange(
        self,
        verb: str,
        path: str,
        params: Optional[dict[str, Any]],
        body: Optional[dict[str, Any]],
        safe: bool,
        raw: bool,
    ) -> Op[tuple[Any, int]]:
        """One request with its retries, written once: ``request`` runs it blocking,
        ``arequest`` on the event loop (the driver picks ``send``/``asend``, ``pause``/``apause``)."""
        attempt = 0
        while True:
            try:
                response = yield call(self.send, self._args(verb, path, params, body))
            except self._httpx.TransportError as exc:
                if not self._retry(attempt, safe, exc, None):
                    raise StoreError(f"cannot reach the LightMem server at {self.url}: {exc}") from exc
            else:
                if not self._retry(attempt, safe, None, response.status_code):
                    return (response.text if raw and response.status_code < 400 else self._decode(response)), attempt
            yield call(self.pause, self.backoff * 2**attempt)
            attempt += 1

    def request(
        self,
        verb: str,
        path: str,
        params: Optional[dict[str, Any]] = None,
        body: Optional[dict[str, Any]] = None,
        safe: bool = True,
        raw: bool = False,
    ) -> tuple[Any, int]:
        return run_sync(self._exchange(verb, path, params, body, safe, raw))

    async def arequest(
        self,
        verb: str,
        path: str,
        params: Optional[dict[str, Any]] = None,
        body: Optional[dict[str, Any]] = None,
        safe: bool = True,
        raw: bool = False,
    ) -> tuple[Any, int]:
        return await run_async(self._exchange(verb, path, params, body, safe, raw))

    def send(self, args: dict[str, Any]) -> Any:
        if self._client is None:
            self._client = self._httpx.Client(timeout=self.timeout)
        return self._client.request(**args)

    async def asend(self, args: dict[str, Any]) -> Any:
        loop = id(asyncio.get_running_loop())
        client = self._aclients.get(loop)
        if client is None:
            client = self._aclients[loop] = self._httpx.AsyncClient(timeout=self.timeout)
        return await client.request(**args)

    # methods, not staticmethods: the driver finds ``apause`` through the bound ``pause``'s owner
    def pause(self, seconds: float) -> None:
        time.sleep(seconds)

    async def apause(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._aclients.clear()  # their loops are gone or will close them


def _messages(messages: Any) -> tuple[list[dict[str, Any]], set[str]]:
    """The messages as JSON, each with an id (the ones given here are returned): a retry
    re-sends the same ids, which the journal recognises."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    elif isinstance(messages, (Mapping, Message)):
        messages = [messages]
    if not isinstance(messages, Sequence):
        raise InvalidInputError("messages", "expected a non-empty list of messages")
    out, given = [], set()
    for m in messages:
        if isinstance(m, Message):
            m = m.model_dump(mode="json", by_alias=False)
        if isinstance(m, Mapping):
            m = dict(m)
            if m.get("id") is None:
                m["id"] = uuid.uuid4().hex
                given.add(m["id"])
        out.append(m)
    return out, given


class RemoteConfig(BaseModel):
    """The part of a served memory's config a client sees."""

    model_config = ConfigDict(extra="allow")

    default_user_id: str = "default"
    max_message_chars: int = 100_000
    dims: Optional[int] = None
    update: str = "offline"
    extraction_mode: str = "flat"
    retrieval: dict[str, Any] = Field(default_factory=dict)


class RemoteMemory:
    """The memory of a ``lightmem serve`` process, with ``LightMemory``'s API.

    Args:
        url: the server, e.g. ``http://127.0.0.1:8765``.
        api_key: a key from ``lightmem keys create`` (omit on a loopback server without keys).
        timeout: seconds per request.
        retries / backoff: attempts after the first, and the first wait (doubling).
        wait: whether ``add_memory`` waits for the server's extraction (True, as an embedded
            memory returns its new entries) or returns once the turns are journaled.
    """

    llm = None  # extraction happens on the server

    def __init__(
        self,
        url: str,
        api_key: Optional[str] = None,
        *,
        timeout: float = 60.0,
        retries: int = 4,
        backoff: float = 0.2,
        wait: bool = True,
    ) -> None:
        self.url = url
        self.wait = wait
        self._http = _Transport(url, api_key, timeout, retries, backoff)
        self._config: Optional[RemoteConfig] = None

    # --- one operation, written once ------------------------------------------------------------
    def _op(self, name: str, args: dict[str, Any], *, safe: Optional[bool] = None) -> Op[Any]:
        op = api.BY_NAME[name]
        path = op.path
        if "{memory_id}" in path:
            memory_id = args.pop("memory_id")
            if not isinstance(memory_id, str) or not memory_id.strip():
                raise InvalidInputError("memory_id", "expected a non-empty string")
            path = path.replace("{memory_id}", memory_id)
        args = {k: v for k, v in args.items() if v is not None}
        body = args if op.in_body else None
        params = None if op.in_body else args
        result, _ = yield call(
            self._http.request, op.verb, path, params, body, op.access == "read" if safe is None else safe
        )
        return api.decode(op.result, result)

    def _add_op(self, messages: Any, kwargs: dict[str, Any]) -> Op[AddResult]:
        msgs, given = _messages(messages)
        body = {k: v for k, v in kwargs.items() if v is not None}
        body["messages"] = msgs
        result, attempts = yield call(self._http.request, "POST", api.BY_NAME["add_memory"].path, None, body, True)
        out: AddResult = api.decode("add", result)
        if attempts:  # an earlier attempt may have been journaled: ids made here are ours, not duplicates
            mine = [t for t in out.duplicate_turn_ids if t in given]
            out.turn_ids += mine
            out.duplicate_turn_ids = [t for t in out.duplicate_turn_ids if t not in given]
        return out

    @staticmethod
    def _scope(user_id: Optional[str], agent_id: Optional[str], session_id: Optional[str]) -> dict[str, Any]:
        return {"user_id": user_id, "agent_id": agent_id, "session_id": session_id}

    # --- writes -----------------------------------------------------------------------------------
    def add_memory(
        self,
        messages: Any,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        force_segment: bool = False,
        force_extract: bool = False,
        infer: bool = True,
        wait: Optional[bool] = None,
    ) -> AddResult:
        return run_sync(
            self._add_op(
                messages,
                {
                    **self._scope(user_id, agent_id, session_id),
                    "force_segment": force_segment,
                    "force_extract": force_extract,
                    "infer": infer,
                    "wait": self.wait if wait is None else wait,
                },
            )
        )

    async def aadd_memory(
        self,
        messages: Any,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        force_segment: bool = False,
        force_extract: bool = False,
        infer: bool = True,
        wait: Optional[bool] = None,
    ) -> AddResult:
        return await run_async(
            self._add_op(
                messages,
                {
                    **self._scope(user_id, agent_id, session_id),
                    "force_segment": force_segment,
                    "force_extract": force_extract,
                    "infer": infer,
                    "wait": self.wait if wait is None else wait,
                },
            )
        )

    def update(
        self,
        memory_id: str,
        memory: Optional[str] = None,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        reason: Optional[str] = None,
        expected_version: Optional[int] = None,
    ) -> MemoryEntry:
        return run_sync(
            self._op(
                "update",
                {
                    "memory_id": memory_id,
                    "memory": memory,
                    "metadata": metadata,
                    "reason": reason,
                    "expected_version": expected_version,
                    **self._scope(user_id, agent_id, session_id),
                },
            )
        )

    async def aupdate(
        self,
        memory_id: str,
        memory: Optional[str] = None,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        reason: Optional[str] = None,
        expected_version: Optional[int] = None,
    ) -> MemoryEntry:
        return await run_async(
            self._op(
                "update",
                {
                    "memory_id": memory_id,
                    "memory": memory,
                    "metadata": metadata,
                    "reason": reason,
                    "expected_version": expected_version,
                    **self._scope(user_id, agent_id, session_id),
                },
            )
        )

    def delete(
        self,
        memory_id: str,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        reason: Optional[str] = None,
    ) -> None:
        run_sync(
            self._op("delete", {"memory_id": memory_id, "reason": reason, **self._scope(user_id, agent_id, session_id)})
        )

    async def adelete(
        self,
        memory_id: str,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        reason: Optional[str] = None,
    ) -> None:
        await run_async(
            self._op("delete", {"memory_id": memory_id, "reason": reason, **self._scope(user_id, agent_id, session_id)})
        )

    def delete_all(
        self,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        filters: Optional[Mapping[str, Any]] = None,
    ) -> int:
        return run_sync(self._op("delete_all", {"filters": filters, **self._scope(user_id, agent_id, session_id)}))

    async def adelete_all(
        self,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        filters: Optional[Mapping[str, Any]] = None,
    ) -> int:
        return await run_async(
            self._op("delete_all", {"filters": filters, **self._scope(user_id, agent_id, session_id)})
        )

    def flush(
        self, *, user_id: Optional[str] = None, agent_id: Optional[str] = None, session_id: Optional[str] = None
    ) -> AddResult:
        return run_sync(self._op("flush", self._scope(user_id, agent_id, session_id), safe=True))

    async def aflush(
        self, *, user_id: Optional[str] = None, agent_id: Optional[str] = None, session_id: Optional[str] = None
    ) -> AddResult:
        return await run_async(self._op("flush", self._scope(user_id, agent_id, session_id), safe=True))

    def summarize(
        self,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        window: str = "session",
        since: Any = None,
        until: Any = None,
    ) -> list[MemoryEntry]:
        return run_sync(
            self._op(
                "summarize",
                {"window": window, "since": since, "until": until, **self._scope(user_id, agent_id, session_id)},
                safe=True,
            )
        )

    async def asummarize(
        self,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        window: str = "session",
        since: Any = None,
        until: Any = None,
    ) -> list[MemoryEntry]:
        return await run_async(
            self._op(
                "summarize",
                {"window": window, "since": since, "until": until, **self._scope(user_id, agent_id, session_id)},
                safe=True,
            )
        )

    def construct_update_queue_all_entries(
        self, top_k: int = 20, keep_top_n: int = 10, *, user_id: Optional[str] = None
    ) -> int:
        return run_sync(
            self._op(
                "construct_update_queue_all_entries",
                {"top_k": top_k, "keep_top_n": keep_top_n, "user_id": user_id},
                safe=True,
            )
        )

    def offline_update_all_entries(
        self, score_threshold: float = 0.8, *, user_id: Optional[str] = None, max_workers: int = 4
    ) -> dict[str, int]:
        return run_sync(
            self._op("offline_update_all_entries", {"score_threshold": score_threshold, "user_id": user_id}, safe=True)
        )

    async def aoffline_update_all_entries(
        self, score_threshold: float = 0.8, *, user_id: Optional[str] = None, max_workers: int = 4
    ) -> dict[str, int]:
        return await run_async(
            self._op("offline_update_all_entries", {"score_threshold": score_threshold, "user_id": user_id}, safe=True)
        )

    def import_records(self, records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
        return run_sync(self._op("import_records", {"records": [dict(r) for r in records]}, safe=True))

    # --- reads ------------------------------------------------------------------------------------
    def retrieve(
        self,
        query: str,
        limit: int = 10,
        filters: Optional[Mapping[str, Any]] = None,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        strategy: Optional[str] = None,
        include_superseded: bool = False,
        hierarchical: Optional[bool] = None,
        now: Any = None,
        scopes: Optional[Sequence[Any]] = None,
    ) -> list[Hit]:
        return run_sync(
            self._op(
                "retrieve",
                {
                    "query": query,
                    "limit": limit,
                    "filters": filters,
                    "strategy": strategy,
                    "include_superseded": include_superseded,
                    "hierarchical": hierarchical,
                    "now": now,
                    "scopes": None if scopes is None else list(scopes),
                    **self._scope(user_id, agent_id, session_id),
                },
            )
        )

    async def aretrieve(
        self,
        query: str,
        limit: int = 10,
        filters: Optional[Mapping[str, Any]] = None,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        strategy: Optional[str] = None,
        include_superseded: bool = False,
        hierarchical: Optional[bool] = None,
        now: Any = None,
        scopes: Optional[Sequence[Any]] = None,
    ) -> list[Hit]:
        return await run_async(
            self._op(
                "retrieve",
                {
                    "query": query,
                    "limit": limit,
                    "filters": filters,
                    "strategy": strategy,
                    "include_superseded": include_superseded,
                    "hierarchical": hierarchical,
                    "now": now,
                    "scopes": None if scopes is None else list(scopes),
                    **self._scope(user_id, agent_id, session_id),
                },
            )
        )

    def get(
        self,
        memory_id: str,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
    ) -> MemoryEntry:
        return run_sync(self._op("get", {"memory_id": memory_id, **self._scope(user_id, agent_id, session_id)}))

    async def aget(
        self,
        memory_id: str,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
    ) -> MemoryEntry:
        return await run_async(self._op("get", {"memory_id": memory_id, **self._scope(user_id, agent_id, session_id)}))

    def get_all(
        self,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        filters: Optional[Mapping[str, Any]] = None,
        limit: int = 100,
        offset: int = 0,
        include_superseded: bool = False,
        after: Optional[str] = None,
    ) -> list[MemoryEntry]:
        return run_sync(
            self._op(
                "get_all",
                {
                    "filters": filters,
                    "limit": limit,
                    "offset": offset,
                    "include_superseded": include_superseded,
                    "after": after,
                    **self._scope(user_id, agent_id, session_id),
                },
            )
        )

    async def aget_all(
        self,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        filters: Optional[Mapping[str, Any]] = None,
        limit: int = 100,
        offset: int = 0,
        include_superseded: bool = False,
        after: Optional[str] = None,
    ) -> list[MemoryEntry]:
        return await run_async(
            self._op(
                "get_all",
                {
                    "filters": filters,
                    "limit": limit,
                    "offset": offset,
                    "include_superseded": include_superseded,
                    "after": after,
                    **self._scope(user_id, agent_id, session_id),
                },
            )
        )

    def get_page(
        self,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        filters: Optional[Mapping[str, Any]] = None,
        limit: int = 100,
        after: Optional[str] = None,
        include_superseded: bool = False,
    ) -> EntryPage:
        return run_sync(
            self._op(
                "get_page",
                {
                    "filters": filters,
                    "limit": limit,
                    "after": after,
                    "include_superseded": include_superseded,
                    **self._scope(user_id, agent_id, session_id),
                },
            )
        )

    async def aget_page(
        self,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        filters: Optional[Mapping[str, Any]] = None,
        limit: int = 100,
        after: Optional[str] = None,
        include_superseded: bool = False,
    ) -> EntryPage:
        return await run_async(
            self._op(
                "get_page",
                {
                    "filters": filters,
                    "limit": limit,
                    "after": after,
                    "include_superseded": include_superseded,
                    **self._scope(user_id, agent_id, session_id),
                },
            )
        )

    def history(
        self,
        memory_id: str,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
    ) -> list[HistoryRecord]:
        return run_sync(self._op("history", {"memory_id": memory_id, **self._scope(user_id, agent_id, session_id)}))

    async def ahistory(
        self,
        memory_id: str,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
    ) -> list[HistoryRecord]:
        return await run_async(
            self._op("history", {"memory_id": memory_id, **self._scope(user_id, agent_id, session_id)})
        )

    def source_turns(
        self,
        memory_id: str,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
    ) -> list[Any]:
        return run_sync(
            self._op("source_turns", {"memory_id": memory_id, **self._scope(user_id, agent_id, session_id)})
        )

    def pending(
        self, *, user_id: Optional[str] = None, agent_id: Optional[str] = None, session_id: Optional[str] = None
    ) -> list[Any]:
        return run_sync(self._op("pending", self._scope(user_id, agent_id, session_id)))

    def users(self) -> list[str]:
        return run_sync(self._op("users", {}))

    def get_token_statistics(self) -> dict[str, Any]:
        return run_sync(self._op("get_token_statistics", {}))

    def export_records(self, *, user_id: Optional[str] = None) -> Iterator[dict[str, Any]]:
        text, _ = self._http.request(
            "GET", api.BY_NAME["export_records"].path, {"user_id": user_id} if user_id else None, None, True, raw=True
        )
        for line in str(text).splitlines():
            if line.strip():
                yield json.loads(line)

    @property
    def config(self) -> "RemoteConfig":
        """The served memory's public config (``default_user_id``, ``max_message_chars``, ...),
        read once."""
        if self._config is None:
            self._config = RemoteConfig.model_validate(run_sync(self._op("public_config", {})))
        return self._config

    @property
    def dims(self) -> Optional[int]:
        """The size of the served store's vectors."""
        return self.config.dims

    # --- lifecycle --------------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    async def aclose(self) -> None:
        self.close()

    def __enter__(self) -> "RemoteMemory":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> "RemoteMemory":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()
