"""Concurrency: many threads (or asyncio tasks) adding, retrieving, updating and deleting
on one ``LightMemory``; afterwards the store must agree with the history log.

The workers share three users, so updates and deletes race on the same entries. Two
outcomes of a race are legitimate and counted, not failures: ``NotFoundError`` (the
entry was deleted first) and ``ConflictError`` (it changed between read and write).
Anything else raised is a failure. The final check replays every entry's history
(ADD, UPDATE, MERGE, SUPERSEDE, DELETE) and demands that the store holds exactly the
entries whose history does not end in DELETE, each with the replayed text and version,
that every acknowledged update and delete is in the history, and that every
acknowledged turn is stored.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from lightmem_core import ConflictError, LightMemory, NotFoundError
from lightmem_core.extract import ExtractionBatch, ExtractiveExtractor

USERS = ("u0", "u1", "u2")
STRATEGIES = ("embedding", "context", "hybrid")
RACES = (NotFoundError, ConflictError)
WORDS = (
    "garden piano coffee bicycle museum river ticket cousin recipe mountain lantern harbor violin "
    "passport kitten market journal ferry orchard tennis"
).split()


@dataclass
class Log:
    """What the workers were told: acknowledged writes, races seen, unexpected errors."""

    owner: dict[str, str] = field(default_factory=dict)  # entry id -> user
    turns: dict[str, set[str]] = field(default_factory=dict)  # user -> acknowledged turn ids
    updates: list[tuple[str, int, str]] = field(default_factory=list)
    deletes: set[str] = field(default_factory=set)
    ops: Counter = field(default_factory=Counter)
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ids(self, user: str) -> list[str]:
        with self.lock:
            return [i for i, u in self.owner.items() if u == user]


def message(rng: random.Random, tag: str) -> dict[str, Any]:
    a, b, c = rng.sample(WORDS, 3)
    return {
        "id": tag,
        "role": rng.choice(["user", "assistant"]),
        "content": f"Note {tag}: the {a} is next to the {b}, and we talked about the {c} again.",
    }


class Plan:
    """One worker's next operation, the same for the thread and the asyncio variants."""

    def __init__(self, log: Log, seed: int, name: str) -> None:
        self.log = log
        self.rng = random.Random(seed)
        self.name = name
        self.n = 0

    def next(self) -> tuple[str, str, Any]:
        rng, user = self.rng, self.rng.choice(USERS)
        r = rng.random()
        ids = self.log.ids(user)
        if r < 0.35 or (r >= 0.65 and not ids):
            self.n += 1
            msgs = [message(rng, f"{self.name}-{self.n}-{k}") for k in range(rng.randint(1, 2))]
            return "add", user, msgs
        if r < 0.65:
            return "retrieve", user, (" ".join(rng.sample(WORDS, 2)), rng.choice(STRATEGIES))
        if r < 0.88:
            self.n += 1
            text = f"Edited by {self.name} ({self.n}): the {rng.choice(WORDS)} moved."
            return "update", user, (rng.choice(ids), text)
        return "delete", user, rng.choice(ids)

    def done(self, kind: str, user: str, arg: Any, result: Any) -> None:
        log = self.log
        with log.lock:
            log.ops[kind] += 1
            if kind == "add":
                for e in result.added:
                    log.owner[e.id] = user
                log.turns.setdefault(user, set()).update(result.turn_ids)
            elif kind == "retrieve":
                leaked = [h.entry.id for h in result if h.entry.user_id != user]
                if leaked:
                    log.errors.append(AssertionError(f"{user} saw entries of another user: {leaked}"))
            elif kind == "update":
                log.updates.append((result.id, result.version, result.memory))
            elif kind == "delete":
                log.deletes.add(arg)

    def failed(self, kind: str, exc: BaseException) -> None:
        with self.log.lock:
            if kind in ("update", "delete") and isinstance(exc, RACES):
                self.log.ops[f"{kind}:{type(exc).__name__}"] += 1
            else:
                self.log.errors.append(exc)


