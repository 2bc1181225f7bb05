"""LoCoMo dev evidence recall@10 for retrieval settings, on one ingest.

Ingests the conversations once (offline default), then, for each named variant of
``retrieval`` settings, sets them on the live config and scores every QA of categories
1-4 (`now` = the conversation's last session date). Only retrieval settings can vary:
anything that changes what is stored needs its own ingest (``--config``, applied to the
ingest of every variant).

    python benchmarks/retrieval_sweep.py '{"default": {}, "no speaker boost": {"speaker_weight": 0}}'
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import git_state  # noqa: E402
from _locomo import CATEGORIES, evidence_ids, load  # noqa: E402

from lightmem_core import LightMemory, MemoryConfig  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", help='JSON: {"name": {retrieval setting: value, ...}, ...}')
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--data", default=None)
    ap.add_argument("--config", default="{}", help="MemoryConfig JSON for the ingest, e.g. '{\"dense_context\": 0.5}'")
    ap.add_argument("--out", default=None, help="also write the results as JSON here")
    args = ap.parse_args()
    variants = json.loads(args.variants)
    convs = load(args.data)
    report = {
        "command": " ".join(["python", *sys.argv]),
        "git": git_state(),
        "limit": args.limit,
        "config": json.loads(args.config),
        "variants": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        memory = LightMemory(MemoryConfig.from_dict({**json.loads(args.config), "store": {"path": tmp}}))
        for conv in convs:
            for sid, _, msgs in conv.sessions:
                memory.add_memory(msgs, user_id=conv.conv_id, session_id=sid)
        defaults = memory.config.retrieval.model_copy()
        for name, settings in variants.items():
            memory.config.retrieval = type(defaults).model_validate({**defaults.model_dump(), **settings})
            per_cat: dict[str, list[float]] = {}
            for conv in convs:
                now = conv.sessions[-1][2][-1]["time_stamp"]
                for qa in conv.qa:
                    gold = evidence_ids(qa)
                    if not gold:
                        continue
                    hits = memory.retrieve(qa["question"], limit=args.limit, user_id=conv.conv_id, now=now)
                    found = {s for h in hits for s in h.entry.source_ids}
                    per_cat.setdefault(CATEGORIES[qa["category"]], []).append(sum(g in found for g in gold) / len(gold))
            row = {c: round(float(np.mean(v)), 3) for c, v in per_cat.items()}
            row["overall"] = round(float(np.mean([x for v in per_cat.values() for x in v])), 3)
            report["variants"][name] = {"settings": settings, f"R@{args.limit}": row}
            print(
                f"{name:<28} overall {row['overall']:.3f}  "
                + "  ".join(f"{c} {v:.3f}" for c, v in row.items() if c != "overall"),
                flush=True,
            )
        memory.close()
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
