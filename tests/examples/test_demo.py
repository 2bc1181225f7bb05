"""``make demo`` as a newcomer runs it: a fresh process, the packaged model, a new store.

Its verdicts must be about what it prints (it once judged the bare sentence while it
printed the sentence window, and said "not in top 5" under a line holding the answer),
and its screen must carry only what the demo prints: no model-loading progress bars or
transformers warnings.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOISE = ("Loading weights", "[transformers]", "loss_type", "it/s]")


def test_the_demo_judges_what_it_shows_and_prints_nothing_else(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "250", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--fresh", "--store", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr
    for noise in NOISE:
        assert noise not in run.stdout + run.stderr, noise
    assert run.stderr.strip() == ""
    blocks = re.split(r"\n\s*expected (.+?): (shown at rank (\d+)|not in the \d+ shown)\n", run.stdout)
    verdicts = list(zip(blocks[:-1:4], blocks[1::4], blocks[3::4]))
    assert len(verdicts) == 10
    for table, expect, rank in verdicts:
        rows = {int(m.group(1)): m.group(2) for m in re.finditer(r"^(\d+)\s+(.+)$", table, re.M)}
        assert rows, table
        holding = [r for r, line in sorted(rows.items()) if expect.lower() in line.lower()]
        if rank:
            assert holding and holding[0] == int(rank), (expect, rank, rows)
        else:
            assert not holding, (expect, rows)
    assert re.search(r"(\d+)/10 expected answers among the memories shown", run.stdout)
