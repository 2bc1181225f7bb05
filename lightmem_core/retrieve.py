"""Retrieval: user filters to store filters, query plans per strategy, and fusion.

Strategies: ``embedding`` (dense), ``context`` (BM25 sparse vectors) and ``hybrid``.
Hybrid sends both queries in one engine batch and fuses them here with reciprocal
rank fusion, which also tells each hit which retriever found it; or, with
``hybrid_mode="filter_rerank"``, lets the engine re-rank BM25 candidates by the
vector (upstream LightMem's "context filter, then vector re-rank").
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal, Mapping, Optional, Sequence

from . import textproc, timeparse
from .config import RetrievalConfig
from .errors import InvalidInputError
from .extract import entry_id
from .indexing import from_payload
from .lexical import SparseVec
from .store.base import Condition, Filter, Match, Range, Record, VectorQuery
from .types import Hit

Strategy = Literal["embedding", "context", "hybrid"]
STRATEGIES = ("embedding", "context", "hybrid")

_TIME_FIELDS = {"time_stamp": "_ts", "recorded_at": "_rec"}
_KEYWORD_FIELDS = {
    "speaker_id", "speaker_name", "entry_type", "session_id", "agent_id", "topic_label",
    "entities", "keywords", "source_ids", "id",
}
_NUMBER_FIELDS = {"topic_id", "version"}
_RANGE_OPS = {"gt", "gte", "lt", "lte"}
_ALL_OPS = _RANGE_OPS | {"eq", "ne", "in", "nin"}
FILTER_FIELDS = sorted([*_TIME_FIELDS, *_KEYWORD_FIELDS, *_NUMBER_FIELDS, "metadata"])
LOGICAL = ("AND", "OR", "NOT")  # mem0's spelling: lists of filter dicts combined


def _scalar(value: Any, field: str) -> Any:
    if isinstance(value, bool):
        # qdrant-edge 0.9 never matches booleans; an error beats a silently empty result.
        raise InvalidInputError(field, "boolean values cannot be filtered on; store them as strings or 0/1")
    if isinstance(value, (str, int)):
        return value
    if hasattr(value, "value") and isinstance(value.value, str):  # enums such as EntryType
        return value.value
    raise InvalidInputError(field, f"expected a string, integer or boolean, got {type(value).__name__}")


def _convert(value: Any, field: str, kind: str) -> Any:
    if kind == "metadata":  # a metadata value: text or a number
        if isinstance(value, float):
            return value
        return _scalar(value, field)
    if kind == "time":
        try:
            return timeparse.to_epoch(timeparse.parse_time(value))
        except ValueError as exc:
            raise InvalidInputError(field, str(exc)) from None
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInputError(field, f"expected a number, got {type(value).__name__}")
        return value
    return _scalar(value, field)


def _field_conditions(key: str, spec: Any, field: str, kind: str) -> tuple[list[Condition], list[Condition]]:
    """Conditions for one filter field; returns (must, must_not)."""
    must: list[Condition] = []
    must_not: list[Condition] = []
    if isinstance(spec, Mapping):
        if not spec:
            raise InvalidInputError(field, "empty operator dict")
        for op, value in spec.items():
            path = f"{field}.{op}"
            if op not in _ALL_OPS:
                raise InvalidInputError(path, f"unknown operator; expected one of {sorted(_ALL_OPS)}")
            if op in _RANGE_OPS:
                if kind == "keyword" or (kind == "metadata" and (isinstance(value, bool)
                                                                 or not isinstance(value, (int, float)))):
                    raise InvalidInputError(path, "range operators need a time or number field (or a number)")
                must.append(Range(key, **{op: float(_convert(value, path, kind))}))
            elif op in ("in", "nin"):
                if not isinstance(value, (list, tuple)) or not value:
                    raise InvalidInputError(path, "expected a non-empty list")
                vals = tuple(_convert(v, f"{path}[{i}]", kind) for i, v in enumerate(value))
                if kind == "time" or any(isinstance(v, float) for v in vals):
                    conds: list[Condition] = [Range(key, gte=v, lte=v) for v in vals]
                    (must if op == "in" else must_not).append(Filter(should=tuple(conds)))
                else:
                    (must if op == "in" else must_not).append(Match(key, any=vals))
            else:
                target = must if op == "eq" else must_not
                v = _convert(value, path, kind)
                # equal times and fractional numbers as a one-point range; text and integers as a match
                target.append(Range(key, gte=v, lte=v) if kind == "time" or isinstance(v, float) else Match(key, v))
    elif isinstance(spec, (list, tuple)):
        if not spec:
            raise InvalidInputError(field, "expected a non-empty list")
        return _field_conditions(key, {"in": list(spec)}, field, kind)
    else:
        return _field_conditions(key, {"eq": spec}, field, kind)
    return must, must_not


def parse_filters(filters: Optional[Mapping[str, Any]], *, field: str = "filters") -> Optional[Filter]:
    """Turn ``{"time_stamp": {"gte": ...}, "speaker_name": "Maya", "metadata": {...}}`` into a store filter."""
    if filters is None:
        return None
    if not isinstance(filters, Mapping):
        raise InvalidInputError(field, f"expected a dict, got {type(filters).__name__}")
    must: list[Condition] = []
    must_not: list[Condition] = []
    for name, spec in filters.items():
        path = f"{field}.{name}"
        if not isinstance(name, str):
            raise InvalidInputError(field, f"filter keys must be strings, got {name!r}")
        if name == "metadata":
            if not isinstance(spec, Mapping) or not spec:
                raise InvalidInputError(path, "expected a non-empty dict of metadata keys")
            for mk, mv in spec.items():
                m, n = _field_conditions(f"metadata.{mk}", mv, f"{path}.{mk}", "metadata")
                must += m
                must_not += n
            continue
        if name in LOGICAL:
            parts = [spec] if name == "NOT" and isinstance(spec, Mapping) else spec
            if not isinstance(parts, (list, tuple)) or not parts:
                raise InvalidInputError(path, "expected a non-empty list of filter dicts")
            subs = [parse_filters(p, field=f"{path}[{i}]") for i, p in enumerate(parts)]
            subs = [f for f in subs if f is not None]
            if name == "AND":
                must += subs
            elif name == "OR":
                must.append(Filter(should=tuple(subs)))
            else:  # none of them may hold
                must_not += subs
            continue
        if name.startswith("metadata."):
            key, kind = name, "metadata"
        elif name in _TIME_FIELDS:
            key, kind = _TIME_FIELDS[name], "time"
        elif name in _KEYWORD_FIELDS:
            key, kind = name, "keyword"
        elif name in _NUMBER_FIELDS:
            key, kind = name, "number"
        elif name == "user_id":
            raise InvalidInputError(path, "the user is chosen by the user_id argument, not by a filter")
        else:
            raise InvalidInputError(path, f"unknown filter field; expected one of {FILTER_FIELDS}, 'metadata.<key>' "
                                    f"or {list(LOGICAL)}")
        m, n = _field_conditions(key, spec, path, kind)
        must += m
        must_not += n
    if not must and not must_not:
        return None
    return Filter(must=tuple(must), must_not=tuple(must_not))


def plan(
    strategy: str,
    *,
    dense: Optional[Sequence[float]],
    sparse: Optional[SparseVec],
    limit: int,
    flt: Optional[Filter],
    config: RetrievalConfig,
    payload: Optional[tuple[str, ...]] = None,
    fetch: Optional[int] = None,
) -> list[tuple[str, VectorQuery]]:
    """The engine queries for a strategy, each labelled with the retriever it stands for.

    ``payload`` limits the payload keys each candidate comes back with (None = all);
    ``fetch`` the candidates per list (None = from the limit and ``config.candidates``).
    """
    if fetch is None:
        fetch = max(limit * 3, config.candidates) if config.per_source_limit else max(limit, config.candidates)

    def query(using: str, vector: Any, prefetch: Optional[VectorQuery] = None) -> VectorQuery:
        return VectorQuery(using, vector, fetch, flt, prefetch=prefetch, payload=payload)  # type: ignore[arg-type]

    has_sparse = sparse is not None and len(sparse) > 0
    if strategy == "embedding":
        return [("embedding", query("dense", dense))]
    if strategy == "context":
        return [("context", query("sparse", sparse))] if has_sparse else []
    if config.hybrid_mode == "filter_rerank" and has_sparse:
        pre = VectorQuery("sparse", sparse, fetch, flt)  # type: ignore[arg-type]
        return [("context+embedding", query("dense", dense, prefetch=pre))]
    queries = [("embedding", query("dense", dense))]
    if has_sparse:
        queries.append(("context", query("sparse", sparse)))
    return queries


def time_filter(start: Optional[datetime], end: Optional[datetime]) -> Optional[Filter]:
    """Entries whose event time falls in the period (either end may be open)."""
    if start is None and end is None:
        return None
    bounds = {}
    if start is not None:
        bounds["gte"] = timeparse.to_epoch(start)
    if end is not None:
        bounds["lte"] = timeparse.to_epoch(end)
    return Filter(must=(Range("_ts", **bounds),))


_NAME = re.compile(r"\b[A-Z][a-z]+(?:[-'][A-Za-z]+)?\b")


_ROLE_WORDS = re.compile(r"\bthe\s+(user|assistant)(?:'s)?\b", re.I)


def without_roles(query: str) -> str:
    """The query without "the user"/"the assistant", for matching text.

    In a user's own memory the role names nobody in particular: it would only match the
    "user:" prefix of every entry, most of all the shortest ones. Who spoke is left to
    the speaker boost (``speaker_filter``).
    """
    text = re.sub(r"\s+", " ", _ROLE_WORDS.sub(" ", query)).strip()
    return text if textproc.content_words(text) else query


def named_speakers(query: str, limit: int = 4) -> tuple[str, ...]:
    """Capitalised words of the query that may name a speaker ("What did Caroline paint?").

    Only candidates: a filter on ``speaker_name`` that matches nobody returns nothing, so a
    wrong guess costs a little time, never a result.
    """
    words = [w for w in _NAME.findall(query) if w.lower() not in textproc.STOPWORDS]
    return tuple(dict.fromkeys(words))[:limit]


def speaker_filter(query: str) -> Optional[Filter]:
    """Entries said by someone the query names: a person ("Caroline") or a role ("the user")."""
    names = named_speakers(query)
    roles = tuple(dict.fromkeys(m.lower() for m in _ROLE_WORDS.findall(query)))
    conds: list[Condition] = []
    if names:
        conds.append(Match("speaker_name", any=names))
    if roles:
        conds.append(Match("speaker_id", any=roles))
    if not conds:
        return None
    return Filter(must=tuple(conds)) if len(conds) == 1 else Filter(should=tuple(conds))


def _weight(weights: Optional[Mapping[str, float]], name: str) -> float:
    """A list's fusion weight: its own, else its prefix's ("time:context" -> "time"), times the base retriever's."""
    weights = weights or {}
    if name in weights:
        return weights[name]
    prefix, _, base = name.rpartition(":")
    return weights.get(prefix, 1.0) * weights.get(base, 1.0) if prefix else 1.0


