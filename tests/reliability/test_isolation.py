"""Isolation: random multi-user operation sequences never let a result cross scope.

Hypothesis draws sequences of operations (add, retrieve with every strategy, get_all,
get / update / delete / history by id -- including ids of *other* users -- offline
update for one user or all, summaries) for three users who share one store, and runs
them through a ``Surface`` (tests/reliability/surfaces.py): the core here, and each
framework adapter and the MCP tools where they exist.

Ownership is checked without trusting the code under test: every turn and every edit
a user makes carries a secret word of that user (unique per example), so

* every item any read returns must carry the caller's secret (and, where the surface
  reports them, the caller's user and session);
* an id of another user must be "not found" for get, update, delete and history;
* after every operation, the entries of every user other than the acting one are
  exactly as before (read through the core), and every stored entry still carries
  its owner's secret, cites only its owner's turns and is superseded only by its
  owner's entries.

Retrieval queries are baited with another user's secret, so a leak would rank first.
"""

from __future__ import annotations

import itertools
from typing import Any, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightmem_core import LightMemory, NotFoundError
from tests.reliability.surfaces import SESSIONS, SURFACES, Seen, Surface, Unsupported, Who, build_surface

NAMES = ("alice", "bob", "carol")
CITIES = ("Lisbon", "Osaka", "Denver", "Tallinn")
DRINKS = ("matcha", "espresso", "kombucha")
PLACES = ("harbor", "orchard", "canyon")
_examples = itertools.count()

user_i = st.integers(0, len(NAMES) - 1)
session_i = st.integers(0, len(SESSIONS) - 1)
pick = st.integers(0, 50)
OPS = st.one_of(
    st.tuples(st.just("add"), user_i, session_i, st.lists(st.integers(0, 8), min_size=1, max_size=3)),
    st.tuples(st.just("retrieve"), user_i, session_i, user_i, pick),
    st.tuples(st.just("get_all"), user_i, session_i),
    st.tuples(st.sampled_from(["get", "update", "delete", "history"]), user_i, user_i, pick),
    st.tuples(st.just("offline_update"), st.one_of(st.none(), user_i)),
    st.tuples(st.just("summarize"), user_i, session_i),
)


class Runner:
    """Runs one example's operations on a surface and checks every result."""

    def __init__(self, surface: Surface, core: LightMemory) -> None:
        self.surface = surface
        self.core = core
        ex = next(_examples)
        self.users = [f"iso{ex}-{n}" for n in NAMES]
        self.secret = {u: f"zq{ex}{n}" for u, n in zip(self.users, NAMES)}
        self.turns: dict[str, set[str]] = {u: set() for u in self.users}
        self.n = 0
        self.skipped: set[str] = set()

    # the core's view of the store, per user: what must not change behind a user's back
    def state(self) -> dict[str, dict[str, tuple[Any, ...]]]:
        out = {}
        for u in self.users:
            entries = self.core.get_all(user_id=u, limit=10_000, include_superseded=True)
            out[u] = {e.id: (e.memory, e.version, e.superseded_by, tuple(e.source_ids), e.session_id) for e in entries}
        return out

    def ever_owned(self, user: str, memory_id: str) -> bool:
        """The id was an entry of ``user`` (it has a history there), even if deleted since."""
        try:
            return bool(self.core.history(memory_id, user_id=user))
        except NotFoundError:
            return False

    def text(self, user: str, kind: int) -> str:
        self.n += 1
        s = self.secret[user]
        return [
            f"{s} says I live in {CITIES[kind % 4]} now.",
            f"{s} says my favourite drink is {DRINKS[kind % 3]} these days.",
            f"{s} went walking near the {PLACES[kind % 3]} with a friend on day {self.n}.",
        ][kind % 3]

    def owned(self, who: Who, items: list[Seen], what: str) -> None:
        secret = self.secret[who.user]
        others = [s for u, s in self.secret.items() if u != who.user]
        for item in items:
            assert not any(s in item.text for s in others), f"{what}: {who} got another user's memory: {item}"
            if item.block:
                continue
            assert secret in item.text, f"{what}: {who} got another scope's item {item}"
            assert item.user_id in (None, who.user), f"{what}: {who} got {item}"
            if who.session is not None and item.session_id is not None:
                assert item.session_id == who.session, f"{what}: {who} got {item} from another session"

    def target(self, state: dict[str, dict[str, Any]], owner: str, k: int) -> Optional[str]:
        ids = sorted(state[owner])
        return ids[k % len(ids)] if ids else None

    def run(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        before = self.state()
        acting: Optional[str] = None
        try:
            acting = self._do(op, before)
        except Unsupported:
            self.skipped.add(kind)
            return
        after = self.state()
        for u in self.users:
            if u != acting and (kind != "offline_update" or op[1] is not None):
                assert after[u] == before[u], f"{op} by {acting} changed {u}'s entries"
        for u, entries in after.items():
            for mid, (text, _, superseded_by, sources, _) in entries.items():
                assert self.secret[u] in text, f"{u}'s entry {mid} holds {text!r}"
                assert set(sources) <= self.turns[u], f"{u}'s entry {mid} cites {sources}"
                # superseded by an entry of the same user: a current one, or one deleted since
                assert superseded_by in (None, *entries) or self.ever_owned(u, superseded_by), (
                    f"{u}'s entry {mid} superseded by {superseded_by}, which is no entry of {u}"
                )

    def _do(self, op: tuple[Any, ...], state: dict[str, dict[str, Any]]) -> Optional[str]:
        kind = op[0]
        if kind == "offline_update":
            who = None if op[1] is None else Who(self.users[op[1]])
            self.surface.offline_update(who)
            return who.user if who else None
        user = self.users[op[1]]
        if kind == "add":
            who = Who(user, SESSIONS[op[2]])
            turns = []
            for k in op[3]:
                turns.append(
                    {
                        "id": f"{user}-t{self.n}",
                        "role": "user",
                        "content": self.text(user, k),
                        "time_stamp": f"2025-01-01T00:{self.n % 60:02d}:00",
                    }
                )
            self.turns[user].update(self.surface.add(who, turns))
        elif kind == "retrieve":
            who = Who(user, SESSIONS[op[2]])
            bait = self.secret[self.users[op[3]]]
            strategy = self.surface.strategies[op[4] % len(self.surface.strategies)]
            query = f"{bait} where does {bait} live, favourite drink {CITIES[op[4] % 4]}"
            self.owned(who, self.surface.retrieve(who, query, strategy), f"retrieve[{strategy}]")
        elif kind == "get_all":
            who = Who(user, SESSIONS[op[2]])
            items = self.surface.get_all(who)
            self.owned(who, items, "get_all")
            mine = {mid for mid, v in state[user].items() if who.session in (None, v[4])}
            assert {i.id for i in items if i.id} <= mine
        elif kind == "summarize":
            who = Who(user, SESSIONS[op[2]])
            self.owned(who, self.surface.summarize(who), "summarize")
        else:
            owner = self.users[op[2]]
            mid = self.target(state, owner, op[3])
            if mid is None:
                return user
            who = Who(user)
            mine = owner == user
            if kind == "get":
                got = self.surface.get(who, mid)
                assert (got is not None) == mine, f"get of {owner}'s {mid} by {user}: {got}"
                if got:
                    self.owned(who, [got], "get")
            elif kind == "history":
                texts = self.surface.history(who, mid)
                assert (texts is not None) == mine, f"history of {owner}'s {mid} by {user}"
                if texts:
                    self.owned(who, [Seen(t) for t in texts], "history")
            elif kind == "update":
                assert self.surface.update(who, mid, f"{self.secret[user]} corrected note {self.n}.") == mine
                self.n += 1
            elif kind == "delete":
                assert self.surface.delete(who, mid) == mine
                if mine:
                    assert mid not in self.state()[user]
        return user


_opened: dict[int, LightMemory] = {}


def _memory(make_memory: Any) -> LightMemory:
    """One store per test function, shared by its examples (each example has new users)."""
    key = id(make_memory)
    if key not in _opened or _opened[key]._closed:
        _opened[key] = make_memory({"update": "online"})
    return _opened[key]


def check_sequence(make_memory: Any, name: str, ops: list[tuple[Any, ...]]) -> None:
    """Every user starts with a few entries, then the drawn operations run."""
    core = _memory(make_memory)
    try:
        surface = build_surface(name, core)
    except Unsupported as exc:
        pytest.skip(str(exc))
    runner = Runner(surface, core)
    for op in [("add", i, 0, [0, 1, 2]) for i in range(len(NAMES))] + ops:
        runner.run(op)


@pytest.mark.parametrize("name", sorted(SURFACES))
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(ops=st.lists(OPS, min_size=4, max_size=14))
def test_no_result_crosses_scope(make_memory, name: str, ops: list[tuple[Any, ...]]) -> None:
    check_sequence(make_memory, name, ops)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SURFACES))
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(ops=st.lists(OPS, min_size=4, max_size=30))
def test_no_result_crosses_scope_long(make_memory, name: str, ops: list[tuple[Any, ...]]) -> None:
    check_sequence(make_memory, name, ops)


