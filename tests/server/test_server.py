"""``lightmem serve`` over real HTTP on loopback: the API, keys, the guard, the worker.

The server is the project's Starlette app under uvicorn in a thread of this process
(``tests/_served.py``), or ``lightmem serve`` in a process of its own where signals and
restarts matter; clients are ``RemoteMemory`` and raw ``httpx``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.shared.exceptions import MCPError

from lightmem_core import (
    AuthError,
    ConflictError,
    InvalidInputError,
    LightMemory,
    MemoryConfig,
    NotFoundError,
    RemoteMemory,
)
from lightmem_core.server.keys import KeyStore
from tests._served import Served


@pytest.fixture
def served(make_memory: Any, tmp_path: Path) -> Iterator[Served]:
    keys = KeyStore(str(tmp_path / "keys.sqlite"))
    with Served(make_memory(), keys, body_timeout=1.0, max_body_bytes=64 * 1024) as s:
        yield s
    keys.close()


def _snapshot(memory: LightMemory) -> Any:
    return [
        (r["kind"], r.get("id") or r.get("memory_id"), r.get("version"), r.get("status"))
        for r in memory.export_records()
    ]


def test_every_operation_over_http_as_in_process(served: Served) -> None:
    r = served.client()
    added = r.add_memory(
        [
            {"id": "t1", "role": "user", "content": "My dog Biscuit is a corgi.", "time_stamp": "2025-01-12T09:14:00"},
            {"id": "t2", "role": "assistant", "content": ""},
        ],
        user_id="maya",
        session_id="s1",
    )
    assert added.turn_ids == ["t1"] and [s.id for s in added.skipped] == ["t2"] and added.added
    entry = added.added[0]
    hits = r.retrieve("What breed is the dog?", user_id="maya")
    assert hits[0].entry.id == entry.id and hits[0].similarity is not None and hits[0].window is None
    assert r.get(entry.id, user_id="maya") == served.memory.get(entry.id, user_id="maya")
    page = r.get_page(user_id="maya", limit=1)
    assert [e.id for e in page.entries] == [entry.id] and page.next_cursor is None
    assert [e.id for e in r.get_all(user_id="maya", filters={"session_id": "s1"})] == [entry.id]
    updated = r.update(entry.id, "Maya's dog Biscuit is a corgi.", user_id="maya", reason="name it", expected_version=1)
    assert updated.version == 2
    with pytest.raises(ConflictError):  # 409: someone changed it first
        r.update(entry.id, "stale", user_id="maya", expected_version=1)
    assert [h.event for h in r.history(entry.id, user_id="maya")] == ["ADD", "UPDATE"]
    assert [t.id for t in r.source_turns(entry.id, user_id="maya")] == ["t1"]
    assert r.users() == ["maya"] and r.pending(user_id="maya") == []
    assert r.summarize(user_id="maya")[0].entry_type.value == "summary"
    assert r.construct_update_queue_all_entries(user_id="maya") >= 0
    assert set(r.offline_update_all_entries(user_id="maya")) >= {"processed", "changes"}
    exported = list(r.export_records(user_id="maya"))
    assert [x["kind"] for x in exported][:2] == ["header", "turn"]
    assert r.config.max_message_chars == served.memory.config.max_message_chars and r.dims == 384
    r.delete(entry.id, user_id="maya", reason="test")
    with pytest.raises(NotFoundError):
        r.get(entry.id, user_id="maya")
    assert r.import_records(exported)["entries"] >= 1  # the deleted one comes back from the export
    assert r.delete_all(user_id="maya") >= 1
    assert r.get_token_statistics()["total"]["calls"] == 0

    async def async_path() -> None:
        a = served.client()
        got = await a.aadd_memory("I moved to Lisbon in May.", user_id="tom")
        assert got.added and (await a.aretrieve("Where does Tom live?", user_id="tom"))[0].entry.user_id == "tom"
        assert (await a.aget(got.added[0].id, user_id="tom")).memory.endswith("Lisbon in May.")
        await a.adelete(got.added[0].id, user_id="tom")
        a.close()

    asyncio.run(async_path())


def test_add_returns_once_journaled_and_flush_waits(served: Served) -> None:
    r = served.client(wait=False)
    got = r.add_memory(
        [{"id": f"q{i}", "role": "user", "content": f"Fact number {i} about the garden."} for i in range(20)],
        user_id="ann",
    )
    assert got.turn_ids == [f"q{i}" for i in range(20)] and got.added == []  # journaled; extraction in the worker
    r.flush(user_id="ann")
    assert r.pending(user_id="ann") == [] and len(r.get_all(user_id="ann")) == 20
    # the order of a stream is kept: ADD records in turn order
    entries = sorted(r.get_all(user_id="ann"), key=lambda e: e.recorded_at)
    assert [e.source_ids[0] for e in entries] == [f"q{i}" for i in range(20)]


def test_bad_requests_name_the_field_and_write_nothing(served: Served) -> None:
    url = served.url
    served.memory.add_memory("Seed.", user_id="maya")
    before = _snapshot(served.memory)
    cases = [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (json.dumps({"messages": "x", "user_id": 5}).encode(), "user_id"),
        (
            json.dumps({"messages": [{"role": "wizard", "content": "hi"}], "user_id": "maya"}).encode(),
            "messages[0].role",
        ),
        (json.dumps({"messages": "hi", "user_id": "maya", "colour": 1}).encode(), "colour"),
        (json.dumps({"messages": "hi", "user_id": "maya", "infer": "yes"}).encode(), "infer"),
        (json.dumps({"user_id": "maya"}).encode(), "messages"),
    ]
    for body, field in cases:
        got = httpx.post(f"{url}/v1/memories", content=body, headers={"Content-Type": "application/json"})
        assert got.status_code == 400 and got.json()["error"]["field"] == field, (body, got.text)
    big = json.dumps({"messages": "x" * 70_000, "user_id": "maya"}).encode()
    assert httpx.post(f"{url}/v1/memories", content=big).status_code == 413  # declared length

    def chunks() -> Iterator[bytes]:  # no length declared: counted as it arrives
        yield b'{"user_id": "maya", "messages": "'
        for _ in range(80):
            yield b"y" * 1000
        yield b'"}'

    assert httpx.post(f"{url}/v1/memories", content=chunks()).status_code == 413
    assert (
        httpx.get(f"{url}/v1/memories/00000000-0000-0000-0000-000000000000", params={"user_id": "maya"}).status_code
        == 404
    )
    bad = httpx.post(f"{url}/v1/memories/page", json={"limit": "ten", "user_id": "maya"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "limit"
    assert _snapshot(served.memory) == before
    with pytest.raises(InvalidInputError) as err:  # the client raises the library's error, with the field
        served.client().retrieve("dog", user_id="maya", filters={"time_stamp": {"gt": "soon"}})
    assert err.value.field == "filters.time_stamp.gt"


def _content_length(raw: bytes) -> int:
    for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def test_a_stalled_client_times_out_without_holding_a_write(served: Served) -> None:
    """A client that sends half a body and stops gets 408 after the body timeout; writes of
    others go through meanwhile (the body is read before anything is locked)."""
    with socket.create_connection(("127.0.0.1", served.port)) as s:
        s.sendall(
            b"POST /v1/memories HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 500\r\n\r\n{"user_id": "maya", '
        )
        started = time.monotonic()
        assert served.client().add_memory("Written while another client stalls.", user_id="maya").added
        assert time.monotonic() - started < 1.0
        s.settimeout(10)
        raw = b""
        while b"\r\n\r\n" not in raw or len(raw.split(b"\r\n\r\n", 1)[1]) < _content_length(raw):
            chunk = s.recv(4096)  # headers and body may come in separate packets
            if not chunk:
                break
            raw += chunk
        answer = raw.decode()
    assert " 408 " in answer.splitlines()[0] and '"field":"body"' in answer


def test_keys_scope_every_request(served: Served) -> None:
    keys = served.keys
    _, maya = keys.create(name="maya-app", users=["maya"])
    _, reader = keys.create(name="auditor", read_users=["maya"], read_only=True)
    revoked_key, revoked = keys.create(name="old", users=["maya"])
    keys.revoke(revoked_key.id)
    m = served.client(maya)
    entry = m.add_memory("My locker code is 4411.", user_id="maya").added[0]
    tom_entry = served.memory.add_memory("Tom's PIN is 9921.", user_id="tom").added[0]
    for key, status in ((None, 401), ("lmk_nope_nope", 401), (revoked, 401), ("Basic abc", 401)):
        headers = {"Authorization": key if key and key.startswith("Basic") else f"Bearer {key}"} if key else {}
        got = httpx.post(f"{served.url}/v1/search", json={"query": "code", "user_id": "maya"}, headers=headers)
        assert got.status_code == status and "4411" not in got.text, (key, got.status_code)
    with pytest.raises(AuthError) as err:
        m.retrieve("PIN", user_id="tom")
    assert err.value.status == 403
    # another scope's memory id is not found, exactly like one that does not exist
    with pytest.raises(NotFoundError):
        m.get(tom_entry.id, user_id="maya")
    assert m.users() == ["maya"]
    r = served.client(reader)
    assert r.retrieve("locker", user_id="maya")[0].entry.id == entry.id
    for write in (
        lambda: r.add_memory("x", user_id="maya"),
        lambda: r.delete(entry.id, user_id="maya"),
        lambda: r.update(entry.id, "y", user_id="maya"),
    ):
        with pytest.raises(AuthError) as err:
            write()
        assert err.value.status == 403
    assert served.memory.get(entry.id, user_id="maya").version == 1
    assert served.memory.history(entry.id, user_id="maya")[0].actor == "key:maya-app"


def test_teams_share_a_scope_with_roles_and_actors(served: Served) -> None:
    keys = served.keys
    _, planner = keys.create(name="planner", users=["maya", "team:apollo"], agents=["planner"])
    _, reviewer = keys.create(name="reviewer", users=["tom"], read_users=["team:apollo"], agents=["reviewer"])
    p, rv = served.client(planner), served.client(reviewer)
    plan = p.add_memory("The launch moved to March 3.", user_id="team:apollo").added[0]
    p.add_memory("I prefer morning stand-ups.", user_id="maya")
    rv.add_memory("I review launch checklists on Fridays.", user_id="tom")
    with pytest.raises(AuthError):
        rv.add_memory("Launch is cancelled.", user_id="team:apollo")
    hits = rv.retrieve("When is the launch?", scopes=["tom", "team:apollo"])
    assert {h.entry.user_id for h in hits} == {"tom", "team:apollo"} and hits[0].entry.id == plan.id
    with pytest.raises(AuthError):
        rv.retrieve("stand-ups", scopes=["tom", "maya"])  # only scopes the key may read
    record = served.memory.history(plan.id, user_id="team:apollo")[0]
    assert record.actor == "key:planner/planner" and plan.agent_id == "planner"
    # two agents updating one memory: the second, on a stale version, gets 409; the first stays
    p.update(plan.id, "The launch moved to March 10.", user_id="team:apollo", agent_id="planner", expected_version=1)
    with pytest.raises(ConflictError):
        p.update(plan.id, "The launch moved to March 5.", user_id="team:apollo", agent_id="planner", expected_version=1)
    assert served.memory.get(plan.id, user_id="team:apollo").memory.endswith("March 10.")


def test_host_and_origin_are_checked_even_without_keys(served: Served) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 makes the browser send
    Host: evil.example and Origin: http://evil.example. Refused on REST and MCP alike."""
    forged = [
        {"Host": f"evil.example:{served.port}"},
        {"Origin": f"http://evil.example:{served.port}"},
        {"Host": f"evil.example:{served.port}", "Origin": f"http://evil.example:{served.port}"},
        {"Origin": "null"},
    ]
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}},
    }
    mcp_headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    for headers in forged:
        for method, path, body in (
            ("POST", "/v1/memories", {"messages": "pwned", "user_id": "maya"}),
            ("POST", "/v1/memories/list", {"user_id": "maya"}),
            ("POST", "/mcp", initialize),
        ):
            got = httpx.request(method, served.url + path, json=body, headers={**mcp_headers, **headers})
            assert got.status_code == 403, (headers, path, got.status_code)
    assert served.memory.get_all(user_id="maya") == []
    ok = httpx.post(
        served.url + "/mcp", json=initialize, headers={**mcp_headers, "Origin": f"http://localhost:{served.port}"}
    )
    assert ok.status_code == 200


