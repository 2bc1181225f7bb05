"""Offline ingest throughput of ``LightMemory.add_memory`` on LoCoMo, against the bare embedding cost.

What it measures
    * Ingest: a ``LightMemory`` with the default offline config (no LLM: extractive
      sentence entries, packaged all-MiniLM-L6-v2 embedder, embedded qdrant-edge store,
      SQLite journal) on a fresh temporary store; every session of the conversation(s)
      is added with ``add_memory(msgs, user_id=conv_id, session_id=sid)``, in order.
      Timed: the add_memory loop (plus ``flush(user_id=...)`` for variants that buffer).
      Reported as turns/s.
    * Embedding-only: ``memory.embedder.embed()`` on exactly the texts that ingestion
      embedded, in the same batches: every ``embed`` call made during ingestion is recorded
      by a thin wrapper around the shared embedder and replayed (ingestion embeds once per
      extraction batch, i.e. per ``extract_tokens``-sized piece of a session, plus one for
      context lines it could not make from sentence vectors). Since the
      ``dense_context`` option, those texts are the entries' ``memory`` texts PLUS each
      context (the turn and the one before) whose vector is blended in and that could not
      be made from the sentence vectors (``context_vectors``: whole contexts for "texts",
      their lines for "turns" and "sentences"); the script checks that the recorded texts
      are among the stored entries' ``memory`` and ``context`` texts and context lines
      (``get_all(user_id=..., limit=10000)``). ratio = ingest time / this embedding-only
      time. Also given: the ratio against embedding only the stored
      entries' ``memory`` texts, one call per session (the texts that ingestion embedded
      before ``dense_context`` existed).
    * Also: seconds spent inside ``embed`` during ingestion (a thin timing wrapper around
      the shared embedder), so the rest of the pipeline's cost is visible.
    * Variants: ``default`` ({}), ``pre_compress`` ({"pre_compress": true, "compressor":
      {"provider": "entropy"}}) and ``topic_segment`` ({"topic_segment": true}, only if
      ``lightmem_core/segment.py`` exists; it is skipped and reported otherwise), and two
      extras: ``embed_batch64`` ({"embedder": {"batch_size": 64}}, the default before commit
      30bbf6c, now 16) and ``embed_int8`` ({"embedder": {"quantize": true}}). Each extra gets
      its own embedder, used for its embedding-only replay too.

    One embedder is loaded once and shared by every LightMemory (``embedder=``), and for
    ``topic_segment`` one segmenter (``create_segmenter(config.segmenter, embedder=...)``,
    what LightMemory builds itself) is shared the same way (``segmenter=``), so model
    loading is never timed. Warm-up: the embedder embeds a batch of turns, then every
    variant runs one untimed ingestion on its own store before the timed ones. Each
    measurement (ingest, embedding-only) is repeated ``--repeats`` times (default 2);
    best and mean are reported. Load average is recorded around every measurement: other
    CPU-heavy jobs may share this machine.

Targets: >= 50 turns/s and ratio <= 2.

Reproduce
    .venv/bin/python benchmarks/ingest.py              # conv-26
    .venv/bin/python benchmarks/ingest.py --convs 5    # all five dev conversations

    (OMP_NUM_THREADS=1 and HF_HUB_OFFLINE=1 are set by the script unless already set.)
    Writes ``benchmarks/results/ingest.json`` with the command line and machine info.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import gc  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Sequence  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import git_state  # noqa: E402
from _locomo import Conversation, load  # noqa: E402

from lightmem_core import LightMemory, MemoryConfig  # noqa: E402
from lightmem_core.embed import create_embedder  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("default", {}),
    ("pre_compress", {"pre_compress": True, "compressor": {"provider": "entropy"}}),
    ("topic_segment", {"topic_segment": True}),
    # Extras, not in the brief: the embedder's old default batch size (64; 16 since 30bbf6c)
    # and the int8 embedder option (embedder.quantize).
    ("embed_batch64", {"embedder": {"batch_size": 64}}),
    ("embed_int8", {"embedder": {"quantize": True}}),
    # context vectors from one embedding per turn, or per context text (the behaviour before context_vectors)
    ("contexts_turns", {"context_vectors": "turns"}),
    ("contexts_texts", {"context_vectors": "texts"}),
]


class TimedEmbedder:
    """Delegates to the shared embedder; records every call's texts and time."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[list[str]] = []
        self.seconds = 0.0

    @property
    def dims(self) -> int:
        return self.inner.dims

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        t0 = time.perf_counter()
        out = self.inner.embed(texts)
        self.seconds += time.perf_counter() - t0
        self.calls.append(texts)
        return out


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "best": round(min(values), 4),
        "mean": round(statistics.fmean(values), 4),
        "all": [round(v, 4) for v in values],
    }