RANKING_FIELDS = ("source_ids", "_ts")  # what rank() reads of a candidate's payload

Ranked = tuple[Record, float, list[str]]


def rank(
    labelled: Sequence[tuple[str, list[Record]]],
    *,
    limit: int,
    rrf_k: int,
    per_source_limit: int = 0,
    weights: Optional[Mapping[str, float]] = None,
    recency_weight: float = 0.0,
) -> list[Ranked]:
    """Reciprocal-rank fusion (a single list keeps its own scores and order).

    Reads only ``RANKING_FIELDS`` of the payloads. ``recency_weight`` re-ranks the
    chosen hits with one more list, the same hits newest first: a question about the
    present sees the latest of several close matches first, yet recency never decides
    *which* memories come back, so a timeless fact ("Biscuit is a corgi") is not pushed
    out by whatever was said last.
    """
    if len(labelled) == 1:
        name, records = labelled[0]
        scored = [(r, float(r.score or 0.0), [name]) for r in records]
    else:
        acc: dict[str, Ranked] = {}
        for name, records in labelled:
            w = _weight(weights, name)
            for rnk, r in enumerate(records):
                rec, score, found = acc.get(r.id, (r, 0.0, []))
                acc[r.id] = (rec, score + w / (rrf_k + rnk + 1), found if name in found else [*found, name])
        scored = sorted(acc.values(), key=lambda t: -t[1])
    chosen: list[Ranked] = []
    per_source: dict[str, int] = {}
    for rec, score, found in scored:
        if per_source_limit:
            key = _source_key(rec)
            if per_source.get(key, 0) >= per_source_limit:
                continue
            per_source[key] = per_source.get(key, 0) + 1
        chosen.append((rec, score, found))
        if len(chosen) >= limit:
            break
    if recency_weight and len(chosen) > 1:
        if len(labelled) == 1:  # raw scores: put them on the rank scale first
            chosen = [(rec, 1.0 / (rrf_k + i + 1), found) for i, (rec, _, found) in enumerate(chosen)]
        newest = sorted(range(len(chosen)), key=lambda i: -float(chosen[i][0].payload.get("_ts") or 0.0))
        for rnk, i in enumerate(newest):
            rec, score, found = chosen[i]
            chosen[i] = (rec, score + recency_weight / (rrf_k + rnk + 1), [*found, "recency"])
        chosen.sort(key=lambda t: -t[1])
    return chosen


