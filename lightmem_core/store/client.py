"""The qdrant-client backend: a Qdrant server, or qdrant-client's own local mode.

Chosen with ``store.provider='qdrant'``. A server (``url`` or ``host``) is the way to
share one store between processes; ``location=':memory:'`` is a throwaway store for
tests; a bare ``path`` is qdrant-client's pure-Python on-disk mode (slower than the
embedded qdrant-edge engine, kept for parity with upstream LightMem's setup).

It behaves like ``EdgeStore`` so callers cannot tell the two apart: named vectors
``dense``/``bm25`` with IDF applied by the engine, IDF measured over the caller's own
entries, every engine error wrapped in ``StoreError``, a second open of a local
folder reported as ``StoreLockedError``, and existing data never dropped on open
(upstream LightMem recreated its collection on every start).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from typing import Any, Callable, Optional, TypeVar, cast

from ..config import StoreConfig
from ..errors import StoreError, StoreLockedError
from ..lexical import SparseVec
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
    except StoreError:
        raise
    except Exception as exc:  # httpx/grpc/pydantic/ValueError/RuntimeError alike
        raise StoreError(f"qdrant-client {what} failed: {exc}") from exc


def _rejects_idf(exc: StoreError) -> bool:
    """Whether the server answered that it does not know the ``idf`` search parameter."""
    from qdrant_client.http.exceptions import UnexpectedResponse

    cause = exc.__cause__
    return isinstance(cause, UnexpectedResponse) and cause.status_code in (400, 422) and "idf" in str(cause).lower()


class QdrantClientStore(MemoryStore):
    """``MemoryStore`` over qdrant-client; one instance per collection, safe across threads."""

    def __init__(self, config: StoreConfig, spec: StoreSpec) -> None:
        from qdrant_client import QdrantClient, models

        self._models = models
        self.spec = spec
        self.collection = f"{config.collection_name}_{spec.name}"
        self._lock = threading.RLock()
        self._closed = False
        # IDF over the caller's scope needs a recent client and engine. Without it the
        # engine falls back to collection-wide IDF; a server that refuses the parameter
        # is detected on the first sparse query.
        self._scoped_idf = hasattr(models, "IdfCorpusParams")
        if not self._scoped_idf:
            log.info("this qdrant-client has no IdfCorpusParams; BM25 uses collection-wide IDF")
        self.path: Optional[str] = None

        timeout = int(math.ceil(config.timeout))
        if config.url or config.host:
            self._local = False
            if config.url:
                kwargs: dict[str, Any] = {"url": config.url}
                self._where = config.url
            else:
                kwargs = {"host": config.host, "port": config.port or 6333}
                self._where = f"{config.host}:{config.port or 6333}"
            self._client = _call("connect", lambda: QdrantClient(api_key=config.api_key, timeout=timeout, **kwargs))
        elif config.location and config.location != ":memory:":
            # qdrant-client reads any other location as a server URL.
            self._local = False
            self._where = config.location
            self._client = _call(
                "connect", lambda: QdrantClient(location=config.location, api_key=config.api_key, timeout=timeout)
            )
        elif config.location == ":memory:":
            self._local = True
            self._where = ":memory:"
            # The RLock serialises every call, so the same-thread check only gets in the way.
            self._client = _call(
                "open", lambda: QdrantClient(location=":memory:", force_disable_check_same_thread=True)
            )
        else:
            self._local = True
            root = os.path.abspath(os.path.expanduser(config.path or "./lightmem_data"))
            # One folder per collection: qdrant-client locks a whole folder, so sharing
            # one would stop two collections of the same config from being open at once.
            # The suffix keeps it apart from the edge shard ``<collection>_<spec>``.
            self.path = os.path.join(root, f"{config.collection_name}_{spec.name}_client")
            self._where = self.path
            self._client = self._open_local(QdrantClient, self.path)

        try:
            self._ensure_collection()
        except BaseException:
            # Otherwise a local folder stays locked until garbage collection, and the
            # retry with the right settings would be told the store is in use.
            self._client_close()
            raise

    # --- lifecycle -------------------------------------------------------------------
    def _open_local(self, client_cls: Any, path: str) -> Any:
        try:
            return client_cls(path=path, force_disable_check_same_thread=True)
        except (KeyboardInterrupt, SystemExit):
            raise
        except RuntimeError as exc:
            if "already accessed" in str(exc) or "lock" in str(exc).lower():
                raise StoreLockedError(
                    f"the qdrant-client local store at {path} is already open (by another process, or another "
                    "LightMemory in this one). Close the other instance first, share one LightMemory object, "
                    "or use a Qdrant server (store.provider='qdrant', store.url=...) for multi-process access."
                ) from exc
            raise StoreError(f"cannot open qdrant-client local store at {path}: {exc}") from exc
        except Exception as exc:
            raise StoreError(f"cannot open qdrant-client local store at {path}: {exc}") from exc

    def _ensure_collection(self) -> None:
        models = self._models
        client = self._client
        name = self.collection
        if not _call("collection_exists", lambda: client.collection_exists(name)):
            log.info("creating qdrant collection %s (dims=%d) at %s", name, self.spec.dims, self._where)
            try:
                client.create_collection(
                    name,
                    vectors_config={DENSE: models.VectorParams(size=self.spec.dims, distance=models.Distance.COSINE)},
                    sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
                )
            except (KeyboardInterrupt, SystemExit, MemoryError):
                raise
            except Exception as exc:
                # Another process may have created it in between; then use theirs.
                if not _call("collection_exists", lambda: client.collection_exists(name)):
                    raise StoreError(f"cannot create qdrant collection {name} at {self._where}: {exc}") from exc
        self._check_schema()
        if self._local:
            # qdrant-client's local mode ignores payload indexes (and warns about each).
            return
        kinds = {
            "keyword": models.PayloadSchemaType.KEYWORD,
            "float": models.PayloadSchemaType.FLOAT,
            "integer": models.PayloadSchemaType.INTEGER,
            "bool": models.PayloadSchemaType.BOOL,
        }
        have = set(_call("get_collection", lambda: client.get_collection(name)).payload_schema or {})
        for key, kind in self.spec.indexes.items():
            if key not in have:

                def create(key: str = key, kind: str = kind) -> Any:
                    return client.create_payload_index(name, field_name=key, field_schema=kinds[kind], wait=True)

                _call("create_payload_index", create)

    def _check_schema(self) -> None:
        """Refuse a collection whose vectors do not fit, before anything is written to it."""
        name = self.collection
        info = _call("get_collection", lambda: self._client.get_collection(name))
        vectors = info.config.params.vectors
        dense = vectors.get(DENSE) if isinstance(vectors, dict) else None
        if dense is None:
            raise StoreError(
                f"the qdrant collection {name} at {self._where} has no dense vector named {DENSE!r} (it was not "
                "created by this library); use another store.collection_name"
            )
        if dense.size != self.spec.dims:
            raise StoreError(
                f"the qdrant collection {name} at {self._where} was created with embedding size {dense.size}, not "
                f"{self.spec.dims}; use the embedder it was built with or another store.collection_name/path"
            )
        sparse = info.config.params.sparse_vectors or {}
        if SPARSE not in sparse:
            raise StoreError(
                f"the qdrant collection {name} at {self._where} has no sparse vector named {SPARSE!r} (it was not "
                "created by this library); use another store.collection_name"
            )

    def _client_close(self) -> None:
        try:
            self._client.close()
        except Exception as exc:  # closing is best effort once something else failed
            log.debug("closing qdrant-client failed: %s", exc)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                _call("close", self._client.close)

    def optimize(self) -> None:
        """Nothing to do: a server optimises in the background, local mode has no segments."""

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    # --- primitives --------------------------------------------------------------------
    def _upsert(self, points: list[PointIn]) -> None:
        models = self._models

        def build() -> list[Any]:
            out = []
            for p in points:
                vec: dict[str, Any] = {}
                if p.dense is not None:
                    vec[DENSE] = [float(x) for x in p.dense]
                if p.sparse is not None and len(p.sparse):
                    vec[SPARSE] = models.SparseVector(
                        indices=[int(i) for i in p.sparse.indices], values=[float(v) for v in p.sparse.values]
                    )
                out.append(models.PointStruct(id=p.id, vector=vec, payload=p.payload))
            return out

        structs = _call("upsert", build)
        with self._lock:
            self._check_open()
            # wait=True: acknowledged means stored, as with the embedded engine's WAL.
            _call("upsert", lambda: self._client.upsert(self.collection, points=structs, wait=True))

    def _idf_params(self, idf_corpus: Filter) -> Any:
        models = self._models
        if not self._scoped_idf:
            return None
        return models.SearchParams(idf=models.IdfCorpusParams(corpus=self._filter(idf_corpus)))

    def _request(self, q: VectorQuery, params: Any, *, prefetch: bool) -> Any:
        models = self._models
        if q.using == "dense":
            query: Any = [float(x) for x in q.vector]  # type: ignore[union-attr]
            name, qparams = DENSE, None
        else:
            vec = cast(SparseVec, q.vector)  # a sparse query carries a SparseVec (validate_sparse checked it)
            query = models.SparseVector(indices=[int(i) for i in vec.indices], values=[float(v) for v in vec.values])
            name, qparams = SPARSE, params
        kwargs: dict[str, Any] = dict(
            query=query,
            using=name,
            limit=q.limit,
            filter=self._filter(q.filter) if q.filter else None,
            score_threshold=q.score_threshold,
            params=qparams,
        )
        if q.prefetch is not None:
            kwargs["prefetch"] = [self._request(q.prefetch, params, prefetch=True)]
        if prefetch:
            return models.Prefetch(**kwargs)
        return models.QueryRequest(with_payload=list(q.payload) if q.payload is not None else True, **kwargs)

    def _search(self, queries: list[VectorQuery], idf_corpus: Filter) -> list[list[Record]]:
        with self._lock:
            self._check_open()
            try:
                return self._run_queries(queries, idf_corpus)
            except StoreError as exc:
                if self._local or not self._scoped_idf or not _rejects_idf(exc):
                    raise
                log.warning(
                    "the Qdrant server at %s does not take a per-scope IDF corpus; BM25 scores use "
                    "collection-wide IDF from now on (%s)",
                    self._where,
                    exc,
                )
                self._scoped_idf = False
                return self._run_queries(queries, idf_corpus)

    def _run_queries(self, queries: list[VectorQuery], idf_corpus: Filter) -> list[list[Record]]:
        # IDF over the caller's own entries, as on the embedded store: the same ranking
        # on both backends, and no statistics derived from other users' text.
        requests = _call(
            "query", lambda: [self._request(q, self._idf_params(idf_corpus), prefetch=False) for q in queries]
        )
        results = _call("query_batch", lambda: self._client.query_batch_points(self.collection, requests=requests))
        return [[Record(str(p.id), dict(p.payload or {}), float(p.score)) for p in res.points] for res in results]

    def _scroll(
        self, flt: Filter, limit: int, order_by: Optional[str], descending: bool, start: Optional[str] = None
    ) -> list[Record]:
        models = self._models
        order = None
        if order_by:
            direction = models.Direction.DESC if descending else models.Direction.ASC
            order = _call("scroll", lambda: models.OrderBy(key=order_by, direction=direction))
        qf = _call("scroll", lambda: self._filter(flt))
        with self._lock:
            self._check_open()
            records, _ = _call(
                "scroll",
                lambda: self._client.scroll(
                    self.collection,
                    scroll_filter=qf,
                    limit=limit,
                    order_by=order,
                    with_payload=True,
                    offset=start if order is None else None,
                ),
            )
        return [Record(str(r.id), dict(r.payload or {})) for r in records]

    def _dense_vectors(self, ids: list[str]) -> dict[str, list[float]]:
        with self._lock:
            self._check_open()
            records = _call(
                "retrieve",
                lambda: self._client.retrieve(self.collection, ids=ids, with_payload=False, with_vectors=["dense"]),
            )
        out: dict[str, list[float]] = {}
        for r in records:
            vec = r.vector.get("dense") if isinstance(r.vector, dict) else r.vector
            if vec is not None:  # "dense" is one plain vector, as the collection was created
                out[str(r.id)] = list(cast(list[float], vec))
        return out

    def _count(self, flt: Filter) -> int:
        qf = _call("count", lambda: self._filter(flt))
        with self._lock:
            self._check_open()
            return int(_call("count", lambda: self._client.count(self.collection, count_filter=qf, exact=True)).count)

    def _delete(self, flt: Filter) -> None:
        models = self._models
        selector = _call("delete", lambda: models.FilterSelector(filter=self._filter(flt)))
        with self._lock:
            self._check_open()
            _call("delete", lambda: self._client.delete(self.collection, points_selector=selector, wait=True))

    # --- filter translation ---------------------------------------------------------------
    def _filter(self, flt: Filter) -> Any:
        return self._models.Filter(
            must=[self._cond(c) for c in flt.must] or None,
            must_not=[self._cond(c) for c in flt.must_not] or None,
            should=[self._cond(c) for c in flt.should] or None,
        )

    def _cond(self, c: Any) -> Any:
        models = self._models
        if isinstance(c, Filter):
            return self._filter(c)
        if isinstance(c, Match):
            if c.any is not None:
                values = list(c.any)
                if all(isinstance(v, str) for v in values) or all(
                    isinstance(v, int) and not isinstance(v, bool) for v in values
                ):
                    return models.FieldCondition(key=c.key, match=models.MatchAny(any=values))
                # MatchAny takes only all-strings or all-integers; a mix (or bools)
                # is the same thing spelled as "equals one of".
                return models.Filter(
                    should=[models.FieldCondition(key=c.key, match=models.MatchValue(value=v)) for v in values]
                )
            return models.FieldCondition(key=c.key, match=models.MatchValue(value=c.value))
        if isinstance(c, Range):
            return models.FieldCondition(key=c.key, range=models.Range(gt=c.gt, gte=c.gte, lt=c.lt, lte=c.lte))
        if isinstance(c, HasIds):
            return models.HasIdCondition(has_id=list(c.ids))
        raise TypeError(f"unsupported condition {c!r}")
