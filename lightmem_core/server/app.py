"""``lightmem serve``: one process owns a memory; every other process is a client.

One port serves the REST API of ``api.OPERATIONS`` (with ``/openapi.json``), the MCP
endpoint at ``/mcp``, ``/healthz``, ``/readyz`` and Prometheus text at ``/metrics``.
Every request passes the Host/Origin guard and the body limit first, then its key: the
key's scopes bound what it may read and write, and a memory of another scope is not
found, exactly as one that does not exist. Writes return once the turns are journaled;
extraction runs in ``ExtractionWorker``. On SIGTERM uvicorn stops accepting, lets
requests in flight finish, and the lifespan closes the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import hmac
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Optional

from ..errors import ConfigError, InvalidInputError, LightMemError
from ..types import AddResult
from . import api
from .guard import GuardSettings, RequestGuard, _TooLarge, is_loopback
from .keys import ADMIN, AuthError, Key, KeyStore
from .worker import ExtractionWorker

log = logging.getLogger(__name__)


@dataclass
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8765
    token: Optional[str] = None  # one shared admin token (the desktop case, LIGHTMEM_MCP_TOKEN)
    max_body_bytes: int = 8 * 1024 * 1024
    body_timeout: float = 30.0  # a client that stalls while sending its body gets 408
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    mcp: bool = True
    wait_timeout: float = 300.0  # add(wait=true) / flush wait at most this long for the worker
    read_workers: Optional[int] = None  # threads serving reads; None: one per CPU core (see _Server.blocking)
    extra_routes: list[Any] = field(default_factory=list)  # mounted apps (the inspector UI)
    owns_memory: bool = False  # close the memory (and keys) when the server stops


class _Metrics:
    """Prometheus metrics of one server (its own registry: no process-wide state)."""

    def __init__(self, memory: Any, worker: ExtractionWorker) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        self.registry = CollectorRegistry()
        self.requests = Counter("lightmem_requests", "HTTP requests", ["route", "status"], registry=self.registry)
        self.latency = Histogram(
            "lightmem_request_seconds",
            "Request latency",
            ["route"],
            registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )

        class _Memory:
            def collect(self) -> Any:
                stats = memory.get_token_statistics()
                calls = CounterMetricFamily("lightmem_llm_calls", "LLM calls per stage", labels=["stage"])
                tokens = CounterMetricFamily("lightmem_llm_tokens", "LLM tokens per stage", labels=["stage", "kind"])
                for stage, s in stats.items():
                    if stage == "total" or not isinstance(s, dict):
                        continue
                    calls.add_metric([stage], s.get("calls", 0))
                    for kind in ("prompt_tokens", "completion_tokens"):
                        tokens.add_metric([stage, kind.removesuffix("_tokens")], s.get(kind, 0))
                pending = GaugeMetricFamily("lightmem_pending_turns", "Turns accepted, not yet extracted")
                pending.add_metric(
                    [],
                    sum(len(memory.pending(user_id=s.user_id, agent_id=s.agent_id)) for s in memory.pending_streams()),
                )
                runs = CounterMetricFamily("lightmem_extraction_runs", "Background extraction runs", labels=["outcome"])
                runs.add_metric(["ok"], worker.runs)
                runs.add_metric(["failed"], worker.failures)
                return [calls, tokens, pending, runs]

        self.registry.register(_Memory())

    def text(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class _Server:
    """The routes' shared state: the memory, the keys, the worker."""

    def __init__(self, memory: Any, keys: Optional[KeyStore], settings: ServerSettings) -> None:
        self.memory = memory
        self.keys = keys
        self.settings = settings
        self.worker = ExtractionWorker(memory)
        self.metrics = _Metrics(memory, self.worker)
        self.ready = False
        self.reads = ThreadPoolExecutor(settings.read_workers or cores(), thread_name_prefix="lightmem-read")

    async def blocking(self, op: api.Operation, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Run a blocking memory call off the event loop. Reads are CPU-bound (the query
        embedding above all) and queue, first come first served, for a pool of one thread per
        core: more threads than cores only contend for the cores and the GIL, and under eight
        clients that costs throughput and a long tail (benchmarks/README.md, "One server, many
        clients"). Writes are short journal appends and go to asyncio's own pool, so they never
        wait behind a queue of reads."""
        if op.access != "read":
            return await asyncio.to_thread(fn, *args, **kwargs)
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.reads, call)

    # --- who is asking -----------------------------------------------------------------------
    def key_for(self, authorization: Optional[str]) -> Key:
        presented = None
        if authorization:
            scheme, _, value = authorization.partition(" ")
            presented = value.strip() if scheme.lower() == "bearer" else None
            if presented is None:
                raise AuthError(401, "use Authorization: Bearer <key>")
        token = self.settings.token
        if token and presented and hmac.compare_digest(presented.encode(), token.encode()):
            return ADMIN
        if self.keys is not None and self.keys.any_active():
            return self.keys.verify(presented)
        if token:
            raise AuthError(401, "an API key is required (Authorization: Bearer <key>)")
        return ADMIN  # no keys and no token: the loopback-only open mode (serve refuses other addresses)

    # --- one operation --------------------------------------------------------------------------
    async def arguments(self, request: Any, op: api.Operation) -> dict[str, Any]:
        args: dict[str, Any] = {}
        if op.in_body:
            try:
                raw = await asyncio.wait_for(request.body(), timeout=self.settings.body_timeout)
            except asyncio.TimeoutError:
                raise _Timeout() from None
            try:
                body = json.loads(raw or b"{}")
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InvalidInputError("body", f"not valid JSON: {exc}") from None
            if not isinstance(body, dict):
                raise InvalidInputError("body", "expected a JSON object")
            args.update(body)
        for name, raw_value in request.query_params.items():
            kind: api.JsonType = next((p.type for p in op.params if p.name == name), "string")
            value = api.query_value(raw_value, kind)
            if value is None:
                raise InvalidInputError(name, f"expected {kind}, got {raw_value!r}")
            args[name] = value
        if "memory_id" in request.path_params:
            args["memory_id"] = request.path_params["memory_id"]
        allowed = op.names()
        for name, value in args.items():
            if name not in allowed:
                raise InvalidInputError(name or "body", f"unknown field {name!r}")
            kind = next((p.type for p in op.params if p.name == name), "string")
            if not api.check_type(value, kind):
                raise InvalidInputError(name, f"expected {kind}, got {type(value).__name__}")
        for p in op.params:
            if p.required and args.get(p.name) is None:
                raise InvalidInputError(p.name, "is required")
        return args

    def scoped(self, key: Key, args: dict[str, Any], write: bool) -> dict[str, Any]:
        """The scope of the call, checked against the key (and defaulted from it)."""
        user = args.pop("user_id", None)
        agent = key.default_agent(args.pop("agent_id", None))
        session = args.pop("session_id", None)
        if user is None and not key.admin:
            mine = key.users if write else (key.readable() or ())
            if len(mine) != 1:
                raise InvalidInputError("user_id", "is required: this key reaches several users")
            user = mine[0]
        if user is None:
            user = self.memory.config.default_user_id
        if not isinstance(user, str):
            raise InvalidInputError("user_id", "expected a string")
        key.check(user, agent, write=write)
        return {"user_id": user, "agent_id": agent, "session_id": session}

    async def call(self, op: api.Operation, key: Key, args: dict[str, Any]) -> Any:
        m = self.memory
        if op.access == "admin" and not key.admin:
            raise AuthError(403, f"{op.name} needs an admin key")
        if op.name == "users":
            readable = key.readable()
            return [u for u in await self.blocking(op, m.users) if readable is None or u in readable]
        if op.name == "import_records":
            records = args["records"]
            for r in records:
                if isinstance(r, dict) and r.get("kind") != "header":
                    key.check(str(r.get("user_id")), r.get("agent_id"), write=True)
            return await self.blocking(op, m.import_records, records)
        write = op.access == "write"
        if op.name == "retrieve" and args.get("scopes") is not None:
            scopes = args["scopes"]
            for i, s in enumerate(scopes):
                user = s if isinstance(s, str) else s.get("user_id") if isinstance(s, dict) else None
                if not isinstance(user, str):
                    raise InvalidInputError(f"scopes[{i}]", "expected a user id or {user_id, agent_id?}")
                key.check(user, s.get("agent_id") if isinstance(s, dict) else None, write=False)
            for name in api.SCOPE:
                args.pop(name, None)
            return await self.blocking(op, m.retrieve, **args)
        if op.name in ("flush",) and not any(args.get(s) for s in api.SCOPE) and key.admin:
            await self.worker.idle(self.settings.wait_timeout)
            return await m.aflush()
        where = self.scoped(key, args, write) if op.scoped else {}
        if op.name in ("add_memory", "update", "delete", "delete_all"):
            args["actor"] = key.actor(where.get("agent_id"))
        if op.name == "add_memory":
            return await self.add(args, where)
        if op.name == "flush":
            await self.worker.idle(self.settings.wait_timeout)
            return await m.aflush(**where)
        if op.name in ("construct_update_queue_all_entries", "offline_update_all_entries"):
            fn = getattr(m, op.name)
            return await self.blocking(op, fn, **args, user_id=where["user_id"])
        if op.name == "pending":
            return await self.blocking(op, m.pending, **where)
        # the blocking method in one worker thread: one hop, where the async twin would make
        # one per store or model call
        return await self.blocking(op, getattr(m, op.name), **args, **where)

    async def add(self, args: dict[str, Any], where: dict[str, Any]) -> AddResult:
        wait = args.pop("wait", False)
        journaled = await self.memory.aadd_memory(**args, **where, defer=True)
        if not journaled.turn_ids:
            return journaled
        run = self.worker.submit(where["user_id"], where["agent_id"])
        if not wait:
            return journaled
        try:
            done = await asyncio.wait_for(asyncio.shield(run), timeout=self.settings.wait_timeout)
        except asyncio.TimeoutError:
            journaled.error = f"extraction still running after {self.settings.wait_timeout}s; the turns are safe"
            return journaled
        mine = set(journaled.turn_ids)
        added = [e for e in done.added if mine & set(e.source_ids)]
        pending = len(
            await asyncio.to_thread(self.memory.pending, user_id=where["user_id"], agent_id=where["agent_id"])
        )
        return journaled.model_copy(
            update={"added": added, "merged": done.merged, "error": done.error, "pending_turns": pending}
        )


class _Timeout(Exception):
    pass


def cores() -> int:
    """The cores this process may run on (its affinity mask, where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def create_app(memory: Any, *, keys: Optional[KeyStore] = None, settings: Optional[ServerSettings] = None) -> Any:
    """The ASGI app serving ``memory`` (the caller keeps and closes it; ``serve`` does both)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Mount, Route

    settings = settings or ServerSettings()
    server = _Server(memory, keys, settings)

    def endpoint(op: api.Operation) -> Any:
        async def handle(request: Request) -> Response:
            started = time.perf_counter()
            status = 500
            try:
                key = server.key_for(request.headers.get("authorization"))
                args = await server.arguments(request, op)
                if op.name == "export_records":
                    response: Response = await _export(server, key, args)
                else:
                    result = await server.call(op, key, args)
                    response = JSONResponse({"result": api.encode(op.result, result)})
                status = response.status_code
                return response
            except AuthError as exc:
                status = exc.status
                return JSONResponse(
                    api.error_body(exc),
                    status_code=status,
                    headers={"WWW-Authenticate": "Bearer"} if status == 401 else None,
                )
            except LightMemError as exc:
                status = api.status_of(exc)
                if status >= 500:
                    log.exception("%s failed", op.name)
                return JSONResponse(api.error_body(exc), status_code=status)
            except _TooLarge:
                status = 413
                return JSONResponse(
                    {
                        "error": {
                            "type": "PayloadTooLarge",
                            "field": "body",
                            "message": f"body over {settings.max_body_bytes} bytes",
                        }
                    },
                    status_code=413,
                )
            except _Timeout:
                status = 408
                return JSONResponse(
                    {
                        "error": {
                            "type": "RequestTimeout",
                            "field": "body",
                            "message": "the request body did not arrive in time",
                        }
                    },
                    status_code=408,
                )
            finally:
                server.metrics.requests.labels(op.name, str(status)).inc()
                server.metrics.latency.labels(op.name).observe(time.perf_counter() - started)

        return handle

    async def _export(srv: _Server, key: Key, args: dict[str, Any]) -> Response:
        user = args.get("user_id")
        if user is None and not key.admin:
            user = srv.scoped(key, args, False)["user_id"]
        elif user is not None:
            key.check(user, None, write=False)
        records = await asyncio.to_thread(lambda: list(srv.memory.export_records(user_id=user)))
        body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        return StreamingResponse(iter([body]), media_type="application/x-ndjson")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if not server.ready:
            return JSONResponse({"status": "starting"}, status_code=503)
        try:
            await asyncio.to_thread(memory.users)
        except LightMemError as exc:
            return JSONResponse({"status": "unavailable", "error": str(exc)}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def metrics(request: Request) -> Response:
        return Response(await asyncio.to_thread(server.metrics.text), media_type="text/plain; version=0.0.4")

    async def openapi(request: Request) -> Response:
        return JSONResponse(api.openapi())

    routes: list[Any] = [Route(op.path, endpoint(op), methods=[op.verb]) for op in api.OPERATIONS]
    routes += [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/openapi.json", openapi),
        *settings.extra_routes,
    ]
    mcp_app = None
    if settings.mcp:
        from ..mcp import create_server

        # stateless: each MCP request is handled in its own context, under its own key
        mcp_app = create_server(memory).http_app(path="/mcp", stateless_http=True)
        routes.append(Mount("/", app=_keyed(server, mcp_app)))

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if mcp_app is not None:
                await stack.enter_async_context(mcp_app.lifespan(app))
            server.worker.schedule_pending()
            server.ready = True
            try:
                yield
            finally:
                server.ready = False
                await server.worker.close()
                server.reads.shutdown(wait=True)
                if settings.owns_memory:
                    await asyncio.to_thread(memory.close)
                    if keys is not None:
                        keys.close()
                    log.warning("stopped: requests finished, store closed")

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.server = server
    guard = GuardSettings.for_bind(
        settings.host, settings.allowed_hosts, settings.allowed_origins, settings.max_body_bytes
    )
    return RequestGuard(app, guard)


def _keyed(server: _Server, inner: Any) -> Any:
    """The MCP endpoint behind the server's key check: the same keys and 401s as REST, and
    the key in ``mcp.CURRENT_KEY`` for the tools to check every scope against."""
    from ..mcp import CURRENT_KEY

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await inner(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            key = server.key_for(headers.get("authorization"))
        except AuthError as exc:
            body = json.dumps(api.error_body(exc)).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": exc.status,
                    "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        token = CURRENT_KEY.set(key)
        try:
            await inner(scope, receive, send)
        finally:
            CURRENT_KEY.reset(token)

    return app


def serve(memory: Any, *, keys: Optional[KeyStore] = None, settings: Optional[ServerSettings] = None) -> None:
    """Run until SIGTERM/SIGINT: in-flight requests finish, then the store is closed."""
    import uvicorn

    settings = settings or ServerSettings()
    settings.owns_memory = True
    if not is_loopback(settings.host) and not settings.token and not (keys is not None and keys.any_active()):
        raise ConfigError(
            "host",
            f"binding {settings.host!r} exposes the memory to the network; create a key first "
            "(lightmem keys create ...)",
        )
    app = create_app(memory, keys=keys, settings=settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        timeout_keep_alive=5,
        timeout_graceful_shutdown=30,
        lifespan="on",
    )
    logging.getLogger(__name__).setLevel(logging.WARNING)
    # uvicorn finishes the requests in flight on SIGTERM, runs the lifespan's shutdown (which
    # closes the store), then re-raises the signal: the exit status says SIGTERM, as it should
    uvicorn.Server(config).run()
    memory.close()
