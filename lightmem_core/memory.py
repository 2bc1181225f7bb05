"""``LightMemory``: the facade that wires the stages together.

Every public operation is written once, as a generator in ``_ops`` style (see
``drive``), and exposed twice: ``add_memory`` runs it synchronously,
``aadd_memory`` runs it on the event loop without blocking it.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence, Union

from pydantic import ValidationError

from . import indexing, textproc, timeparse
from .config import MemoryConfig
from .drive import Op, call, parallel, run_async, run_sync
from .embed import Embedder, create_embedder
from .errors import (
    AnswerTruncatedError,
    ConflictError,
    ContextWindowError,
    EmbeddingError,
    InvalidInputError,
    LLMError,
    NotFoundError,
)
from .extract import ExtractionBatch, ExtractiveExtractor, Extractor, LLMExtractor, VerbatimExtractor
from .journal import Journal, TurnRow
from .lexical import Bm25Encoder
from .prompts import Prompts
from .repairs import RepairCounts
from .retrieval import ReadPath, RetrieveRequest, Sources, parse_filters, reads_summaries, valid_limit
from .store.base import (
    Cursor,
    Filter,
    Match,
    MemoryStore,
    PointIn,
    Range,
    StoreSpec,
    VectorQuery,
    decode_points,
    encode_points,
    open_store,
)
from .types import (
    AddResult,
    EntryPage,
    HistoryRecord,
    Hit,
    MemoryEntry,
    Message,
    Scope,
    SkippedTurn,
    check_metadata,
    is_blank,
)
from .update import Decision, LLMResolver, RuleResolver

log = logging.getLogger(__name__)

MessagesIn = Union[str, Mapping[str, Any], Message, Sequence[Union[Mapping[str, Any], Message]]]
_CONFLICT_RETRIES = 3


@dataclass(frozen=True)
class WindowRule:
    """How many tokens of turns fit one extraction call in a model's context window.

    ``prompt_tokens``: the instructions and framing around the turns. ``answer_share``:
    the most of the window kept for the answer (the configured ``max_tokens`` when smaller;
    a fact list is about as long as its turns). ``tokenizer_margin``: our estimate counts
    cl100k tokens and the model's own tokenizer may need this many times more.
    """

    prompt_tokens: int = 450
    answer_share: float = 0.4
    tokenizer_margin: float = 1.3

    def turn_tokens(self, window: int, max_answer: Optional[int]) -> int:
        answer = int(window * self.answer_share)
        if max_answer:
            answer = min(answer, max_answer)
        return max(1, int((window - self.prompt_tokens - answer) / self.tokenizer_margin))


_WINDOW_RULE = WindowRule()
EXPORT_FORMAT = "lightmem-export"
_ROLES = {
    "user_only": frozenset({"user"}),
    "assistant_only": frozenset({"assistant"}),
    "hybrid": frozenset({"user", "assistant"}),
}


def _validation_error(exc: ValidationError, prefix: str) -> InvalidInputError:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    field = f"{prefix}.{loc}" if loc else prefix
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    elif err["type"] == "missing":
        msg = "is required"
    return InvalidInputError(field, msg)


class _Writer:
    """Applies one change to store and journal, in the order that survives a crash:
    history as pending with a redo record of the whole write, then the store, then the
    journal commit (turns done, history committed). Serialised so versions and history stay in step under threads."""

    def __init__(self, stores: Mapping[str, MemoryStore], journal: Journal) -> None:
        self.stores = stores
        self.journal = journal
        self.lock = threading.RLock()

    def apply(
        self,
        scope: Scope,
        *,
        upserts: Sequence[tuple[MemoryEntry, PointIn]] = (),
        deletes: Sequence[str] = (),
        history: Sequence[HistoryRecord] = (),
        done_turns: Sequence[tuple[str, str]] = (),
        expect_versions: Optional[Mapping[str, int]] = None,
        collection: str = "entries",
    ) -> None:
        store = self.stores[collection]
        with self.lock:
            if done_turns:
                self._check_still_pending(done_turns)
            if expect_versions:
                current = {r.id: r.payload.get("version") for r in store.get(scope, list(expect_versions))}
                for mid, version in expect_versions.items():
                    if mid not in current:
                        raise NotFoundError(mid)
                    if current[mid] != version:
                        raise ConflictError(
                            f"memory {mid!r} changed concurrently (version {current[mid]}, expected {version})"
                        )
            by_scope: dict[Scope, list[PointIn]] = {}
            for entry, point in upserts:
                by_scope.setdefault(entry.scope, []).append(point)
            change = None
            if history:
                ops = {
                    "collection": collection,
                    "scope": scope.as_payload(),
                    "deletes": list(deletes),
                    "upserts": [[s.as_payload(), encode_points(points)] for s, points in by_scope.items()],
                    "turns": [list(t) for t in done_turns],
                }
                change = self.journal.begin_change(history, ops)
            try:
                self._write(collection, list(by_scope.items()), scope, deletes)
            except BaseException:
                if change:
                    self.journal.abandon_change(change)
                raise
            if change:
                self.journal.finish_change(change)
            elif done_turns:
                self.journal.mark_turns_done(done_turns)

    def _write(
        self, collection: str, upserts: Sequence[tuple[Scope, Sequence[PointIn]]], scope: Scope, deletes: Sequence[str]
    ) -> None:
        store = self.stores[collection]
        for s, points in upserts:
            store.upsert(s, points)
        if deletes:
            store.delete(scope, deletes)

    def redo(self, ops: Mapping[str, Any]) -> None:
        """Apply a journaled change again: upserts and deletes are idempotent, so whatever
        part of it reached the store before a crash, the store ends as the change meant."""
        with self.lock:
            self._write(
                ops["collection"],
                [(Scope(**s), decode_points(points)) for s, points in ops["upserts"]],
                Scope(**ops["scope"]),
                ops["deletes"],
            )

    def _check_still_pending(self, done_turns: Sequence[tuple[str, str]]) -> None:
        """Two calls on one buffer may both have read it: if the other one stored these
        turns first, writing them again would double them, or revive an entry deleted or
        edited since. Checked under the lock, so exactly one write wins."""
        by_user: dict[str, list[str]] = {}
        for user, turn in done_turns:
            by_user.setdefault(user, []).append(turn)
        for user, ids in by_user.items():
            done = [t.id for t in self.journal.get_turns(Scope(user_id=user), ids) if t.status != "pending"]
            if done:
                raise ConflictError(f"turns {done[:3]} were stored by a concurrent call")


class _Changes:
    """Edits to existing entries collected while resolving one batch, applied in one write."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[MemoryEntry, bool]] = {}
        self.history: list[HistoryRecord] = []
        self.expect: dict[str, int] = {}
        self.deletes: list[str] = []

    def current(self, entry: Optional[MemoryEntry]) -> Optional[MemoryEntry]:
        if entry is None:
            return None
        return self.entries[entry.id][0] if entry.id in self.entries else entry

    def add(
        self, before: MemoryEntry, after: MemoryEntry, event: str, new: MemoryEntry, reason: str, *, reembed: bool
    ) -> None:
        """Record that ``new`` (the newer statement) changed ``before`` into ``after``."""
        self.expect.setdefault(before.id, before.version)
        prior = self.entries.get(before.id, (after, False))[1]
        self.entries[before.id] = (after, reembed or prior)
        self.history.append(
            HistoryRecord(
                memory_id=after.id,
                event=event,
                version=after.version,
                old_memory=before.memory,
                new_memory=after.memory if event != "SUPERSEDE" else new.memory,
                reason=reason,
                actor="update",
                source_ids=list(new.source_ids),
                **after.scope.as_payload(),
            )
        )

    def points_op(self, memory: "LightMemory", scope: Scope) -> Op[list[tuple[MemoryEntry, PointIn]]]:
        """Points for the edited entries: new vectors where the text changed, stored ones otherwise."""
        if not self.entries:
            return []
        changed = [e for e, re in self.entries.values() if re]
        fresh = yield from memory._vectors(changed)
        kept = yield from memory._kept_points_op(scope, [e for e, re in self.entries.values() if not re], memory._store)
        return list(zip(changed, fresh)) + kept


