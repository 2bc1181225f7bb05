"""``LightMemStore``: LightMem as a LangGraph ``BaseStore`` (long-term memory of graphs,
``create_agent(..., store=...)`` and LangMem-style tools).

A drop-in for LangGraph's own stores: any namespace, any depth, any labels; ``put`` /
``get`` / ``search`` (with and without a query, with filters) / ``delete`` /
``list_namespaces`` / ``batch`` / ``abatch`` behave as ``InMemoryStore`` does, with
the differences listed in ``docs/langchain.md``. Underneath, every item is a LightMem
memory with provenance and history, and every namespace lives in a scope, so one
user's items are kept apart by the storage layer, not by a filter written here.

Namespaces and scopes
---------------------
``NamespaceMapping(prefix=("memories",))`` (the default): a namespace under the prefix
names its user in the next label, ``("memories", user_id, ...)``, as LangMem writes
them; its items live in that user's scope (the middleware, tools and retriever see the
same memories), deeper labels kept exactly. Any other namespace, ``("users", uid,
"memories")`` or ``(org, team, "prefs")``, is a scope of its own. Set ``prefix=("users",)``
to map the label after ``users`` to the user instead.

How an item is kept
-------------------
``put(ns, key, value)`` journals the text to index (the fields of ``index``, else the
value's ``content`` / ``text`` / ``memory`` / ``data``, else its JSON) and stores it
verbatim (``add_memory(..., infer=False)``: no LLM call, no merging into other
memories), one memory per indexed text, with the namespace, key, value, times and TTL in
the memory's metadata. A second ``put`` updates the same memories in place (version + 1,
the old text in their history); ``put(ns, key, None)`` deletes them (history keeps the
DELETE). Filters, key look-ups and namespace prefixes are conditions of the store
query, so a filtered read sees every match, however many items there are.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
import uuid
from concurrent.futures import Future
from datetime import datetime, timezone
from typing import Any, Iterable, Literal, Optional, Sequence, TypeGuard
from urllib.parse import quote, unquote

from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    get_text_at_path,
    tokenize_path,
)
from pydantic import BaseModel, ConfigDict

from lightmem_core import LightMemError, LLMError, MemoryEntry, NotFoundError, Scope
from lightmem_core.drive import Op as MemoryOp  # langgraph's store already has an Op
from lightmem_core.drive import call, run_async, run_sync

from ._common import entry_metadata, retrieve_kwargs, scope_kwargs

log = logging.getLogger("lightmem_langchain.store")

# metadata keys of a store item's memories
KEY, VALUE, PATH, PREFIXES, FIELD = "lg_key", "lg_value", "lg_path", "lg_prefixes", "lg_field"
CREATED, UPDATED, EXPIRES, TTL, NOINDEX = "lg_created_at", "lg_updated_at", "lg_expires", "lg_ttl", "lg_noindex"
_TEXT_FIELDS = ("content", "text", "memory", "data")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_FILTER_KEY = re.compile(r"^[\w\-]+(\.[\w\-]+)*$")  # a value key, or a dotted path into nested values
_TURN_NS = uuid.UUID("0b6a3f0e-6a8c-4c53-9a57-7d7f1f0a5c21")
_PAGE = 500
_MAX_HITS = 1000  # what one retrieve returns at most
_NS_SCOPE, _NS_HASHED = "ns:", "ns#"
MAX_SCOPE_ID = 256


def _path(namespace: Sequence[str]) -> str:
    """A namespace as one string; LangGraph labels never hold a period, so this is exact."""
    return ".".join(namespace)


class NamespaceMapping(BaseModel):
    """Which scope a namespace lives in (see the module docstring).

    ``prefix``: the fixed labels before the user label. A namespace that starts with
    them and goes on lives in the scope of the user its next label names; any other
    namespace is a scope of its own (its user id encodes the namespace, so two
    namespaces never share storage by accident).
    """

    model_config = ConfigDict(frozen=True)

    prefix: tuple[str, ...] = ("memories",)

    def _user_label(self, namespace: tuple[str, ...]) -> Optional[str]:
        """The label naming the user, if the namespace has one that can be a user id (a
        label with a line break, say, cannot: its namespaces are then scopes of their own)."""
        n = len(self.prefix)
        if len(namespace) > n and namespace[:n] == self.prefix:
            user = namespace[n]
            if not user.startswith((_NS_SCOPE, _NS_HASHED)) and _valid_user(user):
                return user
        return None

    def user_of(self, namespace: Sequence[str]) -> str:
        ns = tuple(namespace)
        user = self._user_label(ns)
        if user is not None:
            return user
        encoded = _NS_SCOPE + ".".join(quote(label, safe="") for label in ns)
        if len(encoded) > MAX_SCOPE_ID:
            return _NS_HASHED + hashlib.sha256(_path(ns).encode()).hexdigest()
        return encoded

    def scope(self, namespace: Sequence[str]) -> Scope:
        return Scope(user_id=self.user_of(namespace))

    def home(self, user: str) -> Optional[tuple[str, ...]]:
        """The namespace a scope's memories that did not come through the store show in."""
        if user.startswith(_NS_SCOPE):
            body = user[len(_NS_SCOPE) :]
            return tuple(unquote(p) for p in body.split(".")) if body else ()
        if user.startswith(_NS_HASHED):
            return None
        return (*self.prefix, user)

    def covering(self, prefix: Sequence[str], users: Iterable[str]) -> list[tuple[str, bool]]:
        """The scopes a namespace prefix reaches, each with whether its items must also be
        matched on the prefix (a scope may hold namespaces outside it)."""
        p = tuple(prefix)
        n = len(self.prefix)
        user = self._user_label(p)
        if user is not None:
            return [(user, len(p) > n + 1)]
        out = []
        for user in users:
            home = self.home(user)
            if home is None:
                out.append((user, bool(p)))
            elif user.startswith(_NS_SCOPE):
                if home[: len(p)] == p:
                    out.append((user, False))
            elif p == self.prefix[: len(p)]:
                out.append((user, False))
        return out


