"""A process that SIGKILLs itself at one chosen point inside a single write.

Run as ``python -m tests.reliability.crash_point_child '<json settings>'``. The random
kills of ``test_crash_safety`` reach these points only by luck; this child reaches them
every time. It stores one turn, then arms the kill and sends a turn that repeats it
(merged into the first entry by the online update) with one new turn, in another
session, so the write holds a MERGE and an ADD in two scopes. The kill is a real
SIGKILL sent to itself; the only stand-in is the hook that sends it at the right line.

Points: ``commit`` -- after the store write, before the journal commit;
``second_upsert`` -- after the new entry is written, before the merged one is.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

SAME = "Maya keeps the violin in the attic above the garage."
OTHER = "Tom is training for the Lisbon marathon in October."


def die(*_: Any, **__: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(point: str) -> None:
    from lightmem_core.journal import Journal
    from lightmem_core.store.base import MemoryStore

    if point == "commit":
        Journal.finish_change = die  # type: ignore[method-assign]
    elif point == "second_upsert":
        original = MemoryStore.upsert
        calls = []

        def upsert(self: MemoryStore, scope: Any, points: Any) -> None:
            calls.append(scope)
            if len(calls) == 2:
                die()
            original(self, scope, points)

        MemoryStore.upsert = upsert  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown point {point!r}")


def main(settings: dict[str, Any]) -> None:
    from lightmem_core import LightMemory

    memory = LightMemory.from_config(settings["config"])
    memory.add_memory(
        [{"id": "a", "role": "user", "speaker_name": "Maya", "content": SAME, "time_stamp": "2025-03-01T10:00:00"}],
        user_id="ana",
        session_id="s1",
        force_extract=True,
    )
    arm(settings["point"])
    memory.add_memory(
        [
            {"id": "b", "role": "user", "speaker_name": "Maya", "content": SAME, "time_stamp": "2025-03-02T10:00:00"},
            {"id": "c", "role": "user", "speaker_name": "Tom", "content": OTHER, "time_stamp": "2025-03-02T10:01:00"},
        ],
        user_id="ana",
        session_id="s2",
        force_extract=True,
    )
    sys.exit(3)  # the kill point was never reached


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
