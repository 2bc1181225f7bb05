"""The storage contract, and the one place where scope is enforced.

Backends implement a handful of private primitives (``_upsert``, ``_search``,
``_scroll``, ``_count``, ``_delete``, ``close``) over a neutral filter tree. Every
public method here takes the caller's ``Scope`` and ANDs it into the filter before a
primitive runs, so no backend can forget it and no call path can reach another
user's entries. Writes are checked the other way round: a point whose payload names
another scope is refused.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Sequence, Union

import numpy as np

from ..errors import InvalidInputError
from ..lexical import SparseVec, validate_sparse
from ..types import Scope

Scalar = Union[str, int, bool]


@dataclass(frozen=True)
class Match:
    """``key`` equals ``value``, or (with ``any``) equals one of several values."""

    key: str
    value: Optional[Scalar] = None
    any: Optional[tuple[Scalar, ...]] = None


@dataclass(frozen=True)
class Range:
    key: str
    gt: Optional[float] = None
    gte: Optional[float] = None
    lt: Optional[float] = None
    lte: Optional[float] = None


@dataclass(frozen=True)
class HasIds:
    ids: tuple[str, ...]


Condition = Union[Match, Range, HasIds, "Filter"]


@dataclass(frozen=True)
class Filter:
    must: tuple[Condition, ...] = ()
    must_not: tuple[Condition, ...] = ()
    should: tuple[Condition, ...] = ()

    def __and__(self, other: Optional["Filter"]) -> "Filter":
        if other is None or other.is_empty():
            return self
        if self.is_empty():
            return other
        return Filter(must=(self, other))

    def is_empty(self) -> bool:
        return not (self.must or self.must_not or self.should)


def point_ids(ids: Sequence[Any]) -> list[str]:
    """Canonical UUID strings; anything else cannot name a point and is dropped."""
    out = []
    for i in ids:
        try:
            out.append(str(uuid.UUID(str(i))))
        except ValueError:
            continue
    return out


def scope_filter(scope: Scope) -> Filter:
    conds: list[Condition] = [Match("user_id", scope.user_id)]
    if scope.agent_id is not None:
        conds.append(Match("agent_id", scope.agent_id))
    if scope.session_id is not None:
        conds.append(Match("session_id", scope.session_id))
    return Filter(must=tuple(conds))


def in_scope(payload: dict[str, Any], scope: Scope) -> bool:
    """What ``scope_filter(scope)`` matches, tested on one payload."""
    return (
        payload.get("user_id") == scope.user_id
        and (scope.agent_id is None or payload.get("agent_id") == scope.agent_id)
        and (scope.session_id is None or payload.get("session_id") == scope.session_id)
    )


@dataclass
class PointIn:
    id: str
    payload: dict[str, Any]
    dense: Optional[Sequence[float]] = None
    sparse: Optional[SparseVec] = None


def encode_points(points: Sequence[PointIn]) -> list[dict[str, Any]]:
    """Points as JSON-able dicts (dense vectors as base64 float32), for the journal's redo records."""
    return [
        {
            "id": p.id,
            "payload": p.payload,
            "dense": None if p.dense is None else base64.b64encode(np.asarray(p.dense, dtype="<f4").tobytes()).decode(),
            "sparse": None
            if p.sparse is None
            else [[int(i) for i in p.sparse.indices], [float(v) for v in p.sparse.values]],
        }
        for p in points
    ]


def decode_points(rows: Sequence[dict[str, Any]]) -> list[PointIn]:
    return [
        PointIn(
            id=r["id"],
            payload=r["payload"],
            dense=None if r["dense"] is None else np.frombuffer(base64.b64decode(r["dense"]), dtype="<f4").tolist(),
            sparse=None if r["sparse"] is None else SparseVec(indices=r["sparse"][0], values=r["sparse"][1]),
        )
        for r in rows
    ]


@dataclass(slots=True)
class Record:
    id: str
    payload: dict[str, Any]
    score: Optional[float] = None


@dataclass
class VectorQuery:
    """One nearest-neighbour request against the dense or the sparse (BM25) vector.

    ``prefetch`` takes candidates from another query first and re-scores only those,
    which is upstream LightMem's "keyword filter, then vector re-rank".
    """

    using: Literal["dense", "sparse"]
    vector: Union[Sequence[float], SparseVec]
    limit: int
    filter: Optional[Filter] = None
    prefetch: Optional["VectorQuery"] = None
    score_threshold: Optional[float] = None
    # Payload keys to return (None = all). Ranking needs a few keys of many candidates;
    # the full payload is fetched for the handful that are kept.
    payload: Optional[tuple[str, ...]] = None


