"""Paging sees each memory exactly once: on both backends and through every surface that pages.

Many entries share one time stamp (every turn of a LoCoMo session carries the session's
date), which is where an order by time stamp alone skipped and repeated entries. The
property: every entry that exists before the first page and still exists after the
last is returned exactly once, in (time stamp, id) order, while entries are added and
deleted between pages. Cursor surfaces (``get_page``, ``get_all(after=)``, MCP
``list_memories(cursor=)``, CLI ``list --after``) must keep it under changes; offset
surfaces (``get_all(offset=)``, the LangGraph store's ``search(offset=)``) can only
promise it for a listing that does not change, and are checked on one.

Real parts throughout: the embedded store and qdrant-client's in-memory store, the
packaged MiniLM, fastmcp's in-process client, the CLI through typer's runner.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightmem_core import InvalidInputError, LightMemory, MemoryConfig

STAMPS = ("2023-05-08T13:56:00", "2023-05-25T13:14:00", "2023-06-09T19:55:00")
SIZES = (1, 2, 3, 7, 37, 100)
BACKENDS = ("edge", "qdrant-memory")


def _config(backend: str, root: str) -> MemoryConfig:
    store = {"path": root} if backend == "edge" else {"provider": "qdrant", "location": ":memory:"}
    return MemoryConfig.from_dict({"store": store})


def _turns(tag: str, n: int, draw_stamp: Callable[[int], str]) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{tag}-{i}",
            "role": "user",
            "content": f"Note {tag}-{i}: the {i % 5} boxes went upstairs.",
            "time_stamp": draw_stamp(i),
        }
        for i in range(n)
    ]


# A plan: how many entries, their stamps, the page size, and what happens between pages.
change = st.one_of(
    st.tuples(st.just("add"), st.integers(1, 4), st.sampled_from(STAMPS)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.just("")),
)
plan = st.fixed_dictionaries(
    {
        "stamps": st.lists(st.sampled_from(STAMPS), min_size=1, max_size=60),
        "size": st.sampled_from(SIZES),
        "changes": st.lists(st.lists(change, max_size=3), max_size=12),
    }
)


class Harness:
    """One memory, filled per example under a fresh user, listed through one surface."""

    def __init__(self, backend: str, embedder: Any, root: str) -> None:
        self.config = _config(backend, root)
        self.embedder = embedder
        self.memory = LightMemory(self.config, embedder=embedder)
        self.user = ""
        self.added = 0

    def fill(self, user: str, stamps: list[str]) -> None:
        self.user = user
        self.memory.add_memory(_turns(f"{user}-0", len(stamps), lambda i: stamps[i]), user_id=user, infer=False)

    def ids(self) -> set[str]:
        return {e.id for e in self.memory.get_all(user_id=self.user, limit=10_000)}

    def apply(self, changes: list[tuple[str, int, str]]) -> None:
        for kind, n, stamp in changes:
            if kind == "add":
                self.added += 1
                self.memory.add_memory(
                    _turns(f"{self.user}-{self.added}", n, lambda i, stamp=stamp: stamp), user_id=self.user, infer=False
                )
            else:
                existing = sorted(self.ids())
                if existing:
                    self.memory.delete(existing[n % len(existing)], user_id=self.user)

    def order(self, ids: list[str]) -> list[tuple[str, str]]:
        entries = {e.id: e for e in self.memory.get_all(user_id=self.user, limit=10_000)}
        return [(entries[i].time_stamp.isoformat(), i) for i in ids if i in entries]

    def close(self) -> None:
        self.memory.close()


def _listed_through_cursor(
    h: Harness,
    size: int,
    changes: list[list[tuple[str, int, str]]],
    page: Callable[[Optional[str]], tuple[list[str], Optional[str]]],
) -> tuple[list[str], set]:
    before = h.ids()
    seen: list[str] = []
    cursor: Optional[str] = None
    step = 0
    while True:
        ids, cursor = page(cursor)
        seen += ids
        if cursor is None:
            break
        h.apply(changes[step] if step < len(changes) else [])
        step += 1
    return seen, before & h.ids()


def _check(h: Harness, seen: list[str], survivors: set[str]) -> None:
    assert len(seen) == len(set(seen)), "an entry was returned twice"
    assert survivors <= set(seen), f"never returned: {sorted(survivors - set(seen))[:5]}"
    ordered = h.order(seen)
    assert ordered == sorted(ordered), "not in (time stamp, id) order"


@pytest.fixture(scope="module", params=BACKENDS)
def harness(request: Any, embedder: Any) -> Iterator[Harness]:
    with tempfile.TemporaryDirectory() as root:
        h = Harness(request.param, embedder, root)
        yield h
        h.close()


_examples = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_counter = iter(range(1_000_000))


@_examples
@given(p=plan)
def test_get_page_cursor_under_inserts_and_deletes(harness: Harness, p: dict[str, Any]) -> None:
    harness.fill(f"core{next(_counter)}", p["stamps"])

    def page(cursor: Optional[str]) -> tuple[list[str], Optional[str]]:
        got = harness.memory.get_page(user_id=harness.user, limit=p["size"], after=cursor)
        return [e.id for e in got.entries], got.next_cursor

    seen, survivors = _listed_through_cursor(harness, p["size"], p["changes"], page)
    _check(harness, seen, survivors)


@_examples
@given(p=plan)
def test_get_all_after_and_offset(harness: Harness, p: dict[str, Any]) -> None:
    harness.fill(f"all{next(_counter)}", p["stamps"])
    size = p["size"]
    # offset pages of a listing that does not change
    offset_seen: list[str] = []
    while True:
        got = harness.memory.get_all(user_id=harness.user, limit=size, offset=len(offset_seen))
        offset_seen += [e.id for e in got]
        if len(got) < size:
            break
    assert sorted(offset_seen) == sorted(harness.ids())
    _check(harness, offset_seen, harness.ids())

    # get_all(after=) with the cursor of a page, under changes
    def page(cursor: Optional[str]) -> tuple[list[str], Optional[str]]:
        entries = harness.memory.get_all(user_id=harness.user, limit=size, after=cursor)
        nxt = harness.memory.get_page(user_id=harness.user, limit=size, after=cursor).next_cursor
        return [e.id for e in entries], nxt

    seen, survivors = _listed_through_cursor(harness, size, p["changes"], page)
    _check(harness, seen, survivors)


@_examples
@given(p=plan)
def test_mcp_list_memories_cursor(harness: Harness, p: dict[str, Any]) -> None:
    pytest.importorskip("fastmcp")
    from fastmcp import Client

    from lightmem_core.mcp import create_server

    harness.fill(f"mcp{next(_counter)}", p["stamps"])
    server = create_server(harness.memory)

    async def listing() -> tuple[list[str], set[str]]:
        async with Client(server) as client:
            before = harness.ids()
            seen: list[str] = []
            cursor: Optional[str] = None
            step = 0
            while True:
                args = {"user_id": harness.user, "limit": p["size"], **({"cursor": cursor} if cursor else {})}
                data = (await client.call_tool("list_memories", args)).data
                seen += [m["id"] for m in data["memories"]]
                cursor = data["next_cursor"]
                if cursor is None:
                    break
                harness.apply(p["changes"][step] if step < len(p["changes"]) else [])
                step += 1
            return seen, before & harness.ids()

    seen, survivors = asyncio.run(listing())
    _check(harness, seen, survivors)


def test_cli_list_after(embedder: Any, tmp_path: Path) -> None:
    """The CLI pages with ``--after`` (the cursor it prints on stderr), with a delete and
    an insert between pages; the store is closed while the CLI holds it."""
    from typer.testing import CliRunner

    from lightmem_core.cli import app

    root = str(tmp_path / "store")
    stamps = [STAMPS[i % 2] for i in range(23)]
    with LightMemory(_config("edge", root), embedder=embedder) as memory:
        memory.add_memory(_turns("c", len(stamps), lambda i: stamps[i]), user_id="u", infer=False)
        before = {e.id for e in memory.get_all(user_id="u", limit=100)}
    runner = CliRunner()
    seen: list[str] = []
    cursor: Optional[str] = None
    changes = [[("delete", 3, "")], [("add", 2, STAMPS[0]), ("add", 1, STAMPS[1])], [("delete", 11, "")]]
    for step in range(20):
        args = [
            "--path",
            root,
            "list",
            "--user",
            "u",
            "--limit",
            "4",
            "--json",
            *(["--after", cursor] if cursor else []),
        ]
        result = runner.invoke(app, args, obj={"embedder": embedder})
        assert result.exit_code == 0, result.output
        seen += [e["id"] for e in json.loads(result.stdout)]
        found = re.search(r"--after (\S+)", result.stderr)
        if not found:
            break
        cursor = found.group(1)
        h = Harness("edge", embedder, root)
        h.user, h.added = "u", step * 10 + 1
        h.apply(changes[step] if step < len(changes) else [])
        after = h.ids()
        h.close()
    assert len(seen) == len(set(seen))
    assert before & after <= set(seen)


def test_langgraph_store_search_offset_pages_a_static_listing(embedder: Any, tmp_path: Path) -> None:
    pytest.importorskip("langgraph")
    from lightmem_langchain import LightMemStore

    with LightMemory(_config("edge", str(tmp_path)), embedder=embedder) as memory:
        memory.add_memory(_turns("s", 41, lambda i: STAMPS[i % 2]), user_id="maya", infer=False)
        store = LightMemStore(memory)
        everything = {e.id for e in memory.get_all(user_id="maya", limit=100)}
        for size in (1, 7, 10, 37):
            seen: list[str] = []
            while True:
                items = store.search(("memories", "maya"), limit=size, offset=len(seen))
                seen += [i.key for i in items]
                if len(items) < size:
                    break
            assert len(seen) == len(set(seen)) and set(seen) == everything, size


def test_a_bad_cursor_is_refused_by_name(embedder: Any, tmp_path: Path) -> None:
    with LightMemory(_config("edge", str(tmp_path)), embedder=embedder) as memory:
        for bad in ("not-a-cursor", "", "W10", 12):
            with pytest.raises(InvalidInputError) as err:
                memory.get_page(user_id="u", after=bad)  # type: ignore[arg-type]
            assert err.value.field == "after"
