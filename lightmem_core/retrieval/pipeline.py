"""The read path, top-down: request, query analysis, candidate lists, fusion, stages.

``LightMemory`` builds a ``RetrieveRequest`` and runs ``ReadPath.run_op``; everything a
retrieve does happens here, in this order:

1. analyse the question (``QueryAnalysis``): its period, tense, speakers;
2. embed it once and encode it for BM25;
3. boost stages find their subsets (period, summaries, speaker);
4. one engine batch searches the plain lists and the boost lists; ``neighbours`` adds
   the list of turns next to the best ones (a journal read, no search);
5. fusion ranks them (with the ``recency`` list for present-tense questions);
6. ``hydrate`` reads full payloads of the kept hits;
7. hit stages choose what each hit shows, reorder for the present, add windows;
8. each hit gets its cosine to the question (``Hit.similarity``).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..config import RetrievalConfig
from ..drive import Op, call
from ..store.base import Filter, VectorQuery
from ..types import Hit, Scope
from . import stages as _stages
from .candidates import CandidateList, ListKind, Retriever, plan, retriever_weight
from .fusion import RANKING_FIELDS, rank, sibling_ids, to_hits
from .query import QueryAnalysis, without_names
from .request import RetrieveRequest
from .stages import (
    BoostStage,
    ClosestSentence,
    HitStage,
    Hydrate,
    Neighbours,
    ReadState,
    Recency,
    Sources,
    SpeakerBoost,
    Stage,
)


class ReadPath:
    """The configured stages over one memory's sources."""

    def __init__(self, sources: Sources, config: RetrievalConfig) -> None:
        self.sources = sources
        self.config = config
        self.stages: list[Stage] = _stages.build(config.stages, config.stage_settings)

    def _stage(self, kind: type[Stage]) -> Optional[Stage]:
        return next((s for s in self.stages if isinstance(s, kind)), None)

    def run_op(self, request: RetrieveRequest, scopes: Sequence[Scope]) -> Op[list[Hit]]:
        """One scope as it is; several ranked together by similarity (fused scores of
        different lists do not compare), each kept to its own best ``limit``."""
        if len(scopes) == 1:
            return (yield from self._one_op(request, scopes[0]))
        hits: list[Hit] = []
        for scope in scopes:
            hits += yield from self._one_op(request, scope)
        hits.sort(key=lambda h: -(h.similarity if h.similarity is not None else h.score))
        return [h.model_copy(update={"rank": n}) for n, h in enumerate(hits[: request.limit], start=1)]

    def _one_op(self, request: RetrieveRequest, scope: Scope) -> Op[list[Hit]]:
        cfg = self.config
        analysis = QueryAnalysis.of(request.query, request.now, temporal=cfg.temporal != "off")
        store = self.sources.summaries if request.summaries_only else self.sources.entries
        state = ReadState(request, analysis, cfg, scope, self.sources, store, filter=request.search_filter)
        yield from self._encode_op(state)

        base_filter = state.filter
        boosts: list[tuple[BoostStage, Filter]] = []
        for stage in self.stages:
            if isinstance(stage, BoostStage):
                subset = yield from stage.prepare(state)
                if subset is None:
                    continue
                if stage.restricts(cfg):
                    base_filter = subset & base_filter
                else:
                    boosts.append((stage, subset))

        hydrate = self._stage(Hydrate)
        fields = hydrate.search_fields if isinstance(hydrate, Hydrate) else None
        planned: list[tuple[ListKind, float, VectorQuery]] = []
        for retriever, q in self._plan(state, base_filter, fields, boost_depth=False):
            planned.append((ListKind(retriever), retriever_weight(retriever, cfg), q))
        for stage, subset in boosts:
            for retriever, q in self._plan(state, subset & base_filter, fields, boost_depth=True):
                planned.append(
                    (ListKind(retriever, stage.boost), stage.weight(cfg) * retriever_weight(retriever, cfg), q)
                )
        if not planned:
            return state.summaries
        results = yield call(store.search, scope, [q for _, _, q in planned])
        state.lists = [CandidateList(kind, records, weight) for (kind, weight, _), records in zip(planned, results)]
        neighbours = self._stage(Neighbours)
        if isinstance(neighbours, Neighbours):
            yield from neighbours.extend_op(state)

        recency = self._stage(Recency)
        state.ranked = rank(
            state.lists,
            limit=request.limit,
            rrf_k=cfg.rrf_k,
            per_source_limit=cfg.per_source_limit,
            recency_weight=recency.weight(state) if isinstance(recency, Recency) else 0.0,
        )
        state.siblings = sibling_ids(state.ranked, state.lists) if cfg.per_source_limit == 1 else {}
        if isinstance(hydrate, Hydrate):
            yield from hydrate.apply(state)
        else:
            state.payloads = {r.id: r.payload for cl in state.lists for r in cl.records}
        state.groups = [[rec.id, *state.siblings.get(rec.id, ())] for rec, _, _ in state.ranked]
        hit_stages = [s for s in self.stages if isinstance(s, HitStage)]
        for stage in hit_stages:
            if isinstance(stage, ClosestSentence):  # it chooses among records, before they become hits
                yield from stage.apply(state)
        state.hits = to_hits(state.ranked, state.payloads)
        for stage in hit_stages:
            if not isinstance(stage, ClosestSentence):
                yield from stage.apply(state)
        if state.dense is not None:
            yield from self._similarities_op(state)
        return state.summaries + state.hits

    def _encode_op(self, state: ReadState) -> Op[None]:
        strategy, analysis = state.request.strategy, state.analysis
        if strategy in ("embedding", "hybrid"):
            speaker = self._stage(SpeakerBoost)
            names = (yield from speaker.names_to_leave_out_op(state)) if isinstance(speaker, SpeakerBoost) else ()
            # BM25 keeps the names: there a frequent name weighs little, and leaving it out
            # there too cost LoCoMo's temporal questions (benchmarks/README.md, issue 19)
            state.dense = (yield call(self.sources.embedder.embed, [without_names(analysis.text, names)]))[0]
        state.sparse = self.sources.sparse(analysis.text, strategy)

    def _plan(
        self, state: ReadState, flt: Optional[Filter], fields: Optional[tuple[str, ...]], *, boost_depth: bool
    ) -> list[tuple[Retriever, VectorQuery]]:
        # the boost lists only re-weigh: a shallower list will do
        depth = max(state.request.limit, self.config.boost_candidates) if boost_depth else None
        return plan(
            state.request.strategy,
            dense=state.dense,
            sparse=state.sparse,
            limit=state.request.limit,
            flt=flt,
            config=self.config,
            payload=fields,
            fetch=depth,
        )

    def _similarities_op(self, state: ReadState) -> Op[None]:
        """Each hit's cosine to the query (``Hit.similarity``): a score that means the same in
        every query, unlike the fused rank score. Read off the vector list where the hit
        is in it, else from its stored vector."""
        cosine = state.base_vector_scores()
        missing = [h.entry.id for h in state.hits if h.entry.id not in cosine]
        if missing:
            stored = yield call(state.store.vectors, state.scope, missing)
            q = np.asarray(state.dense, dtype=np.float32)
            cosine.update({i: float(np.dot(q, np.asarray(v, dtype=np.float32))) for i, v in stored.items()})
        state.hits = [
            h.model_copy(update={"similarity": round(cosine[h.entry.id], 6)}) if h.entry.id in cosine else h
            for h in state.hits
        ]


__all__ = ["RANKING_FIELDS", "ReadPath"]