def _valid_user(user: str) -> bool:
    try:
        Scope(user_id=user)
    except ValueError:
        return False
    return user == user.strip()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _time(value: Any, fallback: datetime) -> datetime:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return fallback


# --- LangGraph value filters -------------------------------------------------------------------
def _at(value: Any, key: str) -> Any:
    """The value a filter key names: a key, or a dotted path into nested dicts (as LangGraph's
    SQL stores read ``user.access-level``)."""
    if isinstance(value, dict) and key in value:
        return value[key]
    for part in key.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _check_keys(flt: Optional[dict[str, Any]]) -> None:
    for key in flt or {}:
        if not isinstance(key, str) or not _FILTER_KEY.match(key):
            raise ValueError(f"Invalid filter key {key!r}: use letters, digits, '_', '-', and '.' between parts")


def _compare(value: Any, condition: Any) -> bool:
    """LangGraph's value filter, as its reference stores apply it: equality (nested dicts
    field by field, lists element by element) or ``$eq``/``$ne``/``$gt``/``$gte``/``$lt``/``$lte``."""
    if isinstance(condition, dict):
        if any(k.startswith("$") for k in condition):
            return all(_operator(value, op, arg) for op, arg in condition.items())
        return isinstance(value, dict) and all(_compare(value.get(k), c) for k, c in condition.items())
    if isinstance(condition, (list, tuple)):
        return (
            isinstance(value, (list, tuple))
            and len(value) == len(condition)
            and all(_compare(v, c) for v, c in zip(value, condition))
        )
    return bool(value == condition)