def test_mcp_endpoint_uses_the_same_keys(served: Served) -> None:
    from fastmcp import Client

    _, maya = served.keys.create(name="maya-desktop", users=["maya"])

    async def scenario() -> None:
        async with Client(f"{served.url}/mcp", auth=maya, timeout=60) as c:
            await c.call_tool("add_memory", {"user_id": "maya", "user_input": "My bike is a green Brompton."})
            found = (await c.call_tool("retrieve_memory", {"user_id": "maya", "query": "bike"})).data
            assert "Brompton" in found["formatted"]
            denied = await c.call_tool("list_memories", {"user_id": "tom"}, raise_on_error=False)
            assert denied.is_error and "may not read" in denied.content[0].text
        with pytest.raises(MCPError):  # the server refused the key (the raw HTTP status is 401)
            async with Client(f"{served.url}/mcp", auth="lmk_bad_key", timeout=30) as c:
                await c.list_tools()

    asyncio.run(scenario())
    entry = served.memory.get_all(user_id="maya")[0]
    assert served.memory.history(entry.id, user_id="maya")[0].actor == "key:maya-desktop"


def test_openapi_health_and_metrics(served: Served) -> None:
    from lightmem_core.server.api import OPERATIONS

    doc = httpx.get(served.url + "/openapi.json").json()
    ops = {
        spec["operationId"] for methods in doc["paths"].values() for spec in methods.values() if "operationId" in spec
    }
    assert ops == {op.name for op in OPERATIONS}
    assert httpx.get(served.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(served.url + "/readyz").json() == {"status": "ready"}
    served.client(wait=False).add_memory("Hello there.", user_id="maya")
    text = httpx.get(served.url + "/metrics").text
    assert 'lightmem_requests_total{route="add_memory",status="200"} 1.0' in text
    assert "lightmem_request_seconds_bucket" in text and "lightmem_pending_turns" in text
    assert "lightmem_llm_calls_total" in text or "lightmem_llm_calls" in text


def test_a_retried_add_is_stored_once(served: Served) -> None:
    """The first attempt reaches the server and is journaled, but its answer is lost (the
    proxy in front drops the connection); the client retries with the same turn ids."""
    import threading

    lost = {"n": 0}

    def read_message(conn: socket.socket) -> bytes:
        """One whole HTTP message (head and Content-Length body) from a connection."""
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0
        )
        while len(rest) < length:
            rest += conn.recv(65536)
        return head + b"\r\n\r\n" + rest

    def proxy(listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with client, socket.create_connection(("127.0.0.1", served.port)) as upstream:
                client.settimeout(5)
                upstream.settimeout(30)
                upstream.sendall(read_message(client))
                answer = read_message(upstream)
                if lost["n"] == 0:
                    lost["n"] += 1  # drop the first answer: the client sees a broken connection
                    continue
                client.sendall(answer)

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    threading.Thread(target=proxy, args=(listener,), daemon=True).start()
    r = RemoteMemory(f"http://127.0.0.1:{listener.getsockname()[1]}", retries=3, backoff=0.05)
    got = r.add_memory([{"role": "user", "content": "My passport number ends in 4411."}], user_id="maya")
    listener.close()
    assert lost["n"] == 1 and len(got.turn_ids) == 1 and got.duplicate_turn_ids == []
    assert len(served.memory.get_all(user_id="maya")) == 1 and len(served.memory.pending(user_id="maya")) == 0


def test_reads_queue_for_a_pool_of_their_own_and_writes_pass_them(make_memory: Any) -> None:
    """Reads run on ``read_workers`` threads, first come first served; a write does not wait
    behind them. The memory's ``retrieve`` is wrapped to record its threads and to take
    0.4 s (the real method still runs), so the queue is long enough to see."""
    import threading

    memory = make_memory()
    memory.add_memory("Maya keeps bees on the roof.", user_id="maya")
    real, lock, spans = memory.retrieve, threading.Lock(), []

    def slow_retrieve(*args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        hits = real(*args, **kwargs)
        time.sleep(0.4)
        with lock:
            spans.append((threading.current_thread().name, started, time.monotonic()))
        return hits

    memory.retrieve = slow_retrieve  # type: ignore[method-assign]
    with Served(memory, read_workers=2) as served:
        readers = [threading.Thread(target=lambda: served.client().retrieve("bees", user_id="maya")) for _ in range(6)]
        for t in readers:
            t.start()
        time.sleep(0.1)
        served.client(wait=False).add_memory("Tom fixes bikes.", user_id="tom")
        wrote = time.monotonic()
        for t in readers:
            t.join()
    assert len(spans) == 6 and all(name.startswith("lightmem-read") for name, _, _ in spans)
    overlap = max(sum(1 for _, s, e in spans if s <= at < e) for _, at, _ in spans)
    assert overlap == 2  # never more reads at once than the pool holds
    assert wrote < max(s for _, s, _ in spans)  # the write returned before the last read began


def test_binding_beyond_loopback_needs_keys(make_memory: Any, tmp_path: Path) -> None:
    from lightmem_core import ConfigError
    from lightmem_core.server.app import ServerSettings, serve

    with pytest.raises(ConfigError) as err:
        serve(make_memory(), keys=KeyStore(str(tmp_path / "k.sqlite")), settings=ServerSettings(host="0.0.0.0"))
    assert err.value.field == "host"


def test_remote_client_against_config(make_memory: Any) -> None:
    """``RemoteMemory`` raises the library's own errors for a server that is not there."""
    from lightmem_core import StoreError

    with pytest.raises(StoreError):
        RemoteMemory("http://127.0.0.1:9", retries=1, backoff=0.01).users()
    assert isinstance(MemoryConfig().default_user_id, str)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: Any, embedder: Any) -> Iterator[tuple[Served, str]]:
    root = tmp_path_factory.mktemp("fuzz")
    memory = LightMemory(MemoryConfig.from_dict({"store": {"path": str(root)}}), embedder=embedder)
    memory.add_memory("My locker number is 4411.", user_id="maya")
    keys = KeyStore(str(root / "keys.sqlite"))
    _, secret = keys.create(name="fuzzer", users=["maya"])
    with Served(memory, keys) as served:
        yield served, secret
    memory.close()
    keys.close()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    op=st.sampled_from(
        [op for op in __import__("lightmem_core.server.api", fromlist=["OPERATIONS"]).OPERATIONS if op.in_body]
    ),
    body=st.one_of(
        st.dictionaries(
            st.sampled_from(
                [
                    "messages",
                    "query",
                    "user_id",
                    "limit",
                    "filters",
                    "memory",
                    "records",
                    "after",
                    "strategy",
                    "scopes",
                    "wait",
                    "x",
                ]
            ),
            JSON,
            max_size=4,
        ),
        JSON,
    ),
    auth=st.sampled_from(["good", "none", "bad"]),
)
def test_fuzzed_bodies_get_a_named_status_and_change_nothing(
    fuzzed: tuple[Served, str], op: Any, body: Any, auth: str
) -> None:
    served, secret = fuzzed
    headers = {"good": {"Authorization": f"Bearer {secret}"}, "none": {}, "bad": {"Authorization": "Bearer lmk_x_y"}}[
        auth
    ]
    before = _snapshot(served.memory)
    path = op.path.replace("{memory_id}", "00000000-0000-0000-0000-000000000000")
    got = httpx.request(op.verb, served.url + path, json=body, headers=headers, timeout=60)
    assert got.status_code in (200, 400, 401, 403, 404, 409, 413), (op.name, body, got.status_code, got.text)
    if got.status_code != 200:
        err = got.json()["error"]
        assert err["message"]
        if got.status_code == 400:
            assert isinstance(err["field"], str) and err["field"], got.text
        assert _snapshot(served.memory) == before, (op.name, body)
    if auth != "good":
        assert got.status_code == 401
