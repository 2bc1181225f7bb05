"""Sustained load: mixed ingest and retrieval on a 100k-entry, 1,000-user store.

What it does
    1. Builds a store of ``--entries`` (default 100,000) entries over ``--users``
       (default 1,000) users exactly as ``store_scale.py`` does (its ``Corpus`` and
       ``build``: templated texts, real BM25 vectors, real MiniLM vectors for a few
       persona facts per user and seeded random unit vectors for the rest, written
       straight through the store protocol).
    2. Runs ``--workers`` threads (default 4) against that one ``LightMemory`` for
       ``--duration`` seconds (default 60). Each operation is, at random,
       ``add_memory`` of one or two new turns for a random user (``--add-share``,
       default 0.3; the offline write path: validate, journal with fsync, extract,
       embed with the packaged MiniLM, upsert, commit) or ``retrieve`` of a persona
       question for a random user (``--strategy``, default hybrid, limit 10).
    3. Confirms that no write was lost: every turn an ``add_memory`` call
       acknowledged must be cited by a stored entry or pending in the journal --
       checked on the live store, and again after closing and reopening it.

What it reports
    Throughput (operations per second, overall and per kind), p50/p95/p99/mean/max
    latency per kind in ms, errors per kind, the lost-write check, and how busy other
    processes kept the machine during the run (``other_cores_busy``: the machine is
    shared; compare runs only at similar values). Printed and written to
    ``benchmarks/results/load.json`` with the exact command line.

Reproduce
    .venv/bin/python benchmarks/load.py                                  # 100k entries, 60 s, 4 workers
    .venv/bin/python benchmarks/load.py --entries 10000 --duration 20    # a quick look

The script sets OMP_NUM_THREADS=1 and HF_HUB_OFFLINE=1 before torch loads unless they
are already set. A default run takes about 3-4 minutes on a 2-core machine (model
load, ~1 min build, 60 s load, checks).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from datetime import datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Optional, Sequence  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_scale import BULK_TEMPLATES, Corpus, Load, build, machine_info, summary, user_id  # noqa: E402

from lightmem_core import LightMemory  # noqa: E402
from lightmem_core.embed import SentenceTransformerEmbedder  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "load.json"


class Recorder:
    """Latencies, errors and acknowledged turns, shared by the worker threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ms: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)
        self.acked: dict[str, set[str]] = defaultdict(set)
        self.pending_after_add = 0

    def ok(self, kind: str, ms: float) -> None:
        with self.lock:
            self.ms[kind].append(ms)

    def failed(self, kind: str, exc: BaseException) -> None:
        with self.lock:
            self.errors[kind].append(f"{type(exc).__name__}: {exc}"[:300])


def worker(
    memory: LightMemory, corpus: Corpus, rec: Recorder, args: argparse.Namespace, index: int, start: threading.Barrier
) -> None:
    rng = random.Random(args.seed * 1000 + index)
    questions = corpus.queries(2000, args.seed * 7 + index, corpus.real_per_user)
    n = 0
    start.wait()  # all workers and the clock start together
    deadline = time.perf_counter() + args.duration
    while time.perf_counter() < deadline:
        if rng.random() < args.add_share:
            u = rng.randrange(corpus.users)
            name = corpus.personas[u].name
            turns = []
            for _ in range(rng.randint(1, 2)):
                n += 1
                turns.append(
                    {
                        "id": f"load-{index}-{n}",
                        "role": "user",
                        "speaker_name": name,
                        "content": rng.choice(BULK_TEMPLATES)(rng, name),
                        "time_stamp": f"2025-0{1 + n % 9}-{1 + n % 28:02d}T12:00:00",
                    }
                )
            t0 = time.perf_counter()
            try:
                result = memory.add_memory(turns, user_id=user_id(u), session_id=f"load-{index}")
            except Exception as exc:  # noqa: BLE001 - counted and reported
                rec.failed("add", exc)
                continue
            rec.ok("add", (time.perf_counter() - t0) * 1000)
            with rec.lock:
                rec.acked[user_id(u)].update(result.turn_ids + result.duplicate_turn_ids)
                rec.pending_after_add += result.pending_turns
        else:
            u, _, question = questions[rng.randrange(len(questions))]
            t0 = time.perf_counter()
            try:
                memory.retrieve(question, limit=10, user_id=user_id(u), strategy=args.strategy)
            except Exception as exc:  # noqa: BLE001
                rec.failed("retrieve", exc)
                continue
            rec.ok("retrieve", (time.perf_counter() - t0) * 1000)