def ingest_once(
    convs: list[Conversation], extra: dict[str, Any], embedder: Any, segmenter: Any = None
) -> dict[str, Any]:
    """One ingestion on a fresh store. Returns the timing and what was embedded."""
    wrapper = TimedEmbedder(embedder)
    buffered = bool(extra.get("topic_segment"))
    with tempfile.TemporaryDirectory() as tmp:
        cfg = MemoryConfig.from_dict({**extra, "store": {"path": tmp}})
        memory = LightMemory(cfg, embedder=wrapper, segmenter=segmenter)
        try:
            gc.collect()
            la0 = loadavg()
            t0 = time.perf_counter()
            for conv in convs:
                for sid, _, msgs in conv.sessions:
                    memory.add_memory(msgs, user_id=conv.conv_id, session_id=sid)
                if buffered:
                    memory.flush(user_id=conv.conv_id)
            seconds = time.perf_counter() - t0
            la1 = loadavg()
            by_session: list[list[str]] = []
            stored_with_contexts: list[str] = []
            n_entries = 0
            blend = float(getattr(memory.config, "dense_context", 0) or 0)
            for conv in convs:
                entries = memory.get_all(user_id=conv.conv_id, limit=10_000)
                n_entries += len(entries)
                groups: dict[str, list[str]] = {}
                for e in entries:  # get_all is in time order; group per session in ingestion order
                    groups.setdefault(e.session_id or "", []).append(e.memory)
                order = [sid for sid, _, _ in conv.sessions]
                by_session += [groups[s] for s in order if s in groups]
                by_session += [v for k, v in groups.items() if k not in order]
                stored_with_contexts += [e.memory for e in entries]
                if blend > 0:  # dense_context: contexts, or their lines (one per turn), may be embedded too
                    stored_with_contexts += [e.context for e in entries if e.context]
                    stored_with_contexts += [line for e in entries if e.context for line in e.context.split("\n")]
            stages = memory.stage_status()
        finally:
            memory.close()
    return {
        "seconds": seconds,
        "embed_seconds_inside": wrapper.seconds,
        "calls": wrapper.calls,
        "by_session": by_session,
        "stored_with_contexts": stored_with_contexts,
        "dense_context": blend,
        "entries": n_entries,
        "loadavg": [la0, la1],
        "stages": stages,
    }


