"""The whole LightMem pipeline on one LoCoMo conversation, with a real local model.

What it measures
    One conversation (default ``conv-30``: 369 turns, 19 sessions, the smallest of the
    five) goes through ``LightMemory`` twice, in two stores:

    * ``llm``: the full pipeline against a real OpenAI-compatible server on 127.0.0.1
      (``tools/local_llm.py``: llama-cpp-python with Qwen2.5-Coder-1.5B-Instruct Q4_K_M,
      unless ``--url`` names another): entropy pre-compression (rate 0.6), topic
      segmentation, buffered LLM extraction (``--mode flat|event``), then the offline
      update (``construct_update_queue_all_entries`` + ``offline_update_all_entries``,
      the LLM resolving conflicts) and ``summarize`` (LLM session summaries).
    * ``offline``: the offline default (``MemoryConfig()``: no LLM, no compression).

    Every chat call is recorded (messages, answer, usage, seconds) to
    ``benchmarks/results/llm_local_calls.json`` (``<out>_calls.json``). Reported:

    * calls, prompt and completion tokens (the server's own usage counts) and seconds,
      per stage; the wall time of each phase;
    * JSON: an answer is "valid first try" when ``json.loads`` takes it as it is, "after
      repair" when the library's tolerant parser or its one repair call made it usable,
      "never" when the batch stayed pending;
    * the repairs the library made to what the model wrote (``get_repair_statistics``);
    * facts per turn; "grounded": the share of facts whose cited turns hold at least half
      of the fact's content words (speaker names, dates and words of the time repair left
      out);
    * evidence recall@10 of both memories on every QA of categories 1-4 that has
      evidence (the share of evidence turns among the ``source_ids`` of the top 10
      entries; summaries not counted);
    * answer token-F1 against LoCoMo's gold answers, with the same local model as the
      reader (temperature 0, at most 32 tokens) and LoCoMo's own metric (normalise, Porter
      stems, token F1; multi-hop answers split at commas), on a seeded sample of
      questions, for three contexts: our top-10 memories, the top-10 raw turns (NaiveRAG:
      BM25 + MiniLM fused by RRF over ``[date] speaker: text``), and, for the questions
      whose evidence lies in the first sessions that fit the model's window, those
      sessions in full.
    * economy: extraction calls and prompt tokens (all LLM stages, cl100k over the recorded
      request bodies) against the raw conversation (cl100k of ``speaker: text``), beside the
      targets (<= 25 calls, <= 1.2x raw).

Reproduce
    python tools/local_llm.py serve --port 8088 &      # first run builds (about 10 min)
    .venv/bin/python benchmarks/llm_local.py --url http://127.0.0.1:8088/v1
    .venv/bin/python benchmarks/llm_local.py            # starts its own server

    Writes ``benchmarks/results/llm_local.json`` (with the command, machine and git state).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import string  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Optional  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from _common import cl100k, git_state  # noqa: E402
from _locomo import CATEGORIES, Conversation, evidence_ids, load  # noqa: E402
from locomo_retrieval import raw_baselines, recall  # noqa: E402

from lightmem_core import LightMemory, textproc  # noqa: E402
from lightmem_core.config import LLMConfig  # noqa: E402
from lightmem_core.errors import LLMError  # noqa: E402
from lightmem_core.llm import OpenAICompatibleLLM, parse_json  # noqa: E402
from tools.record_llm_answers import Recording  # noqa: E402

CALL_TARGET = 25
RATIO_TARGET = 1.2
tokens = cl100k()
log = logging.getLogger("llm_local")


# -- LoCoMo's answer metric (normalise, Porter stems, token F1) ------------------------


def _normalise(text: str) -> list[str]:
    from nltk.stem import PorterStemmer

    stem = PorterStemmer().stem
    text = str(text).lower().replace(",", "")
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the|and)\b", " ", text)
    return [stem(w) for w in text.split()]


def token_f1(prediction: str, gold: str) -> float:
    p, g = _normalise(prediction), _normalise(gold)
    common = Counter(p) & Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, rec = same / len(p), same / len(g)
    return 2 * precision * rec / (precision + rec)


def answer_f1(prediction: str, gold: Any, category: int) -> float:
    gold = str(gold)
    if category == 3:  # open-domain: the gold's first alternative
        gold = gold.split(";")[0].strip()
    if category == 1:  # multi-hop: every gold part against its best predicted part
        preds = [p.strip() for p in prediction.split(",")]
        parts = [g.strip() for g in gold.split(",")]
        return sum(max(token_f1(p, g) for p in preds) for g in parts) / len(parts)
    return token_f1(prediction, gold)


# -- reading -------------------------------------------------------------------------

READER_SYSTEM = (
    "You answer questions about a conversation between two people, using only the context "
    "given. Reply with a short phrase of a few words, no sentence and no explanation. "
    "Give dates as the context gives them."
)


def ask(llm: OpenAICompatibleLLM, context: str, question: str) -> tuple[str, float]:
    t = time.perf_counter()
    # the context first, so a server that caches prompt prefixes reuses it across questions
    messages = [
        {"role": "system", "content": READER_SYSTEM},
        {"role": "user", "content": f"Context:\n{context}\n\nQuestion: {question}\nShort answer:"},
    ]
    try:
        out = llm.complete(messages, stage="reader")
    except LLMError as exc:  # one failed answer scores 0 and is kept, with its error
        log.warning("reader call failed: %s", exc)
        return f"(error: {exc})", time.perf_counter() - t
    return out.text.strip().splitlines()[0] if out.text.strip() else "", time.perf_counter() - t


def memory_context(memory: LightMemory, user: str, question: str, now: Any) -> tuple[str, list[list[str]]]:
    hits = [
        h for h in memory.retrieve(question, limit=10, user_id=user, now=now) if h.entry.entry_type.value != "summary"
    ][:10]
    lines = []
    for h in hits:
        when = h.entry.time_stamp.date().isoformat() if h.entry.time_stamp else ""
        lines.append(f"[{when}] {h.entry.memory}")
    return "\n".join(lines), [h.entry.source_ids for h in hits]


def session_text(conv: Conversation, upto: int) -> str:
    out = []
    for _, date, msgs in conv.sessions[:upto]:
        out.append(f"({date})")
        out += [f"{m['speaker_name']}: {m['content']}" for m in msgs]
    return "\n".join(out)


def full_context_sessions(conv: Conversation, budget: int) -> int:
    """How many leading sessions fit ``budget`` cl100k tokens."""
    n = 0
    while n < len(conv.sessions) and tokens(session_text(conv, n + 1)) <= budget:
        n += 1
    return n


# -- judging the memory --------------------------------------------------------------

_DATE_WORDS = re.compile(r"\(\d{4}(?:-W?\d{2}){0,2}\)")


def grounded(fact: str, cited: list[str], turns: dict[str, str], names: set[str]) -> bool:
    words = {w for w in textproc.content_words(_DATE_WORDS.sub(" ", fact)) if w not in names and not w.isdigit()}
    if not words:
        return True
    held = set()
    for tid in cited:
        held |= set(textproc.content_words(turns.get(tid, "")))
    return len(words & held) / len(words) >= 0.5


def json_outcomes(calls: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per stage: answers valid first try, usable after repair, never usable."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"first_try": 0, "after_repair": 0, "never": 0})
    i = 0
    while i < len(calls):
        c = calls[i]
        if c["stage"] == "reader":
            i += 1
            continue
        row = out[c["stage"]]
        repaired_next = i + 1 < len(calls) and any(m["role"] == "assistant" for m in calls[i + 1]["messages"])
        try:
            json.loads(c["answer"])
            row["first_try"] += 1
        except ValueError:
            final = calls[i + 1]["answer"] if repaired_next else c["answer"]
            try:
                parse_json(final)
                row["after_repair"] += 1
            except ValueError:
                row["never"] += 1
        i += 2 if repaired_next else 1
    return dict(out)


def request_tokens(calls: list[dict[str, Any]], stages: set[str]) -> int:
    """cl100k prompt tokens of the recorded requests (per message content + 4, + 3 per call)."""
    total = 0
    for c in calls:
        if c["stage"] in stages:
            total += (
                sum(
                    tokens(m["content"] if isinstance(m["content"], str) else json.dumps(m["content"])) + 4
                    for m in c["messages"]
                )
                + 3
            )
    return total


def per_stage(calls: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = defaultdict(
        lambda: {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0}
    )
    for c in calls:
        row = out[c["stage"]]
        row["calls"] += 1
        row["prompt_tokens"] += c["usage"]["prompt"]
        row["completion_tokens"] += c["usage"]["completion"]
        row["seconds"] = round(row["seconds"] + c["seconds"], 1)
    return dict(out)


def build(
    conv: Conversation, path: str, config: dict[str, Any], llm: Optional[Recording]
) -> tuple[LightMemory, dict[str, float]]:
    memory = LightMemory({**config, "store": {"path": path}}, llm=llm)
    wall: dict[str, float] = {}
    t = time.perf_counter()
    for sid, _, msgs in conv.sessions:
        memory.add_memory(msgs, user_id=conv.conv_id, session_id=sid)
    memory.flush(user_id=conv.conv_id)
    wall["ingest_and_extraction"] = time.perf_counter() - t
    if llm is not None:
        t = time.perf_counter()
        memory.construct_update_queue_all_entries(user_id=conv.conv_id)
        wall["update_queue"] = time.perf_counter() - t
        t = time.perf_counter()
        update_result = memory.offline_update_all_entries(user_id=conv.conv_id, max_workers=1)
        wall["offline_update"] = time.perf_counter() - t
        log.info("offline update: %s", update_result)
        t = time.perf_counter()
        memory.summarize(user_id=conv.conv_id)
        wall["summaries"] = time.perf_counter() - t
    return memory, {k: round(v, 1) for k, v in wall.items()}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def _calls_path(out: str) -> Path:
    """Beside the report, so a second run never overwrites the calls another report cites."""
    return Path(out).with_name(Path(out).stem + "_calls.json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=None, help="an OpenAI-compatible /v1 URL; default: start tools/local_llm.py")
    ap.add_argument("--model", default="local")
    ap.add_argument("--conv", default="conv-30")
    ap.add_argument("--mode", default="flat", choices=["flat", "event"])
    ap.add_argument("--questions", type=int, default=30, help="reader sample size (seeded)")
    ap.add_argument("--full-questions", type=int, default=15)
    ap.add_argument("--full-budget", type=int, default=6000, help="cl100k tokens of full-conversation context")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--sessions", type=int, default=None, help="only the first N sessions (a smoke run)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "llm_local.json"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    server = None
    url = args.url
    if url is None:
        from tools import local_llm

        server, url = local_llm.start("qwen1.5b")
    conv = next(c for c in load() if c.conv_id == args.conv)
    if args.sessions:
        conv.sessions = conv.sessions[: args.sessions]
        ids = {m["id"] for m in conv.messages}
        conv.qa = [q for q in conv.qa if set(evidence_ids(q)) <= ids]
    turns = {m["id"]: m["content"] for m in conv.messages}
    names = {w.lower() for s in conv.speakers for w in s.split()}
    raw = sum(tokens(f"{m['speaker_name']}: {m['content']}") for m in conv.messages)
    now = conv.sessions[-1][2][-1]["time_stamp"]

    llm_cfg = {
        "provider": "vllm",
        "model": args.model,
        "base_url": url,
        "api_key": "none",
        "timeout": 1800,
        "max_tokens": 1500,
        "temperature": 0.0,
        "max_retries": 1,
    }
    recorder = Recording(OpenAICompatibleLLM(LLMConfig(**llm_cfg)))
    pipeline = {
        "llm": llm_cfg,
        "pre_compress": True,
        "compressor": {"provider": "entropy", "rate": 0.6},
        "topic_segment": True,
        "extraction_mode": args.mode,
    }
    report: dict[str, Any] = {
        "benchmark": "llm_local",
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "git": git_state(),
        "machine": {"cpu": _cpu_name(), "cores": os.cpu_count(), "python": platform.python_version()},
        "conversation": {
            "id": conv.conv_id,
            "turns": len(conv.messages),
            "sessions": len(conv.sessions),
            "raw_tokens_cl100k": raw,
        },
        "config": pipeline,
    }
    try:
        with tempfile.TemporaryDirectory() as tmp:
            llm_mem, wall = build(conv, f"{tmp}/llm", pipeline, recorder)
            off_mem, off_wall = build(conv, f"{tmp}/off", {}, None)
            build_calls = list(recorder.calls)
            report["wall_seconds"] = wall | {"offline_default_ingest": off_wall["ingest_and_extraction"]}
            report["per_stage"] = per_stage(build_calls)
            report["json"] = json_outcomes(build_calls)
            report["repairs"] = llm_mem.get_repair_statistics()
            report["library_token_statistics"] = llm_mem.get_token_statistics()
            report["pending_after_flush"] = len(llm_mem.pending(user_id=conv.conv_id))

            entries = llm_mem.get_all(user_id=conv.conv_id, limit=10_000)
            facts = [e for e in entries if e.entry_type.value == "fact"]
            report["memory"] = {
                "entries": len(entries),
                "by_type": dict(Counter(e.entry_type.value for e in entries)),
                "facts_per_turn": round(len(facts) / len(conv.messages), 3),
                "grounded_share": round(
                    sum(grounded(e.memory, e.source_ids, turns, names) for e in facts) / max(1, len(facts)), 3
                ),
                "superseded": len(llm_mem.get_all(user_id=conv.conv_id, limit=10_000, include_superseded=True))
                - len(entries),
                "offline_default_entries": len(off_mem.get_all(user_id=conv.conv_id, limit=10_000)),
            }
            extraction_calls = report["per_stage"].get("extraction", {}).get("calls", 0)
            build_tokens = request_tokens(build_calls, {"extraction", "update", "summary"})
            report["economy"] = {
                "extraction_calls": extraction_calls,
                "all_calls": sum(int(v["calls"]) for v in report["per_stage"].values()),
                "prompt_tokens_cl100k_all_stages": build_tokens,
                "prompt_tokens_cl100k_extraction": request_tokens(build_calls, {"extraction"}),
                "ratio_all_stages": round(build_tokens / raw, 3),
                "ratio_extraction": round(request_tokens(build_calls, {"extraction"}) / raw, 3),
                "targets": {"calls": CALL_TARGET, "ratio": RATIO_TARGET},
            }

            # the build's figures are saved before the long reader phase, so a failure there keeps them
            Path(args.out).with_suffix(".build.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
            _calls_path(args.out).write_text(json.dumps(recorder.calls, indent=1) + "\n")

            # evidence recall@10, every QA with evidence
            rec: dict[str, dict[str, list[float]]] = {"llm": defaultdict(list), "offline": defaultdict(list)}
            for qa in conv.qa:
                gold = evidence_ids(qa)
                if not gold:
                    continue
                cat = CATEGORIES[qa["category"]]
                for name, mem in (("llm", llm_mem), ("offline", off_mem)):
                    _, found = memory_context(mem, conv.conv_id, qa["question"], now)
                    rec[name][cat].append(recall(found, gold, 10))
                    rec[name]["all"].append(recall(found, gold, 10))
            report["evidence_recall_at_10"] = {
                name: {cat: {"R@10": round(sum(v) / len(v), 3), "n": len(v)} for cat, v in by.items()}
                for name, by in rec.items()
            }

            # answers, same reader for every context
            baselines = raw_baselines(conv, off_mem.embedder)
            lines = {m["id"]: f"[{m['time_stamp']}] {m['speaker_name']}: {m['content']}" for m in conv.messages}
            rng = random.Random(args.seed)
            sample = rng.sample([q for q in conv.qa if "answer" in q], min(args.questions, len(conv.qa)))
            reader = OpenAICompatibleLLM(LLMConfig(**(llm_cfg | {"max_tokens": 32})))
            answers: list[dict[str, Any]] = []
            contexts: dict[str, Callable[[str], str]] = {
                "ours_top10_memories": lambda q: memory_context(llm_mem, conv.conv_id, q, now)[0],
                "offline_top10_memories": lambda q: memory_context(off_mem, conv.conv_id, q, now)[0],
                "naiverag_top10_turns": lambda q: "\n".join(lines[ids[0]] for ids in baselines["raw-fused"](q)[:10]),
            }
            for qa in sample:
                for name, make in contexts.items():
                    pred, secs = ask(reader, make(qa["question"]), qa["question"])
                    answers.append(
                        {
                            "context": name,
                            "question": qa["question"],
                            "gold": qa["answer"],
                            "category": qa["category"],
                            "prediction": pred,
                            "seconds": round(secs, 1),
                            "f1": round(answer_f1(pred, qa["answer"], qa["category"]), 3),
                        }
                    )
                    log.info("%s | %s -> %r (gold %r)", name, qa["question"], pred, qa["answer"])
            upto = full_context_sessions(conv, args.full_budget)
            in_window = {m["id"] for _, _, msgs in conv.sessions[:upto] for m in msgs}
            fits = [q for q in conv.qa if "answer" in q and evidence_ids(q) and set(evidence_ids(q)) <= in_window]
            fits = rng.sample(fits, min(args.full_questions, len(fits)))
            full = session_text(conv, upto)
            # the full context for every question first: the server keeps the last prompt's
            # prefix, so the long context is read once, not once per question
            runs = [(qa, "full_first_sessions", lambda q: full) for qa in fits]
            runs += [(qa, name, make) for qa in fits for name, make in contexts.items()]
            for qa, name, make in runs:
                pred, secs = ask(reader, make(qa["question"]), qa["question"])
                answers.append(
                    {
                        "context": name,
                        "subset": "fits_window",
                        "question": qa["question"],
                        "gold": qa["answer"],
                        "category": qa["category"],
                        "prediction": pred,
                        "seconds": round(secs, 1),
                        "f1": round(answer_f1(pred, qa["answer"], qa["category"]), 3),
                    }
                )
            report["reader"] = {
                "sample": len(sample),
                "seed": args.seed,
                "full_sessions": upto,
                "full_context_tokens_cl100k": tokens(full),
                "fits_window_questions": len(fits),
            }
            f1: dict[str, dict[str, Any]] = defaultdict(dict)
            for subset in ("sample", "fits_window"):
                rows = [a for a in answers if (a.get("subset") == "fits_window") == (subset == "fits_window")]
                for name in sorted({a["context"] for a in rows}):
                    vals = [a["f1"] for a in rows if a["context"] == name]
                    f1[subset][name] = {"f1": round(sum(vals) / len(vals), 3), "n": len(vals)}
            report["answer_f1"] = f1
            report["answers"] = answers
            llm_mem.close()
            off_mem.close()
    finally:
        if server is not None:
            server.terminate()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    _calls_path(args.out).write_text(json.dumps(recorder.calls, indent=1) + "\n")
    summary = {
        k: report[k]
        for k in (
            "per_stage",
            "json",
            "repairs",
            "memory",
            "economy",
            "evidence_recall_at_10",
            "answer_f1",
            "wall_seconds",
        )
    }
    sys.stdout.write(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