IndexKind = Literal["keyword", "float", "integer", "bool"]
ORDER_KEY = "_ts"  # the payload key listings are ordered by (then the point id)


@dataclass(frozen=True)
class Cursor:
    """Where a listing stopped: the (time stamp, id) of the last point it returned.

    Listings are ordered by time stamp, then id: a total order, so a page never repeats
    or skips a point even when thousands share one time stamp (every turn of a session
    can carry the session's date). The next page starts strictly after this pair,
    whatever was inserted or deleted in between.
    """

    ts: float
    id: str

    def encode(self) -> str:
        raw = json.dumps([self.ts, self.id], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: Any, field_name: str = "after") -> "Cursor":
        if not isinstance(token, str) or not token:
            raise InvalidInputError(field_name, "expected a cursor string (a page's next_cursor)")
        try:
            ts, pid = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not isinstance(pid, str):
                raise ValueError
        except (ValueError, TypeError):
            raise InvalidInputError(field_name, "not a cursor this memory issued (use a page's next_cursor)") from None
        return cls(float(ts), pid)

    @classmethod
    def of(cls, record: "Record") -> "Cursor":
        return cls(float(record.payload.get(ORDER_KEY) or 0.0), record.id)


def _order(record: "Record") -> tuple[float, str]:
    return float(record.payload.get(ORDER_KEY) or 0.0), record.id


@dataclass
class StoreSpec:
    """What a collection holds: its dense size and which payload keys are indexed."""

    name: str
    dims: int
    indexes: dict[str, IndexKind] = field(default_factory=dict)