def _source_key(rec: Record) -> str:
    return "|".join(rec.payload.get("source_ids") or ()) or rec.id


def sibling_ids(ranked: Sequence[Ranked], labelled: Sequence[tuple[str, list[Record]]]) -> dict[str, list[str]]:
    """Per kept hit, the other candidates drawn from the same source turn(s).

    With ``per_source_limit`` a turn shows one hit, and fusion picks it among sentences
    that share the turn's context in both vectors, close to a coin toss;
    ``representatives`` then chooses among these by what each sentence says.
    """
    kept = {_source_key(rec): rec.id for rec, _, _ in ranked}
    out: dict[str, list[str]] = {}
    for _, records in labelled:
        for r in records:
            owner = kept.get(_source_key(r))
            if owner is not None and r.id != owner and r.id not in out.setdefault(owner, []):
                out[owner].append(r.id)
    return {k: v for k, v in out.items() if v}


# Sentences that report a state has ended, and ones that state the present one: for a
# question about the present, "I'm in Manchester now" answers, "I'm no longer in London"
# only explains.
_ENDED = re.compile(r"\b(no longer|not any ?more|moved out|broke up|split up|stopped|quit|gave up|"
                    r"used to|ended|former(ly)?)\b", re.I)
_NOW = re.compile(r"\b(?<!for )(now|these days|nowadays|currently|at the moment)\b", re.I)  # "for now" is a stopgap


