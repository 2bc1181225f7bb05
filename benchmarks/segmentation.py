"""Topic segmentation vs LoCoMo session boundaries, streamed the way a memory sees turns.

Each LoCoMo dev conversation's sessions are concatenated into one stream of turns. The
stream is fed to a segmenter in buffers of ``--buffer`` turns, like the sensory buffer
of a streaming memory: every segment but the last is closed, the last (the topic that
may still be going on) is carried over into the next buffer; a buffer with no boundary
at all is flushed whole (upstream LightMem's behaviour), which counts as a cut. The
predicted cuts are scored against the true session starts: precision / recall / F1
with exact position and with +-1 turn tolerance (one-to-one matching), and Pk.

Time stamps are withheld from the segmenters: LoCoMo's sessions are days apart, so the
time-gap rule alone finds every session boundary. That is reported separately as the
``+ time gap`` line.

LoCoMo sessions hold several topics each, so a good topic segmenter also cuts inside
sessions and its precision against *session* boundaries is naturally low; recall is
the more telling number, precision is bounded by how many topic shifts a session has.

    python benchmarks/segmentation.py [--buffer 30] [--convs N] [--out benchmarks/results/segmentation.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Sequence  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _locomo import Conversation, load  # noqa: E402

from lightmem_core.segment import AttentionSegmenter, SimilaritySegmenter  # noqa: E402

warnings.filterwarnings("ignore", message=".*attention.*")


def stream_turns(conv: Conversation, with_time: bool) -> tuple[list[dict[str, Any]], list[int]]:
    turns, gold = [], []
    for k, (_, date, msgs) in enumerate(conv.sessions):
        if k:
            gold.append(len(turns))
        for m in msgs:
            t = {"id": m["id"], "speaker": m["speaker_name"], "content": m["content"]}
            if with_time:
                t["time_stamp"] = date
            turns.append(t)
    return turns, gold


def stream(turns: Sequence[Any], buffer: int, boundaries: Callable[[list[Any]], list[int]]) -> list[int]:
    """Cuts (global turn indices) made by a streaming memory with this segmenter."""
    cuts: list[int] = []
    buf: list[int] = []
    pos, n = 0, len(turns)
    while pos < n:
        take = min(buffer - len(buf), n - pos)
        buf += list(range(pos, pos + take))
        pos += take
        local = [b for b in boundaries([turns[i] for i in buf]) if 0 < b < len(buf)]
        cuts += [buf[b] for b in local]
        if pos >= n:
            break
        if local:
            buf = buf[local[-1] :]  # carry the last, possibly unfinished, topic
        else:
            cuts.append(pos)  # nothing found: flush the whole buffer
            buf = []
    return sorted(set(cuts))


def match(pred: Sequence[int], gold: Sequence[int], tol: int) -> int:
    used: set[int] = set()
    tp = 0
    for p in sorted(pred):
        for g in sorted(gold, key=lambda g: abs(g - p)):
            if abs(g - p) <= tol and g not in used:
                used.add(g)
                tp += 1
                break
    return tp


def pk(pred: Sequence[int], gold: Sequence[int], n: int) -> float:
    """Beeferman's Pk: share of turn pairs k apart that the two segmentations disagree
    on (same segment or not); k = half the mean true segment length. Lower is better."""

    def labels(bounds: Sequence[int]) -> np.ndarray:
        lab = np.zeros(n, dtype=int)
        for b in bounds:
            lab[b:] += 1
        return lab

    k = max(1, int(round(n / (len(gold) + 1) / 2)))
    g, p = labels(gold), labels(pred)
    same_g = g[:-k] == g[k:]
    same_p = p[:-k] == p[k:]
    return float(np.mean(same_g != same_p))


def score(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    n_pred = sum(len(r["pred"]) for r in rows)
    n_gold = sum(len(r["gold"]) for r in rows)
    n_turns = sum(r["n"] for r in rows)
    for tol in (0, 1):
        tp = sum(match(r["pred"], r["gold"], tol) for r in rows)
        p = tp / n_pred if n_pred else 0.0
        rec = tp / n_gold if n_gold else 0.0
        f = 2 * p * rec / (p + rec) if p + rec else 0.0
        key = "exact" if tol == 0 else "tol1"
        out[key] = {"precision": round(p, 4), "recall": round(rec, 4), "f1": round(f, 4), "tp": tp}
    secs = sum(r["seconds"] for r in rows)
    out.update(
        predicted=n_pred,
        gold=n_gold,
        turns=n_turns,
        mean_segment_turns=round(n_turns / (n_pred + len(rows)), 2),
        pk=round(float(np.mean([pk(r["pred"], r["gold"], r["n"]) for r in rows])), 4),
        seconds=round(secs, 2),
        turns_per_s=round(n_turns / secs, 1) if secs > 0 else None,
    )
    return out


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    ok = np.isfinite(scores)
    s, y = scores[ok], positive[ok]
    ranks = np.empty(len(s))
    ranks[np.argsort(s, kind="mergesort")] = np.arange(1, len(s) + 1)
    npos, nneg = int(y.sum()), int((~y).sum())
    if not npos or not nneg:
        return float("nan")
    return float((ranks[y].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def run_method(
    name: str, convs: list[Conversation], buffer: int, with_time: bool, boundaries: Callable[[list[Any]], list[int]]
) -> dict[str, Any]:
    rows = []
    for c in convs:
        turns, gold = stream_turns(c, with_time)
        t0 = time.perf_counter()
        pred = stream(turns, buffer, boundaries)
        rows.append(
            {"conv": c.conv_id, "n": len(turns), "gold": gold, "pred": pred, "seconds": time.perf_counter() - t0}
        )
    res = score(rows)
    res["method"] = name
    return res


def add_stats(result: dict[str, Any], seg: Any) -> None:
    """Model work per streamed turn: tokens through the attention pass (windows overlap,
    and turns carried to the next buffer are encoded again) and the embedding pass."""
    st = getattr(seg, "stats", None)
    if st:
        result["attention_tokens_per_turn"] = round(st["attention_tokens"] / result["turns"], 1)
        result["embedding_tokens_per_turn"] = round(st["embedding_tokens"] / result["turns"], 1)
        result["segment_calls"] = st["calls"]


def reference_speed(model: Any, tok: Any, precision: str) -> dict[str, float]:
    """Raw encoder speed on this machine right now (one 512-token window with
    attentions, and a batch of 16 short sentences), to read turns/s against."""
    import torch

    probe = AttentionSegmenter.from_model(model, tok, sentence_model=True, precision=precision)
    ids = torch.randint(1000, 20000, (1, 512))
    out = {}
    with torch.inference_mode(), probe._autocast(torch, model):
        model(input_ids=ids, output_attentions=True)
        t0 = time.perf_counter()
        for _ in range(5):
            model(input_ids=ids, output_attentions=True)
        out["window_512"] = round(5 * 512 / (time.perf_counter() - t0))
        short = torch.randint(1000, 20000, (16, 40))
        model(input_ids=short)
        t0 = time.perf_counter()
        for _ in range(5):
            model(input_ids=short)
        out["batch_16x40"] = round(5 * 16 * 40 / (time.perf_counter() - t0))
    return out


def fixed_length(every: int) -> Callable[[list[Any]], list[int]]:
    def cut(buf: list[Any]) -> list[int]:
        return list(range(every, len(buf), every))

    return cut


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--buffer", type=int, default=30, help="turns per sensory buffer (default 30)")
    ap.add_argument("--convs", type=int, default=None, help="only the first N conversations")
    ap.add_argument("--data", default=None, help="LoCoMo dir (default: LOCOMO_DIR or /work/shared/data/locomo-dev)")
    ap.add_argument("--threshold", type=float, default=None, help="similarity threshold (default: SegmenterConfig)")
    ap.add_argument("--cutoff", type=float, default=None, help="attention_cutoff of the attention segmenter")
    ap.add_argument(
        "--shared-threshold",
        type=float,
        default=0.8,
        help="threshold for embeddings='shared' (contextual cosines run higher; default 0.8)",
    )
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "segmentation.json"))
    ap.add_argument("--no-diagnostics", action="store_true", help="skip the whole-conversation score AUCs")
    args = ap.parse_args(argv)

    import torch

    convs = load(args.data, args.convs)
    kw: dict[str, Any] = {"precision": args.precision}
    if args.threshold is not None:
        kw["threshold"] = args.threshold
    if args.cutoff is not None:
        kw["attention_cutoff"] = args.cutoff

    t0 = time.perf_counter()
    att = AttentionSegmenter(**kw)
    att.segment(["warm up", "the model"])
    load_s = time.perf_counter() - t0
    model, tok = att._model, att._tokenizer

    def sibling(**extra: Any) -> AttentionSegmenter:
        """Another segmenter on the same loaded model (own embedding cache and stats)."""
        return AttentionSegmenter.from_model(model, tok, sentence_model=True, **{**kw, **extra})

    from lightmem_core.embed import SentenceTransformerEmbedder

    emb = SentenceTransformerEmbedder()
    emb.embed(["warm up"])
    sim_kw = {"threshold": args.threshold} if args.threshold is not None else {}
    reference = reference_speed(model, tok, args.precision)

    default = sibling()
    methods: list[tuple[str, Any, bool]] = [
        ("attention two-level (default: attention + separate MiniLM embeddings)", default, False),
        (
            "attention two-level, one shared pass (contextual embeddings)",
            sibling(embeddings="shared", threshold=args.shared_threshold),
            False,
        ),
        ("attention only (no similarity level)", sibling(threshold=2.0, sharp_drop=None), False),
        ("similarity only (MiniLM embedder)", SimilaritySegmenter(emb, **sim_kw), False),
    ]
    results = []
    for name, seg, with_time in methods:
        r = run_method(name, convs, args.buffer, with_time, seg.boundaries)
        add_stats(r, seg)
        results.append(r)
        print(f"  {name}: done ({r['seconds']} s)", file=sys.stderr, flush=True)
    mean_len = max(1, int(round(results[0]["mean_segment_turns"])))
    results.append(
        run_method(
            f"fixed length, a cut every {mean_len} turns (= the default's mean segment)",
            convs,
            args.buffer,
            False,
            fixed_length(mean_len),
        )
    )
    results.append(
        run_method(
            f"no segmentation (flush every {args.buffer}-turn buffer)", convs, args.buffer, False, fixed_length(10**9)
        )
    )
    timed = sibling()
    results.append(
        run_method(
            "attention two-level + time gap > 6 h (time stamps given)", convs, args.buffer, True, timed.boundaries
        )
    )
    add_stats(results[-1], timed)

    diagnostics: dict[str, Any] = {}
    if not args.no_diagnostics:
        # How well the raw curves separate session starts from other gaps, each
        # conversation encoded whole (overlapping windows): ROC-AUC, 0.5 = chance.
        a_auc, s_auc = [], []
        for c in convs:
            turns, gold = stream_turns(c, False)
            y = np.zeros(len(turns), dtype=bool)
            y[gold] = True
            sc = default.scores(turns)
            a = sc["backward_share"]
            s = sc["similarity"]
            a_auc.append(1 - auc(a[1:], y[1:]))
            s_auc.append(1 - auc(s[1:], y[1:]))
        diagnostics = {
            "roc_auc_backward_share": round(float(np.mean(a_auc)), 4),
            "roc_auc_window_similarity": round(float(np.mean(s_auc)), 4),
            "note": "low score = boundary; AUC of -score vs session starts over all gaps, mean over conversations",
        }

    cfg = {
        k: getattr(default, k)
        for k in (
            "threshold",
            "attention_cutoff",
            "sharp_drop",
            "context",
            "radius",
            "sim_window",
            "max_tokens",
            "max_turn_tokens",
            "embeddings",
            "precision",
        )
    }
    report = {
        "command": "python "
        + " ".join([os.path.relpath(__file__, Path.cwd()), *(argv if argv is not None else sys.argv[1:])]),
        "data": {
            "conversations": [c.conv_id for c in convs],
            "turns": results[0]["turns"],
            "session_boundaries": results[0]["gold"],
        },
        "buffer_turns": args.buffer,
        "attention_segmenter": cfg,
        "shared_threshold": args.shared_threshold,
        "model_load_seconds": round(load_s, 2),
        "reference_model_tokens_per_s": reference,
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "results": results,
        "diagnostics": diagnostics,
        "note": (
            "Scored against LoCoMo SESSION boundaries; sessions contain several topics, so cuts inside a "
            "session count as false positives and precision is naturally low. Time stamps are withheld except "
            "in the '+ time gap' line."
        ),
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
        },
    }
    print_table(report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {out}")
    return report


def print_table(report: dict[str, Any]) -> None:
    print(
        f"\nLoCoMo dev: {len(report['data']['conversations'])} conversations, {report['data']['turns']} turns, "
        f"{report['data']['session_boundaries']} session boundaries; buffer {report['buffer_turns']} turns"
    )
    head = (
        f"{'method':78s} {'cuts':>5s} {'P':>5s} {'R':>5s} {'F1':>5s} | {'P±1':>5s} {'R±1':>5s} {'F1±1':>5s} | "
        f"{'Pk':>5s} {'seg':>5s} {'turns/s':>8s} {'tok/turn':>9s}"
    )
    print(head)
    print("-" * len(head))
    for r in report["results"]:
        e, t = r["exact"], r["tol1"]
        tps = f"{r['turns_per_s']:.0f}" if r["turns_per_s"] and r["turns_per_s"] < 1e6 else "-"
        tpt = (
            f"{r['attention_tokens_per_turn']:.0f}+{r['embedding_tokens_per_turn']:.0f}"
            if "attention_tokens_per_turn" in r
            else "-"
        )
        print(
            f"{r['method'][:78]:78s} {r['predicted']:5d} {e['precision']:5.2f} {e['recall']:5.2f} {e['f1']:5.2f} | "
            f"{t['precision']:5.2f} {t['recall']:5.2f} {t['f1']:5.2f} | "
            f"{r['pk']:5.2f} {r['mean_segment_turns']:5.1f} {tps:>8s} "
            f"{tpt:>9s}"
        )
    ref = report.get("reference_model_tokens_per_s") or {}
    if ref:
        print(
            f"\ntok/turn = tokens encoded per streamed turn (attention windows + separate embeddings). "
            f"Encoder speed right now: {ref['window_512']} tok/s (512-token window), {ref['batch_16x40']} tok/s "
            f"(16 short turns); load average {report.get('load_average_1m_at_end')}."
        )
    d = report.get("diagnostics") or {}
    if d:
        print(
            f"\nsignal (whole conversations): ROC-AUC backward_share {d['roc_auc_backward_share']:.3f}, "
            f"window similarity {d['roc_auc_window_similarity']:.3f}"
        )
    print(
        "\nNote: precision is against SESSION boundaries; LoCoMo sessions hold several topics each, so topic cuts "
        "inside a session count as false positives."
    )


if __name__ == "__main__":
    main()
