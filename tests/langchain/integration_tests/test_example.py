"""examples/langchain_agent.py runs offline and recalls thread 1's facts in thread 2."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest

EXAMPLE = Path(__file__).parents[3] / "examples" / "langchain_agent.py"


def test_example_runs_offline(
    tmp_path: Any, embedder: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in ("LIGHTMEM_LLM_BASE_URL", "OPENAI_BASE_URL", "LIGHTMEM_LLM_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    example = runpy.run_path(str(EXAMPLE))
    answers = example["run"](str(tmp_path / "store"), embedder=embedder)
    assert "corgi" in answers["What breed is my puppy?"]
    assert "Lisbon" in answers["Where does my sister live?"]
    assert answers["omar"] == "I don't know that yet."
    assert "offline, scripted" in capsys.readouterr().out
