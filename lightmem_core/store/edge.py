"""Embedded default: a qdrant-edge shard in a directory, with its own WAL.

In-process (no server), durable on acknowledge, and fast on filtered queries because
payload indexes let it scan only the caller's points. Its sharp edges are handled
here: engine errors (bare ``Exception`` or a pyo3 panic) become ``StoreError``; the
single-writer lock becomes ``StoreLockedError`` with what to do about it; malformed
sparse vectors never reach it (``MemoryStore.upsert`` validates them).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable, Optional, TypeVar

from ..config import StoreConfig
from ..errors import StoreError, StoreLockedError
from .base import Filter, HasIds, Match, MemoryStore, PointIn, Range, Record, StoreSpec, VectorQuery

log = logging.getLogger(__name__)
T = TypeVar("T")

DENSE = "dense"
SPARSE = "bm25"


def _call(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException as exc:  # pyo3's PanicException derives from BaseException
        raise StoreError(f"qdrant-edge {what} failed: {exc}") from exc


class EdgeStore(MemoryStore):
    def __init__(self, config: StoreConfig, spec: StoreSpec) -> None:
        import qdrant_edge as qe

        self._qe = qe
        self.spec = spec
        root = os.path.abspath(os.path.expanduser(config.path or "./lightmem_data"))
        self.path = os.path.join(root, f"{config.collection_name}_{spec.name}")
        self._lock = threading.RLock()
        self._filters: dict[Filter, Any] = {}
        self._closed = False
        self._shard = self._open()

    # --- lifecycle -------------------------------------------------------------------
    def _edge_config(self) -> Any:
        qe = self._qe
        return qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=self.spec.dims, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        )

    def _open(self) -> Any:
        qe = self._qe
        exists = os.path.isdir(os.path.join(self.path, "segments"))
        try:
            if exists:
                shard = qe.EdgeShard.load(self.path, self._edge_config())
            else:
                os.makedirs(self.path, exist_ok=True)
                shard = qe.EdgeShard.create(self.path, self._edge_config())
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            text = str(exc)
            if "WouldBlock" in text or "lock" in text.lower():
                raise StoreLockedError(
                    f"the embedded store at {self.path} is already open (by another process, or another "
                    "LightMemory in this one). Close the other instance first, share one LightMemory object, "
                    "or use a Qdrant server (store.provider='qdrant', store.url=...) for multi-process access."
                ) from exc
            if exists and ("dim" in text.lower() or "incompatible" in text.lower() or "vector" in text.lower()):
                raise StoreError(
                    f"the store at {self.path} was created with another embedding size than {self.spec.dims}; "
                    f"use the embedder it was built with or a new store path ({text})"
                ) from exc
            raise StoreError(f"cannot open qdrant-edge store at {self.path}: {text}") from exc
        self._ensure_indexes(shard)
        return shard

    def _ensure_indexes(self, shard: Any) -> None:
        qe = self._qe
        kinds = {
            "keyword": qe.PayloadSchemaType.Keyword,
            "float": qe.PayloadSchemaType.Float,
            "integer": qe.PayloadSchemaType.Integer,
            "bool": qe.PayloadSchemaType.Bool,
        }
        have = set(_call("info", shard.info).payload_schema)
        for key, kind in self.spec.indexes.items():
            if key not in have:

                def create(key: str = key, kind: str = kind) -> Any:
                    return shard.update(qe.UpdateOperation.create_field_index(key, kinds[kind]))

                _call("create_field_index", create)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                _call("flush", self._shard.flush)
                _call("close", self._shard.close)

    def optimize(self) -> None:
        with self._lock:
            _call("optimize", self._shard.optimize)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    # --- primitives --------------------------------------------------------------------
    def _upsert(self, points: list[PointIn]) -> None:
        qe = self._qe
        out = []
        for p in points:
            vec: dict[str, Any] = {}
            if p.dense is not None:
                vec[DENSE] = [float(x) for x in p.dense]
            if p.sparse is not None and len(p.sparse):
                vec[SPARSE] = qe.SparseVector(list(p.sparse.indices), list(p.sparse.values))
            out.append(qe.Point(p.id, vec, p.payload))
        with self._lock:
            self._check_open()
            _call("upsert", lambda: self._shard.update(qe.UpdateOperation.upsert_points(out)))

    def _request(self, q: VectorQuery, idf: Any, *, prefetch: bool) -> Any:
        qe = self._qe
        if q.using == "dense":
            vector: Any = [float(x) for x in q.vector]  # type: ignore[union-attr]
            name, params = DENSE, None
        else:
            vector = qe.SparseVector(list(q.vector.indices), list(q.vector.values))  # type: ignore[union-attr]
            name, params = SPARSE, qe.SearchParams(idf=idf)
        kwargs: dict[str, Any] = dict(
            limit=q.limit,
            query=qe.Query.Nearest(vector, using=name),
            filter=self._filter(q.filter) if q.filter else None,
            score_threshold=q.score_threshold,
            params=params,
        )
        if q.prefetch is not None:
            kwargs["prefetches"] = [self._request(q.prefetch, idf, prefetch=True)]
        if prefetch:
            return qe.Prefetch(**kwargs)
        return qe.QueryRequest(with_payload=list(q.payload) if q.payload is not None else True, **kwargs)

    def _search(self, queries: list[VectorQuery], idf_corpus: Filter) -> list[list[Record]]:
        qe = self._qe
        # IDF over the caller's own entries: better ranking for them, and no
        # statistics derived from other users' text.
        idf = qe.IdfParams(corpus=self._filter(idf_corpus))
        requests = [self._request(q, idf, prefetch=False) for q in queries]
        with self._lock:
            self._check_open()
            if len(requests) == 1:
                results = [_call("query", lambda: self._shard.query(requests[0]))]
            else:
                results = _call("query_batch", lambda: self._shard.query_batch(qe.QueryBatchRequest(requests)))
        return [[Record(str(p.id), p.payload or {}, float(p.score)) for p in res] for res in results]

    def _scroll(
        self, flt: Filter, limit: int, order_by: Optional[str], descending: bool, start: Optional[str] = None
    ) -> list[Record]:
        qe = self._qe
        order = None
        if order_by:
            order = qe.OrderBy(order_by, qe.Direction.Desc if descending else qe.Direction.Asc)
        req = qe.ScrollRequest(
            limit=limit,
            filter=self._filter(flt),
            with_payload=True,
            order_by=order,
            offset=start if order is None else None,
        )
        with self._lock:
            self._check_open()
            records, _ = _call("scroll", lambda: self._shard.scroll(req))
        return [Record(str(r.id), r.payload or {}) for r in records]

    def _fetch(self, ids: list[str]) -> list[Record]:
        with self._lock:
            self._check_open()
            records = _call("retrieve", lambda: self._shard.retrieve(ids, with_payload=True, with_vector=False))
        return [Record(str(r.id), r.payload or {}) for r in records]

    def _dense_vectors(self, ids: list[str]) -> dict[str, list[float]]:
        with self._lock:
            self._check_open()
            records = _call("retrieve", lambda: self._shard.retrieve(ids, with_payload=False, with_vector=[DENSE]))
        out = {}
        for r in records:
            vec = r.vector.get(DENSE) if isinstance(r.vector, dict) else r.vector
            if vec is not None:
                out[str(r.id)] = list(vec)
        return out

    def _count(self, flt: Filter) -> int:
        req = self._qe.CountRequest(exact=True, filter=self._filter(flt))
        with self._lock:
            self._check_open()
            return int(_call("count", lambda: self._shard.count(req)))

    def _delete(self, flt: Filter) -> None:
        qe = self._qe
        op = qe.UpdateOperation.delete_points_by_filter(self._filter(flt))
        with self._lock:
            self._check_open()
            _call("delete", lambda: self._shard.update(op))

    # --- filter translation ---------------------------------------------------------------
    def _filter(self, flt: Filter) -> Any:
        # A query sends the same scope filter four or five times (each list, the IDF
        # corpus): translate each distinct tree once. Filters are frozen, so hashable.
        out = self._filters.get(flt)
        if out is None:
            out = self._qe.Filter(
                must=[self._cond(c) for c in flt.must] or None,
                must_not=[self._cond(c) for c in flt.must_not] or None,
                should=[self._cond(c) for c in flt.should] or None,
            )
            if len(self._filters) >= 512:
                self._filters.clear()
            self._filters[flt] = out
        return out

    def _cond(self, c: Any) -> Any:
        qe = self._qe
        if isinstance(c, Filter):
            return self._filter(c)
        if isinstance(c, Match):
            if c.any is not None:
                return qe.FieldCondition(key=c.key, match=qe.MatchAny(list(c.any)))
            return qe.FieldCondition(key=c.key, match=qe.MatchValue(c.value))
        if isinstance(c, Range):
            return qe.FieldCondition(key=c.key, range=qe.RangeFloat(gte=c.gte, gt=c.gt, lte=c.lte, lt=c.lt))
        if isinstance(c, HasIds):
            return qe.HasIdCondition(set(c.ids))
        raise TypeError(f"unsupported condition {c!r}")
