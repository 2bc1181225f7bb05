"""Memory inspector page times on a store of 100k entries (issue 20 target: every page < 100 ms).

What it measures
    The wall-clock time of one GET of each inspector page, over real HTTP on loopback
    from a client in this process to ``lightmem serve``'s app (uvicorn in a thread, the
    inspector mounted at /ui, an admin key as Bearer): median, p95 and max over
    ``--runs`` requests after one untimed warm-up request per page. The pages: scopes
    (counts of every scope), the timeline (first page, a page 50k entries deep by its
    cursor, and a filtered one, each with its chart of 62 bars), search (the real
    ``retrieve``, including the MiniLM query embedding), a memory with its superseded
    chain, a superseded memory, and pending and costs.

How the store is built
    Through the public API only: ``add_memory(infer=False)`` in batches of 1,000 (one
    entry per message, embedded with the packaged MiniLM, as a user's store is), over
    365 days, 4 speakers and a session a batch (named after its first day), for one user; 2,000 superseded values
    via ``import_records`` (each naming a current entry as its successor); 100 turns
    journaled with ``defer=True`` and left pending. A second user holds a few entries.
    The store is kept in ``--path`` and reused when it already holds the entries
    (building it takes about 10 minutes here: the model embeds ~200 texts/s).

    .venv/bin/python benchmarks/inspector.py [--entries 100000] [--runs 20] [--path DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

USER = "maya"
START = datetime(2024, 1, 1, 8, 0)
SPEAKERS = ["Maya", "Tom", "Agent", "Ana"]
THINGS = ["the cello", "Lisbon", "a green bike", "hazelnuts", "the blue drawer", "Radiohead", "ferns", "the launch"]


def build(memory: Any, n: int) -> None:
    t0 = time.perf_counter()
    for start in range(0, n, 1000):
        batch = []
        for i in range(start, min(start + 1000, n)):
            when = START + timedelta(seconds=i * 365 * 86400 / n)
            batch.append(
                {
                    "id": f"b{i}",
                    "role": "assistant" if i % 4 == 2 else "user",
                    "content": f"Note {i}: we talked about {THINGS[i % 8]} and {THINGS[(i * 7 + 3) % 8]}.",
                    "time_stamp": when.isoformat(),
                    "name": SPEAKERS[i % 4],
                }
            )
        memory.add_memory(batch, user_id=USER, session_id=f"day{(start * 365) // n}", infer=False)
        if (start // 1000) % 10 == 0:
            print(f"  {start + len(batch)} entries, {time.perf_counter() - t0:.0f} s", flush=True)
    heads = memory.get_all(user_id=USER, limit=2000)
    old = []
    for k, head in enumerate(heads):
        when = (head.time_stamp or START) - timedelta(days=2)
        old.append(
            {
                "kind": "entry",
                "id": f"00000000-0000-4000-8000-{k:012d}",
                "memory": f"Earlier value {k}: we talked about something else.",
                "user_id": USER,
                "session_id": head.session_id,
                "time_stamp": when.isoformat(),
                "valid_to": head.time_stamp.isoformat() if head.time_stamp else None,
                "superseded_by": head.id,
                "version": 2,
            }
        )
    memory.import_records(old)
    memory.add_memory("I keep my passport in the blue drawer.", user_id="tom", infer=False)
    print(f"built {n} entries + {len(old)} superseded in {time.perf_counter() - t0:.0f} s", flush=True)


def timed(client: Any, path: Any, runs: int) -> dict[str, float]:
    """Median, p95, max of ``runs`` GETs after one untimed warm-up. ``path`` may be a function
    of the run's number: distinct URLs, so nothing a page keeps between requests (the
    timeline keeps its chart 15 s) is reused."""
    url = path if callable(path) else lambda n: path
    first = client.get(url(0))
    assert first.status_code == 200, (url(0), first.status_code, first.text[:300])
    times = []
    for n in range(1, runs + 1):
        t = time.perf_counter()
        answer = client.get(url(n))
        times.append((time.perf_counter() - t) * 1000)
        assert answer.status_code == 200
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[min(len(times) - 1, int(0.95 * len(times)))], 1),
        "max_ms": round(times[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--path", default=os.path.expanduser("~/.cache/lightmem-bench/inspector"))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "inspector.json"))
    args = parser.parse_args()

    import httpx
    import uvicorn

    from lightmem_core import LightMemory, MemoryConfig
    from lightmem_core.server import ui
    from lightmem_core.server.app import ServerSettings, create_app
    from lightmem_core.server.keys import KeyStore

    path = Path(args.path) / f"{args.entries}"
    memory = LightMemory(MemoryConfig.from_dict({"store": {"path": str(path / "store")}}))
    marker = path / "built.json"
    if not marker.exists():
        memory.reset()  # a build cut short starts again
        print(f"building the store in {path} ...", flush=True)
        started = time.perf_counter()
        build(memory, args.entries)
        marker.write_text(json.dumps({"entries": args.entries, "seconds": round(time.perf_counter() - started)}))
    keys = KeyStore(str(path / "keys.sqlite"))
    key, secret = keys.create(name="bench", admin=True)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    app = create_app(memory, keys=keys, settings=ServerSettings(port=port, extra_routes=ui.routes()))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        # the worker extracts what a previous run left pending at start-up: let it finish first
        deadline = time.monotonic() + 600
        while memory.pending(user_id=USER) and time.monotonic() < deadline:
            time.sleep(0.5)
        if not memory.pending(user_id=USER):  # after start-up, so the worker leaves them waiting
            memory.add_memory(
                [{"id": f"p{i}", "role": "user", "content": f"Pending thought {i}."} for i in range(100)],
                user_id=USER,
                session_id="later",
                defer=True,
            )
        seen, cursor = 0, None  # the cursor of the page halfway through the scope
        while seen < args.entries // 2:
            step = memory.get_page(user_id=USER, limit=min(10_000, args.entries // 2 - seen), after=cursor)
            seen, cursor = seen + len(step.entries), step.next_cursor
        head = memory.get_all(user_id=USER, limit=1)[0]
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {secret}"}, timeout=60
        )
        pages = {
            "scopes": "/ui/",
            # a later "until" each run, past the last entry (the same memories): the chart counted anew
            "timeline, chart counted": lambda n: f"/ui/timeline?user={USER}&until={date(2025, 1, 1) + timedelta(n)}",
            "timeline, filtered, counted": lambda n: (
                f"/ui/timeline?user={USER}&speaker=Tom&since=2024-03-01"
                f"&until={date(2024, 6, 30) + timedelta(n)}&superseded=1"
            ),
            "timeline": f"/ui/timeline?user={USER}",
            "timeline, halfway": f"/ui/timeline?user={USER}&after={cursor}",
            "timeline, filtered": f"/ui/timeline?user={USER}&speaker=Tom&since=2024-03-01&until=2024-06-30"
            "&superseded=1",
            "search": f"/ui/search?user={USER}&q=when+did+we+talk+about+the+cello%3F",
            "search, context, 50": f"/ui/search?user={USER}&q=hazelnuts+blue+drawer&strategy=context&limit=50",
            "memory + chain": f"/ui/memory/{head.id}?user={USER}",
            "memory, superseded": f"/ui/memory/00000000-0000-4000-8000-000000000000?user={USER}",
            "pending and costs": f"/ui/pending?user={USER}",
        }
        load_before = os.getloadavg()[0]
        results = {name: timed(client, p, args.runs) for name, p in pages.items()}  # type: ignore[arg-type]
        client.close()
    finally:
        server.should_exit = True
        thread.join(30)
        keys.revoke(key.id)
        keys.close()
        memory.close()
    print(f"\n{args.entries} entries + 2,000 superseded + 100 pending, {args.runs} runs per page (ms)")
    print(f"{'page':28} {'median':>8} {'p95':>8} {'max':>8}")
    for name, r in results.items():
        print(f"{name:28} {r['median_ms']:8.1f} {r['p95_ms']:8.1f} {r['max_ms']:8.1f}")
    record = {
        "command": " ".join(["benchmarks/inspector.py", *sys.argv[1:]]),
        "date": datetime.now().isoformat(timespec="seconds"),
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "entries": args.entries,
        "superseded": 2000,
        "pending": 100,
        "runs": args.runs,
        "pages_ms": results,
    }
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