class MemoryStore(ABC):
    """A collection of points (dense + sparse vectors and a payload) partitioned by scope."""

    spec: StoreSpec

    # --- primitives a backend implements ------------------------------------------
    @abstractmethod
    def _upsert(self, points: list[PointIn]) -> None: ...

    @abstractmethod
    def _search(self, queries: list[VectorQuery], idf_corpus: Filter) -> list[list[Record]]: ...

    @abstractmethod
    def _scroll(
        self, flt: Filter, limit: int, order_by: Optional[str], descending: bool, start: Optional[str] = None
    ) -> list[Record]:
        """Up to ``limit`` points of ``flt``: by the payload key ``order_by``, or (None) by
        ascending id from ``start`` (inclusive), as both engines scroll."""

    @abstractmethod
    def _count(self, flt: Filter) -> int: ...

    @abstractmethod
    def _delete(self, flt: Filter) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def _fetch(self, ids: list[str]) -> list[Record]:
        """Points by id, whatever their scope (``get`` keeps the caller's); backends with
        a direct lookup override this scan."""
        return self._scroll(Filter(must=(HasIds(tuple(ids)),)), len(ids), None, False)

    def _dense_vectors(self, ids: list[str]) -> dict[str, list[float]]:
        """Stored dense vectors by id; backends that cannot return them return {} and
        callers re-embed instead."""
        return {}

    def optimize(self) -> None:  # noqa: B027 - optional hook: backends with nothing to compact keep the no-op
        """Compact segments; slow, so only on request (never on the hot path)."""

    def _drop_all(self) -> None:
        """Remove every point of every scope (``reset``)."""
        self._delete(Filter())

    # --- public API: scope always applied -----------------------------------------
    def upsert(self, scope: Scope, points: Sequence[PointIn]) -> None:
        points = list(points)
        for i, p in enumerate(points):
            for key in ("user_id", "agent_id", "session_id"):
                if p.payload.get(key) != getattr(scope, key):
                    raise InvalidInputError(f"points[{i}].{key}", "does not match the scope of the write")
            self._check_dense(p.dense, f"points[{i}].dense")
            if p.sparse is not None:
                validate_sparse(p.sparse, f"points[{i}].sparse")
        if not points:
            return
        # Ids are global to the collection: refuse to overwrite a point that another
        # scope owns, whatever the payload says.
        owner = Filter(must=(HasIds(tuple(point_ids([p.id for p in points]))),), must_not=(scope_filter(scope),))
        if self._count(owner):
            raise InvalidInputError("points", "an id belongs to an entry of another scope")
        self._upsert(points)

    def search(self, scope: Scope, queries: Sequence[VectorQuery]) -> list[list[Record]]:
        sf = scope_filter(scope)
        scoped = [self._scope_query(q, sf) for q in queries]
        return self._search(scoped, sf) if scoped else []

    def get(self, scope: Scope, ids: Sequence[str]) -> list[Record]:
        ids = point_ids(ids)
        if not ids:
            return []
        # By id, then the scope test scope_filter() would make in the engine: a lookup
        # by id costs half a filtered scan, and another scope's point never leaves here.
        found = [r for r in self._fetch(ids) if in_scope(r.payload, scope)]
        order = {i: n for n, i in enumerate(ids)}
        return sorted(found, key=lambda r: order.get(r.id, len(order)))

    def vectors(self, scope: Scope, ids: Sequence[str]) -> dict[str, list[float]]:
        """Dense vectors of the caller's own points (others' ids are silently absent)."""
        mine = [r.id for r in self.get(scope, ids)]
        return self._dense_vectors(mine) if mine else {}

    def scroll(
        self,
        scope: Scope,
        flt: Optional[Filter] = None,
        *,
        limit: int = 100,
        order_by: Optional[str] = None,
        descending: bool = False,
    ) -> list[Record]:
        return self._scroll(scope_filter(scope) & flt, limit, order_by, descending)

    def page(
        self, scope: Scope, flt: Optional[Filter] = None, *, limit: int, after: Optional[Cursor] = None, offset: int = 0
    ) -> list[Record]:
        """Points of the scope in (time stamp, id) order: ``limit`` of them, after the
        cursor (or skipping ``offset``).

        Engines order by one payload key and break ties arbitrarily, so a plain ordered
        scroll cut at ``limit`` may end inside a group of equal time stamps with any of
        its members. Here the group a cut falls in is read whole and sorted by id, and
        a cursor resumes strictly after its (time stamp, id): every point is returned
        exactly once across pages.
        """
        base = scope_filter(scope) & flt
        want = offset + limit
        out: list[Record] = []
        rest = base
        if after is not None:  # the rest of the cursor's own time stamp, by id
            out = [r for r in self._at(base, after.ts, want + 1, start=after.id) if r.id != after.id][:want]
            rest = base & Filter(must=(Range(ORDER_KEY, gt=after.ts),))
        if len(out) < want:
            need = want - len(out)
            records = sorted(self._scroll(rest, need, ORDER_KEY, False), key=_order)
            if len(records) == need:  # the cut may fall inside a group of equal time stamps: its lowest ids
                last = _order(records[-1])[0]
                head = [r for r in records if _order(r)[0] != last]
                records = head + self._at(rest, last, need - len(head))
            out += records
        return out[offset:want]

    def _at(self, flt: Filter, ts: float, limit: int, start: Optional[str] = None) -> list[Record]:
        """Points of ``flt`` at exactly one time stamp, by id from ``start``."""
        return self._scroll(flt & Filter(must=(Range(ORDER_KEY, gte=ts, lte=ts),)), limit, None, False, start)

    def count(self, scope: Scope, flt: Optional[Filter] = None) -> int:
        return self._count(scope_filter(scope) & flt)

    def delete(self, scope: Scope, ids: Sequence[str]) -> None:
        ids = point_ids(ids)
        if ids:
            self._delete(scope_filter(scope) & Filter(must=(HasIds(tuple(ids)),)))

    def delete_where(self, scope: Scope, flt: Optional[Filter] = None) -> None:
        self._delete(scope_filter(scope) & flt)

    # --- helpers ---------------------------------------------------------------------
    def _check_dense(self, vec: Optional[Sequence[float]], field_name: str) -> None:
        if vec is None:
            return
        if len(vec) != self.spec.dims:
            raise InvalidInputError(field_name, f"vector has {len(vec)} dimensions, the store expects {self.spec.dims}")
        try:
            finite = bool(np.isfinite(np.asarray(vec, dtype=np.float64)).all())
        except (TypeError, ValueError):
            raise InvalidInputError(field_name, "vector must hold numbers") from None
        if not finite:
            raise InvalidInputError(field_name, "vector contains NaN or infinity")

    def _scope_query(self, q: VectorQuery, sf: Filter) -> VectorQuery:
        if q.using == "dense":
            self._check_dense(q.vector, "query.vector")  # type: ignore[arg-type]
        else:
            validate_sparse(q.vector, "query.vector")  # type: ignore[arg-type]
        if q.limit <= 0:
            raise InvalidInputError("limit", "must be positive")
        # Only the filter changes: every other field of the request (the payload keys to
        # return among them) reaches the engine as the caller wrote it.
        return dataclasses.replace(
            q, filter=sf & q.filter, prefetch=self._scope_query(q.prefetch, sf) if q.prefetch else None
        )

    def __enter__(self) -> "MemoryStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_store(config: Any, spec: StoreSpec) -> MemoryStore:
    """Open (or create) the collection ``spec.name`` with the configured backend."""
    from .. import registry

    return registry.create("store", config.provider, config, spec)