def embed_only(embedder: Any, batches: list[list[str]]) -> float:
    gc.collect()
    t0 = time.perf_counter()
    for b in batches:
        if b:
            embedder.embed(b)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="LoCoMo dev folder (default ../shared/data/locomo-dev)")
    ap.add_argument("--convs", type=int, default=1, help="the first N conversations (default 1: conv-26)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--variants", default=",".join(n for n, _ in VARIANTS))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "ingest.json"))
    args = ap.parse_args()
    git_start = git_state()

    convs = load(args.data, args.convs)
    n_turns = sum(len(c.messages) for c in convs)
    has_segment = (ROOT / "lightmem_core" / "segment.py").exists()
    la_start = loadavg()

    t0 = time.perf_counter()
    embedder = create_embedder(MemoryConfig().embedder)
    warm_texts = [m["content"] for m in convs[0].messages[:64]]
    embedder.embed(warm_texts)
    embedder.embed(warm_texts[:7])
    load_s = time.perf_counter() - t0

    wanted = args.variants.split(",")
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for name, extra in VARIANTS:
        if name not in wanted:
            continue
        if extra.get("topic_segment") and not has_segment:
            skipped[name] = "lightmem_core/segment.py does not exist in this checkout"
            continue
        try:
            emb = embedder
            if "embedder" in extra:  # a variant with its own embedder settings gets its own (warmed) embedder
                emb = create_embedder(MemoryConfig.from_dict(extra).embedder)
                emb.embed(warm_texts)
                emb.embed(warm_texts[:7])
            segmenter = None
            if extra.get("topic_segment"):  # built once, as LightMemory would, so its model loads outside the timing
                from lightmem_core.segment import create_segmenter

                segmenter = create_segmenter(MemoryConfig.from_dict(extra).segmenter, embedder=embedder)
            # untimed warm-up run (compressor tables, segmenter model, store, journal)
            ingest_once(convs, extra, emb, segmenter)
            runs = [ingest_once(convs, extra, emb, segmenter) for _ in range(args.repeats)]
        except Exception as exc:  # noqa: BLE001 - report the variant as failed, keep the others
            skipped[name] = f"failed: {type(exc).__name__}: {exc}"
            traceback.print_exc()
            continue
        first = runs[0]
        same = all(
            Counter(t for b in r["by_session"] for t in b) == Counter(t for b in first["by_session"] for t in b)
            for r in runs
        )
        recorded_texts = Counter(t for b in first["calls"] for t in b)
        memory_texts = Counter(t for b in first["by_session"] for t in b)
        la_e0 = loadavg()
        emb_calls = [embed_only(emb, first["calls"]) for _ in range(args.repeats)]
        emb_session = [embed_only(emb, first["by_session"]) for _ in range(args.repeats)]
        la_e1 = loadavg()
        fact_tokens = sum(len(t.split()) for t in memory_texts.elements())
        all_tokens = sum(len(t.split()) for t in recorded_texts.elements())
        ingest_s = [r["seconds"] for r in runs]
        inside = [r["embed_seconds_inside"] for r in runs]
        results[name] = {
            "config": extra,
            "turns": n_turns,
            "entries": first["entries"],
            "dense_context": first["dense_context"],
            "embedded_texts": sum(recorded_texts.values()),
            "embedded_memory_texts": sum(memory_texts.values()),
            "embedded_other_texts": sum(recorded_texts.values()) - sum((recorded_texts & memory_texts).values()),
            "embedded_words": {"all": all_tokens, "memory_texts": fact_tokens},
            "ingest_embed_calls": len(first["calls"]),
            "sessions": len(first["by_session"]),
            # the set of texts embedded during ingestion == entries' memory texts + their contexts (when blended)
            # (context_vectors="sentences" makes most context vectors from sentence vectors: not embedded)
            "recorded_texts_within_memories_plus_context_lines": set(recorded_texts)
            <= set(first["stored_with_contexts"]),
            "recorded_texts_equal_memory_texts": recorded_texts == memory_texts,
            "runs_identical_texts": same,
            "ingest_s": summary(ingest_s),
            "turns_per_s": {
                "best": round(n_turns / min(ingest_s), 1),
                "mean": round(n_turns / statistics.fmean(ingest_s), 1),
            },
            "embed_inside_ingest_s": summary(inside),
            "non_embed_s": summary([a - b for a, b in zip(ingest_s, inside)]),
            "embed_only_recorded_calls_s": summary(emb_calls),
            "embed_only_memory_texts_per_session_s": summary(emb_session),
            "ratio": {
                "best": round(min(ingest_s) / min(emb_calls), 2),
                "mean": round(statistics.fmean(ingest_s) / statistics.fmean(emb_calls), 2),
                "vs_memory_texts_per_session_best": round(min(ingest_s) / min(emb_session), 2),
                "vs_memory_texts_per_session_mean": round(
                    statistics.fmean(ingest_s) / statistics.fmean(emb_session), 2
                ),
            },
            "loadavg": {"ingest": [r["loadavg"] for r in runs], "embed_only": [la_e0, la_e1]},
            "stage_status": first["stages"],
        }

    print(
        f"{n_turns} turns in {', '.join(c.conv_id for c in convs)}; embedder load+warm-up {load_s:.1f}s; "
        f"load average at start {la_start}\n"
    )
    head = (
        f"{'variant':<14} {'entries':>7} {'emb.texts':>9} {'ingest s best/mean':>18} {'turns/s best/mean':>18} "
        f"{'embed-only s best/mean':>22} {'ratio best/mean':>16} {'ratio vs mem-only':>17}"
    )
    print(head)
    for name, r in results.items():
        e = r["embed_only_recorded_calls_s"]
        print(
            f"{name:<14} {r['entries']:>7} {r['embedded_texts']:>9} "
            f"{r['ingest_s']['best']:>8.2f}/{r['ingest_s']['mean']:<9.2f} "
            f"{r['turns_per_s']['best']:>8.1f}/{r['turns_per_s']['mean']:<9.1f} "
            f"{e['best']:>11.2f}/{e['mean']:<10.2f} "
            f"{r['ratio']['best']:>7.2f}/{r['ratio']['mean']:<8.2f} "
            f"{r['ratio']['vs_memory_texts_per_session_best']:>8.2f}/{r['ratio']['vs_memory_texts_per_session_mean']:<8.2f}"
        )
    print(
        "\nembed-only = replay of exactly the embed() calls ingestion made (recorded); 'ratio vs mem-only' = against "
        "embedding only the entries' memory texts, one call per session"
    )
    for name, r in results.items():
        print(
            f"{name}: {r['ingest_embed_calls']} embed calls during ingest ({r['sessions']} sessions); embedded "
            f"{r['embedded_memory_texts']} memory texts + {r['embedded_other_texts']} others (dense_context="
            f"{r['dense_context']}); texts within memories+context lines: "
            f"{r['recorded_texts_within_memories_plus_context_lines']}; "
            f"time inside embed during ingest {r['embed_inside_ingest_s']['best']:.2f}s, rest "
            f"{r['non_embed_s']['best']:.2f}s; "
            f"targets: >=50 turns/s {'MET' if r['turns_per_s']['best'] >= 50 else 'MISSED'}, "
            f"ratio <=2 {'MET' if r['ratio']['best'] <= 2 else 'MISSED'} (best)"
        )
    for name, why in skipped.items():
        print(f"{name}: skipped ({why})")

    report = {
        "benchmark": "offline ingest throughput vs embedding-only cost (LoCoMo dev)",
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "torch_threads": _torch_threads(),
            "loadavg_start": la_start,
            "loadavg_end": loadavg(),
        },
        "git": {"start": git_start, "end": git_state()},
        "conversations": [c.conv_id for c in convs],
        "turns": n_turns,
        "repeats": args.repeats,
        "embedder_load_and_warmup_s": round(load_s, 2),
        "segment_module_present": has_segment,
        "targets": {"turns_per_s": ">= 50", "ratio": "<= 2"},
        "results": results,
        "skipped": skipped,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out}")


def _torch_threads() -> int | None:
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
