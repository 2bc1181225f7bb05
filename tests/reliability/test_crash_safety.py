"""Crash safety: SIGKILL a writer at random points; nothing it acknowledged is lost or doubled.

A child process (``crash_child.py``) adds turns to an embedded store with the write
path buffering (an LLM configured, ``extract_tokens`` small enough that extraction
runs every few calls) against the loopback LLM server, which this test runs. The test
kills it with SIGKILL at random moments -- mostly while it is adding, sometimes while
it is still starting or recovering -- and after every kill opens the store itself and
checks, for every turn the child recorded as acknowledged:

* it is pending in the journal, or cited by exactly one stored entry (the loopback
  server answers one fact per turn line, so a turn cited twice is a duplicate);
* no turn is both pending and stored, no stored entry lacks its committed ADD history,
  and no change is left half-done in the journal.

At the end a flush must leave nothing pending and every acknowledged turn stored once.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from lightmem_core import LightMemory
from tests.fake_llm import FakeLLMServer
from tests.reliability.conftest import remote_config

ROOT = Path(__file__).resolve().parents[2]
USERS = ["ana", "ben", "caro"]


def read_acked(path: Path) -> dict[str, set[str]]:
    """Acknowledged turns per user; a torn last line (killed mid-write) promised nothing."""
    acked: dict[str, set[str]] = defaultdict(set)
    if not path.exists():
        return acked
    data = path.read_text()
    lines = data.split("\n")
    for line in lines[:-1]:  # the part after the last newline is incomplete
        user, turn = line.split(" ")
        acked[user].add(turn)
    return acked


def journal_rows(store: Path, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(f"file:{store / 'lightmem_journal.sqlite'}?mode=ro", uri=True)
    try:
        return list(db.execute(sql))
    finally:
        db.close()


def committed_entries(store: Path) -> dict[str, set[str]]:
    """Per user, the entries the committed history says exist (last event not DELETE)."""
    last: dict[tuple[str, str], str] = {}
    for memory_id, user, event in journal_rows(
        store, "SELECT memory_id, user_id, event FROM history WHERE state = 'committed' ORDER BY seq"
    ):
        last[(user, memory_id)] = event
    live: dict[str, set[str]] = defaultdict(set)
    for (user, memory_id), event in last.items():
        if event != "DELETE":
            live[user].add(memory_id)
    return live


def check_store(config: dict[str, Any], acked: dict[str, set[str]], *, final: bool = False) -> dict[str, int]:
    """Open the store as a restarted application would and check the promises held."""
    memory = LightMemory.from_config(config)  # must open cleanly: recovery may not raise
    counts = {"pending": 0, "stored": 0}
    try:
        if final:
            result = memory.flush()
            assert result.error is None, result.error
        live = committed_entries(Path(config["store"]["path"]))
        for user in USERS:
            pending = [t.id for t in memory.pending(user_id=user)]
            assert len(pending) == len(set(pending))
            entries = memory.get_all(user_id=user, limit=10_000, include_superseded=True)
            cited = Counter(s for e in entries for s in e.source_ids)
            twice = sorted(t for t, c in cited.items() if c > 1)
            assert not twice, f"{user}: turns stored twice: {twice[:5]}"
            both = sorted(set(pending) & set(cited))
            assert not both, f"{user}: turns both pending and stored: {both[:5]}"
            lost = sorted(acked.get(user, set()) - set(pending) - set(cited))
            assert not lost, f"{user}: acknowledged turns lost: {lost[:5]}"
            for e in entries:
                events = [h.event for h in memory.history(e.id, user_id=user)]
                assert events and events[0] == "ADD", f"{e.id} has history {events}"
            # and the other way round: what the committed history says exists, the store holds
            assert {e.id for e in entries} == live.get(user, set()), f"{user}: store and history disagree"
            if final:
                assert pending == []
            counts["pending"] += len(pending)
            counts["stored"] += len(cited)
    finally:
        memory.close()
    assert journal_rows(Path(config["store"]["path"]), "SELECT change_id FROM history WHERE state = 'pending'") == []
    return counts


def spawn(settings: dict[str, Any], log: Any) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.crash_child", json.dumps(settings)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )


def wait_ready(proc: subprocess.Popen[str], timeout: float) -> bool:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return bool(ready) and proc.stdout.readline().strip() == "ready"


def run_crashes(
    tmp_path: Path, server: FakeLLMServer, *, kills: int, seed: int, minilm: bool, max_run: float
) -> dict[str, Any]:
    rng = random.Random(seed)
    # A little latency on the LLM and embedding answers widens the windows in which a
    # kill lands between the store write and the journal commit.
    server.responder = lambda request: (time.sleep(rng.uniform(0.0, 0.02)), None)[1]
    store = tmp_path / "store"
    acked_file = tmp_path / "acked.txt"
    config = remote_config(server, store, extract_tokens=60)
    if minilm:
        config.pop("embedder")  # the packaged MiniLM, loaded by the child on every start
    stats: dict[str, Any] = {"early_kills": 0, "checks": []}
    with open(tmp_path / "child.log", "w") as log:
        for run in range(kills):
            settings = {
                "seed": seed * 1000 + run,
                "run": run,
                "users": USERS,
                "acked": str(acked_file),
                "config": {**config, "update": "online" if run % 3 == 2 else "offline"},
            }
            proc = spawn(settings, log)
            try:
                if run % 5 == 4:
                    # Now and then kill during start-up or recovery, whatever stage it is in.
                    time.sleep(rng.uniform(0.0, 1.5 if not minilm else 6.0))
                    stats["early_kills"] += 1
                else:
                    before = acked_file.stat().st_size if acked_file.exists() else 0
                    assert wait_ready(proc, 120), f"child {run} did not start; see {tmp_path / 'child.log'}"
                    # From its first acknowledged call on (the first one loads the HTTP
                    # client and tokenizer), any moment is as good as any other.
                    deadline = time.monotonic() + 30
                    while (acked_file.stat().st_size if acked_file.exists() else 0) == before:
                        assert time.monotonic() < deadline and proc.poll() is None, f"child {run} acknowledged nothing"
                        time.sleep(0.005)
                    time.sleep(rng.uniform(0.0, max_run))
                assert proc.poll() is None, f"child {run} exited by itself (code {proc.returncode}); see child.log"
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            stats["checks"].append(check_store(settings["config"], read_acked(acked_file)))
    acked = read_acked(acked_file)
    stats["acked"] = sum(len(v) for v in acked.values())
    stats["final"] = check_store(config, acked, final=True)
    stats["final_stored"] = stats["final"]["stored"]
    return stats


def test_sigkill_never_loses_or_doubles_acknowledged_turns(tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    stats = run_crashes(tmp_path, fake_llm, kills=20, seed=11, minilm=False, max_run=0.7)
    # The kills must have hit a store that was actually working: turns acknowledged,
    # extracted, and (at some kills) still buffered.
    assert stats["acked"] >= 100, stats
    assert any(c["pending"] for c in stats["checks"]) and any(c["stored"] for c in stats["checks"])
    assert stats["final_stored"] >= stats["acked"]
    assert fake_llm.calls["chat"] >= 10


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_sigkill_many_times_with_the_real_embedder(tmp_path: Path, fake_llm: FakeLLMServer) -> None:
    stats = run_crashes(tmp_path, fake_llm, kills=60, seed=23, minilm=True, max_run=2.0)
    assert stats["acked"] >= 200, stats
    assert stats["final_stored"] >= stats["acked"]


@pytest.mark.parametrize("point", ["commit", "second_upsert"])
def test_a_kill_inside_one_write_is_redone_on_open(tmp_path: Path, fake_llm: FakeLLMServer, point: str) -> None:
    """A write that merges into an old entry and adds a new one, killed half-way, is
    finished on the next open: every turn stored once and none left pending, the merge
    in the entry and in its history. (Before redo records, the ``commit`` kill left the
    turns both stored and pending, and the ``second_upsert`` kill left the new entry
    stored with no history, to be extracted again.)"""
    store = tmp_path / "store"
    config = remote_config(fake_llm, store, update="online")
    settings = {"point": point, "config": config}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.reliability.crash_point_child", json.dumps(settings)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert journal_rows(store, "SELECT change_id FROM history WHERE state = 'pending'"), "the kill missed the write"

    memory = LightMemory.from_config(config)
    try:
        assert memory.pending(user_id="ana") == []
        entries = memory.get_all(user_id="ana", limit=100, include_superseded=True)
        cited = Counter(s for e in entries for s in e.source_ids)
        assert cited == Counter({"a": 1, "b": 1, "c": 1})
        merged = next(e for e in entries if "a" in e.source_ids)
        assert merged.source_ids == ["a", "b"] and merged.version == 2
        assert [h.event for h in memory.history(merged.id, user_id="ana")] == ["ADD", "MERGE"]
        assert {e.id for e in entries} == committed_entries(store)["ana"]
    finally:
        memory.close()
    assert journal_rows(store, "SELECT change_id FROM history WHERE state = 'pending'") == []
    assert journal_rows(store, "SELECT change_id FROM change_ops") == []


def test_a_redo_the_store_refuses_does_not_keep_the_store_from_opening(
    tmp_path: Path, fake_llm: FakeLLMServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A redo record the store cannot take (here: a vector of the wrong size) is logged and
    dropped; the store opens with what it had."""
    store = tmp_path / "store"
    config = remote_config(fake_llm, store, llm=False)
    memory = LightMemory.from_config(config)
    memory.add_memory("Maya keeps the violin in the attic.", user_id="ana")
    before = memory.get_all(user_id="ana")
    memory.close()
    db = sqlite3.connect(store / "lightmem_journal.sqlite")
    bad = {
        "collection": "entries",
        "scope": {"user_id": "ana", "agent_id": None, "session_id": None},
        "deletes": [],
        "turns": [],
        "upserts": [
            [
                {"user_id": "ana", "agent_id": None, "session_id": None},
                [
                    {
                        "id": "00000000-0000-0000-0000-000000000001",
                        "dense": "AACAPw==",
                        "sparse": None,
                        "payload": {"user_id": "ana", "agent_id": None, "session_id": None, "memory": "x"},
                    }
                ],
            ]
        ],
    }
    with db:
        db.execute(
            "INSERT INTO history (change_id, memory_id, user_id, event, version, actor, created_at, state)"
            " VALUES ('bad', '00000000-0000-0000-0000-000000000001', 'ana', 'ADD', 1, 'extract',"
            " '2025-01-01', 'pending')"
        )
        db.execute("INSERT INTO change_ops VALUES ('bad', ?)", (json.dumps(bad),))
    db.close()
    with caplog.at_level("ERROR"):
        memory = LightMemory.from_config(config)
    try:
        assert [e.id for e in memory.get_all(user_id="ana")] == [e.id for e in before]
        assert "cannot redo pending change bad" in caplog.text
    finally:
        memory.close()
    assert journal_rows(store, "SELECT change_id FROM change_ops") == []
    assert journal_rows(store, "SELECT change_id FROM history WHERE state = 'pending'") == []