class LightMemory:
    """Long-term memory for agents: add turns, retrieve memories, edit and audit them.

    Safe to share between threads. One embedded store path can be open by one
    ``LightMemory`` at a time; share the object rather than opening it twice.
    """

    def __init__(
        self,
        config: Optional[Union[MemoryConfig, Mapping[str, Any]]] = None,
        *,
        embedder: Optional[Embedder] = None,
        llm: Optional[Any] = None,
        compressor: Optional[Any] = None,
        segmenter: Optional[Any] = None,
        extractor: Optional[Extractor] = None,
        prompts: Optional[Prompts] = None,
    ) -> None:
        """Components given here win over the config: pass any object that speaks the
        protocol (an ``LLM`` wrapping a LangChain or LlamaIndex model, an ``Embedder``...)."""
        if config is None:
            config = MemoryConfig()
        elif isinstance(config, Mapping):
            config = MemoryConfig.from_dict(dict(config))
        self.config: MemoryConfig = config
        self.prompts = prompts or Prompts(custom_instructions=config.custom_instructions)
        self.embedder: Embedder = embedder or create_embedder(config.embedder)
        self.llm: Optional[Any] = llm
        if self.llm is None and config.llm is not None:
            from .llm import create_llm

            self.llm = create_llm(config.llm)
        self.compressor: Optional[Any] = compressor
        if self.compressor is None and config.pre_compress:
            from .compress import create_compressor

            self.compressor = create_compressor(config.compressor)
        self.segmenter: Optional[Any] = segmenter
        if self.segmenter is None and config.topic_segment:
            from .segment import create_segmenter

            shared = self.compressor if config.precomp_topic_shared else None
            self.segmenter = create_segmenter(config.segmenter, embedder=self.embedder, compressor=shared)
        self._repairs = RepairCounts()
        if extractor is not None:
            self._extractor: Extractor = extractor
        elif self.llm is not None:
            self._extractor = LLMExtractor(
                self.llm, mode=config.extraction_mode, prompts=self.prompts, counts=self._repairs
            )
        else:
            self._extractor = ExtractiveExtractor(unit=config.offline_unit)
        # Online: rules only (no LLM call on the write path); offline: the LLM when there is one.
        self._online_resolver = RuleResolver()
        self._offline_resolver = (
            LLMResolver(self.llm, self.prompts, counts=self._repairs) if self.llm is not None else RuleResolver()
        )
        self._bm25 = Bm25Encoder(k1=config.retrieval.bm25_k1, b=config.retrieval.bm25_b)
        self._journal = Journal(self._journal_path())
        try:
            self._check_embedder_identity()
            dims = self._dims()
            self._store = open_store(config.store, StoreSpec("entries", dims, indexing.ENTRY_INDEXES))
            try:
                # Session/period summaries live apart, so they never crowd entry results
                # and hierarchical retrieval can rank them first.
                self._summaries = open_store(config.store, StoreSpec("summaries", dims, indexing.ENTRY_INDEXES))
            except BaseException:
                self._store.close()
                raise
        except BaseException:
            self._journal.close()
            raise
        self._stores = {"entries": self._store, "summaries": self._summaries}
        self._writer = _Writer(self._stores, self._journal)
        self._closed = False
        for stage, status in self.stage_status().items():
            if status.startswith("not available"):
                log.warning("stage %s: %s", stage, status)
        self._recover()

    @classmethod
    def from_config(cls, config: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> "LightMemory":
        """Build from a dict: upstream LightMem's keys, the native ones, or both."""
        return cls(MemoryConfig.from_dict(dict(config or {})), **kwargs)

    # --- set-up ------------------------------------------------------------------------
    def _journal_path(self) -> str:
        c = self.config
        if c.history_db_path:
            return c.history_db_path
        if c.store.provider == "qdrant" and c.store.location == ":memory:":
            return ":memory:"
        root = os.path.abspath(os.path.expanduser(c.store.path or "./lightmem_data"))
        return os.path.join(root, f"{c.store.collection_name}_journal.sqlite")

    def _embedder_name(self) -> str:
        e = self.config.embedder
        return f"{e.provider}:{e.model or 'packaged-all-MiniLM-L6-v2'}" + (":int8" if e.quantize else "")

    def embedder_identity(self) -> dict[str, Optional[str]]:
        """The model and precision this store's vectors were written with (what it checks on open)."""
        return {"embedder": self._journal.get_meta("embedder"), "precision": self._journal.get_meta("precision")}

    def _check_embedder_identity(self) -> None:
        """Vectors are only comparable with vectors of the same model, computed in the same
        precision: the store keeps both, and an embedder that computes in a precision it
        may choose (``auto``) is made to follow what wrote the store."""
        stored = self._journal.get_meta("embedder")
        if stored is not None and stored != self._embedder_name():
            raise InvalidInputError(
                "embedder.model",
                f"this store was built with {stored!r}; vectors of {self._embedder_name()!r} are not comparable. "
                "Use the same embedder or a new store path.",
            )
        precision = self._journal.get_meta("precision")
        pin = getattr(self.embedder, "pin_precision", None)
        if precision is not None and pin is not None:
            pin(precision)

    def _dims(self) -> int:
        stored = self._journal.get_meta("dims")
        if stored is not None and self.config.embedder.dims in (None, int(stored)):
            dims = int(stored)
        else:
            dims = self.config.embedder.dims or self.embedder.dims
            self._journal.set_meta("dims", str(dims))
            self._journal.set_meta("embedder", self._embedder_name())
        if self._journal.get_meta("precision") is None and hasattr(self.embedder, "precision"):
            # a new store, or one written before precisions were recorded: what computes its vectors from now on
            self._journal.set_meta("precision", str(self.embedder.precision))
        return dims

    def stage_status(self) -> dict[str, str]:
        """What each configured stage will do, so nothing is silently ignored."""
        c = self.config
        llm = "offline extractive (no LLM)" if self.llm is None else f"LLM ({type(self.llm).__name__})"
        status = {
            "embedder": f"enabled ({self._embedder_name()}"
            + (f", {precision}" if (precision := self._journal.get_meta("precision")) else "")
            + ")",
            "store": f"enabled ({c.store.provider})",
            "extraction": f"enabled: {llm}, mode {c.extraction_mode}"
            + (
                ""
                if self.llm is not None or c.extraction_mode == "flat"
                else " (event mode needs an LLM; flat facts used)"
            ),
            "pre_compress": f"enabled ({c.compressor.provider}, rate {c.compressor.rate})"
            if self.compressor
            else "disabled",
            "topic_segment": f"enabled ({type(self.segmenter).__name__})" if self.segmenter else "disabled",
            "precomp_topic_shared": "enabled"
            if c.precomp_topic_shared and self.segmenter and self.compressor
            else "disabled",
            "update": (
                "online (rules: merge near duplicates, supersede changed attributes)"
                if c.update == "online"
                else f"offline (on request; {type(self._offline_resolver).__name__})"
            ),
            "index_strategy": f"enabled ({c.index_strategy})",
            "retrieve_strategy": f"enabled ({c.retrieval.strategy})",
        }
        for key in c.unsupported:
            status[key] = "not available: accepted for compatibility and ignored"
        return status

    def _recover(self) -> None:
        """Settle what a crash left half done.

        A pending change is applied again from its redo record and committed, with the
        turns it settles: whatever part reached the store, the store, the history and
        the turn buffers agree afterwards. (Journals written before redo records existed
        fall back to checking the store.) Buffers need no repair: they are the pending
        turns themselves. Offline, with nothing to wait for, leftover turns are
        extracted now.
        """
        for change_id, records in self._journal.pending_changes().items():
            ops = self._journal.change_ops(change_id)
            if ops is not None:
                try:
                    self._writer.redo(ops)
                except Exception:  # noqa: BLE001 - a store that cannot take the redo must still open
                    log.exception("cannot redo pending change %s; dropping it", change_id)
                    self._journal.abandon_change(change_id)
                    continue
                self._journal.finish_change(change_id)
            elif all(r.actor == "extract" and r.event == "ADD" for r in records):
                by_user: dict[str, list[str]] = {}
                for r in records:
                    by_user.setdefault(r.user_id, []).append(r.memory_id)
                for user_id, ids in by_user.items():  # one delete per scope and store, not per entry
                    for store in self._stores.values():
                        store.delete(Scope(user_id=user_id), ids)
                self._journal.abandon_change(change_id)
            elif self._legacy_change_applied(records):
                self._journal.finish_change(change_id)
            else:
                self._journal.abandon_change(change_id)
        if self.llm is None and self.segmenter is None:
            for scope in self._journal.pending_scopes():
                run_sync(self._pipeline_op(scope, AddResult(), force_segment=True, force_extract=True))

    def _legacy_change_applied(self, records: Sequence[HistoryRecord]) -> bool:
        for r in records:
            found = [f for store in self._stores.values() for f in store.get(Scope(user_id=r.user_id), [r.memory_id])]
            if bool(found) if r.event == "DELETE" else not found or int(found[0].payload.get("version", 0)) < r.version:
                return False
        return True

    # --- validation ----------------------------------------------------------------------
    def _scope(self, user_id: Optional[str], agent_id: Optional[str], session_id: Optional[str]) -> Scope:
        try:
            return Scope(
                user_id=user_id if user_id is not None else self.config.default_user_id,
                agent_id=agent_id,
                session_id=session_id,
            )
        except ValidationError as exc:
            raise _validation_error(exc, "scope") from None

    def _messages(self, messages: MessagesIn) -> tuple[list[Message], list[SkippedTurn]]:
        """The call's messages validated, and those skipped for having nothing to remember."""
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        elif isinstance(messages, (Mapping, Message)):
            messages = [messages]
        if not isinstance(messages, Sequence) or not messages:
            raise InvalidInputError("messages", "expected a non-empty list of messages")
        out: list[Message] = []
        skipped: list[SkippedTurn] = []
        seen: set[str] = set()
        for i, m in enumerate(messages):
            if isinstance(m, Message):
                msg = m
            elif isinstance(m, Mapping) and is_blank(m.get("content")):
                ident = m.get("id")
                skipped.append(
                    SkippedTurn(index=i, id=ident if isinstance(ident, str) else None, reason="content is empty")
                )
                continue
            elif isinstance(m, Mapping):
                try:
                    msg = Message.model_validate(dict(m))
                except ValidationError as exc:
                    raise _validation_error(exc, f"messages[{i}]") from None
            else:
                raise InvalidInputError(f"messages[{i}]", f"expected a dict, got {type(m).__name__}")
            if len(msg.content) > self.config.max_message_chars:
                raise InvalidInputError(
                    f"messages[{i}].content", f"longer than max_message_chars={self.config.max_message_chars}"
                )
            if msg.id in seen:
                raise InvalidInputError(f"messages[{i}].id", f"duplicate id {msg.id!r} in this call")
            seen.add(msg.id)
            out.append(msg)
        if not out:
            field = "messages" if len(messages) > 1 else "messages[0].content"
            raise InvalidInputError(field, "every message is empty; nothing to remember")
        if skipped:
            log.info("skipped %d empty message(s)", len(skipped))
        return out, skipped

    # --- operations (written once) ----------------------------------------------------------
    def _vectors(self, entries: Sequence[MemoryEntry]) -> Op[list[PointIn]]:
        dense: Any = [(None, None)] * len(entries)
        if entries and self.config.index_strategy in ("embedding", "hybrid"):
            w = self.config.dense_context
            mode = self.config.context_vectors
            per_turn = mode != "texts"
            # what the model embeds: the facts, plus context pieces unless made from the facts
            extra = indexing.context_lines(entries, per_turn=per_turn) if w > 0 and mode != "sentences" else []
            texts = list(dict.fromkeys([e.memory for e in entries] + extra))
            vectors = dict(zip(texts, (yield call(self.embedder.embed, texts))))
            facts = [vectors[e.memory] for e in entries]
            if w > 0 and mode == "sentences":  # no model pass for a turn whose sentences are all in this batch
                vectors = {**indexing.turn_vectors(entries, facts), **vectors}
                missing = [line for line in indexing.context_lines(entries) if line not in vectors]
                if missing:
                    vectors.update(zip(missing, (yield call(self.embedder.embed, missing))))
            contexts = indexing.context_vectors(entries, vectors, per_turn=per_turn) if w > 0 else {}
            dense = indexing.blend(entries, facts, contexts, w)
        sparse_on = self.config.index_strategy in ("context", "hybrid")
        return [
            indexing.to_point(e, d, indexing.sparse_vector(self._bm25, e) if sparse_on else None, n)
            for e, (d, n) in zip(entries, dense)
        ]

    def _kept_points_op(
        self, scope: Scope, entries: Sequence[MemoryEntry], store: MemoryStore
    ) -> Op[list[tuple[MemoryEntry, PointIn]]]:
        """Points for entries whose text did not change: their stored dense vectors (no model
        pass), re-embedded only where a backend cannot return them."""
        if not entries:
            return []
        stored = yield call(store.vectors, scope, [e.id for e in entries])
        # the payload is rebuilt from the entry: carry over what was derived from the vector
        norms = {r.id: r.payload.get("_dn") for r in (yield call(store.get, scope, list(stored)))} if stored else {}
        missing = [e for e in entries if e.id not in stored]
        out = list(zip(missing, (yield from self._vectors(missing))))
        sparse_on = self.config.index_strategy != "embedding"
        for e in entries:
            if e.id in stored:
                sparse = indexing.sparse_vector(self._bm25, e) if sparse_on else None
                out.append((e, indexing.to_point(e, stored[e.id], sparse, norms.get(e.id))))
        return out

    def _tokens(self, turns: Sequence[TurnRow]) -> int:
        from .llm import estimate_tokens

        return sum(estimate_tokens(t.compressed or t.content) for t in turns)

    def _compress_op(self, scope: Scope, sensory: list[TurnRow]) -> Op[None]:
        todo = [t for t in sensory if t.compressed is None and t.role in _ROLES[self.config.messages_use]]
        if not todo or self.compressor is None:
            return
        results = yield call(self.compressor.compress, [t.content for t in todo])
        for t, r in zip(todo, results):
            t.compressed = r.text
        yield call(self._journal.set_compressed, scope.user_id, [(t.id, r.text) for t, r in zip(todo, results)])

    def _segment_op(self, scope: Scope, sensory: list[TurnRow], force: bool) -> Op[None]:
        """Close topic segments: move them from the sensory to the short-term buffer."""
        if not sensory:
            return
        if self.segmenter is None:
            segments = [list(range(len(sensory)))]
        elif force or self._tokens(sensory) >= self.config.sensory_tokens:
            segments = yield call(self.segmenter.segment, sensory)
            if not force and len(segments) > 1:
                segments = segments[:-1]  # the last topic may still be going on
        else:
            return
        closed = [[sensory[i].id for i in seg] for seg in segments if seg]
        yield call(self._journal.close_segments, scope.user_id, closed)

    def _extract_budget(self) -> int:
        """Tokens of turns one extraction call may carry: ``extract_tokens``, cut to what
        the model's window leaves once the prompt and the answer have their room."""
        window = getattr(self.llm, "context_window", None)
        if not window:
            return self.config.extract_tokens
        answer = getattr(getattr(self.llm, "config", None), "max_tokens", None)
        return min(self.config.extract_tokens, _WINDOW_RULE.turn_tokens(window, answer))

    def _batches(self, short: list[TurnRow]) -> list[list[TurnRow]]:
        """Pack whole topics into extraction batches of at most ``extract_tokens``."""
        topics: dict[Any, list[TurnRow]] = {}
        for t in short:
            topics.setdefault(t.topic_id, []).append(t)
        batches: list[list[TurnRow]] = []
        current: list[TurnRow] = []
        budget = self._extract_budget()
        for turns in topics.values():
            for t in turns:
                if (
                    current
                    and self._tokens([*current, t]) > budget
                    and (t.topic_id != current[-1].topic_id or self._tokens(turns) > budget)
                ):
                    batches.append(current)
                    current = []
                current.append(t)
        if current:
            batches.append(current)
        return batches

    def _extract_op(
        self, scope: Scope, turns: list[TurnRow], out: AddResult, extractor: Optional[Extractor] = None
    ) -> Op[list[TurnRow]]:
        """Extract, embed, resolve and store one batch; what was stored goes into ``out``
        (new entries in ``added``, existing entries the batch merged into in ``merged``).
        Returns the batch's turns the extractor did not get to (they stay pending)."""
        previous = yield call(self._journal.turn_before, turns[0].scope, turns[0].seq)
        batch = ExtractionBatch(
            turns=turns,
            previous=previous,
            use_roles=_ROLES[self.config.messages_use],
            index_context=self.config.index_context,
        )
        entries = yield from (extractor or self._extractor).extract(batch)
        unread = {t.id for t in batch.unread}
        points = yield from self._vectors(entries)
        wide = Scope(user_id=scope.user_id, agent_id=scope.agent_id)
        changes = _Changes()
        kept = list(zip(entries, points))
        # online rules fold and supersede what extraction said; a verbatim entry is kept as it was given
        if self.config.update == "online" and entries and not isinstance(extractor, VerbatimExtractor):
            candidates = yield from self._neighbours_op(wide, [p.dense for p in points], None, top_k=5)
            kept = []
            for (entry, point), cands in zip(zip(entries, points), candidates):
                decisions = yield from self._online_resolver.decide(entry, cands)
                merged = yield from self._apply_decisions_op(
                    wide, entry, decisions, {e.id: e for e, _ in cands}, changes
                )
                if not merged:
                    kept.append((entry, point))
        # who sent the turns an entry came from (a server key), else the extractor
        sent = {t.id: t.actor for t in turns if t.actor}
        actors = {
            e.id: ",".join(dict.fromkeys(sent[s] for s in e.source_ids if s in sent))
            for e, _ in kept
            if any(s in sent for s in e.source_ids)
        }
        history = [
            HistoryRecord(
                memory_id=e.id,
                event="ADD",
                version=e.version,
                new_memory=e.memory,
                actor=actors.get(e.id, "extract"),
                reason=f"from turns {', '.join(e.source_ids)}",
                source_ids=list(e.source_ids),
                **e.scope.as_payload(),
            )
            for e, _ in kept
        ]
        upserts = kept + (yield from changes.points_op(self, wide))
        yield call(
            self._writer.apply,
            wide,
            upserts=upserts,
            history=history + changes.history,
            done_turns=[(t.user_id, t.id) for t in turns if t.id not in unread],
            expect_versions=changes.expect or None,
        )
        out.added += [e for e, _ in kept]
        out.merged = list(dict.fromkeys([*out.merged, *(h.memory_id for h in changes.history if h.event == "MERGE")]))
        return list(batch.unread)

    def _neighbours_op(
        self, scope: Scope, vectors: Sequence[Any], before: Optional[Sequence[Optional[float]]], top_k: int
    ) -> Op[list[list[tuple[MemoryEntry, float]]]]:
        """Current entries nearest to each vector (optionally only earlier ones), one engine batch."""
        queries = []
        for i, vec in enumerate(vectors):
            conds: list[Any] = [Match("_current", 1)]
            if before is not None and before[i] is not None:
                conds.append(Range("_ts", lt=before[i]))
            queries.append(VectorQuery("dense", vec, top_k, Filter(must=tuple(conds))))
        out: list[list[tuple[MemoryEntry, float]]] = []
        for start in range(0, len(queries), 64):
            results = yield call(self._store.search, scope, queries[start : start + 64])
            out += [[(indexing.from_payload(r.payload), float(r.score or 0.0)) for r in recs] for recs in results]
        return out

    def _apply_decisions_op(
        self,
        scope: Scope,
        new: MemoryEntry,
        decisions: Sequence[Decision],
        targets: Mapping[str, MemoryEntry],
        changes: "_Changes",
        successor: Optional[str] = None,
    ) -> Op[bool]:
        """Record what ``new`` does to older entries; True when ``new`` merged into one.

        What ``new`` supersedes points at the entry that will hold its statement: the
        one it merges into, if any (``new`` itself is then never stored), else
        ``successor`` or ``new``."""
        live = [d for d in decisions if (t := changes.current(targets.get(d.target_id))) is not None and t.is_current]
        into = next((d.target_id for d in live if d.action == "merge"), None)
        successor = into or successor or new.id
        merged = False
        for d in decisions:
            target = changes.current(targets.get(d.target_id))
            if target is None or not target.is_current:
                continue
            if d.action == "merge" and not merged:
                upd = target.model_copy(
                    update={
                        "source_ids": list(dict.fromkeys([*target.source_ids, *new.source_ids])),
                        "version": target.version + 1,
                        "metadata": {
                            **target.metadata,
                            "merged": [*target.metadata.get("merged", []), new.memory][-20:],
                        },
                    }
                )
                changes.add(target, upd, "MERGE", new, d.reason, reembed=False)
                merged = True
            elif d.action == "supersede":
                upd = target.model_copy(
                    update={
                        "valid_to": new.time_stamp or timeparse.utcnow(),
                        "superseded_by": successor,
                        "version": target.version + 1,
                    }
                )
                changes.add(target, upd, "SUPERSEDE", new, d.reason, reembed=False)
            elif d.action == "update" and d.memory:
                upd = target.model_copy(
                    update={
                        "memory": d.memory,
                        "version": target.version + 1,
                        "context": None,
                        "entities": textproc.entities(d.memory),
                        "keywords": textproc.keywords(d.memory),
                        "source_ids": list(dict.fromkeys([*target.source_ids, *new.source_ids])),
                    }
                )
                changes.add(target, upd, "UPDATE", new, d.reason, reembed=True)
        return merged
        yield  # an operation, for symmetry with the resolvers

    def _queue_op(self, user_ids: Sequence[str], top_k: int, keep_top_n: int) -> Op[int]:
        queued = 0
        for user in user_ids:
            scope = Scope(user_id=user)
            after: Optional[str] = None
            while True:
                listing = yield from self._page_op(scope, None, 500, 0, False, after)
                page, after = listing.entries, listing.next_cursor
                if not page:
                    break
                vecs = yield call(self._store.vectors, scope, [e.id for e in page])
                missing = [e for e in page if e.id not in vecs]
                if missing:  # a backend without stored-vector reads: embed again
                    fresh = yield call(self.embedder.embed, [e.memory for e in missing])
                    vecs.update({e.id: v for e, v in zip(missing, fresh)})
                stamps = [timeparse.to_epoch(e.time_stamp or e.recorded_at) for e in page]
                neigh = yield from self._neighbours_op(scope, [vecs[e.id] for e in page], stamps, top_k)
                items = []
                for entry, cands in zip(page, neigh):
                    keep = [(c.id, round(score, 4)) for c, score in cands if c.id != entry.id][:keep_top_n]
                    if keep:
                        items.append((entry.id, entry.scope, keep))
                yield call(self._journal.queue_put, items)
                queued += len(items)
                if after is None:
                    break
        return queued

    def _offline_entry_op(
        self, entry_id: str, scope: Scope, cands: list[tuple[str, float]], threshold: float
    ) -> Op[int]:
        wide = Scope(user_id=scope.user_id, agent_id=scope.agent_id)
        found = yield call(self._store.get, wide, [entry_id])
        entry = indexing.from_payload(found[0].payload) if found else None
        scores = {i: s for i, s in cands if s >= threshold}
        if entry is None or not entry.is_current or not scores:
            yield call(self._journal.queue_done, entry_id)
            return 0
        got = yield call(self._store.get, wide, list(scores))
        targets = [indexing.from_payload(r.payload) for r in got]
        pairs = [(t, scores[t.id]) for t in targets if t.is_current]
        decisions = yield from self._offline_resolver.decide(entry, pairs)
        changes = _Changes()
        # a near duplicate folds this (newer) entry into the older one: that one then holds its statement
        current = {t.id for t, _ in pairs}
        into = next((d.target_id for d in decisions if d.action == "merge" and d.target_id in current), None)
        yield from self._apply_decisions_op(
            wide,
            entry,
            [d for d in decisions if d.action != "merge"],
            {t.id: t for t in targets},
            changes,
            successor=into,
        )
        # Offline, a near duplicate folds the NEWER entry into the older one.
        for d in decisions:
            if d.action == "merge" and d.target_id in current:
                older = next(t for t, _ in pairs if t.id == d.target_id)
                upd = older.model_copy(
                    update={
                        "source_ids": list(dict.fromkeys([*older.source_ids, *entry.source_ids])),
                        "version": older.version + 1,
                    }
                )
                changes.add(older, upd, "MERGE", entry, d.reason, reembed=False)
                gone = HistoryRecord(
                    memory_id=entry.id,
                    event="DELETE",
                    version=entry.version + 1,
                    old_memory=entry.memory,
                    reason=f"merged into {older.id}: {d.reason}",
                    actor="update",
                    **entry.scope.as_payload(),
                )
                changes.history.append(gone)
                changes.deletes.append(entry.id)
                changes.expect[entry.id] = entry.version
                break
        if changes.history:
            upserts = yield from changes.points_op(self, wide)
            yield call(
                self._writer.apply,
                wide,
                upserts=upserts,
                deletes=changes.deletes,
                history=changes.history,
                expect_versions=changes.expect,
            )
            if changes.deletes:
                yield call(self._journal.queue_drop, changes.deletes)
        yield call(self._journal.queue_done, entry_id)
        return len(changes.history)

    def _offline_update_op(
        self, score_threshold: float, user_id: Optional[str], max_workers: int
    ) -> Op[dict[str, int]]:
        """Written once so that both twins check the threshold, retry the losers of a conflict
        and log what stays queued alike: a second copy had already drifted on all three."""
        if not isinstance(score_threshold, (int, float)) or not 0 <= score_threshold <= 1:
            raise InvalidInputError("score_threshold", "expected a number from 0 to 1")
        threshold = float(score_threshold)
        user = self._scope(user_id, None, None).user_id if user_id else None
        rows: list[tuple[str, Scope, list[tuple[str, float]]]] = yield call(self._journal.queue_pending, user)
        results = yield parallel([self._offline_entry_op(e, sc, c, threshold) for e, sc, c in rows], max_workers)
        # Two entries racing for the same older entry: the loser retries alone, on fresh data.
        retry = [i for i, r in enumerate(results) if isinstance(r, ConflictError)]
        again = yield parallel([self._offline_entry_op(*rows[i][:3], threshold) for i in retry], 1)
        for i, r in zip(retry, again):
            results[i] = r
        errors = [r for r in results if isinstance(r, BaseException)]
        for err in errors[:3]:
            log.warning("offline update: an entry stays queued: %s", err)
        return {
            "processed": len(results) - len(errors),
            "changes": sum(r for r in results if isinstance(r, int)),
            "failed": len(errors),
        }

    def _pipeline_op(
        self, scope: Scope, out: AddResult, *, force_segment: bool, force_extract: bool
    ) -> Op[Optional[str]]:
        """Sensory buffer -> compression -> topic segmentation -> short-term buffer -> extraction.

        Every step reads its input from the journal, so a restart resumes where the last
        run stopped. An LLM or embedding-endpoint failure leaves the batch's turns pending
        (see ``pending()``) and is reported, not raised: the turns are safe, and the next
        call retries. What was stored goes into ``out``; the error, if any, is returned.
        """
        sensory = yield call(self._journal.buffer, scope, "sensory")
        yield from self._compress_op(scope, sensory)
        yield from self._segment_op(
            scope, sensory, force_segment or force_extract or self.llm is None and self.segmenter is None
        )
        conflict: Optional[Exception] = None
        for _ in range(_CONFLICT_RETRIES):
            short = yield call(self._journal.buffer, scope, "short")
            if not short:
                return None
            if self.llm is not None and not force_extract and self._tokens(short) < self._extract_budget():
                return None
            try:
                work = self._batches(short)[::-1]
                while work:
                    batch = work.pop()
                    try:
                        unread = yield from self._extract_op(scope, batch, out)
                        if unread:  # an answer cut at max_tokens covered the head: the tail again
                            work.append(unread)
                    except (ContextWindowError, AnswerTruncatedError) as exc:
                        # the window, or the answer's budget, is smaller than the batch needs: halve and go on
                        if len(batch) > 1:
                            log.info("extraction batch of %d turns did not fit (%s); halving", len(batch), exc)
                            work += [batch[len(batch) // 2 :], batch[: len(batch) // 2]]
                            continue
                        log.warning(
                            "one turn does not fit the model's window or answer budget; it stays pending: %s", exc
                        )
                        yield call(self._journal.mark_failed, scope.user_id, [t.id for t in batch], str(exc))
                        return str(exc)
                    except (LLMError, EmbeddingError) as exc:
                        log.warning("extraction failed, %d turns stay pending: %s", len(batch), exc)
                        yield call(self._journal.mark_failed, scope.user_id, [t.id for t in batch], str(exc))
                        return str(exc)
                return None
            except (ConflictError, NotFoundError) as exc:
                # A concurrent call on this buffer stored some of these turns first, or
                # changed (or deleted) an entry this batch merges into: read the buffer again.
                conflict = exc
        log.info(
            "extraction gave way to concurrent calls %d times; what is left stays pending: %s",
            _CONFLICT_RETRIES,
            conflict,
        )
        return f"concurrent changes, retry later: {conflict}"

    def _add_op(
        self,
        messages: MessagesIn,
        scope: Scope,
        force_segment: bool,
        force_extract: bool,
        infer: bool = True,
        defer: bool = False,
        actor: Optional[str] = None,
    ) -> Op[AddResult]:
        for name, flag in (
            ("infer", infer),
            ("defer", defer),
            ("force_segment", force_segment),
            ("force_extract", force_extract),
        ):
            if not isinstance(flag, bool):
                raise InvalidInputError(name, f"expected true or false, got {flag!r}")
        if actor is not None and (not isinstance(actor, str) or not actor.strip()):
            raise InvalidInputError("actor", "expected a non-empty string")
        msgs, skipped = self._messages(messages)
        now = timeparse.utcnow()
        new_ids, dup_ids = yield call(self._journal.accept_turns, scope, msgs, now, actor)
        if dup_ids:
            log.info("skipped %d turn(s) already journaled for user %s", len(dup_ids), scope.user_id)
        out = AddResult(turn_ids=new_ids, duplicate_turn_ids=dup_ids, skipped=skipped)
        if not infer:
            # Stored as given, bypassing the buffers; the turns are journaled first all the same.
            turns = yield call(self._journal.get_turns, scope, new_ids)
            if turns:
                yield from self._extract_op(scope, turns, out, VerbatimExtractor())
        elif not defer:
            out.error = yield from self._pipeline_op(
                scope, out, force_segment=force_segment, force_extract=force_extract
            )
        out.pending_turns = yield call(self._journal.buffer_size, scope)
        return out

    def _extract_pending_op(self, scope: Scope, force: bool) -> Op[AddResult]:
        out = AddResult()
        out.error = yield from self._pipeline_op(scope, out, force_segment=force, force_extract=force)
        out.pending_turns = yield call(self._journal.buffer_size, scope)
        return out

    def _flush_op(self, scopes: Sequence[Scope]) -> Op[AddResult]:
        out = AddResult()
        errors = []
        for scope in scopes:
            error = yield from self._pipeline_op(scope, out, force_segment=True, force_extract=True)
            if error:
                errors.append(error)
        out.error = "; ".join(errors) or None
        out.pending_turns = sum(self._journal.buffer_size(s) for s in scopes)
        return out

    def _read_path(self) -> ReadPath:
        """Built per call from the live config, so a changed ``retrieval`` setting applies at once."""
        return ReadPath(
            Sources(self._store, self._summaries, self.embedder, self._bm25, self._journal.neighbour_turns),
            self.config.retrieval,
        )

    def _request(
        self,
        query: Any,
        limit: Any,
        filters: Optional[Mapping[str, Any]],
        strategy: Optional[str],
        include_superseded: bool,
        hierarchical: Optional[bool],
        now: Any,
    ) -> RetrieveRequest:
        return RetrieveRequest.of(
            query,
            limit,
            filters,
            strategy=strategy,
            include_superseded=include_superseded,
            hierarchical=hierarchical,
            now=now,
            config=self.config.retrieval,
            index_strategy=self.config.index_strategy,
        )

    def _store_for(self, filters: Optional[Mapping[str, Any]]) -> MemoryStore:
        """Summaries are a collection of their own; ``entry_type="summary"`` reads it."""
        return self._summaries if reads_summaries(filters) else self._store

    def _summarize_op(self, scope: Scope, window: str, since: Any, until: Any) -> Op[list[MemoryEntry]]:
        from .summarize import extractive_summary, group_entries, summary_entry, summary_messages

        if window not in ("session", "day", "week", "month"):
            raise InvalidInputError("window", f"expected session, day, week or month, got {window!r}")
        flt: dict[str, Any] = {}
        bounds = {k: v for k, v in (("gte", since), ("lte", until)) if v is not None}
        if bounds:
            flt["time_stamp"] = bounds
        entries = yield from self._every_entry_op(scope, flt or None, False)
        out: list[MemoryEntry] = []
        for key, group in group_entries(entries, window).items():
            if self.llm is not None:
                from .llm import complete_json_op

                data = yield from complete_json_op(
                    self.llm,
                    summary_messages(self.prompts, group),
                    stage="summary",
                    validate=lambda d: bool(
                        isinstance(d, dict) and isinstance(d.get("summary"), str) and d["summary"].strip()
                    ),
                )
                text = data["summary"]
            else:
                text = extractive_summary(group)
            new = summary_entry(scope, window, key, group, text)
            existing = yield call(self._summaries.get, scope, [new.id])
            old = indexing.from_payload(existing[0].payload) if existing else None
            if old is not None and old.memory == new.memory:
                out.append(old)
                continue
            if old is not None:
                new.version = old.version + 1
            points = yield from self._vectors([new])
            record = HistoryRecord(
                memory_id=new.id,
                event="UPDATE" if old else "ADD",
                version=new.version,
                old_memory=old.memory if old else None,
                new_memory=new.memory,
                actor="summarize",
                reason=f"{window} {key}: {len(group)} entries",
                **new.scope.as_payload(),
            )
            yield call(
                self._writer.apply,
                scope,
                upserts=[(new, points[0])],
                history=[record],
                collection="summaries",
                expect_versions={old.id: old.version} if old else None,
            )
            out.append(new)
        return out

    def _locate_op(self, memory_id: Any, scope: Scope) -> Op[tuple[MemoryEntry, str]]:
        if not isinstance(memory_id, str) or not memory_id.strip():
            raise InvalidInputError("memory_id", "expected a non-empty string")
        for name, store in self._stores.items():
            found = yield call(store.get, scope, [memory_id])
            if found:
                return indexing.from_payload(found[0].payload), name
        raise NotFoundError(memory_id)

    def _get_op(self, memory_id: Any, scope: Scope) -> Op[MemoryEntry]:
        entry, _ = yield from self._locate_op(memory_id, scope)
        return entry

    def _page_op(
        self,
        scope: Scope,
        filters: Optional[Mapping[str, Any]],
        limit: Any,
        offset: Any,
        include_superseded: bool,
        after: Any = None,
    ) -> Op[EntryPage]:
        """One page of the scope's entries in (time stamp, id) order, and where the next starts."""
        limit = valid_limit(limit, maximum=10_000)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidInputError("offset", f"expected a non-negative integer, got {offset!r}")
        cursor = Cursor.decode(after) if after is not None else None
        flt = parse_filters(filters)
        if not include_superseded:
            flt = Filter(must=(Match("_current", 1),)) & flt
        # one more than asked: whether a next page exists, without another round trip
        records = yield call(self._store_for(filters).page, scope, flt, limit=limit + 1, after=cursor, offset=offset)
        more = len(records) > limit
        records = records[:limit]
        return EntryPage(
            entries=[indexing.from_payload(r.payload) for r in records],
            next_cursor=Cursor.of(records[-1]).encode() if more else None,
        )

    def _get_all_op(
        self,
        scope: Scope,
        filters: Optional[Mapping[str, Any]],
        limit: Any,
        offset: Any,
        include_superseded: bool,
        after: Any = None,
    ) -> Op[list[MemoryEntry]]:
        page = yield from self._page_op(scope, filters, limit, offset, include_superseded, after)
        return page.entries

    def _every_entry_op(
        self, scope: Scope, filters: Optional[Mapping[str, Any]], include_superseded: bool
    ) -> Op[list[MemoryEntry]]:
        """All of the scope's entries, read page by page with cursors."""
        out: list[MemoryEntry] = []
        after: Optional[str] = None
        while True:
            page = yield from self._page_op(scope, filters, 1000, 0, include_superseded, after)
            out += page.entries
            if page.next_cursor is None:
                return out
            after = page.next_cursor

    def _update_op(
        self,
        memory_id: str,
        memory: Any,
        scope: Scope,
        metadata: Optional[Mapping[str, Any]],
        reason: Optional[str],
        expected_version: Any = None,
        actor: Optional[str] = None,
    ) -> Op[MemoryEntry]:
        if expected_version is not None and (
            isinstance(expected_version, bool) or not isinstance(expected_version, int) or expected_version < 1
        ):
            raise InvalidInputError("expected_version", f"expected a positive integer, got {expected_version!r}")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise InvalidInputError("metadata", f"expected a dict, got {type(metadata).__name__}")
        try:
            check_metadata(metadata)
        except ValueError as exc:
            raise InvalidInputError("metadata", str(exc)) from None
        if memory is None and metadata is None:
            raise InvalidInputError("update.memory", "give the new text, new metadata, or both")
        old, collection = yield from self._locate_op(memory_id, scope)
        if expected_version is not None and old.version != expected_version:
            raise ConflictError(
                f"memory {old.id!r} is at version {old.version}, not {expected_version}: someone changed it first"
            )
        same_text = memory is None or memory == old.memory
        data = old.model_dump()
        data.update(version=old.version + 1, metadata={**old.metadata, **(metadata or {})})
        if not same_text:
            data.update(memory=memory, context=None)
        try:
            new = MemoryEntry.model_validate(data)
        except ValidationError as exc:
            raise _validation_error(exc, "update") from None
        if same_text:  # a metadata change: the stored vectors still hold
            ((_, point),) = yield from self._kept_points_op(scope, [new], self._stores[collection])
        else:
            new.entities = textproc.entities(new.memory)
            new.keywords = textproc.keywords(new.memory)
            (point,) = yield from self._vectors([new])
        record = HistoryRecord(
            memory_id=new.id,
            event="UPDATE",
            version=new.version,
            old_memory=old.memory,
            new_memory=new.memory,
            reason=reason,
            actor=actor or "api",
            **new.scope.as_payload(),
        )
        yield call(
            self._writer.apply,
            scope,
            upserts=[(new, point)],
            history=[record],
            expect_versions={old.id: old.version},
            collection=collection,
        )
        return new

    def _delete_op(self, memory_id: str, scope: Scope, reason: Optional[str], actor: Optional[str] = None) -> Op[None]:
        old, collection = yield from self._locate_op(memory_id, scope)
        record = HistoryRecord(
            memory_id=old.id,
            event="DELETE",
            version=old.version + 1,
            old_memory=old.memory,
            reason=reason,
            actor=actor or "api",
            **old.scope.as_payload(),
        )
        yield call(
            self._writer.apply,
            scope,
            deletes=[old.id],
            history=[record],
            expect_versions={old.id: old.version},
            collection=collection,
        )
        yield call(self._journal.queue_drop, [old.id])

    def _delete_all_op(
        self, scope: Scope, filters: Optional[Mapping[str, Any]], actor: Optional[str] = None
    ) -> Op[int]:
        flt = parse_filters(filters)
        total = 0
        for name, store in self._stores.items():
            while True:
                records = yield call(store.scroll, scope, flt, limit=1000)
                if not records:
                    break
                entries = [indexing.from_payload(r.payload) for r in records]
                history = [
                    HistoryRecord(
                        memory_id=e.id,
                        event="DELETE",
                        version=e.version + 1,
                        old_memory=e.memory,
                        reason="delete_all",
                        actor=actor or "api",
                        **e.scope.as_payload(),
                    )
                    for e in entries
                ]
                yield call(self._writer.apply, scope, deletes=[e.id for e in entries], history=history, collection=name)
                yield call(self._journal.queue_drop, [e.id for e in entries])
                total += len(entries)
        return total

    def _history_op(self, memory_id: Any, scope: Scope) -> Op[list[HistoryRecord]]:
        if not isinstance(memory_id, str) or not memory_id.strip():
            raise InvalidInputError("memory_id", "expected a non-empty string")
        records = yield call(self._journal.history, scope, memory_id)
        if not records:
            raise NotFoundError(memory_id)
        return records

    def _sources_op(self, memory_id: str, scope: Scope) -> Op[list[TurnRow]]:
        entry = yield from self._get_op(memory_id, scope)
        return (yield call(self._journal.get_turns, Scope(user_id=entry.user_id), entry.source_ids))

    # --- public API ---------------------------------------------------------------------------
    def add_memory(
        self,
        messages: MessagesIn,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        force_segment: bool = False,
        force_extract: bool = False,
        infer: bool = True,
        defer: bool = False,
        actor: Optional[str] = None,
    ) -> AddResult:
        """Journal the turns (durable before this returns), then run the write path.

        With an LLM, turns wait in the buffers until a topic closes and enough tokens
        collect for one extraction call; ``force_segment`` closes the open topic now,
        ``force_extract`` also extracts whatever is buffered. Offline, entries are
        made at once. ``infer=False`` (mem0's flag) stores each message as one entry,
        word for word, with no compression, segmentation or LLM call. ``defer=True``
        journals the turns and returns: the write path runs later, on
        ``extract_pending`` or ``flush`` (a server's background worker). ``actor`` says
        who sent the turns; their entries' ADD records carry it.
        """
        return run_sync(
            self._add_op(
                messages, self._scope(user_id, agent_id, session_id), force_segment, force_extract, infer, defer, actor
            )
        )

    async def aadd_memory(
        self,
        messages: MessagesIn,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        force_segment: bool = False,
        force_extract: bool = False,
        infer: bool = True,
        defer: bool = False,
        actor: Optional[str] = None,
    ) -> AddResult:
        return await run_async(
            self._add_op(
                messages, self._scope(user_id, agent_id, session_id), force_segment, force_extract, infer, defer, actor
            )
        )

    def extract_pending(
        self, *, user_id: Optional[str] = None, agent_id: Optional[str] = None, force: bool = False
    ) -> AddResult:
        """Run the write path over one stream's buffered turns, as ``add_memory`` would after
        journaling them (``force=True``: as ``flush`` does, closing the topic and extracting
        whatever is buffered)."""
        return run_sync(self._extract_pending_op(self._scope(user_id, agent_id, None), force))

    async def aextract_pending(
        self, *, user_id: Optional[str] = None, agent_id: Optional[str] = None, force: bool = False
    ) -> AddResult:
        return await run_async(self._extract_pending_op(self._scope(user_id, agent_id, None), force))

    def retrieve(
        self,
        query: str,
        limit: int = 10,
        filters: Optional[Mapping[str, Any]] = None,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        strategy: Optional[str] = None,
        include_superseded: bool = False,
        hierarchical: Optional[bool] = None,
        now: Any = None,
        scopes: Optional[Sequence[Any]] = None,
    ) -> list[Hit]:
        """The entries most relevant to ``query`` in the caller's scope, best first.

        ``scopes`` searches several scopes in one list instead (user ids such as
        ``["maya", "team:apollo"]``, or ``{"user_id": ..., "agent_id": ...}`` dicts): each is
        searched with the scope filter as always, and the hits are ranked together by their
        similarity to the query; ``hit.entry.user_id`` says where each came from.

        Calendar periods in the query ("in May 2023", "on 3 June") are resolved against
        ``now`` (default: the clock) and boost (or, with ``retrieval.temporal="filter"``,
        restrict to) that period; relative ones ("last week") only with the ``period``
        stage's ``relative`` setting.
        ``hierarchical=True`` first ranks the scope's summaries (see ``summarize()``),
        returns the best ``retrieval.summary_limit`` of them ahead of the entries, and
        favours entries from those periods; ``limit`` counts the entries only.
        """
        return run_sync(
            self._read_path().run_op(
                self._request(query, limit, filters, strategy, include_superseded, hierarchical, now),
                self._scopes(scopes, user_id, agent_id, session_id),
            )
        )

    async def aretrieve(
        self,
        query: str,
        limit: int = 10,
        filters: Optional[Mapping[str, Any]] = None,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        strategy: Optional[str] = None,
        include_superseded: bool = False,
        hierarchical: Optional[bool] = None,
        now: Any = None,
        scopes: Optional[Sequence[Any]] = None,
    ) -> list[Hit]:
        return await run_async(
            self._read_path().run_op(
                self._request(query, limit, filters, strategy, include_superseded, hierarchical, now),
                self._scopes(scopes, user_id, agent_id, session_id),
            )
        )

    def _scopes(
        self,
        scopes: Optional[Sequence[Any]],
        user_id: Optional[str],
        agent_id: Optional[str],
        session_id: Optional[str],
    ) -> list[Scope]:
        if scopes is None:
            return [self._scope(user_id, agent_id, session_id)]
        if isinstance(scopes, (str, Mapping)) or not isinstance(scopes, Sequence) or not scopes:
            raise InvalidInputError("scopes", "expected a non-empty list of user ids or scope dicts")
        out = []
        for i, s in enumerate(scopes):
            if isinstance(s, Scope):
                out.append(s)
                continue
            fields = {"user_id": s} if isinstance(s, str) else dict(s) if isinstance(s, Mapping) else None
            if fields is None or set(fields) - {"user_id", "agent_id", "session_id"} or "user_id" not in fields:
                raise InvalidInputError(f"scopes[{i}]", "expected a user id or {user_id, agent_id?, session_id?}")
            try:
                out.append(Scope(**fields))
            except ValidationError as exc:
                raise _validation_error(exc, f"scopes[{i}]") from None
        return list(dict.fromkeys(out))

    def get(
        self,
        memory_id: str,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
    ) -> MemoryEntry:
        return run_sync(self._get_op(memory_id, self._scope(user_id, agent_id, session_id)))

    async def aget(
        self,
        memory_id: str,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
    ) -> MemoryEntry:
        return await run_async(self._get_op(memory_id, self._scope(user_id, agent_id, session_id)))

    def get_all(
        self,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        filters: Optional[Mapping[str, Any]] = None,
        limit: int = 100,
        offset: int = 0,
        include_superseded: bool = False,
        after: Optional[str] = None,
    ) -> list[MemoryEntry]:
        """Entries of the scope in time order (ties by id), ``limit`` at a time from ``offset``
        or after a cursor (``get_page(...).next_cursor``): deep pages should use the cursor."""
        return run_sync(
            self._get_all_op(
                self._scope(user_id, agent_id, session_id), filters, limit, offset, include_superseded, after
            )
        )

    async def aget_all(
        self,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        filters: Optional[Mapping[str, Any]] = None,
        limit: int = 100,
        offset: int = 0,
        include_superseded: bool = False,
        after: Optional[str] = None,
    ) -> list[MemoryEntry]:
        return await run_async(
            self._get_all_op(
                self._scope(user_id, agent_id, session_id), filters, limit, offset, include_superseded, after
            )
        )

    def get_page(
        self,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        filters: Optional[Mapping[str, Any]] = None,
        limit: int = 100,
        after: Optional[str] = None,
        include_superseded: bool = False,
    ) -> EntryPage:
        """One page of entries in (time stamp, id) order and the cursor of the next one.

        Every entry that exists from the first page to the last is returned exactly once,
        whatever is added or deleted in between; each page costs the same however deep."""
        return run_sync(
            self._page_op(self._scope(user_id, agent_id, session_id), filters, limit, 0, include_superseded, after)
        )

    async def aget_page(
        self,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        filters: Optional[Mapping[str, Any]] = None,
        limit: int = 100,
        after: Optional[str] = None,
        include_superseded: bool = False,
    ) -> EntryPage:
        return await run_async(
            self._page_op(self._scope(user_id, agent_id, session_id), filters, limit, 0, include_superseded, after)
        )

    def update(
        self,
        memory_id: str,
        memory: Optional[str] = None,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        reason: Optional[str] = None,
        expected_version: Optional[int] = None,
        actor: Optional[str] = None,
    ) -> MemoryEntry:
        """Replace an entry's text (re-embedded) and/or merge into its metadata, keeping the
        old text in its history. ``memory=None`` changes the metadata only (no model pass).
        With ``expected_version`` the change is refused with ``ConflictError`` when someone
        else changed the entry first; without it the last writer wins and the earlier text
        stays in history. ``actor`` says who made the change (history's ``actor``)."""
        return run_sync(
            self._update_op(
                memory_id, memory, self._scope(user_id, agent_id, session_id), metadata, reason, expected_version, actor
            )
        )

    async def aupdate(
        self,
        memory_id: str,
        memory: Optional[str] = None,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        reason: Optional[str] = None,
        expected_version: Optional[int] = None,
        actor: Optional[str] = None,
    ) -> MemoryEntry:
        return await run_async(
            self._update_op(
                memory_id, memory, self._scope(user_id, agent_id, session_id), metadata, reason, expected_version, actor
            )
        )

    def delete(
        self,
        memory_id: str,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        reason: Optional[str] = None,
        actor: Optional[str] = None,
    ) -> None:
        run_sync(self._delete_op(memory_id, self._scope(user_id, agent_id, session_id), reason, actor))

    async def adelete(
        self,
        memory_id: str,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        reason: Optional[str] = None,
        actor: Optional[str] = None,
    ) -> None:
        await run_async(self._delete_op(memory_id, self._scope(user_id, agent_id, session_id), reason, actor))

    def delete_all(
        self,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        filters: Optional[Mapping[str, Any]] = None,
        actor: Optional[str] = None,
    ) -> int:
        """Delete every entry of the scope (history keeps a DELETE record of each)."""
        return run_sync(self._delete_all_op(self._scope(user_id, agent_id, session_id), filters, actor))

    async def adelete_all(
        self,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        filters: Optional[Mapping[str, Any]] = None,
        actor: Optional[str] = None,
    ) -> int:
        return await run_async(self._delete_all_op(self._scope(user_id, agent_id, session_id), filters, actor))

    def history(
        self,
        memory_id: str,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
    ) -> list[HistoryRecord]:
        return run_sync(self._history_op(memory_id, self._scope(user_id, agent_id, session_id)))

    async def ahistory(
        self,
        memory_id: str,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
    ) -> list[HistoryRecord]:
        return await run_async(self._history_op(memory_id, self._scope(user_id, agent_id, session_id)))

    def source_turns(
        self,
        memory_id: str,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
    ) -> list[TurnRow]:
        """The journaled turns an entry was made from (its provenance)."""
        return run_sync(self._sources_op(memory_id, self._scope(user_id, agent_id, session_id)))

    def export_records(self, *, user_id: Optional[str] = None) -> Iterator[dict[str, Any]]:
        """Everything kept for one user (every user when None) as JSON-ready records that
        ``import_records`` turns back into an identical memory: a header, then per user the
        journaled turns, the entries of both collections (superseded ones too) and the
        committed history. Vectors are left out: they derive from the text and are rebuilt
        by the importing store's embedder. The offline-update queue is work in progress,
        not memory, and is left out too."""
        users = self._users(user_id)
        yield {"kind": "header", "format": EXPORT_FORMAT, "version": 1, "embedder": self._embedder_name()}
        for user in users:
            scope = Scope(user_id=user)
            for turn in self._journal.export_turns(user):
                yield {"kind": "turn", **turn.model_dump(mode="json", exclude={"seq"})}
            for name, store in self._stores.items():
                cursor: Optional[Cursor] = None
                while True:  # in (time, id) order, so two exports of one memory are the same file
                    records = store.page(scope, limit=1000, after=cursor)
                    for r in records:
                        yield {
                            "kind": "entry",
                            "collection": name,
                            **indexing.from_payload(r.payload).model_dump(mode="json"),
                        }
                    if len(records) < 1000:
                        break
                    cursor = Cursor.of(records[-1])
            for record in self._journal.export_history(user):
                yield {"kind": "history", **record.model_dump(mode="json")}

    def import_records(self, records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
        """Load records written by ``export_records`` verbatim: turns with their processing
        state, entries with their ids, versions and time line (re-embedded here), history
        as it was. Every record is validated before anything is written; records already
        present are kept, so importing the same file twice changes nothing."""
        turns: list[TurnRow] = []
        entries: dict[str, list[MemoryEntry]] = {name: [] for name in self._stores}
        history: list[HistoryRecord] = []
        for i, raw in enumerate(records):
            if not isinstance(raw, Mapping):
                raise InvalidInputError(f"records[{i}]", f"expected an object, got {type(raw).__name__}")
            data = dict(raw)
            kind = data.pop("kind", None)
            try:
                if kind == "header":
                    if data.get("format") != EXPORT_FORMAT:
                        raise InvalidInputError(f"records[{i}].format", f"expected {EXPORT_FORMAT!r}")
                elif kind == "turn":
                    turns.append(TurnRow.model_validate(data))
                elif kind == "entry":
                    name = data.pop("collection", "entries")
                    if name not in entries:
                        raise InvalidInputError(f"records[{i}].collection", f"expected one of {sorted(entries)}")
                    entries[name].append(MemoryEntry.model_validate(data))
                elif kind == "history":
                    history.append(HistoryRecord.model_validate(data))
                else:
                    raise InvalidInputError(
                        f"records[{i}].kind", f"expected header, turn, entry or history, got {kind!r}"
                    )
            except ValidationError as exc:
                raise _validation_error(exc, f"records[{i}]") from None
        counts = {"turns": self._journal.import_turns(turns) if turns else 0, "entries": 0, "history": 0}
        for name, batch in entries.items():
            for start in range(0, len(batch), 256):
                chunk = batch[start : start + 256]
                points = run_sync(self._vectors(chunk))
                self._writer.apply(chunk[0].scope, upserts=list(zip(chunk, points)), collection=name)
                counts["entries"] += len(chunk)
        counts["history"] = self._journal.import_history(history) if history else 0
        return counts

    def users(self) -> list[str]:
        """Every user id this memory holds turns or entries for (operators, adapters listing namespaces)."""
        return self._journal.all_users()

    def _users(self, user_id: Optional[str]) -> list[str]:
        return [self._scope(user_id, None, None).user_id] if user_id is not None else self.users()

    def construct_update_queue_all_entries(
        self, top_k: int = 20, keep_top_n: int = 10, *, user_id: Optional[str] = None
    ) -> int:
        """Queue, for every current entry, the earlier entries it may update (nearest
        neighbours from the store, same user). Persisted, so an interrupted offline
        update resumes. Returns how many entries were queued."""
        valid_limit(top_k, "top_k")
        valid_limit(keep_top_n, "keep_top_n")
        return run_sync(self._queue_op(self._users(user_id), top_k, keep_top_n))

    def offline_update_all_entries(
        self, score_threshold: float = 0.8, *, user_id: Optional[str] = None, max_workers: int = 4
    ) -> dict[str, int]:
        """Resolve the queue: candidates scoring at least ``score_threshold`` are merged,
        updated (re-embedded) or superseded as the resolver decides; every decision goes
        to history with its reason. Safe to call again after an interruption."""
        return run_sync(self._offline_update_op(score_threshold, user_id, max_workers))

    async def aoffline_update_all_entries(
        self, score_threshold: float = 0.8, *, user_id: Optional[str] = None, max_workers: int = 4
    ) -> dict[str, int]:
        return await run_async(self._offline_update_op(score_threshold, user_id, max_workers))

    def summarize(
        self,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        window: str = "session",
        since: Any = None,
        until: Any = None,
    ) -> list[MemoryEntry]:
        """Consolidate the scope's current entries into one summary per session (or day,
        week, month), stored apart with their period; re-running updates them in place."""
        return run_sync(self._summarize_op(self._scope(user_id, agent_id, session_id), window, since, until))

    async def asummarize(
        self,
        *,
        user_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        session_id: Optional[str] = None,
        window: str = "session",
        since: Any = None,
        until: Any = None,
    ) -> list[MemoryEntry]:
        return await run_async(self._summarize_op(self._scope(user_id, agent_id, session_id), window, since, until))

    def pending(
        self, *, user_id: Optional[str] = None, agent_id: Optional[str] = None, session_id: Optional[str] = None
    ) -> list[TurnRow]:
        """Turns accepted but not yet turned into stored entries (buffered, or waiting
        for a retry after a failed LLM call: see ``attempts`` and ``last_error``)."""
        return self._journal.pending_turns(self._scope(user_id, agent_id, session_id))

    @property
    def dims(self) -> int:
        """The size of this store's vectors."""
        return self._store.spec.dims

    def public_config(self) -> dict[str, Any]:
        """What a client of a served memory needs to know of its config (no paths, no secrets)."""
        c = self.config
        return {
            "default_user_id": c.default_user_id,
            "max_message_chars": c.max_message_chars,
            "dims": self.dims,
            "update": c.update,
            "extraction_mode": c.extraction_mode,
            "retrieval": {
                "strategy": c.retrieval.strategy,
                "limit": c.retrieval.limit,
                "hierarchical": c.retrieval.hierarchical,
                "window": c.retrieval.window,
            },
        }

    def pending_streams(self) -> list[Scope]:
        """The streams (user, agent) that have turns waiting for extraction (a server's
        worker resumes them after a restart)."""
        return self._journal.pending_scopes()

    def _flush_scopes(self, user_id: Optional[str], agent_id: Optional[str], session_id: Optional[str]) -> list[Scope]:
        """The buffered streams (user, agent) to flush; a session names the stream it belongs to."""
        if user_id is None and agent_id is None and session_id is None:
            return self._journal.pending_scopes()
        want = self._scope(user_id, agent_id, session_id)
        return [
            s
            for s in self._journal.pending_scopes()
            if s.user_id == want.user_id and want.agent_id in (None, s.agent_id)
        ]

    def flush(
        self, *, user_id: Optional[str] = None, agent_id: Optional[str] = None, session_id: Optional[str] = None
    ) -> AddResult:
        """Segment and extract everything buffered (all scopes when none is given); retries failed batches."""
        return run_sync(self._flush_op(self._flush_scopes(user_id, agent_id, session_id)))

    async def aflush(
        self, *, user_id: Optional[str] = None, agent_id: Optional[str] = None, session_id: Optional[str] = None
    ) -> AddResult:
        return await run_async(self._flush_op(self._flush_scopes(user_id, agent_id, session_id)))

    def get_repair_statistics(self) -> dict[str, int]:
        """How often a model's answer needed mapping back onto its batch (see ``repairs``):
        ids given as dates or quotes, unresolved times, facts without their speaker."""
        return self._repairs.snapshot()

    def get_token_statistics(self) -> dict[str, Any]:
        """LLM calls and tokens per stage (extraction, update, summary) and in total."""
        stats = getattr(self.llm, "get_token_statistics", None)
        return stats() if stats else {"total": {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0}}

    def reset(self) -> None:
        """Delete every entry, turn and history record of every user."""
        with self._writer.lock:
            for store in self._stores.values():
                store._drop_all()
            self._journal.reset()

    def optimize(self) -> None:
        for store in self._stores.values():
            store.optimize()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                for store in self._stores.values():
                    store.close()
            finally:
                self._journal.close()

    async def aclose(self) -> None:
        import asyncio

        await asyncio.to_thread(self.close)

    def __enter__(self) -> "LightMemory":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> "LightMemory":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
