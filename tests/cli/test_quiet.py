"""A newcomer's screen carries only what they asked for.

Installing prints no setuptools deprecation tables or import-hook notices; a command
that loads the model prints no "Loading weights" bar and no transformers warning, in the
CLI and in an MCP server's log. Real processes throughout: pip into a new virtual
environment, the ``lightmem`` entry point, the MCP server over HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests._net import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
NOISE = (
    "Loading weights",
    "[transformers]",
    "loss_type",
    "it/s]",
    "BuildBackendWarning",
    "!!",
    "SetuptoolsDeprecationWarning",
    "License classifiers",
    "project.license",
)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTMEM_")}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", COLUMNS="200")
    return env


def _quiet(text: str) -> None:
    for noise in NOISE:
        assert noise not in text, f"{noise!r} in:\n{text[-3000:]}"


def test_an_install_prints_no_warnings(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "-q",
            "--no-deps",
            "-e",
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    _quiet(done.stdout + done.stderr)


def test_commands_that_load_the_model_print_only_their_output(tmp_path: Path) -> None:
    chat = tmp_path / "chat.json"
    chat.write_text(
        json.dumps([{"role": "user", "content": "My dog Biscuit is a corgi."}, {"role": "assistant", "content": ""}])
    )
    lightmem = [sys.executable, "-m", "lightmem_core.cli", "--path", str(tmp_path / "store")]
    ingest = subprocess.run(
        [*lightmem, "ingest", str(chat), "--user", "maya"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=240,
    )
    assert ingest.returncode == 0, ingest.stderr
    _quiet(ingest.stdout + ingest.stderr)
    assert "1 turns ingested" in ingest.stdout and "1 empty turns skipped" in ingest.stdout
    search = subprocess.run(
        [*lightmem, "search", "What breed is the dog?", "--user", "maya"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=240,
    )
    assert search.returncode == 0, search.stderr
    _quiet(search.stdout + search.stderr)
    assert "corgi" in search.stdout and search.stderr.strip() == ""


def test_an_mcp_servers_log_has_no_model_noise(tmp_path: Path) -> None:
    pytest.importorskip("fastmcp")
    import httpx

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lightmem_core.mcp",
            "--transport",
            "http",
            "--port",
            str(port),
            "--path",
            str(tmp_path / "store"),
        ],
        env={**_env(), "LIGHTMEM_MCP_TOKEN": "t0ken-for-the-test"},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(port, proc)
        from fastmcp import Client

        async def scenario() -> None:
            async with Client(f"http://127.0.0.1:{port}/mcp", auth="t0ken-for-the-test", timeout=120) as c:
                await c.call_tool("add_memory", {"user_id": "maya", "user_input": "My dog Biscuit is a corgi."})
                found = (await c.call_tool("retrieve_memory", {"user_id": "maya", "query": "dog"})).data
                assert "corgi" in found["formatted"]

        import asyncio

        asyncio.run(scenario())
        assert httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=5).status_code in (401, 405, 406)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    _quiet(out + err)