def lost_writes(memory: LightMemory, acked: dict[str, set[str]]) -> dict[str, Any]:
    """Acknowledged turns neither cited by a stored entry nor pending in the journal."""
    stored = pending = 0
    lost: list[str] = []
    for user, turns in acked.items():
        ids = sorted(turns)
        cited: set[str] = set()
        for i in range(0, len(ids), 200):
            chunk = ids[i : i + 200]
            entries = memory.get_all(user_id=user, filters={"source_ids": chunk}, limit=10_000, include_superseded=True)
            cited |= {s for e in entries for s in e.source_ids}
        waiting = {t.id for t in memory.pending(user_id=user)}
        stored += len(turns & cited)
        pending += len((turns - cited) & waiting)
        lost += [f"{user}/{t}" for t in sorted(turns - cited - waiting)]
    return {
        "acknowledged": sum(len(v) for v in acked.values()),
        "stored": stored,
        "pending": pending,
        "lost": len(lost),
        "lost_examples": lost[:10],
    }


def run(args: argparse.Namespace, log: Any) -> dict[str, Any]:
    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    result: dict[str, Any] = {
        "benchmark": "load",
        "command": command,
        "started": datetime.now().isoformat(timespec="seconds"),
        "machine": machine_info(),
        "method": {
            "store": f"{args.entries:,} entries over {args.users:,} users, built with store_scale.Corpus/build "
            f"({args.real_per_user} real MiniLM persona vectors per user, the rest seeded random unit "
            "vectors; real BM25 for all)",
            "workers": args.workers,
            "duration_s": args.duration,
            "mix": {"add_memory": args.add_share, "retrieve": round(1 - args.add_share, 3)},
            "add": "add_memory of 1-2 new templated turns for a random user (offline write path, MiniLM embedding)",
            "retrieve": f"retrieve(persona question, limit=10, strategy={args.strategy!r}) for a random user",
            "timer": "time.perf_counter around each call, per thread",
            "seed": args.seed,
        },
    }
    root = args.store or Path(tempfile.mkdtemp(prefix="lightmem_load_"))
    path = root / "store"
    if path.exists() and any(path.iterdir()):
        raise SystemExit(f"{path} is not empty; pass an empty --store directory")
    embedder = SentenceTransformerEmbedder()
    t0 = time.perf_counter()
    dims = embedder.dims
    result["model_load_s"] = round(time.perf_counter() - t0, 2)
    try:
        corpus = Corpus(args.users, args.real_per_user, args.seed)
        log(f"embedding {args.users * args.real_per_user:,} persona facts ...")
        corpus.embed(embedder)
        config = {"store": {"path": str(path)}}
        memory = LightMemory(config, embedder=embedder)
        try:
            log(f"building {args.entries:,} entries over {args.users:,} users ...")
            stats = build(memory._store, corpus, args.entries, args.batch, args.seed, dims, log)
            result["build"] = {
                "entries": stats.points,
                "seconds": round(stats.total_s, 1),
                "points_per_s": round(stats.points / stats.total_s, 1),
            }
            log(f"  {stats.points:,} entries in {stats.total_s:.0f}s; warming up ...")
            for u, _, q in corpus.queries(20, args.seed + 1, corpus.real_per_user):
                memory.retrieve(q, user_id=user_id(u), strategy=args.strategy)
            rec = Recorder()
            log(f"running {args.workers} workers for {args.duration:.0f}s ...")
            load = Load()
            start = threading.Barrier(args.workers + 1)
            threads = [
                threading.Thread(target=worker, args=(memory, corpus, rec, args, i, start), name=f"load-{i}")
                for i in range(args.workers)
            ]
            for t in threads:
                t.start()
            start.wait()
            t_start = time.perf_counter()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t_start
            result["load"] = load.done()
            ops = {k: len(v) for k, v in rec.ms.items()}
            result["throughput_ops_per_s"] = {
                "total": round(sum(ops.values()) / wall, 2),
                **{k: round(n / wall, 2) for k, n in ops.items()},
            }
            result["latency_ms"] = {k: summary(v) for k, v in rec.ms.items()}
            result["errors"] = {k: {"count": len(v), "examples": v[:3]} for k, v in rec.errors.items()}
            acked = sum(len(v) for v in rec.acked.values())
            result["turns_per_add_acknowledged"] = round(acked / max(ops.get("add", 1), 1), 2)
            log("checking for lost writes ...")
            result["lost_writes_live"] = lost_writes(memory, rec.acked)
        finally:
            memory.close()
        memory = LightMemory(config, embedder=embedder)
        try:
            result["lost_writes_after_reopen"] = lost_writes(memory, rec.acked)
        finally:
            memory.close()
    finally:
        if args.store is None:
            shutil.rmtree(root, ignore_errors=True)
    result["no_lost_writes"] = (
        result["lost_writes_live"]["lost"] == 0 and result["lost_writes_after_reopen"]["lost"] == 0
    )
    result["finished"] = datetime.now().isoformat(timespec="seconds")
    return result


