"""A real ``lightmem serve`` app on loopback, in a thread of the test process.

The server is the project's own Starlette app under uvicorn, listening on 127.0.0.1;
clients reach it over TCP with real HTTP. Sharing the process lets a test hand the
session's MiniLM to the served memory (one model load for the suite)."""

from __future__ import annotations

import threading
import time
from typing import Any, Iterator, Optional

from tests._net import free_port


class Served:
    def __init__(self, memory: Any, keys: Any = None, **settings: Any) -> None:
        import uvicorn

        from lightmem_core.server.app import ServerSettings, create_app

        self.memory = memory
        self.keys = keys
        self.port = free_port()
        self.settings = ServerSettings(port=self.port, **settings)
        self.app = create_app(memory, keys=keys, settings=self.settings)
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, name="lightmem-served", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Served":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def client(self, key: Optional[str] = None, **kwargs: Any) -> Any:
        from lightmem_core import RemoteMemory

        return RemoteMemory(self.url, api_key=key, **kwargs)


def local_or_remote(kind: str, local: Any) -> Iterator[Any]:
    """A fixture body for adapter tests that run both ways: the memory itself ("local"),
    or a ``RemoteMemory`` through a real server over it on loopback ("remote")."""
    if kind == "local":
        yield local
        return
    with Served(local) as served:
        client = served.client()
        yield client
        client.close()