def representatives(
    ranked: Sequence[Ranked],
    siblings: Mapping[str, Sequence[str]],
    labelled: Sequence[tuple[str, list[Record]]],
    payloads: Mapping[str, Mapping[str, Any]],
    *,
    present: bool = False,
    wants_name: bool = False,
) -> list[Ranked]:
    """Each kept hit replaced by the sentence of its turn that best matches the query.

    "Best" is the sentence's own similarity, recovered from the vector list's score and
    the blend norm ``_dn`` (the lexical list mostly sees the turn's shared context words;
    without ``_dn`` the vector list's order). For a question about the present,
    a sentence stating the current state goes before one reporting that a state ended,
    when the question asks for a name (``asks_for_name``: who, where, which city), one
    that holds a name goes before one that does not, and a statement goes before a
    request that tells nothing about the asker (``asks_only``).
    The hit keeps its fused score: this chooses what a turn shows, never which turns
    come back.
    """
    if not siblings:
        return list(ranked)
    # n * cosine(query, blended vector) = (1 - w) * cosine(query, fact) + w * cosine(query, context):
    # the context term is the same for every sentence of a turn, so this orders them by
    # their own meaning alone. Stores written before "_dn" fall back to the list's order.
    dense = next((recs for name, recs in labelled if name == "embedding"), [])
    position = {r.id: float(i) for i, r in enumerate(dense)}
    own = {r.id: -float(r.score or 0.0) * float(payloads[r.id]["_dn"])
           for r in dense if "_dn" in (payloads.get(r.id) or {})}
    by_id = {r.id: r for _, recs in labelled for r in recs}

    def key(rid: str) -> tuple[int, int, int, int, float, float]:
        text = str((payloads.get(rid) or {}).get("memory") or "")
        if not present:
            return (0, 0, 0, 0, own.get(rid, 0.0), position.get(rid, float(len(position))))
        ended = int(bool(_ENDED.search(text)))
        said = _said(text, payloads.get(rid) or {})
        named = int(wants_name and not names_in(said))
        asks = int(asks_only(said))
        return (asks, ended, named, int(not _NOW.search(text)), own.get(rid, 0.0), position.get(rid, float(len(position))))

    out: list[Ranked] = []
    for rec, score, found in ranked:
        group = [rid for rid in (rec.id, *siblings.get(rec.id, ())) if rid in payloads]
        best = min(group, key=key) if len(group) > 1 else rec.id
        out.append((by_id[best] if best != rec.id else rec, score, found))
    return out


