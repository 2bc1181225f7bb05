"""LoCoMo dev evidence recall of LightMem retrieval, beside raw-turn baselines.

Each conversation is ingested into its own user scope through ``add_memory`` (the
offline default: no LLM). For every QA of categories 1-4, recall@k is the share of
the QA's ``evidence`` turn ids found among the ``source_ids`` of the top-k hits.
The baselines, computed in the same run, store each turn verbatim as one document
(``[date] speaker: text``): BM25 (rank-bm25), dense (the same MiniLM, exact cosine)
and their reciprocal-rank fusion.

    python benchmarks/locomo_retrieval.py [--convs N] [--out benchmarks/results/locomo_retrieval.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Sequence  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cl100k  # noqa: E402
from _locomo import CATEGORIES, Conversation, evidence_ids, load  # noqa: E402

from lightmem_core import LightMemory, MemoryConfig  # noqa: E402

KS = (5, 10, 20)


def recall(found: Sequence[Sequence[str]], gold: Sequence[str], k: int) -> float:
    got = {sid for ids in found[:k] for sid in ids}
    return sum(1 for g in gold if g in got) / len(gold)


def rrf(rankings: Sequence[Sequence[int]], k: int = 60) -> list[int]:
    score: dict[int, float] = defaultdict(float)
    for ranking in rankings:
        for r, doc in enumerate(ranking):
            score[doc] += 1.0 / (k + r + 1)
    return sorted(score, key=lambda d: -score[d])


_TOKEN = re.compile(r"[a-z0-9]+")


def raw_baselines(conv: Conversation, embedder: Any) -> dict[str, Callable[[str], list[list[str]]]]:
    from rank_bm25 import BM25Okapi

    docs, ids = [], []
    for _, date, msgs in conv.sessions:
        for m in msgs:
            docs.append(f"[{date}] {m['speaker_name']}: {m['content']}")
            ids.append([m["id"]])
    bm25 = BM25Okapi([_TOKEN.findall(d.lower()) for d in docs])
    mat = embedder.embed(docs)

    def bm25_rank(q: str) -> list[int]:
        return list(np.argsort(-bm25.get_scores(_TOKEN.findall(q.lower())))[:50])

    def dense_rank(q: str) -> list[int]:
        return list(np.argsort(-(mat @ embedder.embed([q])[0]))[:50])

    return {
        "raw-bm25": lambda q: [ids[i] for i in bm25_rank(q)],
        "raw-dense": lambda q: [ids[i] for i in dense_rank(q)],
        "raw-fused": lambda q: [ids[i] for i in rrf([bm25_rank(q), dense_rank(q)])],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--convs", type=int, default=None, help="only the first N conversations")
    ap.add_argument("--data", default=None, help="LoCoMo dev folder (default ../shared/data/locomo-dev)")
    ap.add_argument("--config", default="{}", help='extra MemoryConfig JSON, e.g. \'{"index_context": "turn"}\'')
    ap.add_argument("--strategies", default="embedding,context,hybrid")
    ap.add_argument(
        "--variants",
        default="plain,temporal,hierarchical,both",
        help="hybrid retrieval with/without temporal parsing and hierarchical (summary-first) retrieval",
    )
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "locomo_retrieval.json"))
    args = ap.parse_args()

    convs = load(args.data, args.convs)
    strategies = args.strategies.split(",")
    count_tokens = cl100k()
    extra = json.loads(args.config)
    results: dict[str, dict[str, list[dict[int, float]]]] = defaultdict(lambda: defaultdict(list))
    latencies: dict[str, list[float]] = defaultdict(list)
    raw_tokens = stored_tokens = n_turns = n_entries = 0
    ingest_s = 0.0

    with tempfile.TemporaryDirectory() as tmp:
        cfg = MemoryConfig.from_dict({**extra, "store": {"path": tmp, **extra.get("store", {})}})
        memory = LightMemory(cfg)
        memory.embedder.embed(["warm up"])
        for conv in convs:
            t0 = time.perf_counter()
            for sid, _, msgs in conv.sessions:
                memory.add_memory(msgs, user_id=conv.conv_id, session_id=sid)
            ingest_s += time.perf_counter() - t0
            n_turns += len(conv.messages)
            raw_tokens += sum(count_tokens(f"{m['speaker_name']}: {m['content']}") for m in conv.messages)
            entries = memory.get_all(user_id=conv.conv_id, limit=10_000)
            n_entries += len(entries)
            stored_tokens += sum(count_tokens(e.memory) for e in entries)

            baselines = {} if args.no_baselines else raw_baselines(conv, memory.embedder)
            variants = [v for v in args.variants.split(",") if v]
            if any(v in ("hierarchical", "both") for v in variants):
                memory.summarize(user_id=conv.conv_id)  # offline: extractive session summaries
            # "now" for relative expressions is the day of the conversation's last session
            now = conv.sessions[-1][2][-1]["time_stamp"] if conv.sessions else None
            for qa in conv.qa:
                gold = evidence_ids(qa)
                if not gold:
                    continue
                cat = CATEGORIES[qa["category"]]
                runs = [(s, s, "plain") for s in strategies if s != "hybrid" or "plain" in variants]
                runs += [("hybrid", f"hybrid+{v}", v) for v in variants if v != "plain" and "hybrid" in strategies]
                for s, name, variant in runs:
                    memory.config.retrieval.temporal = "boost" if variant in ("temporal", "both") else "off"
                    t0 = time.perf_counter()
                    hits = memory.retrieve(
                        qa["question"],
                        limit=max(KS),
                        user_id=conv.conv_id,
                        strategy=s,
                        now=now,
                        hierarchical=variant in ("hierarchical", "both"),
                    )
                    latencies[name].append(time.perf_counter() - t0)
                    # summaries are returned ahead of the entries; recall counts the entries only
                    found = [h.entry.source_ids for h in hits if h.entry.entry_type.value != "summary"]
                    results[name][cat].append({k: recall(found, gold, k) for k in KS})
                for name, fn in baselines.items():
                    results[name][cat].append({k: recall(fn(qa["question"]), gold, k) for k in KS})
        memory.close()

    report: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        },
        "conversations": [c.conv_id for c in convs],
        "config": extra,
        "turns": n_turns,
        "entries": n_entries,
        "raw_tokens": raw_tokens,
        "stored_tokens": stored_tokens,
        "ingest_turns_per_s": round(n_turns / ingest_s, 1),
        "retrieve_ms": {
            s: {
                "p50": round(float(np.percentile(v, 50)) * 1000, 2),
                "p95": round(float(np.percentile(v, 95)) * 1000, 2),
            }
            for s, v in latencies.items()
        },
        "recall": {},
    }
    header = f"{'method':<22} {'cat':<12} {'n':>4} " + " ".join(f"{'R@' + str(k):>6}" for k in KS)
    print(header)
    for method, by_cat in results.items():
        rows = {**{c: v for c, v in by_cat.items()}, "overall": [r for v in by_cat.values() for r in v]}
        report["recall"][method] = {}
        for cat in [*CATEGORIES.values(), "overall"]:
            vals = rows.get(cat, [])
            if not vals:
                continue
            means = {k: float(np.mean([v[k] for v in vals])) for k in KS}
            report["recall"][method][cat] = {f"R@{k}": round(means[k], 3) for k in KS} | {"n": len(vals)}
            print(f"{method:<22} {cat:<12} {len(vals):>4} " + " ".join(f"{means[k]:>6.3f}" for k in KS))
    print(
        f"\n{n_turns} turns -> {n_entries} entries; tokens raw {raw_tokens} stored {stored_tokens}; "
        f"ingest {report['ingest_turns_per_s']} turns/s; retrieve ms {report['retrieve_ms']}"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
