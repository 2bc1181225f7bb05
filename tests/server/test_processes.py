"""``lightmem serve`` as its own process: SIGTERM stops it cleanly; after SIGKILL in the
middle of several client processes' writes, a restart has every acknowledged turn, once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests._net import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]

CLIENT = r"""
import json, sys, uuid
from lightmem_core import RemoteMemory
url, user, out = sys.argv[1], sys.argv[2], sys.argv[3]
memory = RemoteMemory(url, retries=0, wait=False, timeout=10)
with open(out, "a") as acked:
    for i in range(400):
        turn = f"{user}-{i}"
        try:
            note = f"Note {i} from {user}: the kettle is blue."
            r = memory.add_memory([{"id": turn, "role": "user", "content": note}], user_id=user)
        except Exception:
            break
        acked.write(json.dumps(r.turn_ids + r.duplicate_turn_ids) + "\n")
        acked.flush()
        if i % 5 == 0:
            memory.retrieve("kettle", user_id=user)
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTMEM_")}
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    return env


def _server(store: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "lightmem_core.cli", "--path", str(store), "serve", "--port", str(port)],
        env=_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_port(port, proc, timeout=120)
    return proc


def test_sigterm_finishes_and_closes_the_store(tmp_path: Path) -> None:
    from lightmem_core import LightMemory, RemoteMemory

    port = free_port()
    proc = _server(tmp_path, port)
    RemoteMemory(f"http://127.0.0.1:{port}").add_memory("The garage code is 7315.", user_id="maya")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) in (0, -signal.SIGTERM)
    assert "stopped: requests finished, store closed" in proc.stderr.read()  # type: ignore[union-attr]
    with LightMemory({"store": {"path": str(tmp_path)}}) as memory:  # the lock is free, the turn is stored
        assert "7315" in memory.get_all(user_id="maya")[0].memory


@pytest.mark.timeout(600)
def test_sigkill_under_load_loses_no_acknowledged_turn(tmp_path: Path) -> None:
    from lightmem_core import RemoteMemory

    store = tmp_path / "store"
    port = free_port()
    server = _server(store, port)
    url = f"http://127.0.0.1:{port}"
    users = ["u0", "u1", "u2"]
    clients = [
        subprocess.Popen(
            [sys.executable, "-c", CLIENT, url, u, str(tmp_path / f"{u}.acks")],
            env=_env(),
            cwd=ROOT,
            stderr=subprocess.DEVNULL,
        )
        for u in users
    ]
    deadline = time.monotonic() + 120
    while (
        sum(
            len((tmp_path / f"{u}.acks").read_text().splitlines()) if (tmp_path / f"{u}.acks").exists() else 0
            for u in users
        )
        < 60
    ):
        assert time.monotonic() < deadline, "clients made no progress"
        time.sleep(0.05)
    server.send_signal(signal.SIGKILL)
    server.wait(30)
    for c in clients:
        c.wait(60)
    acked = {
        u: [t for line in (tmp_path / f"{u}.acks").read_text().splitlines() for t in json.loads(line)] for u in users
    }
    restarted = _server(store, port)
    try:
        memory = RemoteMemory(url)
        memory.flush()
        for u in users:
            cited = [s for e in memory.get_all(user_id=u, limit=10_000) for s in e.source_ids]
            pending = {t.id for t in memory.pending(user_id=u)}
            assert set(acked[u]) <= set(cited) | pending, u
            assert len(cited) == len(set(cited)), f"{u}: a turn stored twice"
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(60)
