"""The REST API, described once: the server serves this table and the client speaks it.

Each ``Operation`` is one public method of ``LightMemory``: its HTTP verb and path, its
parameters with their JSON types, whether it reads or writes, and how its result goes
over the wire. ``server/app.py`` builds routes, validation and the OpenAPI schema from
it; ``remote.py`` builds requests and decodes results from it. An error travels as
``{"error": {"type", "field", "message"}}`` with the status below, and becomes the same
exception on the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Optional

from ..errors import (
    ConfigError,
    ConflictError,
    EmbeddingError,
    InvalidInputError,
    LightMemError,
    LLMError,
    NotFoundError,
    StageNotAvailableError,
    StoreError,
    StoreLockedError,
)
from ..types import AddResult, EntryPage, HistoryRecord, Hit, MemoryEntry

JsonType = Literal["string", "integer", "number", "boolean", "object", "array", "any"]
Access = Literal["read", "write", "admin"]
Result = Literal["add", "hits", "entry", "entries", "page", "history", "turns", "none", "int", "json", "strings"]
SCOPE = ("user_id", "agent_id", "session_id")


@dataclass(frozen=True)
class Param:
    name: str
    type: JsonType
    default: Any = None
    required: bool = False


@dataclass(frozen=True)
class Operation:
    name: str  # the LightMemory method
    verb: Literal["GET", "POST", "PATCH", "DELETE"]
    path: str  # may hold {memory_id}
    access: Access
    result: Result
    params: tuple[Param, ...] = ()
    scoped: bool = True  # takes user_id / agent_id / session_id
    summary: str = ""

    @property
    def in_body(self) -> bool:
        return self.verb in ("POST", "PATCH")

    def names(self) -> set[str]:
        return (
            {p.name for p in self.params}
            | (set(SCOPE) if self.scoped else set())
            | ({"memory_id"} if "{memory_id}" in self.path else set())
        )


P = Param
OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "add_memory",
        "POST",
        "/v1/memories",
        "write",
        "add",
        (
            P("messages", "any", required=True),
            P("force_segment", "boolean", False),
            P("force_extract", "boolean", False),
            P("infer", "boolean", True),
            P("wait", "boolean", False),
        ),
        summary="Journal turns (durable before the answer); extraction runs in the background, wait=true waits for it",
    ),
    Operation(
        "retrieve",
        "POST",
        "/v1/search",
        "read",
        "hits",
        (
            P("query", "string", required=True),
            P("limit", "integer", 10),
            P("filters", "object"),
            P("strategy", "string"),
            P("include_superseded", "boolean", False),
            P("hierarchical", "boolean"),
            P("now", "any"),
            P("scopes", "array"),
        ),
        summary="The memories most relevant to a query, over one scope or several (scopes)",
    ),
    Operation("get", "GET", "/v1/memories/{memory_id}", "read", "entry", summary="One memory"),
    Operation(
        "get_all",
        "POST",
        "/v1/memories/list",
        "read",
        "entries",
        (
            P("filters", "object"),
            P("limit", "integer", 100),
            P("offset", "integer", 0),
            P("include_superseded", "boolean", False),
            P("after", "string"),
        ),
        summary="Memories in (time, id) order",
    ),
    Operation(
        "get_page",
        "POST",
        "/v1/memories/page",
        "read",
        "page",
        (
            P("filters", "object"),
            P("limit", "integer", 100),
            P("after", "string"),
            P("include_superseded", "boolean", False),
        ),
        summary="One page of memories and the next page's cursor",
    ),
    Operation(
        "update",
        "PATCH",
        "/v1/memories/{memory_id}",
        "write",
        "entry",
        (P("memory", "string"), P("metadata", "object"), P("reason", "string"), P("expected_version", "integer")),
        summary="New text and/or metadata; expected_version refuses a change someone made first (409)",
    ),
    Operation(
        "delete",
        "DELETE",
        "/v1/memories/{memory_id}",
        "write",
        "none",
        (P("reason", "string"),),
        summary="Delete one memory (history keeps a DELETE)",
    ),
    Operation(
        "delete_all",
        "POST",
        "/v1/memories/delete",
        "write",
        "int",
        (P("filters", "object"),),
        summary="Delete the scope's memories (filtered)",
    ),
    Operation("history", "GET", "/v1/memories/{memory_id}/history", "read", "history", summary="Every change"),
    Operation(
        "source_turns",
        "GET",
        "/v1/memories/{memory_id}/sources",
        "read",
        "turns",
        summary="The journaled turns a memory came from",
    ),
    Operation("pending", "GET", "/v1/pending", "read", "turns", summary="Turns accepted and not yet extracted"),
    Operation("flush", "POST", "/v1/flush", "write", "add", summary="Extract everything buffered; waits for it"),
    Operation(
        "summarize",
        "POST",
        "/v1/summarize",
        "write",
        "entries",
        (P("window", "string", "session"), P("since", "any"), P("until", "any")),
        summary="Session/period summaries",
    ),
    Operation(
        "construct_update_queue_all_entries",
        "POST",
        "/v1/offline-update/queue",
        "write",
        "int",
        (P("top_k", "integer", 20), P("keep_top_n", "integer", 10)),
        summary="Queue the offline update",
    ),
    Operation(
        "offline_update_all_entries",
        "POST",
        "/v1/offline-update/run",
        "write",
        "json",
        (P("score_threshold", "number", 0.8),),
        summary="Resolve the offline-update queue",
    ),
    Operation("users", "GET", "/v1/users", "read", "strings", scoped=False, summary="The users this key may read"),
    Operation(
        "public_config",
        "GET",
        "/v1/config",
        "read",
        "json",
        scoped=False,
        summary="The limits a client must know: default user, longest message, retrieval defaults",
    ),
    Operation(
        "get_token_statistics",
        "GET",
        "/v1/stats/tokens",
        "read",
        "json",
        scoped=False,
        summary="LLM calls and tokens per stage",
    ),
    Operation(
        "export_records",
        "GET",
        "/v1/export",
        "read",
        "json",
        summary="Everything of a user, as JSONL (application/x-ndjson, one record a line)",
    ),
    Operation(
        "import_records",
        "POST",
        "/v1/import",
        "write",
        "json",
        (P("records", "array", required=True),),
        scoped=False,
        summary="Load an export; every record's user must be writable by the key",
    ),
)
BY_NAME = {op.name: op for op in OPERATIONS}

# error type -> HTTP status; unknown LightMemError subclasses are 500
STATUS = {
    InvalidInputError: 400,
    ConfigError: 400,
    NotFoundError: 404,
    ConflictError: 409,
    LLMError: 502,
    EmbeddingError: 502,
    StoreLockedError: 503,
    StoreError: 503,
    StageNotAvailableError: 501,
}
ERRORS: dict[str, type[LightMemError]] = {cls.__name__: cls for cls in [*STATUS, LightMemError]}


def status_of(exc: LightMemError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_body(exc: BaseException) -> dict[str, Any]:
    field = getattr(exc, "field", None)
    reason = getattr(exc, "reason", None)
    return {"error": {"type": type(exc).__name__, "field": field, "message": reason or str(exc)}}


def raise_error(status: int, body: Any) -> None:
    """The exception a server's error answer stands for, raised on the client."""
    from ..errors import AuthError

    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        raise StoreError(f"server answered {status} without an error body")
    kind, field, message = err.get("type"), err.get("field"), str(err.get("message") or "")
    if kind == "AuthError" or status in (401, 403):
        raise AuthError(status, message)
    cls = ERRORS.get(str(kind), LightMemError)
    if cls in (InvalidInputError, ConfigError):
        raise cls(str(field or "request"), message)
    if cls is NotFoundError:
        raise NotFoundError(message.removeprefix("memory ").removesuffix(" not found").strip("'\" "))
    raise cls(message)


