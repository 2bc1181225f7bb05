"""Retrieve latency of two checkouts of the library on one kept LoCoMo store, run alternately.

A change to the read path is judged on p50/p95 here: both versions read the same store
and the same 760 LoCoMo dev questions, in separate processes, taking turns, so background
load on this shared machine falls on both alike.

    git worktree add /tmp/before <commit>
    python benchmarks/latency_compare.py /tmp/before . --store ~/.cache/lightmem-bench/locomo5 --rounds 2

The store is the one ``benchmarks/ablation.py`` builds (``locomo5/``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "locomo-dev"


def measure(repo: str, store: str) -> dict[str, float]:
    """One process: warm up on 50 questions, then time every question once."""
    sys.path[:0] = [repo, str(Path(repo) / "benchmarks")]
    import numpy as np
    from _locomo import evidence_ids, load

    from lightmem_core import LightMemory, MemoryConfig

    memory = LightMemory(MemoryConfig.from_dict({"store": {"path": store}}))
    questions = [
        (c.conv_id, c.sessions[-1][2][-1]["time_stamp"], qa["question"])
        for c in load(DATA)
        for qa in c.qa
        if evidence_ids(qa)
    ]
    for user, now, q in questions[:50]:
        memory.retrieve(q, limit=10, user_id=user, now=now)
    seconds = []
    for user, now, q in questions:
        t0 = time.perf_counter()
        memory.retrieve(q, limit=10, user_id=user, now=now)
        seconds.append(time.perf_counter() - t0)
    memory.close()
    ms = np.asarray(seconds) * 1000
    return {"p50": round(float(np.percentile(ms, 50)), 2), "p95": round(float(np.percentile(ms, 95)), 2), "n": len(ms)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("repos", nargs="+", help="checkouts of the repository to compare")
    ap.add_argument("--store", required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a child process: measure repos[0]
    args = ap.parse_args()
    store = str(Path(args.store).expanduser())
    if args.one:
        print(json.dumps(measure(str(Path(args.repos[0]).resolve()), store)))
        return
    for r in range(args.rounds):
        for repo in args.repos:
            out = subprocess.run(
                [sys.executable, __file__, repo, "--store", store, "--one"], capture_output=True, text=True, check=True
            )
            print(json.dumps({"round": r + 1, "repo": repo, **json.loads(out.stdout.strip().splitlines()[-1])}))


if __name__ == "__main__":
    main()
