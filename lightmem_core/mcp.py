"""LightMem as an MCP server, for Claude Desktop, Cursor and any other MCP client.

    lightmem-mcp                                   # stdio (what desktop clients spawn)
    lightmem-mcp --transport http --token SECRET   # streamable HTTP on 127.0.0.1:8765/mcp
    python -m lightmem_core.mcp ...                # the same

The memory is configured like ``LightMemory.from_config`` (see ``configfile``):
``--config FILE`` / ``LIGHTMEM_CONFIG``, ``LIGHTMEM_CONFIG_JSON``, ``--path`` /
``LIGHTMEM_PATH``. Every tool takes the scope (``user_id``, optional ``agent_id`` and
``session_id``); the store enforces it, so one user's memories never answer another's.

``fastmcp`` (extra ``mcp``) is imported only when a server is built, so the core
imports without it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import functools
import hmac
import logging
import os
import sys
from typing import TYPE_CHECKING, Annotated, Any, Awaitable, Callable, Optional, Sequence, TypeVar

from pydantic import Field, ValidationError

from .errors import (
    ConfigError,
    ConflictError,
    InvalidInputError,
    LightMemError,
    LLMError,
    NotFoundError,
    StageNotAvailableError,
    StoreError,
)
from .types import Hit, MemoryEntry, format_hits

if TYPE_CHECKING:
    from fastmcp import FastMCP

    from .memory import LightMemory

log = logging.getLogger(__name__)

ENV_TOKEN = "LIGHTMEM_MCP_TOKEN"
ENV_TRANSPORT = "LIGHTMEM_MCP_TRANSPORT"
ENV_HOST = "LIGHTMEM_MCP_HOST"
ENV_PORT = "LIGHTMEM_MCP_PORT"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_HTTP_PATH = "/mcp"

INSTRUCTIONS = """\
Long-term memory (LightMem). Store what the user tells you with add_memory and look it up
with retrieve_memory before answering questions that depend on the past. Always pass the
same user_id for the same person; agent_id and session_id narrow reads and are stamped on
writes. Each memory cites the turns it came from and keeps its history of changes.
"""

T = TypeVar("T")

# Tool argument types; module level because FastMCP resolves the (postponed) annotations here.
UserId = Annotated[str, Field(description="Whose memory: always the same id for the same person.")]
AgentId = Annotated[Optional[str], Field(description="Optional agent id: narrows reads, stamped on writes.")]
SessionId = Annotated[Optional[str], Field(description="Optional session id: narrows reads, stamped on writes.")]
MemoryId = Annotated[str, Field(description="The memory's id (from retrieve_memory or list_memories).")]
Filters = Annotated[
    Optional[dict[str, Any]],
    Field(
        description='Optional filters, e.g. {"time_stamp": {"gte": "2025-01-01"}}, {"speaker_name": "Maya"}, '
        '{"session_id": "s1"}, {"entry_type": "summary"}.'
    ),
]


def _fastmcp() -> Any:
    try:
        import fastmcp
    except ImportError:
        raise StageNotAvailableError("the MCP server needs fastmcp: pip install 'lightmem-agents[mcp]'") from None
    return fastmcp


def _argument(field: str) -> str:
    """The core's field path in terms of the tool's arguments (``scope.user_id`` -> ``user_id``)."""
    field = field.removeprefix("scope.")
    return "memory_text" if field == "update.memory" else field


def _tool_error(exc: BaseException) -> Exception:
    """A message an agent can act on: which argument was wrong and why, nothing internal.
    The caller's mistakes are logged at INFO; failures of the store or the LLM at ERROR."""
    from fastmcp.exceptions import ToolError

    def tool_error(message: str, level: int = logging.ERROR) -> Exception:
        try:
            return ToolError(message, log_level=level)
        except TypeError:  # fastmcp before 3 has no per-error log level
            return ToolError(message)

    if isinstance(exc, ConfigError):
        return tool_error(f"configuration error in {exc.field!r}: {exc.reason}")
    if isinstance(exc, InvalidInputError):
        return tool_error(f"invalid argument {_argument(exc.field)!r}: {exc.reason}", logging.INFO)
    if isinstance(exc, NotFoundError):
        return tool_error(str(exc), logging.INFO)
    if isinstance(exc, ConflictError):
        return tool_error(f"conflict: {exc}; read the memory again and retry", logging.INFO)
    if isinstance(exc, LLMError):
        return tool_error(f"the memory LLM failed: {exc}; the turns are kept and will be retried")
    if isinstance(exc, StoreError):
        return tool_error(f"memory store error: {exc}")
    return tool_error(f"{type(exc).__name__}: {exc}")


