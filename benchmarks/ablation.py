"""Each read-path stage switched off in turn, on three kinds of data.

For the full default and for the default minus one stage (``retrieval.stages``), it
reports LoCoMo dev evidence recall@5/@10 (overall and per category), LongMemEval-53
turn and session recall@5/@10, the knowledge-update sets (current value first, the
ten sets together) and retrieve p50/p95. The stores are built once with the default
write path and kept in ``--cache``; only read-time settings vary between rows, so a
row costs seconds, not the 80 minutes of ingesting LongMemEval.

    python benchmarks/ablation.py [--cache ~/.cache/lightmem-bench] [--variants full,-recency,...]

The LongMemEval store is the CLI's (``lightmem --path CACHE/lme53 ingest
../shared/data/longmemeval-s53/longmemeval_s53.json --format longmemeval``); the
script builds the LoCoMo and knowledge-update stores itself when they are missing.
Noise: retrieval is deterministic, so a rerun gives the same recall; the smallest
change that is not noise is one question, printed per dataset.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import knowledge_updates as ku  # noqa: E402
from _common import git_state  # noqa: E402
from _locomo import CATEGORIES, evidence_ids, load  # noqa: E402

from lightmem_core import LightMemory, MemoryConfig  # noqa: E402
from lightmem_core.config import RetrievalConfig  # noqa: E402
from lightmem_core.retrieval import STAGE_NAMES  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
KU_SETS = ["knowledge_updates", "knowledge_updates_heldout", *(f"knowledge_updates_heldout{i}" for i in range(2, 10))]
KS = (5, 10)
# Stages that run on every default query; "hierarchical" runs only when a request asks for it.
DEFAULT_STAGES = [s for s in STAGE_NAMES if s != "hierarchical"]


def variants() -> dict[str, dict[str, Any]]:
    """Retrieval settings per row: the default, then the default minus one stage or rule."""
    out: dict[str, dict[str, Any]] = {"full": {}}
    for name in DEFAULT_STAGES:
        out[f"-{name}"] = {"stages": [s for s in STAGE_NAMES if s != name]}
    out["-current_state_first.now_reach"] = {"stage_settings": {"current_state_first": {"now_reach": None}}}
    out["-current_state_first.close"] = {"stage_settings": {"current_state_first": {"close": None}}}
    out["speaker_weight=0.5"] = {"speaker_weight": 0.5}  # the default until 2026-12-07
    out["period.relative"] = {"stage_settings": {"period": {"relative": True}}}
    out["-speaker.asker"] = {"stage_settings": {"speaker": {"asker": False}}}
    out["-speaker.embed_without_names"] = {"stage_settings": {"speaker": {"embed_without_names": False}}}
    out["neighbours.weight=0.5"] = {"stage_settings": {"neighbours": {"weight": 0.5}}}
    out["neighbours.said_now"] = {"stage_settings": {"neighbours": {"said_now": True}}}
    out["neighbours.counting"] = {"stage_settings": {"neighbours": {"counting": True}}}
    out["current_state_first.close on every present question"] = {
        "stage_settings": {"current_state_first": {"close_needs_now": False}}
    }
    return out


def _open(path: Path) -> LightMemory:
    return LightMemory(MemoryConfig.from_dict({"store": {"path": str(path)}}))


def _timed(latencies: list[float], fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    latencies.append(time.perf_counter() - t0)
    return out


# --- LoCoMo ---------------------------------------------------------------------------------
def locomo_store(cache: Path) -> tuple[LightMemory, list[Any]]:
    convs = load(DATA / "locomo-dev")
    path = cache / "locomo5"
    fresh = not (path / "DONE").exists()
    memory = _open(path)
    if fresh:
        for conv in convs:
            for sid, _, msgs in conv.sessions:
                memory.add_memory(msgs, user_id=conv.conv_id, session_id=sid)
        (path / "DONE").write_text(json.dumps(git_state()))
    return memory, convs


def locomo_eval(memory: LightMemory, convs: list[Any], latencies: list[float]) -> dict[str, Any]:
    per_cat: dict[str, list[dict[int, float]]] = defaultdict(list)
    for conv in convs:
        now = conv.sessions[-1][2][-1]["time_stamp"]
        for qa in conv.qa:
            gold = evidence_ids(qa)
            if not gold:
                continue
            hits = _timed(latencies, memory.retrieve, qa["question"], limit=max(KS), user_id=conv.conv_id, now=now)
            got = [h.entry.source_ids for h in hits]
            per_cat[CATEGORIES[qa["category"]]].append(
                {k: sum(g in {s for ids in got[:k] for s in ids} for g in gold) / len(gold) for k in KS}
            )
    rows = {**per_cat, "overall": [r for v in per_cat.values() for r in v]}
    return {
        c: {f"R@{k}": round(float(np.mean([r[k] for r in v])), 3) for k in KS} | {"n": len(v)} for c, v in rows.items()
    }


# --- LongMemEval ----------------------------------------------------------------------------
def lme_eval(memory: LightMemory, questions: list[dict[str, Any]], latencies: list[float]) -> dict[str, Any]:
    turn: dict[int, list[float]] = defaultdict(list)
    session: dict[int, list[float]] = defaultdict(list)
    for q in questions:
        gold = {
            f"{sid}:{n}"
            for sid, turns in zip(q["haystack_session_ids"], q["haystack_sessions"])
            for n, t in enumerate(turns)
            if t.get("has_answer")
        }
        answer_sessions = set(q["answer_session_ids"])
        hits = _timed(
            latencies, memory.retrieve, q["question"], limit=max(KS), user_id=q["question_id"], now=q["question_date"]
        )
        for k in KS:
            found = {s for h in hits[:k] for s in h.entry.source_ids}
            if gold:
                turn[k].append(len(gold & found) / len(gold))
            if answer_sessions:
                session[k].append(len(answer_sessions & {s.rsplit(":", 1)[0] for s in found}) / len(answer_sessions))
    return (
        {f"turn@{k}": round(float(np.mean(turn[k])), 3) for k in KS}
        | {f"session@{k}": round(float(np.mean(session[k])), 3) for k in KS}
        | {"n": len(questions), "n_turn": len(turn[KS[0]])}
    )


# --- knowledge updates ----------------------------------------------------------------------
def ku_store(cache: Path) -> tuple[LightMemory, list[dict[str, Any]]]:
    cases = []
    for name in KU_SETS:
        for case in json.loads((Path(__file__).parent / "data" / f"{name}.json").read_text())["cases"]:
            cases.append({**case, "user_id": f"{name}:{case['user_id']}"})
    path = cache / "ku"
    fresh = not (path / "DONE").exists()
    memory = _open(path)
    if fresh:
        for case in cases:
            ku.ingest(memory, case)
        (path / "DONE").write_text(json.dumps(git_state()))
    return memory, cases


def ku_eval(memory: LightMemory, cases: list[dict[str, Any]]) -> dict[str, Any]:
    scores = [ku.score(memory, c) for c in cases]
    return {
        k: round(sum(s[k] for s in scores) / len(scores), 3)
        for k in ("current_first", "current_first_sentence", "top1_current")
    } | {"n": len(scores)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "lightmem-bench"))
    ap.add_argument("--variants", default=None, help="comma-separated row names (default: all)")
    ap.add_argument("--skip", default="", help="datasets to leave out: locomo,lme,ku")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "ablation.json"))
    args = ap.parse_args()
    cache = Path(args.cache).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    rows = variants()
    if args.variants:
        rows = {k: rows[k] for k in args.variants.split(",")}
    skip = set(filter(None, args.skip.split(",")))

    datasets: list[tuple[str, LightMemory, Callable[[LightMemory, list[float]], dict[str, Any]]]] = []
    if "locomo" not in skip:
        memory, convs = locomo_store(cache)
        datasets.append(("locomo", memory, lambda m, lat, convs=convs: locomo_eval(m, convs, lat)))
    if "lme" not in skip:
        questions = json.loads((DATA / "longmemeval-s53" / "longmemeval_s53.json").read_text())
        memory = _open(cache / "lme53")
        datasets.append(("lme", memory, lambda m, lat, qs=questions: lme_eval(m, qs, lat)))
    if "ku" not in skip:
        memory, cases = ku_store(cache)
        datasets.append(("ku", memory, lambda m, lat, cases=cases: ku_eval(m, cases)))

    report: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "git": git_state(),
        "rows": {},
    }
    for name, settings in rows.items():
        row: dict[str, Any] = {"settings": settings}
        for dataset, memory, evaluate in datasets:
            memory.config.retrieval = RetrievalConfig.model_validate(
                {**memory.config.retrieval.model_dump(), **settings}
            )
            latencies: list[float] = []
            row[dataset] = evaluate(memory, latencies)
            if latencies:
                row[dataset]["retrieve_ms"] = {
                    "p50": round(float(np.percentile(latencies, 50)) * 1000, 1),
                    "p95": round(float(np.percentile(latencies, 95)) * 1000, 1),
                }
            memory.config.retrieval = RetrievalConfig()
        report["rows"][name] = row
        print(_line(name, row), flush=True)
    report["noise"] = _noise(report["rows"].get("full", {}))
    print("one question =", report["noise"])
    for _, memory, _ in datasets:
        memory.close()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


def _noise(full: dict[str, Any]) -> dict[str, float]:
    """The smallest change a figure can show: one question (one case) of the dataset."""
    out = {}
    if "locomo" in full:
        out["locomo"] = round(1 / full["locomo"]["overall"]["n"], 4)
    if "lme" in full:
        out["lme"] = round(1 / full["lme"]["n_turn"], 4)
    if "ku" in full:
        out["ku"] = round(1 / full["ku"]["n"], 4)
    return out


def _line(name: str, row: dict[str, Any]) -> str:
    parts = [f"{name:<34}"]
    if "locomo" in row:
        o = row["locomo"]["overall"]
        parts.append(f"locomo R@5 {o['R@5']:.3f} R@10 {o['R@10']:.3f} p95 {row['locomo']['retrieve_ms']['p95']:.0f}ms")
    if "lme" in row:
        r = row["lme"]
        parts.append(
            f"lme turn@5 {r['turn@5']:.3f} @10 {r['turn@10']:.3f} sess@5 {r['session@5']:.3f} "
            f"@10 {r['session@10']:.3f} p95 {r['retrieve_ms']['p95']:.0f}ms"
        )
    if "ku" in row:
        parts.append(f"ku current-first {row['ku']['current_first']:.3f}")
    return " | ".join(parts)


if __name__ == "__main__":
    main()
