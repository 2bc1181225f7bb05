"""Record how a real llama-cpp-python server refuses what it cannot do, as fixtures.

Starts SmolLM2-135M (``tools/local_llm.py``) with a 512-token window, then sends (1) a
prompt longer than the window and (2) a request with ``response_format`` of type
``json_schema``, and writes each HTTP status and body to
``tests/fixtures/llm_answers/server_errors.json``. The unit tests replay those bodies, so
the client's reading of them is tested against what a real server said.

    python tools/record_server_errors.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools import local_llm  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "llm_answers" / "server_errors.json"
N_CTX = 512


def main() -> None:
    proc, url = local_llm.start("smollm2", n_ctx=N_CTX, threads=1)
    try:
        long_prompt = " ".join(f"word{i}" for i in range(1500))
        cases = {
            "context_overflow": {
                "model": "local",
                "max_tokens": 16,
                "messages": [{"role": "user", "content": long_prompt}],
            },
            "json_schema": {
                "model": "local",
                "max_tokens": 16,
                "messages": [{"role": "user", "content": "Reply with a JSON object."}],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "answer", "schema": {"type": "object"}},
                },
            },
            "json_object": {
                "model": "local",
                "max_tokens": 16,
                "messages": [{"role": "user", "content": "Reply with a JSON object."}],
                "response_format": {"type": "json_object"},
            },
        }
        out = {"server": local_llm.LLAMA_CPP_PYTHON, "model": "SmolLM2-135M-Instruct Q4_1", "n_ctx": N_CTX}
        for name, body in cases.items():
            r = httpx.post(f"{url}/chat/completions", json=body, timeout=300)
            out[name] = {"request_keys": sorted(body), "status": r.status_code, "body": r.text[:4000]}
            print(name, r.status_code, r.text[:200])
        OUT.write_text(json.dumps(out, indent=1) + "\n")
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main()