# --- results over the wire ------------------------------------------------------------------------
def encode(kind: Result, value: Any) -> Any:
    if kind in ("none",):
        return None
    if kind in ("int", "json", "strings"):
        return value
    if isinstance(value, list):
        return [v.model_dump(mode="json") for v in value]
    return value.model_dump(mode="json")


def decode(kind: Result, data: Any) -> Any:
    from ..journal import TurnRow

    models: dict[str, Any] = {"add": AddResult, "entry": MemoryEntry, "page": EntryPage}
    lists: dict[str, Any] = {"hits": Hit, "entries": MemoryEntry, "history": HistoryRecord, "turns": TurnRow}
    if kind in models:
        return models[kind].model_validate(data)
    if kind in lists:
        return [lists[kind].model_validate(d) for d in data]
    return None if kind == "none" else data


def openapi(title: str = "LightMem", version: str = "1") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the table (bodies and parameters typed; results as JSON)."""
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        props = {p.name: _schema(p) for p in op.params}
        if op.scoped:
            props.update({s: {"type": "string"} for s in SCOPE})
        spec: dict[str, Any] = {
            "operationId": op.name,
            "summary": op.summary,
            "security": [{"bearer": []}],
            "responses": {
                "200": {"description": "the result"},
                **{
                    str(s): {"description": d}
                    for s, d in (
                        (400, "bad request: error.field names the field"),
                        (401, "no key, or an unknown or revoked one"),
                        (403, "the key does not reach this scope, or the host/origin"),
                        (404, "no such memory in this scope"),
                        (409, "a conflict"),
                        (413, "body too large"),
                    )
                },
            },
        }
        params = (
            [{"name": "memory_id", "in": "path", "required": True, "schema": {"type": "string"}}]
            if "{memory_id}" in op.path
            else []
        )
        if op.in_body:
            required = [p.name for p in op.params if p.required]
            spec["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": props,
                            "required": required,
                            "additionalProperties": False,
                        }
                    }
                },
            }
        else:
            params += [{"name": n, "in": "query", "required": False, "schema": s} for n, s in props.items()]
        if params:
            spec["parameters"] = params
        paths.setdefault(op.path, {})[op.verb.lower()] = spec
    for extra, text in (
        ("/healthz", "alive"),
        ("/readyz", "the store is open and answering"),
        ("/metrics", "Prometheus text"),
    ):
        paths[extra] = {"get": {"summary": text, "security": [], "responses": {"200": {"description": text}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


def _schema(p: Param) -> dict[str, Any]:
    return {} if p.type == "any" else {"type": p.type}


def check_type(value: Any, kind: JsonType) -> bool:
    if value is None or kind == "any":
        return True
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, {"string": str, "object": dict, "array": list}[kind])


def query_value(raw: str, kind: JsonType) -> Optional[Any]:
    """A query-string parameter as its JSON type (None when it cannot be)."""
    if kind in ("string", "any"):
        return raw
    if kind == "boolean":
        return {"true": True, "false": False}.get(raw.lower())
    try:
        return int(raw) if kind == "integer" else float(raw) if kind == "number" else None
    except ValueError:
        return None