def call_sync(memory: LightMemory, kind: str, user: str, arg: Any) -> Any:
    if kind == "add":
        return memory.add_memory(arg, user_id=user, session_id=f"s{len(arg)}")
    if kind == "retrieve":
        return memory.retrieve(arg[0], limit=5, user_id=user, strategy=arg[1])
    if kind == "update":
        return memory.update(arg[0], arg[1], user_id=user, reason="concurrency test")
    return memory.delete(arg, user_id=user, reason="concurrency test")


async def call_async(memory: LightMemory, kind: str, user: str, arg: Any) -> Any:
    if kind == "add":
        return await memory.aadd_memory(arg, user_id=user, session_id=f"s{len(arg)}")
    if kind == "retrieve":
        return await memory.aretrieve(arg[0], limit=5, user_id=user, strategy=arg[1])
    if kind == "update":
        return await memory.aupdate(arg[0], arg[1], user_id=user, reason="concurrency test")
    return await memory.adelete(arg, user_id=user, reason="concurrency test")


def seeded(memory: LightMemory) -> Log:
    """A log with a few entries per user already stored, so races start at once."""
    log = Log()
    plan = Plan(log, 0, "seed")
    for user in USERS:
        msgs = [message(plan.rng, f"seed-{user}-{k}") for k in range(4)]
        plan.done("add", user, msgs, memory.add_memory(msgs, user_id=user, session_id="s0"))
    return log


def run_threads(memory: LightMemory, seconds: float, workers: int = 8, seed: int = 1) -> Log:
    log = seeded(memory)
    deadline = time.monotonic() + seconds
    start = threading.Barrier(workers)

    def worker(i: int) -> None:
        plan = Plan(log, seed * 100 + i, f"w{i}")
        start.wait()
        while time.monotonic() < deadline:
            kind, user, arg = plan.next()
            try:
                result = call_sync(memory, kind, user, arg)
            except BaseException as exc:  # noqa: BLE001 - sorted into races and failures
                plan.failed(kind, exc)
            else:
                plan.done(kind, user, arg, result)

    threads = [threading.Thread(target=worker, args=(i,), name=f"worker-{i}") for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 120)
        assert not t.is_alive(), "a worker hung"
    return log


def run_tasks(memory: LightMemory, seconds: float, tasks: int = 50, seed: int = 2) -> Log:
    log = seeded(memory)

    async def main() -> None:
        deadline = time.monotonic() + seconds
        beats = 0

        async def heartbeat() -> None:  # the loop must stay responsive while 50 tasks work
            nonlocal beats
            while time.monotonic() < deadline:
                beats += 1
                await asyncio.sleep(0.01)

        async def task(i: int) -> None:
            plan = Plan(log, seed * 1000 + i, f"a{i}")
            while time.monotonic() < deadline:
                kind, user, arg = plan.next()
                try:
                    result = await call_async(memory, kind, user, arg)
                except Exception as exc:  # noqa: BLE001
                    plan.failed(kind, exc)
                else:
                    plan.done(kind, user, arg, result)

        await asyncio.gather(heartbeat(), *(task(i) for i in range(tasks)))
        assert beats >= seconds * 20, f"event loop starved: {beats} heartbeats in {seconds}s"

    asyncio.run(main())
    return log


