"""Helpers every benchmark script shares (run provenance, token counting)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent


def git_state() -> dict[str, Any]:
    """HEAD and uncommitted files: the library may change between runs."""

    def run(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:  # noqa: BLE001 - provenance is best effort
            return ""

    return {"head": run("git", "rev-parse", "HEAD"), "dirty": run("git", "status", "--short").splitlines()}


def cl100k() -> Callable[[str], int]:
    """Exact cl100k token counts (the library's offline lookup); refuses to guess."""
    from lightmem_core.llm import cl100k_encoding

    enc = cl100k_encoding()
    if enc is None:
        raise SystemExit("cl100k is not available offline: install llama-index-core or set TIKTOKEN_CACHE_DIR")
    return lambda text: len(enc.encode(text, disallowed_special=()))
