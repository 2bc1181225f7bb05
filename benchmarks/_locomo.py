"""LoCoMo dev loading shared by the benchmarks (and small test slices)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "locomo-dev"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}


@dataclass
class Conversation:
    conv_id: str
    speakers: tuple[str, str]
    sessions: list[tuple[str, str, list[dict[str, Any]]]] = field(default_factory=list)  # (session id, date, messages)
    qa: list[dict[str, Any]] = field(default_factory=list)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [m for _, _, msgs in self.sessions for m in msgs]


def turn_text(turn: dict[str, Any]) -> str:
    text = turn["text"]
    if turn.get("blip_caption"):
        text += f" (image: {turn['blip_caption']})"
    return text


def evidence_ids(qa: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for e in qa.get("evidence", []):
        out += [p.strip() for p in re.split(r"[;,]", e) if p.strip()]
    return out


def load(data_dir: str | os.PathLike[str] | None = None, limit: int | None = None) -> list[Conversation]:
    root = Path(data_dir or os.environ.get("LOCOMO_DIR") or DEFAULT_DIR)
    files = sorted(root.glob("conv-*.json"))[:limit]
    if not files:
        raise SystemExit(f"no LoCoMo files in {root} (set LOCOMO_DIR)")
    convs = []
    for f in files:
        d = json.loads(f.read_text())
        conv = Conversation(conv_id=f.stem, speakers=(d["speaker_a"], d["speaker_b"]))
        n = 1
        while f"session_{n}" in d:
            date = d[f"session_{n}_date_time"]
            msgs = [
                {
                    "id": t["dia_id"],
                    "role": "user",
                    "speaker_id": t["speaker"].lower(),
                    "speaker_name": t["speaker"],
                    "content": turn_text(t),
                    "time_stamp": date,
                }
                for t in d[f"session_{n}"]
            ]
            conv.sessions.append((f"session_{n}", date, msgs))
            n += 1
        conv.qa = [q for q in d["qa"] if q.get("category") in CATEGORIES]
        convs.append(conv)
    return convs