def test_a_journal_from_before_redo_records_is_settled_by_checking_the_store(
    tmp_path: Path, fake_llm: FakeLLMServer
) -> None:
    """Pending changes written by an older version carry no redo record: an extraction is
    rolled back (its entry removed, its turns left to extract again), an edit the store
    does not show is dropped, one it shows is committed."""
    store = tmp_path / "store"
    config = remote_config(fake_llm, store, llm=False)
    memory = LightMemory.from_config(config)
    memory.add_memory("Maya keeps the violin in the attic.", user_id="ana")
    kept = memory.get_all(user_id="ana")[0]
    orphan = "00000000-0000-0000-0000-00000000000a"
    # the entry of the crashed extraction did reach the store (written directly: no journal)
    from lightmem_core.indexing import to_point

    ghost = kept.model_copy(update={"id": orphan, "memory": "ana: a half-written fact."})
    memory._store.upsert(ghost.scope, [to_point(ghost, memory.embedder.embed([ghost.memory])[0], None)])
    assert len(memory.get_all(user_id="ana")) == 2
    memory.close()

    def pending(change: str, memory_id: str, event: str, version: int, actor: str) -> tuple[Any, ...]:
        return (change, memory_id, "ana", event, version, actor, "2025-01-01", "pending")

    db = sqlite3.connect(store / "lightmem_journal.sqlite")
    with db:
        db.executemany(
            "INSERT INTO history (change_id, memory_id, user_id, event, version, actor, created_at, state)"
            " VALUES (?,?,?,?,?,?,?,?)",
            [
                pending("extract", orphan, "ADD", 1, "extract"),
                pending("unseen", kept.id, "UPDATE", kept.version + 3, "user"),
                pending("seen", kept.id, "UPDATE", kept.version, "user"),
            ],
        )
    db.close()
    memory = LightMemory.from_config(config)
    try:
        assert [e.id for e in memory.get_all(user_id="ana")] == [kept.id]
        events = [(h.event, h.version) for h in memory.history(kept.id, user_id="ana")]
        assert ("UPDATE", kept.version + 3) not in events and ("UPDATE", kept.version) in events
    finally:
        memory.close()
    assert journal_rows(store, "SELECT change_id FROM history WHERE state = 'pending'") == []
