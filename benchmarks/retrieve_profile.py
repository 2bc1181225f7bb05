"""Where a ``retrieve()`` call spends its time, on a small store (no scale effects).

20 users x 40 turns, each user's entries naming one of four speakers; 300 questions
"Where does <name> work ...?" (they name a speaker, as the store_scale.py questions do).
Timed per call, single caller:

* ``embed``: the packaged MiniLM on the query alone;
* ``retrieve``: the full call with the default settings;
* ``retrieve, no window``: ``retrieval.window=0`` (no read of the hits' neighbouring
  sentences; every turn here has two);
* ``retrieve, no speaker boost``: ``retrieval.speaker_weight=0`` (2 engine lists, not 4);
* ``retrieve, model-free``: the same call with a zero-cost embedder (a seeded random
  vector), i.e. everything but the model: parsing, the engine batch, fusion, payloads.

    python benchmarks/retrieve_profile.py
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import git_state  # noqa: E402

from lightmem_core import LightMemory  # noqa: E402

NAMES = ("Maya", "Omar", "Lena", "Tom")


class RandomEmbedder:
    """A seeded random unit vector per text: the cost of the model taken out."""

    dims = 384

    def embed(self, texts: list[str]) -> np.ndarray:
        rng = np.random.default_rng(sum(map(ord, texts[0])))
        v = rng.normal(size=(len(texts), self.dims)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def fill(memory: LightMemory) -> None:
    for u in range(20):
        memory.add_memory(
            [
                {
                    "role": "user",
                    "speaker_name": NAMES[u % 4],
                    "time_stamp": f"2025-01-0{1 + i % 9}T10:00",
                    "content": f"I work as a nurse at Brightline Health number {u}. I have a dog named Rex{i}.",
                }
                for i in range(40)
            ],
            user_id=f"u{u}",
        )


def timed(fn: Callable[[int, str], Any], questions: list[str]) -> dict[str, float]:
    for i, q in enumerate(questions[:20]):
        fn(i, q)
    ms = []
    for i, q in enumerate(questions):
        t = time.perf_counter()
        fn(i, q)
        ms.append((time.perf_counter() - t) * 1000)
    return {"p50": round(float(np.percentile(ms, 50)), 2), "p95": round(float(np.percentile(ms, 95)), 2)}


def main() -> None:
    questions = [f"Where does {NAMES[i % 4]} work as nurse {i}?" for i in range(300)]
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        real = LightMemory({"store": {"path": f"{tmp}/real"}})
        fill(real)
        rows["embed"] = timed(lambda i, q: real.embedder.embed([q]), questions)
        rows["retrieve"] = timed(lambda i, q: real.retrieve(q, user_id=f"u{i % 20}"), questions)
        width, real.config.retrieval.window = real.config.retrieval.window, 0
        rows["retrieve, no window"] = timed(lambda i, q: real.retrieve(q, user_id=f"u{i % 20}"), questions)
        real.config.retrieval.window = width
        real.config.retrieval.speaker_weight = 0
        rows["retrieve, no speaker boost"] = timed(lambda i, q: real.retrieve(q, user_id=f"u{i % 20}"), questions)
        real.close()
        free = LightMemory({"store": {"path": f"{tmp}/free"}}, embedder=RandomEmbedder())
        fill(free)
        rows["retrieve, model-free"] = timed(lambda i, q: free.retrieve(q, user_id=f"u{i % 20}"), questions)
        free.close()
    for name, r in rows.items():
        print(f"{name:<28} p50 {r['p50']:6.2f} ms   p95 {r['p95']:6.2f} ms")
    out = Path(__file__).parent / "results" / "retrieve_profile.json"
    out.write_text(
        json.dumps(
            {
                "command": "python benchmarks/retrieve_profile.py",
                "git": git_state(),
                "loadavg": os.getloadavg(),
                "ms": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