def report(result: dict[str, Any]) -> None:
    tp = result["throughput_ops_per_s"]
    print(
        f"\n{result['build']['entries']:,} entries, {result['method']['workers']} workers, "
        f"{result['method']['duration_s']:.0f}s; other processes kept {result['load'].get('other_cores_busy', '?')} "
        f"cores busy"
    )
    print(f"{'op':10s} {'ops/s':>8s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} {'errors':>7s}")
    for kind, lat in sorted(result["latency_ms"].items()):
        errors = result["errors"].get(kind, {}).get("count", 0)
        print(f"{kind:10s} {tp[kind]:8.2f} {lat['p50_ms']:8.1f} {lat['p95_ms']:8.1f} {lat['p99_ms']:8.1f} {errors:7d}")
    print(f"{'total':10s} {tp['total']:8.2f}")
    for when in ("live", "after_reopen"):
        lw = result[f"lost_writes_{when}"]
        print(
            f"lost writes ({when}): {lw['lost']} of {lw['acknowledged']} acknowledged turns "
            f"({lw['stored']} stored, {lw['pending']} pending)"
        )


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--entries", type=int, default=100_000, help="entries in the store before the load starts")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of sustained load")
    ap.add_argument("--workers", type=int, default=4, help="threads issuing operations")
    ap.add_argument("--add-share", type=float, default=0.3, help="share of operations that are add_memory")
    ap.add_argument("--strategy", choices=("embedding", "context", "hybrid"), default="hybrid")
    ap.add_argument("--real-per-user", type=int, default=2, help="persona facts per user with real MiniLM vectors")
    ap.add_argument("--batch", type=int, default=1000, help="points per build write round")
    ap.add_argument("--store", type=Path, default=None, help="store directory (default: a temp dir, deleted after)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if not 0 <= args.add_share <= 1:
        ap.error("--add-share must be between 0 and 1")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    result = run(args, log)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    report(result)
    print(f"wrote {args.out}")
    if not result["no_lost_writes"]:
        raise SystemExit("LOST WRITES: see the report above")
    return result


if __name__ == "__main__":
    main()
