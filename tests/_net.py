"""Loopback helpers shared by the tests that start real servers in other processes."""

from __future__ import annotations

import socket
import subprocess
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Until something listens on ``port``; fails with the process's stderr if it exits first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                err = proc.communicate()[1] or ""
                raise AssertionError(f"server did not start: {str(err)[-2000:]}") from None
            time.sleep(0.1)
