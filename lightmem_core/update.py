"""Update: keep memory consistent when a newer fact touches an older one.

Two resolvers decide what a NEW entry does to OLDER candidates (found by the store's
neighbour search in the same scope, never by an O(N^2) scan):

- ``RuleResolver`` (offline): near duplicates merge; a newer statement by the same
  speaker about the same attribute (where they live, work, what they eat, who they
  are with, a favourite thing) supersedes the older one.
- ``LLMResolver``: one call per new entry listing its candidates; the model answers
  update / delete / ignore per candidate (upstream LightMem's decisions).

"delete" never destroys: the older entry is *superseded* (kept, ``valid_to`` set,
excluded from retrieval unless asked), so history can always answer "what was true
before". Every decision carries its reason into the history log.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal, Optional, Protocol, Sequence

from . import textproc
from .cues import en
from .drive import Op
from .prompts import Prompts, fold
from .types import MemoryEntry, repair_text

Action = Literal["merge", "update", "supersede", "ignore"]


@dataclass
class Decision:
    target_id: str
    action: Action
    reason: str
    memory: Optional[str] = None  # the merged text, for "update"


class Resolver(Protocol):
    def decide(self, new: MemoryEntry, candidates: Sequence[tuple[MemoryEntry, float]]) -> Op[list[Decision]]: ...


@functools.lru_cache(maxsize=4096)
def attributes(text: str) -> frozenset[str]:
    """The single-valued attributes a text is about. Cached: retrieval asks again for
    every hit of every present-tense query, and a user's hits recur."""
    found = {name for name, pat in en.ATTRIBUTES.items() if pat.search(text)}
    found |= {f"favourite:{m.group(1).lower()}" for m in en.FAVOURITE.finditer(text)}
    return frozenset(found)


def _who(entry: MemoryEntry) -> str:
    return (entry.speaker_id or entry.speaker_name or "").lower()


def _values(entry: MemoryEntry) -> set[str]:
    return {e.lower() for e in entry.entities} | set(textproc.content_words(entry.memory.split(":", 1)[-1]))


class RuleResolver:
    """No-LLM decisions, deliberately conservative: it supersedes only within one
    speaker and one single-valued attribute, and only when the value words differ."""

    def __init__(self, *, duplicate: float = 0.93, related: float = 0.3, cued: float = 0.12) -> None:
        self.duplicate = duplicate
        self.related = related
        self.cued = cued

    def decide(self, new: MemoryEntry, candidates: Sequence[tuple[MemoryEntry, float]]) -> Op[list[Decision]]:
        out: list[Decision] = []
        new_attrs = attributes(new.memory)
        for old, score in candidates:
            if old.id == new.id or not old.is_current:
                continue
            if old.memory.rstrip().endswith("?") or new.memory.rstrip().endswith("?"):
                continue  # a question asserts nothing to replace, or to replace with
            same_speaker = _who(old) == _who(new)
            if score >= self.duplicate and same_speaker:
                out.append(Decision(old.id, "merge", f"near duplicate (similarity {score:.2f})"))
                continue
            if _who(new) == "assistant":
                continue  # the assistant's replies describe the user's world, not attributes of its own
            shared = new_attrs & attributes(old.memory)
            if not (same_speaker and shared):
                continue
            # A change word ("now", "switched", "moved", "left X for") lets a less similar
            # statement replace the old one; without it the two must be close.
            cue = bool(en.CHANGE.search(new.memory))
            if score < (self.cued if cue else self.related):
                continue
            changed = _values(new) - _values(old)
            if not changed:
                continue
            attr = sorted(shared)[0]
            out.append(
                Decision(
                    old.id,
                    "supersede",
                    f"newer statement about {attr} ({', '.join(sorted(changed)[:4])}); similarity {score:.2f}",
                )
            )
        return out
        yield  # no LLM calls


@dataclass(frozen=True)
class MergeRule:
    """When an LLM's "update" may replace an existing memory's text.

    A small model answers "update" with the NEW memory's text for an EXISTING one it is
    merely related to (Qwen2.5-1.5B replaced "Jon is grateful for the support of Gina and
    his friends" with "Jon is appreciating Gina's words of encouragement"), which would
    wipe what the old one said from the current view. An update applies when the merged
    text still holds ``min_kept`` of the old memory's content words, or states the same
    attribute (``attributes``: residence, job, ...) with a new value, which is what a
    knowledge update is; otherwise both memories stay current.
    """

    min_kept: float = 0.6

    def allows(self, old: str, merged: str) -> bool:
        words = set(textproc.content_words(old))
        if not words or attributes(old) & attributes(merged):
            return True
        return len(words & set(textproc.content_words(merged))) / len(words) >= self.min_kept


class LLMResolver:
    def __init__(
        self, llm: Any, prompts: Optional[Prompts] = None, *, merge: MergeRule = MergeRule(), counts: Any = None
    ) -> None:
        self.llm = llm
        self.prompts = prompts or Prompts()
        self.merge = merge
        self.counts = counts  # repairs.RepairCounts: "updates_refused"

    def messages(self, new: MemoryEntry, candidates: Sequence[tuple[MemoryEntry, float]]) -> list[dict[str, str]]:
        when = lambda e: e.time_stamp.strftime("%Y-%m-%d") if e.time_stamp else "?"  # noqa: E731
        lines = [f"NEW [{new.id}] ({when(new)}): {fold(new.memory)}", "EXISTING:"]
        lines += [f"[{e.id}] ({when(e)}): {fold(e.memory)}" for e, _ in candidates]
        system = self.prompts.system(self.prompts.update_decision)
        system += (
            '\nDecide for every EXISTING memory; answer {"decisions": [{"id": "...", "action": '
            '"update" | "delete" | "ignore", "memory": "merged text or null", "reason": "..."}]}'
        )
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": "Memories (data):\n" + "\n".join(lines)},
        ]

    def decide(self, new: MemoryEntry, candidates: Sequence[tuple[MemoryEntry, float]]) -> Op[list[Decision]]:
        from .llm import complete_json_op

        candidates = [(e, s) for e, s in candidates if e.id != new.id and e.is_current]
        if not candidates:
            return []
        data = yield from complete_json_op(
            self.llm, self.messages(new, candidates), stage="update", validate=lambda d: isinstance(d, dict)
        )
        items = data.get("decisions")
        if items is None and "action" in data:  # a single decision, for a single candidate
            items = [{**data, "id": candidates[0][0].id}]
        known = {e.id: e for e, _ in candidates}
        out = []
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict) or item.get("id") not in known:
                continue  # decisions about ids it was not shown are ignored
            action = str(item.get("action", "ignore")).lower()
            reason = repair_text(str(item.get("reason") or "LLM decision"))[:500]
            if action == "delete":
                out.append(Decision(item["id"], "supersede", reason))
            elif action == "update" and isinstance(item.get("memory"), str) and repair_text(item["memory"]).strip():
                merged = repair_text(item["memory"]).strip()
                if not self.merge.allows(known[item["id"]].memory, merged):
                    if self.counts is not None:
                        self.counts.add("updates_refused")
                    continue
                out.append(Decision(item["id"], "update", reason, memory=merged))
        return out