def check_against_history(memory: LightMemory, log: Log) -> Counter:
    """Replay each entry's history and compare with what the store and the workers saw."""
    assert not log.errors, f"{len(log.errors)} unexpected errors, first: {log.errors[0]!r}"
    seen = Counter()
    updates = {(i, v): t for i, v, t in log.updates}
    for user in USERS:
        stored = {e.id: e for e in memory.get_all(user_id=user, limit=10_000, include_superseded=True)}
        expected_live = set()
        for mid in log.ids(user):
            history = memory.history(mid, user_id=user)
            assert history[0].event == "ADD" and history[0].version == 1, history
            text, version = history[0].new_memory, 1
            for h in history[1:]:
                assert h.version == version + 1, f"{mid}: versions jump {[x.version for x in history]}"
                version = h.version
                if h.event == "UPDATE":
                    assert h.old_memory == text, f"{mid}: update did not start from the current text"
                    text = h.new_memory
                seen[h.event] += 1
            if history[-1].event == "DELETE":
                assert mid not in stored
                with pytest.raises(NotFoundError):
                    memory.get(mid, user_id=user)
            else:
                expected_live.add(mid)
                entry = stored[mid]
                assert (entry.memory, entry.version) == (text, version), mid
                assert mid not in log.deletes, f"{mid}: delete acknowledged, history has no DELETE"
            for (uid, v), t in updates.items():
                if uid == mid:
                    assert any(h.event == "UPDATE" and h.version == v and h.new_memory == t for h in history), (
                        f"{mid}: acknowledged update v{v} not in history"
                    )
        assert set(stored) == expected_live, f"{user}: store and history disagree"
        cited = {s for e in stored.values() for s in e.source_ids}
        # a deleted entry's turns: every turn its history says it took in (its own, and merged ones)
        deleted_sources = {
            s
            for mid in log.ids(user)
            if mid not in stored
            for h in memory.history(mid, user_id=user)
            for s in h.source_ids
        }
        assert log.turns.get(user, set()) <= cited | deleted_sources
        assert memory.pending(user_id=user) == []
    return seen


def assert_busy(log: Log, seconds: float) -> None:
    """The run must have exercised every operation, and the races it is about."""
    for kind in ("add", "retrieve", "update", "delete"):
        assert log.ops[kind] >= 3, log.ops
    assert sum(log.ops.values()) >= seconds * 5, log.ops


@pytest.mark.parametrize("update_mode", ["offline", "online"])
def test_eight_threads_mixed_operations(make_memory, update_mode: str) -> None:
    memory = make_memory({"update": update_mode})
    log = run_threads(memory, seconds=5)
    seen = check_against_history(memory, log)
    assert_busy(log, 5)
    assert seen["UPDATE"] >= 1 and seen["DELETE"] >= 1


def test_fifty_asyncio_tasks_mixed_operations(make_memory) -> None:
    memory = make_memory({"update": "online"})
    log = run_tasks(memory, seconds=5)
    check_against_history(memory, log)
    assert_busy(log, 5)


@pytest.mark.slow
@pytest.mark.parametrize("update_mode", ["offline", "online"])
@pytest.mark.parametrize("seed", range(1, 51))
def test_eight_threads_fifty_runs(make_memory, update_mode: str, seed: int) -> None:
    """The mixed-operations run again and again (50 seeds per mode): a race that shows
    once in many runs (as the merged-then-deleted turn did) shows here."""
    memory = make_memory({"update": update_mode})
    log = run_threads(memory, seconds=5, seed=seed)
    check_against_history(memory, log)
    assert_busy(log, 5)


@pytest.mark.slow
@pytest.mark.parametrize("update_mode", ["offline", "online"])
def test_eight_threads_for_thirty_seconds(make_memory, update_mode: str) -> None:
    memory = make_memory({"update": update_mode})
    log = run_threads(memory, seconds=30, seed=7)
    check_against_history(memory, log)
    assert_busy(log, 30)


@pytest.mark.slow
def test_fifty_asyncio_tasks_for_thirty_seconds(make_memory) -> None:
    memory = make_memory({"update": "online"})
    log = run_tasks(memory, seconds=30, seed=9)
    check_against_history(memory, log)
    assert_busy(log, 30)


