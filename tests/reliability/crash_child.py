"""The process the crash test kills: it adds turns until SIGKILL arrives.

Run as ``python -m tests.reliability.crash_child '<json settings>'``. It opens the
store (which recovers whatever the last killed run left), prints ``ready``, then loops
forever over a seeded mix of ``add_memory`` (buffered, sometimes ``force_extract``),
re-sends of an earlier call (as a client retrying after a crash would), ``flush`` and
``update``. After each ``add_memory`` returns, the turn ids it acknowledged (new or
already journaled) are appended to the ack file as ``user_id turn_id`` lines, written
with one ``os.write`` and fsync'd: a line in that file is a promise the library made.
"""

from __future__ import annotations

import json
import os
import random
import sys
from typing import Any

WORDS = (
    "kayak lantern violin orchard glacier pepper marble compass harbor meadow falcon cedar saffron "
    "pebble quartz tundra walnut ember juniper sparrow canyon velvet"
).split()
NAMES = ("Maya", "Tom", "Ravi", "Lena")


def turn_text(rng: random.Random, n: int) -> str:
    picks = rng.sample(WORDS, 3)
    return f"I keep the {picks[0]} near the {picks[1]} since day {n}, said the {picks[2]} story."


def main(settings: dict[str, Any]) -> None:
    from lightmem_core import LightMemory

    rng = random.Random(settings["seed"])
    run = settings["run"]
    users = settings["users"]
    memory = LightMemory.from_config(settings["config"])
    fd = os.open(settings["acked"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    print("ready", flush=True)
    sent: list[tuple[str, str | None, list[dict[str, Any]]]] = []
    n = 0
    while True:
        r = rng.random()
        user = rng.choice(users)
        if r < 0.08:
            memory.flush(user_id=user)
            continue
        if r < 0.14:
            entries = memory.get_all(user_id=user, limit=20)
            if entries:
                e = rng.choice(entries)
                memory.update(e.id, f"{e.memory.rstrip('.')} (checked {n}).", user_id=user, reason="crash test")
            continue
        if r < 0.22 and sent:
            user, session, messages = rng.choice(sent)  # a client re-sending after a crash
        else:
            session = rng.choice(["s1", "s2", None])
            messages = []
            for _ in range(rng.randint(1, 3)):
                messages.append(
                    {
                        "id": f"r{run}-{n}",
                        "role": rng.choice(["user", "assistant"]),
                        "speaker_name": rng.choice(NAMES),
                        "content": turn_text(rng, n),
                        "time_stamp": f"2025-03-{1 + n % 28:02d}T10:{n % 60:02d}:00",
                    }
                )
                n += 1
            sent.append((user, session, messages))
        result = memory.add_memory(messages, user_id=user, session_id=session, force_extract=rng.random() < 0.15)
        acked = result.turn_ids + result.duplicate_turn_ids
        os.write(fd, "".join(f"{user} {t}\n" for t in acked).encode())
        os.fsync(fd)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