def _operator(value: Any, op: str, arg: Any) -> bool:
    if op == "$eq":
        return bool(value == arg)
    if op == "$ne":
        return bool(value != arg)
    if op not in ("$gt", "$gte", "$lt", "$lte"):
        raise ValueError(f"unsupported filter operator {op!r}")
    try:
        a, b = float(value), float(arg)
    except (TypeError, ValueError):
        return False
    return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _pushed(flt: Optional[dict[str, Any]], base: str = f"metadata.{VALUE}") -> dict[str, Any]:
    """The part of a value filter the engine can evaluate, as core filters that match a
    superset of what the filter matches (the exact test runs on what comes back).

    Text equality is a match, numeric equality and ranges are ranges (so 3 matches 3.0
    as in Python); ``$ne``, lists and booleans are left to the exact test, since the
    engine reads them differently through arrays.
    """
    out: dict[str, Any] = {}
    for key, cond in (flt or {}).items():
        if not isinstance(key, str) or not _FILTER_KEY.match(key):
            continue
        path = f"{base}.{key}"
        if isinstance(cond, dict) and any(k.startswith("$") for k in cond):
            ops: dict[str, float] = {}
            for op, arg in cond.items():
                if op == "$eq" and isinstance(arg, str):
                    out.setdefault(path, {})["eq"] = arg
                elif op in ("$eq", "$gt", "$gte", "$lt", "$lte") and _number(arg):
                    if op == "$eq":
                        ops.update(gte=float(arg), lte=float(arg))
                    else:
                        ops[op[1:]] = float(arg)
            if ops:
                out.setdefault(path, {}).update(ops)
        elif isinstance(cond, dict):
            out.update(_pushed(cond, path))
        elif isinstance(cond, str):
            out[path] = cond
        elif _number(cond):
            out[path] = {"gte": float(cond), "lte": float(cond)}
    return out