_NOW_REACH = 1.5
# Cosine margin within which two turns count as equally about the question. It is read
# on the vector list alone: the lexical list rewards an old statement for repeating the
# question's words ("My manager Linda..." for "who is my manager?"), which is exactly how
# an original fact is phrased and how its later update ("I report to Rajesh now") is not.
_CLOSE = 0.05

# Questions whose answer is a name: who / where, "which city", "what company", "the name of".
# "What kind of", "what does" ask for something else.
_NAME_QUESTION = re.compile(r"^\W*(who|whom|whose|where)\b|\bname\b|\b(which|what)\s+(?!(kind|kinds|type|types|sort|sorts|"
                            r"does|do|did|is|are|was|were|has|have|had|can|could|will|would|should)\b)[a-z]+", re.I)


def asks_for_name(query: str) -> bool:
    return bool(_NAME_QUESTION.search(query))


def _said(text: str, payload: Mapping[str, Any]) -> str:
    """The text without its "Caroline: " prefix: the speaker's own name answers nothing."""
    speaker = payload.get("speaker_name") or payload.get("speaker_id")
    return text[len(speaker) + 2:] if speaker and text.startswith(f"{speaker}: ") else text


_INVERTED = re.compile(r"\b(should|shall|can|could|do|did|would|will|am|may|might|must)\s+I\b", re.I)
_FIRST_PERSON = re.compile(r"\b(I|I'm|I've|I'd|I'll|my|we|we're|we've|our)\b", re.I)


def asks_only(text: str) -> bool:
    """A question that tells nothing about the asker: no name, and "I" only as the
    subject of the question itself ("How should I start?"), never of a statement inside
    it ("Any tips for Denver now that I live here?"). Such a sentence resembles a
    question in form, so the vector ranks it high against any question, yet it answers none."""
    if not text.rstrip().endswith("?") or names_in(text):
        return False
    return not _FIRST_PERSON.search(_INVERTED.sub(" ", text))


def names_in(text: str) -> list[str]:
    """Capitalised names in a text, without numbers and capitalised stop words. Read from
    the text rather than the entry's ``entities``, which an LLM extractor fills its own way."""
    return [e for e in textproc.entities(text) if any(c.isalpha() for c in e) and e.lower() not in textproc.STOPWORDS]


def current_state_first(hits: list[Hit], attributes: Any,
                        turns: Optional[Mapping[str, Sequence[Mapping[str, Any]]]] = None,
                        similarity: Optional[Mapping[str, float]] = None) -> list[Hit]:
    """For a question about the present: a newer hit about the same single-valued
    attribute (where one lives, works, who one is with), said by the same speaker, goes
    before the older one it contradicts. Only the order changes; ``attributes(text)``
    names the attributes a text is about (``update.attributes``).

    ``turns`` gives, per hit id, the payloads of every sentence of its turn: a turn is
    about what any of its sentences is about ("Minneapolis winters are something else. I
    live near Lake Harriet."), and a hit moved ahead for an attribute shows its turn's
    sentence that states it, if the one it showed does not. Whatever the attribute, a
    newer turn that states something "now" goes before an older one that does not, when
    their scores are within ``_NOW_REACH`` of each other (the user marked it current).

    ``similarity`` gives, per hit id, its turn's best cosine to the question. A newer turn
    about as close in meaning (within ``_CLOSE``) goes before an older one of the same
    speaker whatever it says: for a question about the present, the latest of two equally
    fitting answers is the better guess, and the older stays in the list.
    """
    turns = turns or {}
    sim = similarity or {}

    def texts(hit: Hit) -> list[str]:
        return [str(p.get("memory") or "") for p in turns.get(hit.entry.id, ())] or [hit.entry.memory]

    def says_now(text: str) -> bool:
        return bool(_NOW.search(text)) and not text.rstrip().endswith("?")

    # per hit: what its turn is about, whether it says "now", its closeness (keyed by the
    # id it came with: a hit moved ahead for an attribute may show another sentence)
    out: list[tuple[Hit, frozenset[str], bool, Optional[float]]] = []
    for hit in hits:
        own = texts(hit)
        mine = frozenset().union(*(attributes(t) for t in own))  # once per hit, not once per pair
        now = any(says_now(t) for t in own)
        mine_sim = sim.get(hit.entry.id)
        when = hit.entry.time_stamp or hit.entry.recorded_at
        at, shared = len(out), frozenset()
        if when is not None:
            for i, (prev, theirs, prev_now, their_sim) in enumerate(out):
                then = prev.entry.time_stamp or prev.entry.recorded_at
                if then is None or then >= when or prev.entry.speaker_id != hit.entry.speaker_id:
                    continue
                if mine & theirs:
                    at, shared = i, mine & theirs
                    break
                if now and not prev_now and prev.score <= hit.score * _NOW_REACH:
                    at = i
                    break
                if mine_sim is not None and their_sim is not None and mine_sim >= their_sim - _CLOSE:
                    at = i
                    break
        if shared and not attributes(hit.entry.memory) & shared:
            stating = [(p, t) for p, t in zip(turns.get(hit.entry.id, ()), own) if attributes(t) & shared]
            stating.sort(key=lambda pt: bool(_ENDED.search(pt[1])))  # stable: a current state first
            if stating:
                hit = hit.model_copy(update={"entry": from_payload(stating[0][0])})
        out.insert(at, (hit, mine, now, mine_sim))
    return [h.model_copy(update={"rank": i + 1}) for i, (h, *_) in enumerate(out)]


