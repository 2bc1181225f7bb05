"""The main job, offline: ingest a multi-session conversation, then ask it questions.

    make demo            # or: python examples/demo.py [--store DIR] [--fresh]

No API key, no server: the embedded Qdrant store and the packaged MiniLM. Run it twice
and the second run finds the turns already journaled (the store is never wiped).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from importlib import resources

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from lightmem_core import Hit, LightMemory  # noqa: E402

SHOWN = 5  # memories shown (and judged) per question


def answer_rank(hits: list[Hit], expect: str) -> int | None:
    """The rank of the first hit whose shown line holds the expected answer.

    Judged on ``str(hit)``, the line printed above the verdict (its text is the sentence
    window, what a model reads), so a verdict is always about what the reader sees.
    """
    return next((h.rank for h in hits if expect.lower() in str(h).lower()), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default="./lightmem_data/demo", help="store directory (default: %(default)s)")
    parser.add_argument("--fresh", action="store_true", help="delete the store first")
    args = parser.parse_args()
    console = Console()

    sample = json.loads(resources.files("lightmem_core").joinpath("data/sample_conversation.json").read_text())
    if args.fresh:
        shutil.rmtree(args.store, ignore_errors=True)

    t0 = time.perf_counter()
    memory = LightMemory.from_config(
        {
            # upstream LightMem keys work as they are
            "retrieve_strategy": "hybrid",
            "index_strategy": "hybrid",
            "embedding_retriever": {"model_name": "qdrant", "configs": {"collection_name": "demo", "path": args.store}},
        }
    )
    console.print(
        f"[bold]LightMem demo[/bold] - store {os.path.abspath(args.store)} (opened in {time.perf_counter() - t0:.1f}s)"
    )

    user = sample["user_id"]
    t0 = time.perf_counter()
    turns = entries = skipped = 0
    for session in sample["sessions"]:
        result = memory.add_memory(session["messages"], user_id=user, session_id=session["session_id"])
        turns += len(result.turn_ids)
        skipped += len(result.duplicate_turn_ids)
        entries += len(result.added)
    elapsed = time.perf_counter() - t0
    total = len(memory.get_all(user_id=user, limit=10_000))
    console.print(
        f"ingested {turns} new turns into {entries} entries in {elapsed:.1f}s"
        + (f"; {skipped} turns were already journaled from an earlier run" if skipped else "")
        + f" - {total} entries stored for user {user!r}\n"
    )

    found = 0
    for q in sample["questions"]:
        hits = memory.retrieve(q["question"], limit=SHOWN, user_id=user)
        table = Table(title=q["question"], title_justify="left", show_header=False, box=None, pad_edge=False)
        table.add_column("rank", style="dim", width=3)
        table.add_column("memory")
        table.add_column("found by", style="dim")
        for h in hits:
            table.add_row(str(h.rank), str(h), "+".join(h.retrievers))
        console.print(table)
        rank = answer_rank(hits, q["expect"])
        found += rank is not None
        verdict = f"[green]shown at rank {rank}[/green]" if rank else f"[red]not in the {len(hits)} shown[/red]"
        console.print(f"   expected [bold]{q['expect']}[/bold]: {verdict}\n")
    console.print(f"[bold]{found}/{len(sample['questions'])}[/bold] expected answers among the memories shown.")

    # Every memory can be traced to its turns, and every change is in its history.
    top = memory.retrieve("Where does Maya work now?", limit=1, user_id=user)[0]
    sources = memory.source_turns(top.entry.id, user_id=user)
    console.print(
        f"\nprovenance of the memory shown first for 'Where does Maya work now?' ({top.entry.memory!r}): "
        f"turn {sources[0].id} at {sources[0].time_stamp}"
    )
    console.print(f"history: {[(h.event, h.version) for h in memory.history(top.entry.id, user_id=user)]}")
    other = memory.retrieve("What is the name of Maya's dog?", user_id="someone-else")
    console.print(f"another user asking the same question sees {len(other)} memories.")
    memory.close()


if __name__ == "__main__":
    main()