def test_every_operation_and_strategy_is_exercised(make_memory) -> None:
    """The property above is only as good as its operations: run each one once, for real."""
    core = _memory(make_memory)
    runner = Runner(build_surface("core", core), core)
    ops: list[tuple[Any, ...]] = [("add", i, i, [0, 1, 2, 0, 3]) for i in range(3)]
    ops += [("retrieve", 0, 0, 1, k) for k in range(len(runner.surface.strategies))]
    ops += [
        ("get", 0, 1, 0),
        ("get", 0, 0, 0),
        ("update", 1, 0, 1),
        ("update", 1, 1, 1),
        ("delete", 2, 0, 0),
        ("delete", 2, 2, 0),
        ("history", 0, 2, 0),
        ("history", 2, 2, 0),
        ("get_all", 1, 0),
        ("get_all", 1, 2),
        ("summarize", 0, 0),
        ("retrieve", 0, 0, 2, 3),
        ("offline_update", 1),
        ("offline_update", None),
    ]
    for op in ops:
        runner.run(op)
    assert runner.skipped == set()
    # the repeated and changed "I live in" statements made the updates resolve something
    events = {
        h.event
        for u in runner.users
        for e in core.get_all(user_id=u, include_superseded=True)
        for h in core.history(e.id, user_id=u)
    }
    assert {"ADD", "UPDATE", "SUPERSEDE"} <= events, events
    assert core.get_all(user_id=runner.users[0], filters={"entry_type": "summary"})


def test_superseded_entries_point_at_a_stored_entry(make_memory) -> None:
    """Regression (found by the property above): a new statement that merged into a
    duplicate AND superseded an older fact left the older fact ``superseded_by`` the
    merged-away new entry, an id that was never stored."""
    core = _memory(make_memory)
    runner = Runner(build_surface("core", core), core)
    for op in [("add", 1, 0, [0, 1, 2]), ("add", 1, 0, [3, 0]), ("add", 1, 0, [0])]:
        runner.run(op)
    entries = {e.id: e for e in core.get_all(user_id=runner.users[1], include_superseded=True)}
    pointers = [e.superseded_by for e in entries.values() if e.superseded_by]
    assert pointers and all(p in entries for p in pointers)