def _mapped(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Turn the core's errors into tool errors (the client sees them as ``isError``)."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return await fn(*args, **kwargs)
        except LightMemError as exc:
            raise _tool_error(exc) from exc

    return wrapper


def entry_dict(entry: MemoryEntry) -> dict[str, Any]:
    """An entry as JSON, without the indexed context (search text, not memory)."""
    return entry.model_dump(mode="json", exclude={"context"})


def hit_dict(hit: Hit) -> dict[str, Any]:
    return {
        **entry_dict(hit.entry),
        "window": hit.window,
        "score": hit.score,
        "retrievers": hit.retrievers,
        "rank": hit.rank,
    }


def _turn_dict(turn: Any) -> dict[str, Any]:
    return turn.model_dump(
        mode="json",
        include={"id", "role", "speaker_id", "speaker_name", "content", "time_stamp", "session_id", "status"},
    )


def create_server(memory: "LightMemory", *, token: Optional[str] = None, name: str = "lightmem") -> "FastMCP":
    """An MCP server over ``memory`` (which the caller keeps and closes).

    With ``token``, the HTTP transport refuses every request that does not carry
    ``Authorization: Bearer <token>`` (401); stdio needs none (the client spawned us).
    Under ``lightmem serve`` the server's own key check runs in front of the endpoint
    (``CURRENT_KEY``), and every tool call stays inside the key's scopes.
    """
    fm = _fastmcp()
    auth = _bearer_auth(token) if token else None
    server = fm.FastMCP(name, instructions=INSTRUCTIONS, auth=auth, mask_error_details=True)

    def scope(
        user_id: str, agent_id: Optional[str], session_id: Optional[str], *, write: bool = False
    ) -> dict[str, Any]:
        """The call's scope, checked against the caller's key (none: stdio or the shared token)."""
        key = _current_key()
        if key is not None:
            agent_id = key.default_agent(agent_id)
            key.check(user_id, agent_id, write=write)
        return {"user_id": user_id, "agent_id": agent_id, "session_id": session_id}

    def actor(agent_id: Optional[str]) -> Optional[str]:
        key = _current_key()
        return key.actor(key.default_agent(agent_id)) if key is not None else None

    @server.tool
    @_mapped
    async def add_memory(
        user_input: Annotated[str, Field(description="What the user said.")],
        user_id: UserId,
        assistant_reply: Annotated[Optional[str], Field(description="The assistant's reply, if any.")] = None,
        time_stamp: Annotated[
            Optional[str],
            Field(description="When it was said: ISO 8601, '2025/01/12 (Sun) 09:14', epoch seconds. Default: now."),
        ] = None,
        force_segment: Annotated[bool, Field(description="Close the open topic now.")] = False,
        force_extract: Annotated[bool, Field(description="Extract everything buffered now.")] = False,
        agent_id: AgentId = None,
        session_id: SessionId = None,
    ) -> dict[str, Any]:
        """Remember a conversation turn (the user's message and optionally the reply).

        The turns are stored durably before this returns; memories are extracted from them
        (at once offline, or when enough turns collect when an LLM does the extraction)."""
        from .timeparse import utcnow

        when = time_stamp or utcnow().isoformat(timespec="seconds")
        messages = [{"role": "user", "content": user_input, "time_stamp": when}]
        if assistant_reply:
            messages.append({"role": "assistant", "content": assistant_reply, "time_stamp": when})
        result = await memory.aadd_memory(
            messages,
            force_segment=force_segment,
            force_extract=force_extract,
            actor=actor(agent_id),
            **scope(user_id, agent_id, session_id, write=True),
        )
        return {
            "turn_ids": result.turn_ids,
            "duplicate_turn_ids": result.duplicate_turn_ids,
            "added": [entry_dict(e) for e in result.added],
            "pending_turns": result.pending_turns,
            "error": result.error,
        }

    @server.tool
    @_mapped
    async def retrieve_memory(
        query: Annotated[str, Field(description="What to look for, in plain words.")],
        user_id: UserId,
        limit: Annotated[int, Field(description="How many memories at most.", ge=1, le=100)] = 10,
        filters: Filters = None,
        strategy: Annotated[
            Optional[str],
            Field(description="'embedding', 'context' (BM25 keywords) or 'hybrid'; default from the config."),
        ] = None,
        hierarchical: Annotated[
            Optional[bool],
            Field(description="Session summaries first, then memories of the best sessions; default from the config."),
        ] = None,
        agent_id: AgentId = None,
        session_id: SessionId = None,
    ) -> dict[str, Any]:
        """The memories most relevant to a query, best first, with a prompt-ready block."""
        hits = await memory.aretrieve(
            query, limit, filters, strategy=strategy, hierarchical=hierarchical, **scope(user_id, agent_id, session_id)
        )
        return {"memories": [hit_dict(h) for h in hits], "formatted": format_hits(hits)}

    @server.tool
    @_mapped
    async def list_memories(
        user_id: UserId,
        limit: Annotated[int, Field(ge=1, le=1000)] = 50,
        offset: Annotated[
            int, Field(ge=0, description="Skip this many (shallow pages; use cursor for deep ones).")
        ] = 0,
        filters: Filters = None,
        include_superseded: Annotated[bool, Field(description="Also list memories a newer one replaced.")] = False,
        agent_id: AgentId = None,
        session_id: SessionId = None,
        cursor: Annotated[
            Optional[str],
            Field(
                description="next_cursor of the previous page: every memory is listed exactly once, even while "
                "memories are added or deleted between pages."
            ),
        ] = None,
    ) -> dict[str, Any]:
        """The scope's memories in time order (ties by id), a page at a time."""
        where = scope(user_id, agent_id, session_id)
        if offset and cursor is None:  # an offset page (kept for older clients); the cursor is the way on
            entries = await memory.aget_all(
                filters=filters, limit=limit + 1, offset=offset, include_superseded=include_superseded, **where
            )
            return {
                "memories": [entry_dict(e) for e in entries[:limit]],
                "offset": offset,
                "next_offset": offset + limit if len(entries) > limit else None,
                "next_cursor": None,
            }
        page = await memory.aget_page(
            filters=filters, limit=limit, after=cursor, include_superseded=include_superseded, **where
        )
        return {
            "memories": [entry_dict(e) for e in page.entries],
            "offset": 0 if cursor is None else None,
            "next_offset": limit if cursor is None and page.next_cursor else None,
            "next_cursor": page.next_cursor,
        }

    @server.tool
    @_mapped
    async def get_memory(
        memory_id: MemoryId,
        user_id: UserId,
        include_sources: Annotated[bool, Field(description="Also return the turns it was made from.")] = True,
        agent_id: AgentId = None,
        session_id: SessionId = None,
    ) -> dict[str, Any]:
        """One memory by id, with the conversation turns it came from."""
        s = scope(user_id, agent_id, session_id)
        entry = await memory.aget(memory_id, **s)
        out = entry_dict(entry)
        if include_sources:
            turns = await asyncio.to_thread(memory.source_turns, memory_id, **s)
            out["sources"] = [_turn_dict(t) for t in turns]
        return out

    @server.tool
    @_mapped
    async def update_memory(
        memory_id: MemoryId,
        memory_text: Annotated[str, Field(description="The corrected text of the memory.")],
        user_id: UserId,
        reason: Annotated[Optional[str], Field(description="Why it changed (kept in its history).")] = None,
        metadata: Annotated[Optional[dict[str, Any]], Field(description="Keys to add to its metadata.")] = None,
        agent_id: AgentId = None,
        session_id: SessionId = None,
    ) -> dict[str, Any]:
        """Correct a memory's text; the old text stays in its history."""
        entry = await memory.aupdate(
            memory_id,
            memory_text,
            metadata=metadata,
            reason=reason,
            actor=actor(agent_id),
            **scope(user_id, agent_id, session_id, write=True),
        )
        return entry_dict(entry)

    @server.tool
    @_mapped
    async def delete_memory(
        memory_id: MemoryId,
        user_id: UserId,
        reason: Annotated[Optional[str], Field(description="Why (kept in its history).")] = None,
        agent_id: AgentId = None,
        session_id: SessionId = None,
    ) -> dict[str, Any]:
        """Forget a memory (its history keeps a DELETE record)."""
        await memory.adelete(
            memory_id, reason=reason, actor=actor(agent_id), **scope(user_id, agent_id, session_id, write=True)
        )
        return {"deleted": memory_id}

    @server.tool
    @_mapped
    async def memory_history(
        memory_id: MemoryId,
        user_id: UserId,
        agent_id: AgentId = None,
        session_id: SessionId = None,
    ) -> dict[str, Any]:
        """Every change to a memory: ADD, UPDATE, MERGE, SUPERSEDE, DELETE, with old and new text."""
        records = await memory.ahistory(memory_id, **scope(user_id, agent_id, session_id))
        return {"memory_id": memory_id, "history": [r.model_dump(mode="json") for r in records]}

    @server.tool
    @_mapped
    async def offline_update(
        user_id: UserId,
        score_threshold: Annotated[
            float, Field(description="How similar two memories must be to be compared (0-1).", ge=0, le=1)
        ] = 0.8,
        top_k: Annotated[int, Field(description="Neighbours looked up per memory.", ge=1, le=1000)] = 20,
        keep_top_n: Annotated[int, Field(description="Neighbours kept per memory.", ge=1, le=1000)] = 10,
        agent_id: AgentId = None,
        session_id: SessionId = None,
    ) -> dict[str, Any]:
        """Consolidate the user's memories: merge duplicates, supersede outdated facts.

        Runs over all of the user's memories (a change of fact crosses sessions), so
        agent_id and session_id cannot narrow it."""
        if agent_id is not None or session_id is not None:
            raise InvalidInputError(
                "agent_id" if agent_id is not None else "session_id",
                "offline_update works on all of a user's memories; leave it out",
            )
        scope(user_id, None, None, write=True)
        queued = await asyncio.to_thread(memory.construct_update_queue_all_entries, top_k, keep_top_n, user_id=user_id)
        result = await memory.aoffline_update_all_entries(score_threshold, user_id=user_id)
        return {"queued": queued, **result}

    @server.tool
    @_mapped
    async def summarize(
        user_id: UserId,
        window: Annotated[str, Field(description="'session', 'day', 'week' or 'month'.")] = "session",
        since: Annotated[Optional[str], Field(description="Only memories from this time on.")] = None,
        until: Annotated[Optional[str], Field(description="Only memories up to this time.")] = None,
        agent_id: AgentId = None,
        session_id: SessionId = None,
    ) -> dict[str, Any]:
        """Write (or refresh) one summary per session/day/week/month of the scope's memories."""
        summaries = await memory.asummarize(
            window=window, since=since, until=until, **scope(user_id, agent_id, session_id, write=True)
        )
        return {"summaries": [entry_dict(e) for e in summaries]}

    @server.tool
    @_mapped
    async def get_timestamp(
        user_id: Annotated[Optional[str], Field(description="Optional; echoed back validated.")] = None,
        agent_id: AgentId = None,
        session_id: SessionId = None,
    ) -> dict[str, Any]:
        """The current time (UTC), to stamp turns passed to add_memory."""
        from .timeparse import utcnow, weekday

        now = utcnow().replace(microsecond=0)
        out: dict[str, Any] = {
            "iso": now.isoformat(),
            "formatted": now.strftime(f"%Y/%m/%d ({weekday(now)}) %H:%M"),
            "weekday": weekday(now),
        }
        if user_id is not None:
            from .types import Scope

            try:
                out["scope"] = Scope(**scope(user_id, agent_id, session_id)).model_dump()
            except ValidationError as exc:
                err = exc.errors()[0]
                raise InvalidInputError(
                    ".".join(map(str, err["loc"])) or "scope", err["msg"].removeprefix("Value error, ")
                ) from None
        return out

    return server


# The server key of the MCP request being served (set by ``lightmem serve`` in front of the
# endpoint); unset under stdio and the shared token, which reach every scope.
CURRENT_KEY: "contextvars.ContextVar[Any]" = contextvars.ContextVar("lightmem_mcp_key", default=None)


def _current_key() -> Any:
    key = CURRENT_KEY.get()
    return None if key is None or key.admin else key


def _bearer_auth(token: str) -> Any:
    """A verifier for one shared secret, compared in constant time."""
    from fastmcp.server.auth import AccessToken, TokenVerifier

    expected = token.encode("utf-8")

    class _SharedTokenVerifier(TokenVerifier):
        async def verify_token(self, presented: str) -> Optional[AccessToken]:
            if hmac.compare_digest(presented.encode("utf-8"), expected):
                return AccessToken(token=presented, client_id="lightmem-mcp", scopes=[])
            return None

    return _SharedTokenVerifier()


def serve(
    memory: "LightMemory",
    *,
    transport: str = "stdio",
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: Optional[str] = None,
    http_path: str = DEFAULT_HTTP_PATH,
) -> None:
    """Run the server until interrupted. Over HTTP this is ``lightmem serve`` (REST, MCP at
    ``/mcp``, the Host/Origin guard, the store's keys); ``token`` is one shared admin key.
    HTTP off the loopback interface needs a token or keys: every tool reads and writes
    memories, so an open port would hand them to anyone."""
    if transport not in ("stdio", "http", "streamable-http"):
        raise ConfigError("transport", f"expected 'stdio' or 'http', got {transport!r}")
    if transport != "stdio" and http_path != DEFAULT_HTTP_PATH:
        raise ConfigError("http_path", f"the MCP endpoint is served at {DEFAULT_HTTP_PATH}")
    if transport == "stdio":
        create_server(memory).run(transport="stdio", show_banner=False)
        return
    from .server.app import ServerSettings
    from .server.app import serve as serve_http
    from .server.guard import is_loopback
    from .server.keys import KeyStore, keys_path

    if not token and not is_loopback(host):
        raise ConfigError("token", f"binding {host!r} exposes the memory to the network; set --token or {ENV_TOKEN}")
    log.info(
        "MCP over streamable HTTP at http://%s:%d%s (%s)",
        host,
        port,
        http_path,
        "bearer token required" if token else "no token",
    )
    serve_http(
        memory,
        keys=KeyStore(keys_path(memory.config.store.path)),
        settings=ServerSettings(host=host, port=port, token=token),
    )


def _parser() -> argparse.ArgumentParser:
    env = os.environ
    p = argparse.ArgumentParser(prog="lightmem-mcp", description="LightMem long-term memory as an MCP server.")
    p.add_argument("--config", help="config file (JSON/TOML/YAML; default $LIGHTMEM_CONFIG)")
    p.add_argument("--path", help="store directory (default $LIGHTMEM_PATH, else the config's store.path)")
    p.add_argument(
        "--transport",
        choices=["stdio", "http"],
        default=env.get(ENV_TRANSPORT, "stdio"),
        help="stdio (spawned by the client, default) or streamable HTTP",
    )
    p.add_argument("--host", default=env.get(ENV_HOST, DEFAULT_HOST), help="HTTP bind address (default %(default)s)")
    p.add_argument(
        "--port", type=int, default=int(env.get(ENV_PORT, DEFAULT_PORT)), help="HTTP port (default %(default)s)"
    )
    p.add_argument("--http-path", default=DEFAULT_HTTP_PATH, help="HTTP endpoint path (default %(default)s)")
    p.add_argument(
        "--token", default=env.get(ENV_TOKEN), help=f"bearer token required over HTTP (default ${ENV_TOKEN})"
    )
    p.add_argument("--log-level", default="WARNING", help="log level, to stderr (default %(default)s)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Console script ``lightmem-mcp``."""
    args = _parser().parse_args(argv)
    # stdout is the protocol channel under stdio: every log line goes to stderr.
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from .configfile import load_config
    from .memory import LightMemory

    try:
        _fastmcp()
        memory = LightMemory.from_config(load_config(args.config, store_path=args.path))
    except LightMemError as exc:
        print(f"lightmem-mcp: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        serve(
            memory, transport=args.transport, host=args.host, port=args.port, token=args.token, http_path=args.http_path
        )
    except ConfigError as exc:
        print(f"lightmem-mcp: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        pass
    finally:
        memory.close()


if __name__ == "__main__":
    main()