class LightMemStore(BaseStore):
    """A LangGraph store whose items are LightMem memories (see the module docstring).

    Args:
        memory: a ``LightMemory`` (or a ``RemoteMemory``: the same API over HTTP).
        mapping: namespace -> scope layout.
        index: LangGraph's index config: ``fields`` to embed (default: the value's text
            field), ``dims`` checked against the memory's embedder. The embedding model
            is the memory's; ``LightMemStore.from_path(..., index=...)`` builds a memory
            around ``index["embed"]``.
        ttl: LangGraph's TTL config: ``default_ttl`` (minutes), ``refresh_on_read``,
            ``sweep_interval_minutes`` (``start_ttl_sweeper`` runs the sweeper).
        extract: send put values through the memory's extraction (LLM facts, several
            memories under one key) instead of storing the value's text.
        strategy / hierarchical: retrieval options of ``search(query=...)``.
        users: more users that prefix searches above the user level cover.
        role: the role a put value is journaled with.
    """

    supports_ttl: bool = True

    def __init__(
        self,
        memory: Any,
        *,
        mapping: Optional[NamespaceMapping] = None,
        index: Optional[IndexConfig] = None,
        ttl: Optional[TTLConfig] = None,
        extract: bool = False,
        strategy: Optional[str] = None,
        hierarchical: Optional[bool] = None,
        users: Iterable[str] = (),
        role: Literal["user", "assistant"] = "user",
    ) -> None:
        self.memory = memory
        self.mapping = mapping or NamespaceMapping()
        self.extract = extract
        self.strategy = strategy
        self.hierarchical = hierarchical
        self.role = role
        self.ttl_config = ttl
        self.index_config: Optional[dict[str, Any]] = None
        self._fields: Optional[list[tuple[str, list[str]]]] = None
        if index is not None:
            config: dict[str, Any] = dict(index)
            fields = list(config.get("fields") or config.get("text_fields") or ["$"])  # SQLite's name for it
            dims = config.get("dims")
            have = getattr(memory, "dims", None)
            if dims is not None and have is not None and int(dims) != int(have):
                raise ValueError(f"index['dims'] is {dims}, but the memory's embedder gives {have} dimensions")
            config["fields"] = fields
            config["__tokenized_fields"] = [(f, tokenize_path(f) if f != "$" else f) for f in fields]
            self.index_config = config
            self._fields = config["__tokenized_fields"]
        self.embeddings = (index or {}).get("embed")
        self._users: dict[str, None] = dict.fromkeys(users)
        self._owned = False
        self._sweeper: Optional[tuple[threading.Event, Future]] = None

    @classmethod
    def from_path(
        cls, path: str, *, index: Optional[IndexConfig] = None, config: Optional[dict[str, Any]] = None, **kwargs: Any
    ) -> "LightMemStore":
        """A store on its own embedded memory at ``path``; ``index["embed"]`` (LangChain
        embeddings, a function or a provider string) becomes the memory's embedder.
        The store owns the memory: ``close()`` (or ``with``) closes it."""
        from lightmem_core import LightMemory

        components: dict[str, Any] = {}
        if index is not None and index.get("embed") is not None:
            from langgraph.store.base import ensure_embeddings

            from .models import LangChainEmbedder

            components["embedder"] = LangChainEmbedder(ensure_embeddings(index["embed"]), dims=index.get("dims"))
        memory = LightMemory({"store": {"path": path}, **(config or {})}, **components)
        store = cls(memory, index=index, **kwargs)
        store._owned = True
        return store

    def close(self) -> None:
        self.stop_ttl_sweeper()
        if self._owned:
            self.memory.close()

    def __enter__(self) -> "LightMemStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- BaseStore -------------------------------------------------------------------------
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        return run_sync(self._batch_op(list(ops)))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return await run_async(self._batch_op(list(ops)))

    def _batch_op(self, ops: list[Op]) -> MemoryOp[list[Result]]:
        """As LangGraph's stores do it: every read sees the store as it was before the
        batch, then the writes apply, the last write of a key winning."""
        from langgraph.store.base import validate_op_namespace

        for op in ops:
            if not isinstance(op, (GetOp, PutOp, SearchOp, ListNamespacesOp)):
                raise ValueError(f"unknown store operation {type(op).__name__}")
            validate_op_namespace(op)
        results: list[Result] = [None] * len(ops)
        puts: dict[tuple[tuple[str, ...], str], PutOp] = {}
        for i, op in enumerate(ops):
            if isinstance(op, GetOp):
                results[i] = yield from self._get_op(op)
            elif isinstance(op, SearchOp):
                results[i] = yield from self._search_op(op)
            elif isinstance(op, ListNamespacesOp):
                results[i] = yield from self._list_op(op)
            elif isinstance(op, PutOp):
                puts.pop((tuple(op.namespace), str(op.key)), None)
                puts[(tuple(op.namespace), str(op.key))] = op
        for op in puts.values():
            yield from self._put_op(op)
        return results

    # --- items -----------------------------------------------------------------------------
    def _scope(self, namespace: Sequence[str]) -> Scope:
        scope = self.mapping.scope(namespace)
        self._users.setdefault(scope.user_id)
        return scope

    def _namespace(self, entry: MemoryEntry) -> tuple[str, ...]:
        path = entry.metadata.get(PATH)
        if isinstance(path, str):
            return tuple(path.split(".")) if path else ()
        home = self.mapping.home(entry.user_id)
        return home if home is not None else (entry.user_id,)

    def _item(self, entry: MemoryEntry) -> Item:
        namespace, key, value, created, updated = self._parts(entry)
        return Item(value=value, key=key, namespace=namespace, created_at=created, updated_at=updated)

    def _search_item(
        self, entry: MemoryEntry, score: Optional[float] = None, window: Optional[str] = None
    ) -> SearchItem:
        namespace, key, value, created, updated = self._parts(entry, window)
        return SearchItem(namespace, key, value, created, updated, score=score)

    def _parts(self, entry: MemoryEntry, window: Optional[str] = None) -> tuple[tuple[str, ...], str, dict, Any, Any]:
        """Namespace, key, value and times of the item an entry holds."""
        meta = entry.metadata
        if KEY in meta:
            key, value = str(meta[KEY]), dict(meta.get(VALUE) or {})
            created = _time(meta.get(CREATED), entry.recorded_at)
            updated = _time(meta.get(UPDATED), entry.recorded_at)
        else:  # a memory that did not come through the store (middleware, tools, add_memory): keyed by its id
            key = entry.id
            value = {"memory": entry.memory, **entry_metadata(entry)}
            if window:
                value["window"] = window
            created = updated = entry.recorded_at
        return self._namespace(entry), key, value, created, updated

    @staticmethod
    def _expired(entry: MemoryEntry, now: float) -> bool:
        expires = entry.metadata.get(EXPIRES)
        return _number(expires) and float(expires) <= now

    @staticmethod
    def _live(now: float) -> dict[str, Any]:
        """Not expired: no expiry time, or one still ahead."""
        return {"NOT": [{f"metadata.{EXPIRES}": {"lte": now}}]}

    def _entries_op(self, namespace: tuple[str, ...], scope: Scope, key: str) -> MemoryOp[list[MemoryEntry]]:
        """The memories behind ``key`` in exactly this namespace: one look-up by key and path."""
        where = scope_kwargs(scope)
        found = yield call(
            self.memory.get_all, **where, filters={"metadata": {KEY: key, PATH: _path(namespace)}}, limit=1000
        )
        if found or not _UUID.match(key) or self.mapping.home(scope.user_id) != namespace:
            return list(found)
        try:  # a memory that did not come through the store: its key is its id
            entry = yield call(self.memory.get, key, **where)
        except NotFoundError:
            return []
        return [] if KEY in entry.metadata else [entry]

    def _get_op(self, op: GetOp) -> MemoryOp[Optional[Item]]:
        namespace = tuple(op.namespace)
        scope = self._scope(namespace)
        entries = yield from self._entries_op(namespace, scope, str(op.key))
        if not entries:
            return None
        now = time.time()
        if self._expired(entries[0], now):
            yield from self._expire_op(entries, scope)
            return None
        if op.refresh_ttl:
            yield from self._refresh_op(entries, scope, now)
        return self._item(entries[0])

    # --- writes ------------------------------------------------------------------------------
    def _texts(self, value: dict[str, Any], index: Any) -> list[tuple[Optional[str], str]]:
        """(field, text) pairs to embed: one memory each, so an item is found by its best field."""
        if index is False:
            return []
        fields = [(f, tokenize_path(f) if f != "$" else f) for f in index] if isinstance(index, list) else self._fields
        if not fields:
            for name in _TEXT_FIELDS:
                if isinstance(value.get(name), str) and value[name].strip():
                    return [(None, value[name])]
            return [(None, json.dumps(value, ensure_ascii=False, sort_keys=True, default=str))]
        out = []
        for path, tokens in fields:
            texts = [t for t in get_text_at_path(value, tokens) if t.strip()]
            out += [(path if len(texts) == 1 else f"{path}.{i}", t) for i, t in enumerate(texts)]
        return out

    def _turn_id(self, namespace: tuple[str, ...], key: str, field: Optional[str]) -> str:
        return "lgstore-" + uuid.uuid5(_TURN_NS, "\x1f".join([*namespace, key, field or ""])).hex

    def _put_op(self, op: PutOp) -> MemoryOp[None]:
        namespace, key = tuple(op.namespace), str(op.key)
        scope = self._scope(namespace)
        where = scope_kwargs(scope)
        existing = yield from self._entries_op(namespace, scope, key)
        reason = f"LangGraph store: put {key!r}"
        if op.value is None:
            for entry in existing:
                yield call(self.memory.delete, entry.id, **where, reason=f"LangGraph store: delete {key!r}")
            return
        if not isinstance(op.value, dict):
            raise ValueError(f"store values must be dicts, got {type(op.value).__name__}")
        value = json.loads(json.dumps(op.value, default=str))  # what a read returns is what JSON keeps
        texts = self._texts(value, op.index)
        unindexed = not texts
        if unindexed:  # kept and listed, never ranked by a query (LangGraph's index=False)
            texts = [(None, json.dumps(value, ensure_ascii=False, sort_keys=True, default=str))]
        now = _now()
        ttl = op.ttl if _number(op.ttl) else None
        meta: dict[str, Any] = {
            KEY: key,
            VALUE: value,
            PATH: _path(namespace),
            PREFIXES: [_path(namespace[:i]) for i in range(1, len(namespace) + 1)],
            CREATED: next((e.metadata[CREATED] for e in existing if CREATED in e.metadata), now.isoformat()),
            UPDATED: now.isoformat(),
            NOINDEX: int(unindexed),
            TTL: ttl,
            EXPIRES: now.timestamp() + ttl * 60 if ttl is not None else None,
        }
        if self.extract:
            yield from self._put_extracted_op(namespace, key, texts, meta, existing, where, reason)
            return
        by_field = {e.metadata.get(FIELD): e for e in existing}
        for field, text in texts:
            if field not in by_field:
                continue
            entry = by_field.pop(field)
            same = (
                entry.memory == text.strip()
                and ttl is None
                and {k: entry.metadata.get(k) for k in (VALUE, NOINDEX, TTL)}
                == {VALUE: value, NOINDEX: int(unindexed), TTL: None}
            )
            if not same:
                yield call(
                    self.memory.update,
                    entry.id,
                    None if entry.memory == text.strip() else text,
                    **where,
                    metadata={**meta, FIELD: field},
                    reason=reason,
                )
        for entry in by_field.values():  # fields the new value no longer has
            yield call(self.memory.delete, entry.id, **where, reason=reason)
        have = {e.metadata.get(FIELD) for e in existing}
        new = [(f, t) for f, t in texts if f not in have]
        if new:
            yield from self._add_op(namespace, key, new, meta, where)

    def _add_op(
        self,
        namespace: tuple[str, ...],
        key: str,
        texts: list[tuple[Optional[str], str]],
        meta: dict[str, Any],
        where: dict[str, Any],
    ) -> MemoryOp[list[MemoryEntry]]:
        turns = [
            {"id": self._turn_id(namespace, key, f), "role": self.role, "content": t, "metadata": {**meta, FIELD: f}}
            for f, t in texts
        ]
        result = yield call(self.memory.add_memory, turns, infer=False, **where)
        again = [t for t in turns if t["id"] in result.duplicate_turn_ids]
        added = list(result.added)
        if again:  # the key was deleted and is put again: the old turns stay in the journal as they were
            for t in again:
                t["id"] = f"{t['id']}-{uuid.uuid4().hex[:12]}"
            added += (yield call(self.memory.add_memory, again, infer=False, **where)).added
        return added

    def _put_extracted_op(
        self,
        namespace: tuple[str, ...],
        key: str,
        texts: list[tuple[Optional[str], str]],
        meta: dict[str, Any],
        existing: list[MemoryEntry],
        where: dict[str, Any],
        reason: str,
    ) -> MemoryOp[None]:
        """``extract=True``: the value goes through the memory's extraction (LLM facts), and
        every fact made from it is tagged with the key."""
        for entry in existing:
            yield call(self.memory.delete, entry.id, **where, reason=reason)
        turn_id = f"{self._turn_id(namespace, key, None)}-{uuid.uuid4().hex[:12]}"
        text = "\n".join(t for _, t in texts)
        result = yield call(
            self.memory.add_memory, [{"id": turn_id, "role": self.role, "content": text}], force_extract=True, **where
        )
        if result.error:
            raise LLMError(f"put {key!r}: extraction failed, the value is journaled and pending: {result.error}")
        mine = [e for e in result.added if turn_id in e.source_ids]
        if not mine:
            raise LightMemError(
                f"put {key!r}: extraction made no memory of the value (merged into an existing one "
                "by online update, or filtered out by messages_use)"
            )
        for entry in mine:
            yield call(self.memory.update, entry.id, None, **where, metadata={**meta, FIELD: None}, reason=reason)

    # --- TTL ---------------------------------------------------------------------------------------
    def _expire_op(self, entries: Sequence[MemoryEntry], scope: Scope) -> MemoryOp[None]:
        for entry in entries:
            try:
                yield call(
                    self.memory.delete,
                    entry.id,
                    **scope_kwargs(scope),
                    reason=f"expired: TTL of {entry.metadata.get(TTL)} minutes",
                )
            except NotFoundError:  # swept by another reader meanwhile
                pass

    def _refresh_op(self, entries: Sequence[MemoryEntry], scope: Scope, now: float) -> MemoryOp[None]:
        """Push an item's expiry to now + its TTL. Written only when that moves it by more
        than 1 % of the TTL, so a read-heavy item does not rewrite itself on every read."""
        for entry in entries:
            ttl = entry.metadata.get(TTL)
            if not _number(ttl):
                continue
            due = now + float(ttl) * 60
            if due - float(entry.metadata.get(EXPIRES) or 0.0) > 0.01 * float(ttl) * 60:
                try:
                    yield call(
                        self.memory.update,
                        entry.id,
                        None,
                        **scope_kwargs(scope),
                        metadata={EXPIRES: due},
                        reason="TTL refreshed on read",
                    )
                except NotFoundError:
                    pass

    def sweep_ttl(self) -> int:
        """Delete every expired item (history keeps each as a DELETE with the TTL as its
        reason); returns how many items went."""
        return run_sync(self._sweep_op())

    async def asweep_ttl(self) -> int:
        return await run_async(self._sweep_op())

    def _sweep_op(self) -> MemoryOp[int]:
        swept: set[tuple[tuple[str, ...], str]] = set()
        now = time.time()
        for user in self._all_users():
            while True:
                expired = yield call(
                    self.memory.get_all, user_id=user, filters={f"metadata.{EXPIRES}": {"lte": now}}, limit=_PAGE
                )
                if not expired:
                    break
                yield from self._expire_op(expired, Scope(user_id=user))
                swept.update((self._namespace(e), str(e.metadata.get(KEY, e.id))) for e in expired)
        return len(swept)

    def start_ttl_sweeper(self, sweep_interval_minutes: Optional[float] = None) -> Future:
        """Sweep expired items every ``sweep_interval_minutes`` (default: the TTL config's)
        in a background thread, until ``stop_ttl_sweeper``."""
        interval = sweep_interval_minutes or (self.ttl_config or {}).get("sweep_interval_minutes")
        if not interval:
            raise ValueError("no sweep interval: pass sweep_interval_minutes or set ttl['sweep_interval_minutes']")
        if self._sweeper is not None:
            return self._sweeper[1]
        stop: threading.Event = threading.Event()
        done: Future = Future()

        def loop() -> None:
            while not stop.wait(float(interval) * 60):
                try:
                    n = self.sweep_ttl()
                    if n:
                        log.info("TTL sweeper removed %d expired items", n)
                except Exception:  # noqa: BLE001 - a failed sweep is retried at the next interval
                    log.exception("TTL sweep failed")
            done.set_result(None)

        threading.Thread(target=loop, name="lightmem-ttl-sweeper", daemon=True).start()
        self._sweeper = (stop, done)
        return done

    def stop_ttl_sweeper(self, timeout: Optional[float] = None) -> bool:
        if self._sweeper is None:
            return True
        stop, done = self._sweeper
        stop.set()
        self._sweeper = None
        try:
            done.result(timeout=timeout if timeout is not None else 10)
        except Exception:  # noqa: BLE001 - a timeout: the daemon thread ends with the process
            return False
        return True

    # --- search and listing --------------------------------------------------------------------
    def _all_users(self) -> list[str]:
        return list(dict.fromkeys([*self._users, *self.memory.users()]))

    def _search_op(self, op: SearchOp) -> MemoryOp[list[SearchItem]]:
        prefix = tuple(op.namespace_prefix)
        want = op.offset + op.limit
        if want <= 0:
            return []
        _check_keys(op.filter)
        now = time.time()
        pushed = _pushed(op.filter)

        def wanted(item: Item) -> bool:
            return item.namespace[: len(prefix)] == prefix and all(
                _compare(_at(item.value, k), c) for k, c in (op.filter or {}).items()
            )

        found: list[tuple[Optional[float], SearchItem, MemoryEntry, Scope]] = []
        for user, by_path in self.mapping.covering(prefix, self._all_users()):
            scope = Scope(user_id=user)
            flt = {**pushed, **self._live(now)}
            if by_path:
                flt[f"metadata.{PREFIXES}"] = _path(prefix)
            if op.query:
                found += yield from self._ranked_op(
                    op.query, scope, {**flt, f"metadata.{NOINDEX}": {"nin": [1]}}, want, wanted
                )
            else:
                found += yield from self._listed_op(scope, flt, want, wanted)
        if op.query and len({(i.namespace, i.key) for _, i, _, _ in found}) < want:
            # LangGraph's stores return items that are not indexed after the ranked ones
            for user, by_path in self.mapping.covering(prefix, self._all_users()):
                flt = {**pushed, **self._live(now), f"metadata.{NOINDEX}": 1}
                if by_path:
                    flt[f"metadata.{PREFIXES}"] = _path(prefix)
                found += [
                    (None, i, e, s)
                    for _, i, e, s in (yield from self._listed_op(Scope(user_id=user), flt, want, wanted))
                ]
        if op.query:
            # LightMem's retrieval chooses the candidates (meaning, keywords, time); they come
            # back by similarity, as LangGraph's stores order them, over every scope alike
            ranked = [f for f in found if f[0] is not None]
            found = sorted(ranked, key=lambda f: -(f[0] or 0.0)) + [f for f in found if f[0] is None]
        else:
            found.sort(key=lambda f: (f[2].time_stamp or f[2].recorded_at, f[2].id))
        seen: set[tuple[tuple[str, ...], str]] = set()
        items: list[tuple[SearchItem, MemoryEntry, Scope]] = []
        for _, item, entry, scope in found:  # one item per key: its best-scoring memory (max pooling)
            ident = (item.namespace, item.key)
            if ident not in seen:
                seen.add(ident)
                items.append((item, entry, scope))
        page = items[op.offset : want]
        if op.refresh_ttl:
            for _, entry, scope in page:
                yield from self._refresh_op([entry], scope, now)
        return [item for item, _, _ in page]

    def _ranked_op(
        self, query: str, scope: Scope, flt: dict[str, Any], want: int, wanted: Any
    ) -> MemoryOp[list[tuple[Optional[float], SearchItem, MemoryEntry, Scope]]]:
        """The scope's items for a query, in retrieval order, until ``want`` keys pass the exact filter."""
        n = min(_MAX_HITS, max(3 * want, 30))  # deeper than the page: the page is re-ordered by similarity
        while True:
            opts = retrieve_kwargs(strategy=self.strategy, hierarchical=self.hierarchical)
            hits = yield call(self.memory.retrieve, query, n, filters=flt, **scope_kwargs(scope), **opts)
            out = []
            for h in hits:
                if h.entry.entry_type.value == "summary":
                    continue
                sim = None if h.similarity is None else float(h.similarity)  # cosine, as LangGraph's stores give it
                item = self._search_item(h.entry, sim, window=h.window)
                if wanted(item):
                    out.append((sim, item, h.entry, scope))
            if len({(i.namespace, i.key) for _, i, _, _ in out}) >= want or len(hits) < n or n >= _MAX_HITS:
                return out
            n = min(_MAX_HITS, n * 4)

    def _listed_op(
        self, scope: Scope, flt: dict[str, Any], want: int, wanted: Any
    ) -> MemoryOp[list[tuple[Optional[float], SearchItem, MemoryEntry, Scope]]]:
        """The scope's items in time order, page by page, until ``want`` keys pass the exact filter."""
        out: list[tuple[Optional[float], SearchItem, MemoryEntry, Scope]] = []
        keys: set[tuple[tuple[str, ...], str]] = set()
        after = None
        while len(keys) < want:
            page = yield call(self.memory.get_page, **scope_kwargs(scope), filters=flt, limit=_PAGE, after=after)
            for entry in page.entries:
                item = self._search_item(entry)
                if wanted(item):
                    out.append((None, item, entry, scope))
                    keys.add((item.namespace, item.key))
            after = page.next_cursor
            if after is None:
                break
        return out

    def _list_op(self, op: ListNamespacesOp) -> MemoryOp[list[tuple[str, ...]]]:
        conditions = list(op.match_conditions or ())
        prefix: tuple[str, ...] = ()
        for c in conditions:  # a literal prefix narrows the scopes to read
            if c.match_type == "prefix" and "*" not in c.path:
                prefix = max(prefix, tuple(c.path), key=len)
        now = time.time()
        found: set[tuple[str, ...]] = set()
        for user, _by_path in self.mapping.covering(prefix, self._all_users()):
            home = self.mapping.home(user)
            where = {"user_id": user, "filters": self._live(now)}
            if user.startswith(_NS_SCOPE) and home is not None:  # a scope of one namespace: is anything in it?
                if (yield call(self.memory.get_page, **where, limit=1)).entries:
                    found.add(home)
                continue
            after = None
            while True:
                page = yield call(self.memory.get_page, **where, limit=_PAGE, after=after)
                found.update(self._namespace(e) for e in page.entries)
                after = page.next_cursor
                if after is None:
                    break
        names = [ns for ns in found if all(_ns_matches(ns, c) for c in conditions)]
        if op.max_depth is not None:
            names = [ns[: op.max_depth] for ns in names]
        return sorted(set(names))[op.offset : op.offset + op.limit]

    # --- convenience -------------------------------------------------------------------------
    def remember_users(self, *user_ids: str) -> None:
        """Make users visible to ``list_namespaces`` and prefix searches above the user level."""
        for u in user_ids:
            self._users.setdefault(u)


def _ns_matches(namespace: tuple[str, ...], condition: MatchCondition) -> bool:
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    part = namespace[: len(path)] if condition.match_type == "prefix" else namespace[len(namespace) - len(path) :]
    return all(p == "*" or p == n for p, n in zip(path, part))


__all__ = ["LightMemStore", "NamespaceMapping"]
