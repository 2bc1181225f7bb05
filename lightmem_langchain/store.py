"""``LightMemStore``: LightMem as a LangGraph ``BaseStore`` (long-term memory of graphs
and ``create_agent(..., store=...)``).

Namespaces map onto scopes
--------------------------
With the default ``NamespaceMapping(prefix=("memories",))``::

    ("memories", user_id)                         user scope
    ("memories", user_id, agent_id)               agent scope
    ("memories", user_id, agent_id, session_id)   session scope ("_" as agent_id = no agent)

A namespace outside the mapping raises ``InvalidNamespaceError``. Reads follow the
core's scope rules: searching ``("memories", "maya")`` finds Maya's memories in every
agent and session below it, which is also what a namespace *prefix* means in
LangGraph. The scope filter is applied by the storage layer, so one user's namespace
can never return another user's memories.

Items are memories
------------------
The store is a view over the user's LightMem memories, not a side table:

* ``put(ns, key, value)`` stores the value's text (``value["content"]``, ``"text"``,
  ``"memory"`` or ``"data"``; the fields named by ``index=[...]``; else the JSON) as
  one memory entry through ``add_memory(..., infer=False)`` (verbatim: no LLM call), with the key and the value kept in the
  entry's metadata (``lg_key``, ``lg_value``). A key has one stable memory id: a
  second ``put`` updates that entry in place (version + 1, the old text in its
  history) instead of adding a copy. ``put(ns, key, None)`` / ``delete`` deletes it
  (history keeps a DELETE record). ``extract=True`` sends the value through the
  memory's extraction instead (LLM facts, several entries under one key).
* Memories that did not come through ``put`` (saved by the middleware, the tools or
  ``add_memory``) appear too, keyed by their memory id, with the value
  ``{"memory": text, "time_stamp": ..., "speaker": ..., "source_ids": [...], ...}``.
* ``search(ns_prefix, query=...)`` is LightMem retrieval (``strategy``,
  ``hierarchical`` as configured) in the prefix's scope; ``filter`` compares value
  fields (``{"kind": "pref"}``, ``{"score": {"$gte": 3}}``); without a query, items
  come in time order.
* ``list_namespaces`` reads the namespaces of a user's memories; a prefix that does not
  name a user covers every user the memory holds (``LightMemory.users()``).

TTLs are not supported (``supports_ttl = False``); memories are long-term by design.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import datetime, timezone
from typing import Any, Iterable, Literal, Optional, Sequence

from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)
from pydantic import BaseModel, ConfigDict

from lightmem_core import LightMemError, LLMError, MemoryEntry, NotFoundError, Scope

from ._common import MemoryOp, adrive, drive, entry_metadata, mcall, retrieve_kwargs, scope_kwargs

log = logging.getLogger("lightmem_langchain.store")

KEY = "lg_key"
VALUE = "lg_value"
CREATED = "lg_created_at"
UPDATED = "lg_updated_at"
_TEXT_FIELDS = ("content", "text", "memory", "data")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_TURN_NS = uuid.UUID("0b6a3f0e-6a8c-4c53-9a57-7d7f1f0a5c21")
_PAGE = 1000


class NamespaceMapping(BaseModel):
    """``prefix + (user_id[, agent_id[, session_id]])`` <-> ``Scope``.

    ``missing`` is the label written for an unset agent when a session follows it.
    Subclass and override ``to_scope`` / ``from_scope`` for another layout.
    """

    model_config = ConfigDict(frozen=True)

    prefix: tuple[str, ...] = ("memories",)
    missing: str = "_"

    def to_scope(self, namespace: Sequence[str]) -> Scope:
        namespace = tuple(namespace)
        n = len(self.prefix)
        rest = namespace[n:]
        if namespace[:n] != self.prefix or not 1 <= len(rest) <= 3:
            raise InvalidNamespaceError(
                f"namespace {namespace} is not {self.prefix + ('<user_id>', '[agent_id]', '[session_id]')}")
        user, agent, session = (*rest, None, None)[:3]
        try:
            return Scope(user_id=user, agent_id=None if agent == self.missing else agent, session_id=session)
        except ValueError as exc:
            raise InvalidNamespaceError(f"namespace {namespace}: {exc}") from None

    def from_scope(self, scope: Scope) -> tuple[str, ...]:
        out = [*self.prefix, scope.user_id]
        if scope.agent_id is not None or scope.session_id is not None:
            out.append(scope.agent_id or self.missing)
        if scope.session_id is not None:
            out.append(scope.session_id)
        return tuple(out)

    def user_in(self, prefix: Sequence[str]) -> Optional[str]:
        """The user a namespace prefix names, or None when it stops above the user level.
        Raises when the prefix is not under this mapping at all."""
        prefix = tuple(prefix)
        n = len(self.prefix)
        if len(prefix) <= n:
            if prefix != self.prefix[: len(prefix)]:
                raise InvalidNamespaceError(f"namespace {prefix} is not under {self.prefix}")
            return None
        return self.to_scope(prefix).user_id


def _utcnow() -> str:
    return datetime.now(timezone.utc).isoformat()


def _time(value: Any, fallback: datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return fallback


def _path(value: Any, path: str) -> list[Any]:
    """Values at a dotted path; ``[*]`` or a list on the way fans out."""
    current = [value]
    for part in path.replace("[*]", "").split("."):
        nxt: list[Any] = []
        for v in current:
            if isinstance(v, list):
                v = [x.get(part) for x in v if isinstance(x, dict)]
                nxt += [x for x in v if x is not None]
            elif isinstance(v, dict) and part in v:
                nxt.append(v[part])
        current = nxt
    return [x for v in current for x in (v if isinstance(v, list) else [v])]


def _matches(value: Any, condition: Any) -> bool:
    """LangGraph's value filter: equality (nested dicts compared field by field), or ``$eq``,
    ``$ne``, ``$gt``, ``$gte``, ``$lt``, ``$lte``."""
    if isinstance(condition, dict) and any(k.startswith("$") for k in condition):
        return all(_operator(value, op, arg) for op, arg in condition.items())
    if isinstance(condition, dict):
        return isinstance(value, dict) and all(_matches(value.get(k), c) for k, c in condition.items())
    return value == condition


def _operator(value: Any, op: str, arg: Any) -> bool:
    if op == "$eq":
        return value == arg
    if op == "$ne":
        return value != arg
    if op not in ("$gt", "$gte", "$lt", "$lte"):
        raise ValueError(f"unsupported filter operator {op!r}")
    if value is None:
        return False
    try:
        a, b = (float(value), float(arg)) if not isinstance(value, str) else (value, str(arg))
    except (TypeError, ValueError):
        return False
    return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]


def _ns_matches(namespace: tuple[str, ...], condition: MatchCondition) -> bool:
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    part = namespace[: len(path)] if condition.match_type == "prefix" else namespace[len(namespace) - len(path):]
    return all(p == "*" or p == n for p, n in zip(path, part))


class LightMemStore(BaseStore):
    """A LangGraph store whose items are LightMem memories (see the module docstring).

    Args:
        memory: a ``LightMemory``.
        mapping: namespace <-> scope layout.
        extract: send put values through the memory's extraction (LLM facts) instead
            of storing the value's text as one entry.
        strategy / hierarchical: retrieval options of ``search(query=...)``.
        index: default value fields to index, like LangGraph's ``index={"fields": [...]}``.
        users: users ``list_namespaces`` (and prefix searches above the user level)
            cover, in addition to those seen by this store.
        role: the role a put value is journaled with (``messages_use`` decides whether
            that role becomes memory; ``user`` always does by default).
    """

    supports_ttl: bool = False

    def __init__(
        self,
        memory: Any,
        *,
        mapping: Optional[NamespaceMapping] = None,
        extract: bool = False,
        strategy: Optional[str] = None,
        hierarchical: Optional[bool] = None,
        index: Optional[Sequence[str]] = None,
        users: Iterable[str] = (),
        role: Literal["user", "assistant"] = "user",
    ) -> None:
        self.memory = memory
        self.mapping = mapping or NamespaceMapping()
        self.extract = extract
        self.strategy = strategy
        self.hierarchical = hierarchical
        self.index_fields = list(index) if index else None
        self.role = role
        self._users: dict[str, None] = dict.fromkeys(users)

    # --- BaseStore -------------------------------------------------------------------------
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        return drive(self.memory, self._batch_op(list(ops)))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return await adrive(self.memory, self._batch_op(list(ops)))

    def _batch_op(self, ops: list[Op]) -> MemoryOp[list[Result]]:
        results: list[Result] = []
        for op in ops:
            if isinstance(op, GetOp):
                results.append((yield from self._get_op(op)))
            elif isinstance(op, PutOp):
                yield from self._put_op(op)
                results.append(None)
            elif isinstance(op, SearchOp):
                results.append((yield from self._search_op(op)))
            elif isinstance(op, ListNamespacesOp):
                results.append((yield from self._list_op(op)))
            else:
                raise ValueError(f"unknown store operation {type(op).__name__}")
        return results

    # --- items -----------------------------------------------------------------------------
    def _scope(self, namespace: Sequence[str]) -> Scope:
        scope = self.mapping.to_scope(namespace)
        self._users.setdefault(scope.user_id)
        return scope

    def _item(self, entry: MemoryEntry, score: Optional[float] = None, *, search: bool = False,
              window: Optional[str] = None) -> Item:
        meta = entry.metadata
        if KEY in meta:
            key, value = str(meta[KEY]), dict(meta.get(VALUE) or {})
            created = _time(meta.get(CREATED), entry.recorded_at)
            updated = _time(meta.get(UPDATED), entry.recorded_at)
        else:
            key = entry.id
            value = {"memory": entry.memory, **entry_metadata(entry)}
            if window:  # a search hit cut from a longer turn: the sentences around it (Hit.window)
                value["window"] = window
            created = updated = entry.recorded_at
        namespace = self.mapping.from_scope(entry.scope)
        if search:
            return SearchItem(namespace, key, value, created, updated, score=score)
        return Item(value=value, key=key, namespace=namespace, created_at=created, updated_at=updated)

    def _entries_op(self, namespace: tuple[str, ...], scope: Scope, key: str) -> MemoryOp[list[MemoryEntry]]:
        """The entries behind ``key`` in exactly this namespace, oldest first."""
        found = yield mcall("get_all", **scope_kwargs(scope), filters={"metadata": {KEY: key}}, limit=100)
        found = [e for e in found if self.mapping.from_scope(e.scope) == namespace]
        if found or not _UUID.match(key):
            return found
        try:  # a memory that did not come through put: its key is its id
            entry = yield mcall("get", key, **scope_kwargs(scope))
        except NotFoundError:
            return []
        if KEY in entry.metadata or self.mapping.from_scope(entry.scope) != namespace:
            return []
        return [entry]

    def _get_op(self, op: GetOp) -> MemoryOp[Optional[Item]]:
        namespace = tuple(op.namespace)
        entries = yield from self._entries_op(namespace, self._scope(namespace), str(op.key))
        return self._item(entries[0]) if entries else None

    def _text(self, value: dict[str, Any], index: Any) -> str:
        fields = index if isinstance(index, list) else self.index_fields
        if fields:
            parts = [str(v) for f in fields for v in _path(value, f) if v is not None and str(v).strip()]
            if parts:
                return "\n".join(parts)
        for name in _TEXT_FIELDS:
            if isinstance(value.get(name), str) and value[name].strip():
                return value[name]
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)

    def _turn_id(self, namespace: tuple[str, ...], key: str) -> str:
        return "lgstore-" + uuid.uuid5(_TURN_NS, "\x1f".join([*namespace, key])).hex

    def _put_op(self, op: PutOp) -> MemoryOp[None]:
        namespace, key = tuple(op.namespace), str(op.key)
        scope = self._scope(namespace)
        where = scope_kwargs(scope)
        existing = yield from self._entries_op(namespace, scope, key)
        if op.value is None:
            for entry in existing:
                yield mcall("delete", entry.id, **where, reason=f"LangGraph store: delete {key!r}")
            return
        if not isinstance(op.value, dict):
            raise ValueError(f"store values must be dicts, got {type(op.value).__name__}")
        value = json.loads(json.dumps(op.value, default=str))  # what a read returns is what JSON keeps
        text = self._text(value, op.index)
        now = _utcnow()
        created = next((e.metadata[CREATED] for e in existing if CREATED in e.metadata), now)
        meta = {KEY: key, VALUE: value, CREATED: created, UPDATED: now}
        reason = f"LangGraph store: put {key!r}"
        if existing and not self.extract:
            yield from self._settle_op(existing, text, meta, where, reason)
            return
        for entry in existing:
            yield mcall("delete", entry.id, **where, reason=reason)
        turn_id = self._turn_id(namespace, key)
        turn = {"role": self.role, "content": text, "metadata": {KEY: key}}
        # verbatim unless asked to extract: no LLM call, no buffering, one entry
        how = {"force_extract": True} if self.extract else {"infer": False}
        result = yield mcall("add_memory", [{**turn, "id": turn_id}], **how, **where)
        if turn_id in result.duplicate_turn_ids:  # the key was deleted and is put again
            turn_id = f"{turn_id}-{uuid.uuid4().hex[:12]}"
            result = yield mcall("add_memory", [{**turn, "id": turn_id}], **how, **where)
        if result.error:
            raise LLMError(f"put {key!r}: extraction failed, the value is journaled and pending: {result.error}")
        mine = [e for e in result.added if turn_id in e.source_ids]
        if not mine:
            raise LightMemError(f"put {key!r}: no memory entry was created (merged into an existing memory by "
                                f"online update, or filtered out by messages_use)")
        if self.extract:
            for entry in mine:
                yield mcall("update", entry.id, entry.memory, **where, metadata=meta, reason=reason)
        else:
            yield from self._settle_op(mine, text, meta, where, reason)

    def _settle_op(self, entries: list[MemoryEntry], text: str, meta: dict[str, Any], where: dict[str, Any],
                   reason: str) -> MemoryOp[None]:
        """One entry per key, holding exactly the value's text: the first is updated, the rest go."""
        first, rest = entries[0], entries[1:]
        same = first.memory == text and {k: first.metadata.get(k) for k in (KEY, VALUE)} == {KEY: meta[KEY],
                                                                                           VALUE: meta[VALUE]}
        if not same:
            yield mcall("update", first.id, text, **where, metadata=meta, reason=reason)
        for entry in rest:
            yield mcall("delete", entry.id, **where, reason=reason)

    # --- search and listing ------------------------------------------------------------------
    def _users_for(self, prefix: tuple[str, ...]) -> list[Scope]:
        """Scopes a namespace prefix covers; [] when it is outside the mapping."""
        try:
            user = self.mapping.user_in(prefix)
        except InvalidNamespaceError:
            return []
        if user is None:
            return [Scope(user_id=u) for u in self._all_users()]
        return [self._scope(prefix)]

    def _all_users(self) -> list[str]:
        return list(dict.fromkeys([*self._users, *self.memory.users()]))

    def _search_op(self, op: SearchOp) -> MemoryOp[list[SearchItem]]:
        prefix = tuple(op.namespace_prefix)
        want = op.offset + op.limit
        fetch = min(1000, want * 4 if op.filter else want * 2)
        scored: list[tuple[float, int, SearchItem]] = []
        for scope in self._users_for(prefix):
            where = scope_kwargs(scope)
            if op.query:
                opts = retrieve_kwargs(strategy=self.strategy, hierarchical=self.hierarchical)
                hits = yield mcall("retrieve", op.query, fetch, **where, **opts)
                pairs = [(h.entry, h.score, h.window) for h in hits if h.entry.entry_type.value != "summary"]
            else:
                entries = yield mcall("get_all", **where, limit=fetch)
                pairs = [(e, None, None) for e in entries]
            for entry, score, window in pairs:
                item = self._item(entry, score, search=True, window=window)
                if item.namespace[: len(prefix)] != prefix:
                    continue
                if op.filter and not all(_matches(item.value.get(k), c) for k, c in op.filter.items()):
                    continue
                scored.append((-(score or 0.0), len(scored), item))  # type: ignore[arg-type]
        if op.query:
            scored.sort(key=lambda t: (t[0], t[1]))
        seen: set[tuple[tuple[str, ...], str]] = set()
        items: list[SearchItem] = []
        for _, _, item in scored:
            ident = (item.namespace, item.key)
            if ident not in seen:
                seen.add(ident)
                items.append(item)  # type: ignore[arg-type]
        return items[op.offset: want]

    def _list_op(self, op: ListNamespacesOp) -> MemoryOp[list[tuple[str, ...]]]:
        conditions = list(op.match_conditions or ())
        users: Optional[list[Scope]] = None
        for c in conditions:
            if c.match_type == "prefix" and "*" not in c.path:
                users = self._users_for(tuple(c.path))
        if users is None:
            users = [Scope(user_id=u) for u in self._all_users()]
        found: set[tuple[str, ...]] = set()
        for scope in users:
            offset = 0
            while True:
                page = yield mcall("get_all", user_id=scope.user_id, limit=_PAGE, offset=offset)
                found.update(self.mapping.from_scope(e.scope) for e in page)
                if len(page) < _PAGE:
                    break
                offset += _PAGE
        names = [ns for ns in found if all(_ns_matches(ns, c) for c in conditions)]
        if op.max_depth is not None:
            names = [ns[: op.max_depth] for ns in names]
        return sorted(set(names))[op.offset: op.offset + op.limit]

    # --- convenience -------------------------------------------------------------------------
    def remember_users(self, *user_ids: str) -> None:
        """Make users visible to ``list_namespaces`` and prefix searches above the user level."""
        for u in user_ids:
            self._users.setdefault(u)


__all__ = ["LightMemStore", "NamespaceMapping"]
