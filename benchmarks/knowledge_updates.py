"""Knowledge updates: after a user's preference, job, place or relationship changes,
does memory answer with the current value first, and keep the old one in history?

Data: benchmarks/data/knowledge_updates.json (40 cases written for this project, 10 per
category). Each case is ingested session by session into its own user scope, offline
(no LLM), then:

- ``online``: ``update="online"`` (rules resolve conflicts as entries arrive);
- ``offline``: plain ingest, then ``construct_update_queue_all_entries()`` and
  ``offline_update_all_entries(score_threshold)``;
- ``none``: no update at all (the baseline).

Scores per mode: current-first (among the top-5 hits that mention the current or the
old value, the first mentions the current one), top-1 contains the current value,
and history kept (every entry that stopped being current is still readable, with a
SUPERSEDE/MERGE/UPDATE/DELETE record naming its old text).

A hit is read as the adapters put it in a prompt: ``Hit.text``, the sentence with its
window of neighbours from the same turn (``retrieval.window``). ``current_first_sentence``
scores the entry's own sentence alone, as before windows; ``first_shows_both`` counts
cases whose first relevant hit names both values (an update turn such as "I left Acme
for Globex" does), and ``first_from_update`` the stricter reading of current-first: the
first relevant hit names the current value *and* comes from the update turn or a later one.

    python benchmarks/knowledge_updates.py [--threshold 0.35]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

from lightmem_core import LightMemory, MemoryConfig  # noqa: E402

DATA = Path(__file__).parent / "data" / "knowledge_updates.json"


def ingest(memory: LightMemory, case: dict) -> None:
    sessions: dict[str, list[dict]] = defaultdict(list)
    for t in case["turns"]:
        sessions[t["session_id"]].append({k: v for k, v in t.items() if k != "session_id"})
    for sid, msgs in sessions.items():
        memory.add_memory(msgs, user_id=case["user_id"], session_id=sid)


def score(memory: LightMemory, case: dict) -> dict[str, bool]:
    user, cur, old = case["user_id"], case["current"].lower(), case["old"].lower()
    hits = memory.retrieve(case["question"], limit=5, user_id=user)

    def first_relevant(texts: list[str]) -> int:
        return next((i for i, t in enumerate(texts) if cur in t or old in t), -1)

    shown = [h.text.lower() for h in hits]
    at = first_relevant(shown)
    first = shown[at] if at >= 0 else ""
    at_sentence = first_relevant([h.entry.memory.lower() for h in hits])
    first_sentence = hits[at_sentence].entry.memory.lower() if at_sentence >= 0 else ""
    # the strict reading: the first relevant hit was said at or after the update turn
    order = [t["id"] for t in case["turns"]]
    said = [order.index(s) for s in (hits[at].entry.source_ids if at >= 0 else ()) if s in order]
    everything = memory.get_all(user_id=user, limit=10_000, include_superseded=True)
    kept = True
    for e in everything:
        if not e.is_current:
            events = memory.history(e.id, user_id=user)
            kept &= any(h.event == "SUPERSEDE" for h in events) and any(h.old_memory == e.memory for h in events)
    old_entries = [e for e in everything if case["old_turn"] in e.source_ids]
    return {
        "current_first": cur in first,
        "current_first_sentence": cur in first_sentence,
        "first_shows_both": cur in first and old in first,
        "first_from_update": cur in first and bool(said) and max(said) >= order.index(case["current_turn"]),
        "top1_current": bool(hits) and cur in hits[0].text.lower(),
        "history_kept": kept and bool(old_entries),
        "superseded_any": any(not e.is_current for e in everything),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threshold", type=float, default=0.35, help="offline_update_all_entries score_threshold")
    ap.add_argument("--modes", default="none,online,offline")
    ap.add_argument(
        "--data",
        default=str(DATA),
        help="cases file (knowledge_updates_heldout.json: 20 cases written "
        "after the rules were tuned, by someone who had not seen the code)",
    )
    ap.add_argument(
        "--config", default="{}", help='extra MemoryConfig JSON, e.g. \'{"retrieval": {"recency_weight": 1}}\''
    )
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "knowledge_updates.json"))
    args = ap.parse_args()
    cases = json.loads(Path(args.data).read_text())["cases"]
    report: dict = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "data": Path(args.data).name,
        "cases": len(cases),
        "modes": {},
    }
    embedder = None
    for mode in args.modes.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = MemoryConfig.from_dict(
                {
                    **json.loads(args.config),
                    "store": {"path": tmp},
                    "update": "online" if mode == "online" else "offline",
                }
            )
            memory = LightMemory(cfg, embedder=embedder)
            embedder = memory.embedder
            t0 = time.perf_counter()
            for case in cases:
                ingest(memory, case)
            if mode == "offline":
                memory.construct_update_queue_all_entries()
                memory.offline_update_all_entries(args.threshold)
            elapsed = time.perf_counter() - t0
            per_cat: dict[str, list[dict]] = defaultdict(list)
            failures = []
            for case in cases:
                s = score(memory, case)
                per_cat[case["category"]].append(s)
                if not s["current_first"]:
                    failures.append(case["id"])
            memory.close()
        rows = {c: {k: round(sum(r[k] for r in v) / len(v), 3) for k in v[0]} for c, v in per_cat.items()}
        allr = [r for v in per_cat.values() for r in v]
        rows["overall"] = {k: round(sum(r[k] for r in allr) / len(allr), 3) for k in allr[0]}
        report["modes"][mode] = {"scores": rows, "seconds": round(elapsed, 1), "current_first_failures": failures}
        print(f"\n{mode}  ({elapsed:.1f}s)")
        print(f"{'category':<14}{'current first':>14}{'(sentence alone)':>18}{'top-1 current':>15}{'history kept':>14}")
        for c, r in rows.items():
            print(
                f"{c:<14}{r['current_first']:>14.3f}{r['current_first_sentence']:>18.3f}{r['top1_current']:>15.3f}"
                f"{r['history_kept']:>14.3f}"
            )
        print("not current first:", ", ".join(failures) or "-")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