def window_ids(hits: Sequence[Hit], width: int) -> dict[str, list[str]]:
    """Per hit cut from a longer turn, the ids of the pieces within ``width`` of it, its
    own included, in turn order. Offline pieces are named by (user, turn, position), so
    this is an id lookup, not a filtered scan (2.4 ms a call when it was one); a hit
    whose id is not its name (an imported or hand-made entry) gets no window."""
    out: dict[str, list[str]] = {}
    for h in hits:
        e = h.entry
        if not width or e.position is None or not e.source_ids:
            continue
        if entry_id(e.user_id, e.source_ids[0], e.position) != e.id:
            continue
        out[e.id] = [entry_id(e.user_id, e.source_ids[0], k) for k in range(max(0, e.position - width), e.position + width + 1)]
    return out


def with_windows(hits: Sequence[Hit], wanted: Mapping[str, Sequence[str]], payloads: Mapping[str, Mapping[str, Any]],
                 *, include_superseded: bool = False) -> list[Hit]:
    """Each hit in ``wanted`` with the neighbours memory still holds, in turn order.

    ``payloads`` are read from the store now, so a neighbour deleted since is absent and
    an updated one shows its new text; a superseded one shows only with
    ``include_superseded`` (a hit never shows what retrieval itself would hide).
    """
    out = []
    for h in hits:
        e = h.entry
        own = _said(e.memory, {"speaker_name": e.speaker_name, "speaker_id": e.speaker_id})
        said = []
        for i in wanted.get(e.id, ()):
            p = payloads.get(i)
            if i == e.id:
                said.append(own)
            elif p is not None and (include_superseded or p.get("_current", 1)):  # the id names its turn
                said.append(_said(str(p.get("memory") or ""), p))
        if len(said) > 1:  # "Caroline: " once for the whole window
            h = h.model_copy(update={"window": e.memory[: len(e.memory) - len(own)] + " ".join(said)})
        out.append(h)
    return out


def to_hits(ranked: Sequence[Ranked], payloads: Optional[Mapping[str, Mapping[str, Any]]] = None) -> list[Hit]:
    """Hits from ranked records; ``payloads`` supplies full payloads when the search returned thin ones."""
    hits = []
    for rec, score, found in ranked:
        payload = rec.payload if payloads is None else payloads.get(rec.id)
        if payload is None:  # deleted between the search and the fetch
            continue
        hits.append(Hit(entry=from_payload(payload), score=score, retrievers=found, rank=len(hits) + 1))
    return hits


def fuse(labelled: Sequence[tuple[str, list[Record]]], **kwargs: Any) -> list[Hit]:
    """``rank`` then ``to_hits``, for searches that returned full payloads."""
    return to_hits(rank(labelled, **kwargs))