class SteppedExtractor(ExtractiveExtractor):
    """The offline extractor, made to pause so two calls provably read one buffer.

    Call 1 waits until call 2 has read the buffer too; call 2 then waits for ``go``.
    Later calls run straight through. (An extractor is a pluggable component, so this
    is the library's own extraction with two waits added, not a mock.)
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.first_in = threading.Event()
        self.second_in = threading.Event()
        self.go = threading.Event()
        self.batches: list[list[str]] = []

    def extract(self, batch: ExtractionBatch) -> Any:
        self.calls += 1
        n = self.calls
        self.batches.append([t.id for t in batch.turns])
        if n == 1:
            self.first_in.set()
            assert self.second_in.wait(30)
        elif n == 2:
            self.second_in.set()
            assert self.go.wait(30)
        return (yield from super().extract(batch))


def test_two_calls_on_one_buffer_store_each_turn_once_and_lose_no_update(make_memory) -> None:
    """Regression: two ``add_memory`` calls on one user's buffer both extracted the turns
    pending in it; the slower one wrote its stale copy over an entry updated (or deleted)
    in between, and history lost the entry's ADD. Now exactly one write wins."""
    stepped = SteppedExtractor()
    memory = make_memory(extractor=stepped)
    errors: list[BaseException] = []

    def add(turn_id: str, text: str) -> None:
        try:
            memory.add_memory([{"id": turn_id, "role": "user", "content": text}], user_id="u")
        except BaseException as exc:  # noqa: BLE001 - asserted empty below
            errors.append(exc)

    t1 = threading.Thread(target=add, args=("a", "I adopted a grey cat called Miso last spring."))
    t2 = threading.Thread(target=add, args=("b", "My brother plays bass in a jazz band."))
    t1.start()
    assert stepped.first_in.wait(30)
    t2.start()
    t1.join(30)
    assert stepped.batches[:2] == [["a"], ["a", "b"]]  # both calls read turn a as pending
    (entry,) = memory.get_all(user_id="u")
    edited = memory.update(entry.id, "Miso the grey cat was adopted in April.", user_id="u")
    stepped.go.set()
    t2.join(30)
    assert not errors, errors
    entries = {e.source_ids[0]: e for e in memory.get_all(user_id="u")}
    assert sorted(entries) == ["a", "b"]
    assert (entries["a"].memory, entries["a"].version) == (edited.memory, 2)
    assert [h.event for h in memory.history(entry.id, user_id="u")] == ["ADD", "UPDATE"]
    assert memory.pending(user_id="u") == []


def test_merge_target_deleted_during_extraction_is_retried_not_raised(make_memory) -> None:
    """Regression (found by the 30 s online run): a near duplicate on its way to merge into
    an entry that another caller deleted meanwhile made ``add_memory`` raise NotFoundError.
    Now the batch is extracted again and stored as an entry of its own."""
    memory = make_memory({"update": "online"})
    memory.add_memory([{"id": "o2", "role": "user", "content": "My favourite band is Radiohead."}], user_id="u")
    (target,) = memory.get_all(user_id="u")
    decided, resume = threading.Event(), threading.Event()
    rules = memory._online_resolver  # the real rule resolver, with a pause after its first decision

    class Pausing:
        calls = 0

        def decide(self, new: Any, candidates: Any) -> Any:
            decisions = yield from rules.decide(new, candidates)
            Pausing.calls += 1
            if Pausing.calls == 1:
                assert [d.action for d in decisions] == ["merge"]
                decided.set()
                assert resume.wait(30)
            return decisions

    memory._online_resolver = Pausing()
    results: list[Any] = []
    worker = threading.Thread(
        target=lambda: results.append(
            memory.add_memory([{"id": "d1", "role": "user", "content": "My favourite band is Radiohead!"}], user_id="u")
        )
    )
    worker.start()
    assert decided.wait(30)
    memory.delete(target.id, user_id="u")
    resume.set()
    worker.join(30)
    assert results and results[0].error is None, results
    assert [e.source_ids for e in memory.get_all(user_id="u")] == [["d1"]]
    assert memory.pending(user_id="u") == []
