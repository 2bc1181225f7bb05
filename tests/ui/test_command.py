"""``lightmem --path DIR ui``: a server on loopback for a local store, with a one-time admin key.

Run as the user runs it, in a process of its own: the printed URL answers, the printed
key logs in, no key is written to the store's key file, and SIGTERM stops it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests._net import free_port, wait_for_port
from tests.ui.conftest import csrf_of

ROOT = Path(__file__).resolve().parents[2]


def test_lightmem_ui_serves_the_inspector_with_a_one_time_key(tmp_path: Path, fake_llm: Any) -> None:
    from lightmem_core import LightMemory
    from lightmem_core.server.keys import KeyStore, keys_path

    store = tmp_path / "store"
    # the embeddings of the loopback model server: the command's process starts in a second,
    # where loading MiniLM would take ten
    config = {"embedder": {"provider": "openai", "base_url": fake_llm.base_url, "model": "fake", "api_key": "k"}}
    (tmp_path / "lightmem.json").write_text(json.dumps(config))
    with LightMemory({**config, "store": {"path": str(store)}}) as memory:
        memory.add_memory("My locker code is 4411.", user_id="maya", infer=False)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTMEM_")}
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lightmem_core.cli", "--config", str(tmp_path / "lightmem.json"), "--path", str(store)]
        + ["ui", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(port, proc, timeout=120)
        assert proc.stdout is not None
        printed = proc.stdout.readline() + proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:(\d+)/ui/", printed)
        key = re.search(r"admin key \(valid until the server stops\): (\S+)", printed)
        assert url and int(url.group(1)) == port and key, printed
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            assert c.get("/ui/").status_code == 303  # a key is needed, even on loopback
            form = c.get("/ui/login")
            c.post("/ui/login", data={"csrf": csrf_of(form.text), "key": key.group(1)})
            page = c.get("/ui/timeline?user=maya")
            assert page.status_code == 200 and "My locker code is 4411." in page.text
            assert "admin" in c.get("/ui/").text
        keys = KeyStore(keys_path(str(store)))
        assert not keys.any_active()  # the one-time key was never written down
        keys.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode in (0, -signal.SIGTERM)
