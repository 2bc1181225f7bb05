"""Record what the local model really answers, as fixtures for the repair tests.

Runs a few scenarios through ``LightMemory`` against a running server (``tools/local_llm.py
serve``) and writes each chat call (the messages sent, the text that came back) to
``tests/fixtures/llm_answers/<scenario>.json``. The unit tests replay those answers from a
loopback server, so every repair is tested against an answer a real model gave.

    python tools/record_llm_answers.py [--url http://127.0.0.1:8088/v1] [scenario ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["HF_HUB_OFFLINE"] = "1"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lightmem_core import LightMemory  # noqa: E402
from lightmem_core.config import LLMConfig  # noqa: E402
from lightmem_core.llm import Completion, OpenAICompatibleLLM  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "llm_answers"

CHAT = [
    {
        "role": "user",
        "name": "Maya",
        "content": "Yesterday I finally adopted a rescue greyhound called Pixel!",
        "time_stamp": "2023-05-08T13:56:00",
    },
    {
        "role": "assistant",
        "name": "Tom",
        "content": "That's wonderful. How is she settling in?",
        "time_stamp": "2023-05-08T13:57:00",
    },
    {
        "role": "user",
        "name": "Maya",
        "content": "Great. Next Monday I start my new job as a nurse at Mercy Hospital.",
        "time_stamp": "2023-05-08T13:58:00",
    },
    {
        "role": "assistant",
        "name": "Tom",
        "content": "Congratulations! I am running the Boston marathon in June.",
        "time_stamp": "2023-05-08T13:59:00",
    },
]


class Recording:
    """An ``LLM`` that forwards to the real one and keeps every exchange."""

    def __init__(self, inner: OpenAICompatibleLLM) -> None:
        self.inner = inner
        self.calls: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def complete(
        self, messages: list[dict[str, Any]], *, json_schema: Any = None, stage: str = "extraction"
    ) -> Completion:
        t = time.perf_counter()
        out = self.inner.complete(messages, json_schema=json_schema, stage=stage)
        self.calls.append(
            {
                "stage": stage,
                "messages": messages,
                "answer": out.text,
                "finish_reason": out.finish_reason,
                "usage": {"prompt": out.usage.prompt_tokens, "completion": out.usage.completion_tokens},
                "seconds": round(time.perf_counter() - t, 1),
            }
        )
        return out


def run(name: str, url: str, model_note: str) -> None:
    cfg: dict[str, Any] = {
        "llm": {
            "provider": "vllm",
            "model": "local",
            "base_url": url,
            "timeout": 600,
            "max_tokens": 700,
            "temperature": 0.0,
        }
    }
    if name == "event":
        cfg["extraction_mode"] = "event"
    with tempfile.TemporaryDirectory() as tmp:
        cfg["store"] = {"path": tmp}
        llm = Recording(OpenAICompatibleLLM(LLMConfig(**cfg["llm"])))
        with LightMemory(cfg, llm=llm) as memory:
            memory.add_memory(CHAT, user_id="maya", force_extract=True)
            if name == "update":
                memory.add_memory(
                    [
                        {
                            "role": "user",
                            "name": "Maya",
                            "content": "I quit Mercy Hospital; I am a nurse at St. Luke's now.",
                            "time_stamp": "2023-07-01T10:00:00",
                        }
                    ],
                    user_id="maya",
                    force_extract=True,
                )
                memory.construct_update_queue_all_entries()
                memory.offline_update_all_entries()
            if name == "summary":
                memory.summarize(user_id="maya")
            entries = [
                e.model_dump(mode="json", include={"memory", "source_ids", "metadata"})
                for e in memory.get_all(user_id="maya")
            ]
            repairs = memory.get_repair_statistics()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(
        json.dumps(
            {"scenario": name, "model": model_note, "calls": llm.calls, "stored": entries, "repairs": repairs}, indent=1
        )
        + "\n"
    )
    print(name, len(llm.calls), "calls", sum(c["seconds"] for c in llm.calls), "s", repairs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenarios", nargs="*", default=["flat", "event", "update", "summary"])
    ap.add_argument("--url", default="http://127.0.0.1:8088/v1")
    ap.add_argument("--model-note", default="Qwen2.5-Coder-1.5B-Instruct Q4_K_M on llama-cpp-python 0.3.36")
    args = ap.parse_args()
    for name in args.scenarios:
        run(name, args.url, args.model_note)


if __name__ == "__main__":
    main()
