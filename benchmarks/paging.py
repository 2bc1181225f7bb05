"""Paging through a whole conversation's memory: does every entry come back exactly once?

Ingests one LoCoMo conversation with the offline default (every turn of a session carries
the session's date, so hundreds of entries share a time stamp), then pages through all
of it with ``get_all(offset=)`` and with ``get_page`` cursors at several page sizes, and
counts what came back, how many were distinct and how many never came. Also times the
deepest page of each method: an offset page reads ``offset + limit`` points, a cursor
page only its own.

    python benchmarks/paging.py [--conv conv-26,conv-43] [--sizes 1000,100,37]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _locomo  # noqa: E402
from _common import git_state  # noqa: E402

from lightmem_core import LightMemory, MemoryConfig  # noqa: E402


def page_through(memory: LightMemory, user: str, size: int, how: str) -> tuple[list[str], float]:
    """Every id listed, in order, and the seconds the last page took."""
    ids: list[str] = []
    cursor = None
    last = 0.0
    while True:
        t = time.perf_counter()
        if how == "offset":
            got = [e.id for e in memory.get_all(user_id=user, limit=size, offset=len(ids))]
            done = len(got) < size
        else:
            page = memory.get_page(user_id=user, limit=size, after=cursor)
            got, cursor = [e.id for e in page.entries], page.next_cursor
            done = cursor is None
        last = time.perf_counter() - t
        ids += got
        if done:
            return ids, last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--conv", default="conv-26,conv-43", help="comma-separated conversation ids")
    ap.add_argument("--sizes", default="1000,100,37")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "paging.json"))
    args = ap.parse_args()
    rows = []
    sizes = {}
    for conv in (c for c in _locomo.load() if c.conv_id in args.conv.split(",")):
        with (
            tempfile.TemporaryDirectory() as root,
            LightMemory(MemoryConfig.from_dict({"store": {"path": root}})) as memory,
        ):
            for sid, _, msgs in conv.sessions:
                memory.add_memory(msgs, user_id=conv.conv_id, session_id=sid)
            total = memory._store.count(memory._scope(conv.conv_id, None, None))
            stamps = {e.time_stamp for e in memory.get_all(user_id=conv.conv_id, limit=10_000)}
            sizes[conv.conv_id] = {"entries": total, "distinct_time_stamps": len(stamps)}
            for size in (int(s) for s in args.sizes.split(",")):
                # (the cursor is absent before the change that added it: there, only offsets are measured)
                for how in ("offset", "cursor") if hasattr(memory, "get_page") else ("offset",):
                    ids, last = page_through(memory, conv.conv_id, size, how)
                    rows.append(
                        {
                            "conversation": conv.conv_id,
                            "entries": total,
                            "page_size": size,
                            "method": how,
                            "returned": len(ids),
                            "distinct": len(set(ids)),
                            "never_returned": total - len(set(ids)),
                            "last_page_ms": round(last * 1000, 2),
                        }
                    )
    result = {
        "command": " ".join(["python", "benchmarks/paging.py", *sys.argv[1:]]),
        "conversations": sizes,
        "rows": rows,
        "git": git_state(),
        "load": os.getloadavg(),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print("| conversation (entries) | page size | method | returned | distinct | never returned | last page ms |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['conversation']} ({r['entries']}) | {r['page_size']} | {r['method']} | {r['returned']} | "
            f"{r['distinct']} | {r['never_returned']} | {r['last_page_ms']} |"
        )


if __name__ == "__main__":
    main()
