"""The MCP server through fastmcp's real client: in process, over stdio, over HTTP with a token."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

fastmcp = pytest.importorskip("fastmcp")
from fastmcp import Client  # noqa: E402
from mcp.shared.exceptions import MCPError  # noqa: E402

from lightmem_core.errors import ConfigError  # noqa: E402
from lightmem_core.mcp import create_server, serve  # noqa: E402
from tests._net import free_port, wait_for_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TOOLS = {
    "add_memory",
    "retrieve_memory",
    "list_memories",
    "get_memory",
    "update_memory",
    "delete_memory",
    "memory_history",
    "offline_update",
    "summarize",
    "get_timestamp",
}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def call(client: Client, tool: str, **args: Any) -> Any:
    return (await client.call_tool(tool, args)).data


async def error(client: Client, tool: str, **args: Any) -> str:
    result = await client.call_tool(tool, args, raise_on_error=False)
    assert result.is_error, f"{tool} should have failed"
    return result.content[0].text


def test_every_tool(make_memory: Any) -> None:
    memory = make_memory()
    server = create_server(memory)

    async def scenario() -> None:
        async with Client(server) as c:
            assert {t.name for t in await c.list_tools()} == TOOLS

            added = await call(
                c,
                "add_memory",
                user_id="maya",
                session_id="s1",
                user_input="My dog Biscuit is a corgi.",
                assistant_reply="Biscuit sounds adorable!",
                time_stamp="2025/01/12 (Sun) 09:14",
            )
            assert len(added["turn_ids"]) == 2 and added["error"] is None
            assert any("corgi" in e["memory"] for e in added["added"])
            assert added["added"][0]["time_stamp"] == "2025-01-12T09:14:00"
            await call(
                c,
                "add_memory",
                user_id="maya",
                session_id="s2",
                user_input="I start at Brightline Health on April 28.",
                time_stamp="2025-04-06T10:05:00",
                force_extract=True,
            )
            # the same fact again, later: offline_update folds it into the first one
            await call(
                c,
                "add_memory",
                user_id="maya",
                session_id="s2",
                user_input="My dog Biscuit is a corgi.",
                time_stamp="2025-04-06T10:06:00",
            )

            found = await call(c, "retrieve_memory", user_id="maya", query="What breed is Maya's dog?", limit=3)
            assert "corgi" in found["memories"][0]["memory"]
            assert found["memories"][0]["retrievers"] and "corgi" in found["formatted"]
            assert found["memories"][0]["window"] is None  # a one-sentence turn has no neighbours to show
            later = await call(
                c,
                "retrieve_memory",
                user_id="maya",
                query="dog",
                strategy="context",
                filters={"time_stamp": {"gte": "2025-04-01"}},
            )
            assert later["memories"] and all(m["time_stamp"] >= "2025-04-01" for m in later["memories"])

            listed = await call(c, "list_memories", user_id="maya")
            assert listed["next_offset"] is None
            texts = [m["memory"] for m in listed["memories"]]
            assert sum("corgi" in t for t in texts) == 2 and any("Brightline" in t for t in texts)
            assert [m["time_stamp"] for m in listed["memories"]] == sorted(m["time_stamp"] for m in listed["memories"])
            only_s1 = await call(c, "list_memories", user_id="maya", session_id="s1")
            assert {m["session_id"] for m in only_s1["memories"]} == {"s1"}

            job = next(m for m in listed["memories"] if "Brightline" in m["memory"])
            got = await call(c, "get_memory", user_id="maya", memory_id=job["id"])
            assert got["id"] == job["id"] and "context" not in got
            assert [s["content"] for s in got["sources"]] == ["I start at Brightline Health on April 28."]

            upd = await call(
                c,
                "update_memory",
                user_id="maya",
                memory_id=job["id"],
                memory_text="Maya works at Brightline Health since April 28.",
                reason="user correction",
            )
            assert upd["version"] == 2 and upd["memory"].startswith("Maya works at Brightline")
            hist = await call(c, "memory_history", user_id="maya", memory_id=job["id"])
            assert [h["event"] for h in hist["history"]] == ["ADD", "UPDATE"]
            assert (
                hist["history"][1]["old_memory"] == job["memory"] and hist["history"][1]["reason"] == "user correction"
            )

            summaries = await call(c, "summarize", user_id="maya", window="session")
            assert {s["session_id"] for s in summaries["summaries"]} == {"s1", "s2"}
            assert all(s["entry_type"] == "summary" for s in summaries["summaries"])
            hier = await call(c, "retrieve_memory", user_id="maya", query="Where does Maya work?", hierarchical=True)
            assert hier["memories"][0]["entry_type"] == "summary"
            assert any(m["entry_type"] == "fact" for m in hier["memories"])

            consolidated = await call(c, "offline_update", user_id="maya", score_threshold=0.9)
            assert consolidated["queued"] >= 1 and consolidated["failed"] == 0 and consolidated["changes"] >= 1
            after = await call(c, "list_memories", user_id="maya")
            assert sum("corgi" in m["memory"] for m in after["memories"]) == 1

            await call(c, "delete_memory", user_id="maya", memory_id=job["id"], reason="left the job")
            assert "not found" in await error(c, "get_memory", user_id="maya", memory_id=job["id"])
            hist = await call(c, "memory_history", user_id="maya", memory_id=job["id"])
            assert hist["history"][-1]["event"] == "DELETE" and hist["history"][-1]["reason"] == "left the job"

            ts = await call(c, "get_timestamp", user_id="maya", session_id="s3")
            assert abs((datetime.fromisoformat(ts["iso"]) - datetime.utcnow()).total_seconds()) < 60
            assert ts["formatted"].startswith(ts["iso"][:10].replace("-", "/")) and ts["scope"]["session_id"] == "s3"

    run(scenario())


def test_errors_name_the_field(make_memory: Any) -> None:
    memory = make_memory()
    server = create_server(memory)

    async def scenario() -> None:
        async with Client(server) as c:
            assert "'query'" in await error(c, "retrieve_memory", user_id="maya", query="   ")
            assert "'strategy'" in await error(c, "retrieve_memory", user_id="maya", query="dog", strategy="psychic")
            assert "filters.time_stamp.gt" in await error(
                c, "retrieve_memory", user_id="maya", query="dog", filters={"time_stamp": {"gt": "not a date"}}
            )
            assert "time_stamp" in await error(c, "add_memory", user_id="maya", user_input="hi", time_stamp="someday")
            assert "'user_id'" in await error(c, "list_memories", user_id="")
            assert "'session_id'" in await error(c, "offline_update", user_id="maya", session_id="s1")
            assert "'window'" in await error(c, "summarize", user_id="maya", window="decade")
            assert "not found in this scope" in await error(
                c, "update_memory", user_id="maya", memory_id="nope", memory_text="x"
            )
            # argument types are checked by the server's schema before the core sees them
            assert "limit" in await error(c, "retrieve_memory", user_id="maya", query="dog", limit=0)

    run(scenario())


def test_two_scopes_never_see_each_other(make_memory: Any) -> None:
    memory = make_memory()
    server = create_server(memory)

    async def scenario() -> None:
        async with Client(server) as c:
            maya = await call(c, "add_memory", user_id="maya", user_input="My dog Biscuit is a corgi.")
            await call(c, "add_memory", user_id="bob", user_input="My dog Rex is a beagle.")
            maya_id = maya["added"][0]["id"]

            for query in ("corgi Biscuit", "dog breed", "beagle"):
                hits = await call(c, "retrieve_memory", user_id="bob", query=query)
                assert hits["memories"] and all(m["user_id"] == "bob" for m in hits["memories"])
                assert "corgi" not in hits["formatted"]
            assert [m["user_id"] for m in (await call(c, "list_memories", user_id="bob"))["memories"]] == ["bob"]
            for tool, extra in (
                ("get_memory", {}),
                ("memory_history", {}),
                ("delete_memory", {}),
                ("update_memory", {"memory_text": "Bob owns Biscuit."}),
            ):
                assert "not found" in await error(c, tool, user_id="bob", memory_id=maya_id, **extra)
            still = await call(c, "get_memory", user_id="maya", memory_id=maya_id)
            assert still["version"] == 1 and "corgi" in still["memory"]
            await call(c, "summarize", user_id="bob")
            sums = await call(c, "list_memories", user_id="maya", filters={"entry_type": "summary"})
            assert sums["memories"] == []

    run(scenario())


def test_serve_refuses_an_open_port_without_token(make_memory: Any) -> None:
    # Fails before binding anything: no server is started.
    with pytest.raises(ConfigError) as exc:
        serve(make_memory(), transport="http", host="0.0.0.0", port=1)
    assert exc.value.field == "token"


def test_core_and_cli_import_without_fastmcp() -> None:
    # A fresh interpreter where `import fastmcp` fails, as without the `mcp` extra.
    code = (
        "import sys; sys.modules['fastmcp'] = None\n"
        "import lightmem_core, lightmem_core.mcp, lightmem_core.cli\n"
        "from lightmem_core.errors import StageNotAvailableError\n"
        "try:\n    lightmem_core.mcp.create_server(None)\n"
        "except StageNotAvailableError as e:\n    print('refused:', e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=_env(), cwd=str(ROOT), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "refused:" in done.stdout and "lightmem-agents[mcp]" in done.stdout


# --- out of process: the console entry point, stdio and HTTP ------------------------------
@pytest.fixture
def stored(make_memory: Any, tmp_path: Path) -> tuple[Path, str]:
    """A store with one memory, closed again so a server process can open it.

    The store records its vector size, so the server answers list/get without loading
    the embedding model (keeps these tests fast)."""
    path = tmp_path / "served"
    memory = make_memory(path=path)
    added = memory.add_memory("My dog Biscuit is a corgi.", user_id="maya")
    memory.close()
    return path, added.added[0].id


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTMEM_")}
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", **extra)
    return env


def test_stdio_transport(stored: tuple[Path, str]) -> None:
    from fastmcp.client.transports import StdioTransport

    path, memory_id = stored
    transport = StdioTransport(
        command=sys.executable, args=["-m", "lightmem_core.mcp", "--path", str(path)], env=_env(), cwd=str(ROOT)
    )

    async def scenario() -> None:
        async with Client(transport, timeout=60) as c:
            assert {t.name for t in await c.list_tools()} == TOOLS
            listed = await call(c, "list_memories", user_id="maya")
            assert [m["id"] for m in listed["memories"]] == [memory_id]
            assert "not found" in await error(c, "get_memory", user_id="bob", memory_id=memory_id)

    run(scenario())


@pytest.fixture
def http_server(stored: tuple[Path, str]) -> Any:
    path, memory_id = stored
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lightmem_core.mcp", "--transport", "http", "--port", str(port)],
        env=_env(LIGHTMEM_MCP_TOKEN="s3cret-token", LIGHTMEM_CONFIG_JSON=json.dumps({"store": {"path": str(path)}})),
        cwd=str(ROOT),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_port(port, proc)
    yield f"http://127.0.0.1:{port}/mcp", memory_id
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_http_transport_requires_the_token(http_server: tuple[str, str]) -> None:
    import httpx

    url, memory_id = http_server
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
    }
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    for auth in (None, "Bearer wrong-token", "Bearer s3cret-token-but-longer", "s3cret-token"):
        sent = headers if auth is None else {**headers, "Authorization": auth}
        r = httpx.post(url, json=initialize, headers=sent, timeout=10)
        assert r.status_code == 401, (auth, r.status_code)
        assert "memories" not in r.text and "Biscuit" not in r.text
    ok = httpx.post(url, json=initialize, headers={**headers, "Authorization": "Bearer s3cret-token"}, timeout=10)
    assert ok.status_code == 200 and "protocolVersion" in ok.text
    port = url.split(":")[2].split("/")[0]
    for forged in ({"Host": f"evil.example:{port}"}, {"Origin": f"http://evil.example:{port}"}):  # DNS rebinding
        r = httpx.post(url, json=initialize, headers={**headers, "Authorization": "Bearer s3cret-token", **forged})
        assert r.status_code == 403, forged

    async def scenario() -> None:
        async with Client(url, auth="s3cret-token", timeout=30) as c:
            got = await call(c, "get_memory", user_id="maya", memory_id=memory_id)
            assert "corgi" in got["memory"] and got["sources"][0]["content"] == "My dog Biscuit is a corgi."
        with pytest.raises(MCPError):  # the server refused the key (the raw HTTP status is 401)
            async with Client(url, auth="wrong-token", timeout=30) as c:
                await c.call_tool("list_memories", {"user_id": "maya"})

    run(scenario())
