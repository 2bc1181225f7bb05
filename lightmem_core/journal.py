"""The SQLite journal: accepted turns, and the history of every change to an entry.

It is what makes "nothing a user told the agent is ever lost" true. A turn is written
here (fsync'd) before ``add_memory`` returns and stays ``pending`` until the entries
made from it are in the store. A change to entries is first recorded as *pending*
history together with everything it writes (its redo record: points, deletes, and
the turns it settles), then applied to the store, then committed. On open, a pending
change is applied again from its redo record and committed, so a crash at any point
of a write -- between two upserts, or after the store write and before the commit --
leaves neither half an update nor turns both stored and pending.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from datetime import datetime
from typing import Any, Iterable, Optional, Sequence

from .errors import StoreError
from .types import HistoryRecord, Message, Scope

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS turns (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    turn_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    agent_id TEXT,
    session_id TEXT,
    role TEXT NOT NULL,
    speaker_id TEXT,
    speaker_name TEXT,
    content TEXT NOT NULL,
    time_stamp TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'pending',
    stage TEXT NOT NULL DEFAULT 'sensory',
    compressed TEXT,
    topic_id INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    accepted_at TEXT NOT NULL,
    UNIQUE (user_id, turn_id)
);
CREATE INDEX IF NOT EXISTS turns_status ON turns (status, user_id);
CREATE INDEX IF NOT EXISTS turns_session ON turns (user_id, session_id, seq);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    change_id TEXT NOT NULL,
    memory_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    agent_id TEXT,
    session_id TEXT,
    event TEXT NOT NULL,
    version INTEGER NOT NULL,
    old_memory TEXT,
    new_memory TEXT,
    reason TEXT,
    actor TEXT NOT NULL,
    created_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    source_ids TEXT NOT NULL DEFAULT '[]',
    UNIQUE (memory_id, version, event)
);
CREATE INDEX IF NOT EXISTS history_memory ON history (memory_id, user_id);
CREATE INDEX IF NOT EXISTS history_state ON history (state);
CREATE TABLE IF NOT EXISTS update_queue (
    entry_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    agent_id TEXT,
    session_id TEXT,
    candidates TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    decided_at TEXT
);
CREATE INDEX IF NOT EXISTS update_queue_status ON update_queue (status, user_id);
CREATE TABLE IF NOT EXISTS change_ops (
    change_id TEXT PRIMARY KEY,
    ops TEXT NOT NULL
);
"""


# (table, column, declaration) of columns newer than the first schema, added on open.
_ADDED_COLUMNS = (("history", "source_ids", "TEXT NOT NULL DEFAULT '[]'"), ("turns", "actor", "TEXT"))


class TurnRow(Message):
    """A journaled turn with its scope and processing state.

    What ``LightMemory.pending()`` and ``source_turns()`` return, exported from
    ``lightmem_core`` so that callers can type and check what they get: a turn as the
    journal keeps it, the source of the entries made from it (provenance) and, while
    pending, why it still waits (``attempts``, ``last_error``).

    ``stage`` is where a pending turn waits: ``sensory`` (accepted, not yet cut into
    topics) or ``short`` (in a closed topic segment, waiting for extraction).
    """

    user_id: str
    stage: str = "sensory"
    compressed: Optional[str] = None
    topic_id: Optional[int] = None
    seq: int = 0
    agent_id: Optional[str] = None
    session_id: Optional[str] = None
    status: str = "pending"
    attempts: int = 0
    last_error: Optional[str] = None
    accepted_at: Optional[datetime] = None
    actor: Optional[str] = None  # who sent it (a server key's name and agent), for the entries' history

    @property
    def scope(self) -> Scope:
        return Scope(user_id=self.user_id, agent_id=self.agent_id, session_id=self.session_id)


def _iso(dt: Optional[datetime]) -> Optional[str]:
    return dt.isoformat() if dt else None


def _history_values(change_id: str, r: HistoryRecord) -> tuple[Any, ...]:
    """A history record's columns, in the order every INSERT INTO history names them
    (change_id, memory_id, user_id, agent_id, session_id, event, version, old_memory,
    new_memory, reason, actor, created_at, source_ids)."""
    return (
        change_id,
        r.memory_id,
        r.user_id,
        r.agent_id,
        r.session_id,
        r.event,
        r.version,
        r.old_memory,
        r.new_memory,
        r.reason,
        r.actor,
        r.created_at.isoformat(),
        json.dumps(r.source_ids),
    )


def _mark_done(db: sqlite3.Connection, done_turns: Iterable[Sequence[str]]) -> None:
    db.executemany(
        "UPDATE turns SET status = 'done', stage = 'done', last_error = NULL WHERE user_id = ? AND turn_id = ?",
        [tuple(t) for t in done_turns],
    )


class Journal:
    def __init__(self, path: str) -> None:
        self.path = path
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._migrate()
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open journal {path}: {exc}") from exc

    def _migrate(self) -> None:
        """Columns added since a journal was created (SQLite adds them in place, with their default)."""
        for table, column, decl in _ADDED_COLUMNS:
            have = {r["name"] for r in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")

    # --- plumbing ------------------------------------------------------------------
    def _tx(self, fn: Any) -> Any:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    out = fn(self._db)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
                return out
            except sqlite3.Error as exc:
                raise StoreError(f"journal write failed: {exc}") from exc

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return list(self._db.execute(sql, args))
            except sqlite3.Error as exc:
                raise StoreError(f"journal read failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- meta ------------------------------------------------------------------------
    def get_meta(self, key: str) -> Optional[str]:
        rows = self._rows("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self._tx(lambda db: db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value)))

    # --- turns -----------------------------------------------------------------------
    def accept_turns(
        self, scope: Scope, messages: Sequence[Message], accepted_at: datetime, actor: Optional[str] = None
    ) -> tuple[list[str], list[str]]:
        """Journal turns durably; a turn id the user already sent is reported, not stored twice."""

        def run(db: sqlite3.Connection) -> tuple[list[str], list[str]]:
            new: list[str] = []
            dup: list[str] = []
            for m in messages:
                cur = db.execute(
                    "INSERT OR IGNORE INTO turns (turn_id, user_id, agent_id, session_id, role, speaker_id,"
                    " speaker_name, content, time_stamp, metadata, accepted_at, actor)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        m.id,
                        scope.user_id,
                        scope.agent_id,
                        scope.session_id,
                        m.role,
                        m.speaker_id,
                        m.speaker_name,
                        m.content,
                        _iso(m.time_stamp),
                        json.dumps(m.metadata, default=str),
                        accepted_at.isoformat(),
                        actor,
                    ),
                )
                (new if cur.rowcount == 1 else dup).append(m.id)
            return new, dup

        return self._tx(run)

    def _turn(self, row: sqlite3.Row) -> TurnRow:
        return TurnRow(
            id=row["turn_id"],
            role=row["role"],
            content=row["content"],
            time_stamp=row["time_stamp"],
            speaker_id=row["speaker_id"],
            speaker_name=row["speaker_name"],
            metadata=json.loads(row["metadata"]),
            user_id=row["user_id"],
            agent_id=row["agent_id"],
            session_id=row["session_id"],
            status=row["status"],
            attempts=row["attempts"],
            last_error=row["last_error"],
            accepted_at=row["accepted_at"],
            stage=row["stage"],
            compressed=row["compressed"],
            topic_id=row["topic_id"],
            seq=row["seq"],
            actor=row["actor"] if "actor" in row.keys() else None,
        )

    # --- buffers -----------------------------------------------------------------------
    @staticmethod
    def _exact_sql(scope: Scope) -> tuple[str, list[Any]]:
        return "user_id = ? AND agent_id IS ? AND session_id IS ?", [scope.user_id, scope.agent_id, scope.session_id]

    @staticmethod
    def _stream_sql(scope: Scope) -> tuple[str, list[Any]]:
        return "user_id = ? AND agent_id IS ?", [scope.user_id, scope.agent_id]

    def buffer(self, scope: Scope, stage: str) -> list[TurnRow]:
        """Pending turns of the scope's stream (its user and agent, every session) in one
        buffer stage, oldest first.

        Buffers are per stream, not per session, so one extraction call can cover the end
        of one session and the start of the next: a chat split into many short sessions
        would otherwise cost a call per session. Each turn keeps its own session id.
        """
        sql, args = self._stream_sql(scope)
        rows = self._rows(
            f"SELECT * FROM turns WHERE status = 'pending' AND stage = ? AND {sql} ORDER BY seq", [stage, *args]
        )
        return [self._turn(r) for r in rows]

    def buffer_size(self, scope: Scope) -> int:
        sql, args = self._stream_sql(scope)
        return int(self._rows(f"SELECT COUNT(*) AS n FROM turns WHERE status = 'pending' AND {sql}", args)[0]["n"])

    def pending_scopes(self) -> list[Scope]:
        """The streams (user, agent) with pending turns."""
        rows = self._rows("SELECT DISTINCT user_id, agent_id FROM turns WHERE status = 'pending'")
        return [Scope(user_id=r["user_id"], agent_id=r["agent_id"]) for r in rows]

    def turn_before(self, scope: Scope, seq: int) -> Optional[TurnRow]:
        sql, args = self._exact_sql(scope)
        rows = self._rows(f"SELECT * FROM turns WHERE seq < ? AND {sql} ORDER BY seq DESC LIMIT 1", [seq, *args])
        return self._turn(rows[0]) if rows else None

    def set_compressed(self, user_id: str, items: Sequence[tuple[str, str]]) -> None:
        self._tx(
            lambda db: db.executemany(
                "UPDATE turns SET compressed = ? WHERE user_id = ? AND turn_id = ?", [(t, user_id, i) for i, t in items]
            )
        )

    def close_segments(self, user_id: str, segments: Sequence[Sequence[str]]) -> None:
        """Move whole topic segments from the sensory to the short-term buffer, with new topic ids."""

        def run(db: sqlite3.Connection) -> None:
            (top,) = db.execute(
                "SELECT COALESCE(MAX(topic_id), -1) FROM turns WHERE user_id = ?", (user_id,)
            ).fetchone()
            for n, ids in enumerate(segments, start=top + 1):
                db.executemany(
                    "UPDATE turns SET stage = 'short', topic_id = ? WHERE user_id = ? AND turn_id = ?",
                    [(n, user_id, i) for i in ids],
                )

        self._tx(run)

    def pending_turns(self, scope: Optional[Scope] = None) -> list[TurnRow]:
        if scope is None:
            rows = self._rows("SELECT * FROM turns WHERE status = 'pending' ORDER BY seq")
        else:
            sql, args = self._scope_sql(scope)
            rows = self._rows(f"SELECT * FROM turns WHERE status = 'pending' AND {sql} ORDER BY seq", args)
        return [self._turn(r) for r in rows]

    def get_turns(self, scope: Scope, turn_ids: Iterable[str]) -> list[TurnRow]:
        ids = list(dict.fromkeys(turn_ids))
        if not ids:
            return []
        sql, args = self._scope_sql(scope)
        marks = ",".join("?" * len(ids))
        rows = self._rows(f"SELECT * FROM turns WHERE turn_id IN ({marks}) AND {sql} ORDER BY seq", [*ids, *args])
        return [self._turn(r) for r in rows]

    def neighbour_turns(self, scope: Scope, turn_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """Per turn, the turns just before and after it in its own session, in the order they
        were accepted, whatever other sessions' turns came in between (a server takes many
        users' turns at once)."""
        ids = list(dict.fromkeys(turn_ids))
        if not ids:
            return {}
        sql, args = self._scope_sql(scope)
        marks = ",".join("?" * len(ids))
        same = "p.user_id = t.user_id AND p.agent_id IS t.agent_id AND p.session_id IS t.session_id"
        rows = self._rows(
            f"SELECT turn_id,"
            f" (SELECT p.turn_id FROM turns p WHERE {same} AND p.seq < t.seq ORDER BY p.seq DESC LIMIT 1) AS prev_turn,"
            f" (SELECT p.turn_id FROM turns p WHERE {same} AND p.seq > t.seq ORDER BY p.seq LIMIT 1) AS next_turn"
            f" FROM turns t WHERE turn_id IN ({marks}) AND {sql}",
            [*ids, *args],
        )
        return {r["turn_id"]: tuple(n for n in (r["prev_turn"], r["next_turn"]) if n is not None) for r in rows}

    def recent_turns(self, scope: Scope, limit: int) -> list[TurnRow]:
        sql, args = self._scope_sql(scope)
        rows = self._rows(f"SELECT * FROM turns WHERE {sql} ORDER BY seq DESC LIMIT ?", [*args, limit])
        return [self._turn(r) for r in reversed(rows)]

    def mark_failed(self, user_id: str, turn_ids: Sequence[str], error: str) -> None:
        def run(db: sqlite3.Connection) -> None:
            for t in turn_ids:
                db.execute(
                    "UPDATE turns SET attempts = attempts + 1, last_error = ? WHERE user_id = ? AND turn_id = ?",
                    (error[:2000], user_id, t),
                )

        self._tx(run)

    @staticmethod
    def _scope_sql(scope: Scope) -> tuple[str, list[Any]]:
        sql, args = ["user_id = ?"], [scope.user_id]
        if scope.agent_id is not None:
            sql.append("agent_id = ?")
            args.append(scope.agent_id)
        if scope.session_id is not None:
            sql.append("session_id = ?")
            args.append(scope.session_id)
        return " AND ".join(sql), args

    # --- changes and history -------------------------------------------------------------
    def begin_change(self, records: Sequence[HistoryRecord], ops: Optional[dict[str, Any]] = None) -> str:
        """Record a change as pending, with its redo record (``ops``, JSON-able) if given."""
        change_id = uuid.uuid4().hex

        def run(db: sqlite3.Connection) -> None:
            for r in records:
                db.execute(
                    "INSERT OR REPLACE INTO history (change_id, memory_id, user_id, agent_id, session_id,"
                    " event, version, old_memory, new_memory, reason, actor, created_at, source_ids, state)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,"
                    " COALESCE((SELECT state FROM history WHERE memory_id = ? AND version = ? AND event = ?"
                    " AND state = 'committed'), 'pending'))",
                    (*_history_values(change_id, r), r.memory_id, r.version, r.event),
                )
            if ops is not None:
                db.execute("INSERT INTO change_ops (change_id, ops) VALUES (?, ?)", (change_id, json.dumps(ops)))

        self._tx(run)
        return change_id

    def change_ops(self, change_id: str) -> Optional[dict[str, Any]]:
        rows = self._rows("SELECT ops FROM change_ops WHERE change_id = ?", (change_id,))
        return json.loads(rows[0]["ops"]) if rows else None

    def finish_change(self, change_id: str) -> None:
        """Commit the change's history and settle the turns its redo record names, in one transaction."""

        def run(db: sqlite3.Connection) -> None:
            db.execute("UPDATE history SET state = 'committed' WHERE change_id = ?", (change_id,))
            row = db.execute("SELECT ops FROM change_ops WHERE change_id = ?", (change_id,)).fetchone()
            if row is not None:
                _mark_done(db, json.loads(row["ops"]).get("turns", []))
                db.execute("DELETE FROM change_ops WHERE change_id = ?", (change_id,))

        self._tx(run)

    def mark_turns_done(self, done_turns: Sequence[tuple[str, str]]) -> None:
        self._tx(lambda db: _mark_done(db, done_turns))

    def abandon_change(self, change_id: str) -> None:
        self._tx(
            lambda db: (
                db.execute("DELETE FROM history WHERE change_id = ? AND state = 'pending'", (change_id,)),
                db.execute("DELETE FROM change_ops WHERE change_id = ?", (change_id,)),
            )
        )

    def pending_changes(self) -> dict[str, list[HistoryRecord]]:
        out: dict[str, list[HistoryRecord]] = {}
        for row in self._rows("SELECT * FROM history WHERE state = 'pending' ORDER BY seq"):
            out.setdefault(row["change_id"], []).append(self._record(row))
        for row in self._rows("SELECT change_id FROM change_ops"):
            out.setdefault(row["change_id"], [])  # history already committed, turns maybe not settled
        return out

    @staticmethod
    def _record(row: sqlite3.Row) -> HistoryRecord:
        return HistoryRecord(
            memory_id=row["memory_id"],
            event=row["event"],
            version=row["version"],
            old_memory=row["old_memory"],
            new_memory=row["new_memory"],
            reason=row["reason"],
            actor=row["actor"],
            created_at=row["created_at"],
            user_id=row["user_id"],
            agent_id=row["agent_id"],
            session_id=row["session_id"],
            source_ids=json.loads(row["source_ids"] or "[]"),
        )

    def history(self, scope: Scope, memory_id: str) -> list[HistoryRecord]:
        sql, args = self._scope_sql(scope)
        rows = self._rows(
            f"SELECT * FROM history WHERE memory_id = ? AND state = 'committed' AND {sql} ORDER BY seq",
            [memory_id, *args],
        )
        return [self._record(r) for r in rows]

    def reset(self) -> None:
        self._tx(
            lambda db: (
                db.execute("DELETE FROM turns"),
                db.execute("DELETE FROM history"),
                db.execute("DELETE FROM update_queue"),
                db.execute("DELETE FROM change_ops"),
            )
        )

    # --- offline update queue ---------------------------------------------------------
    def queue_put(self, items: Sequence[tuple[str, Scope, list[tuple[str, float]]]]) -> None:
        """(Re)queue entries with their candidates; a rebuilt queue starts over."""
        self._tx(
            lambda db: db.executemany(
                "INSERT OR REPLACE INTO update_queue (entry_id, user_id, agent_id, session_id, candidates, status)"
                " VALUES (?,?,?,?,?, 'pending')",
                [(e, sc.user_id, sc.agent_id, sc.session_id, json.dumps(c)) for e, sc, c in items],
            )
        )

    def queue_pending(self, user_id: Optional[str] = None) -> list[tuple[str, Scope, list[tuple[str, float]]]]:
        sql = "SELECT * FROM update_queue WHERE status = 'pending'" + (" AND user_id = ?" if user_id else "")
        rows = self._rows(sql + " ORDER BY rowid", [user_id] if user_id else [])
        return [
            (
                r["entry_id"],
                Scope(user_id=r["user_id"], agent_id=r["agent_id"], session_id=r["session_id"]),
                [tuple(c) for c in json.loads(r["candidates"])],
            )
            for r in rows
        ]

    def queue_done(self, entry_id: str) -> None:
        self._tx(
            lambda db: db.execute(
                "UPDATE update_queue SET status = 'done', decided_at = ? WHERE entry_id = ?",
                (datetime.utcnow().isoformat(), entry_id),
            )
        )

    def queue_drop(self, ids: Sequence[str]) -> None:
        """Deleted entries leave every queue: as a queued entry, and as a candidate."""
        if not ids:
            return
        gone = set(ids)

        def run(db: sqlite3.Connection) -> None:
            db.executemany("DELETE FROM update_queue WHERE entry_id = ?", [(i,) for i in gone])
            for row in db.execute("SELECT entry_id, candidates FROM update_queue WHERE status = 'pending'").fetchall():
                cands = json.loads(row["candidates"])
                kept = [c for c in cands if c[0] not in gone]
                if len(kept) != len(cands):
                    db.execute(
                        "UPDATE update_queue SET candidates = ? WHERE entry_id = ?", (json.dumps(kept), row["entry_id"])
                    )

        self._tx(run)

    # --- export / import -----------------------------------------------------------------
    def all_users(self) -> list[str]:
        """Every user with turns or history (entries always have history)."""
        rows = self._rows("SELECT user_id FROM turns UNION SELECT user_id FROM history ORDER BY user_id")
        return [r["user_id"] for r in rows]

    def export_turns(self, user_id: str) -> list[TurnRow]:
        return [self._turn(r) for r in self._rows("SELECT * FROM turns WHERE user_id = ? ORDER BY seq", (user_id,))]

    def export_history(self, user_id: str) -> list[HistoryRecord]:
        rows = self._rows("SELECT * FROM history WHERE user_id = ? AND state = 'committed' ORDER BY seq", (user_id,))
        return [self._record(r) for r in rows]

    def _insert_new(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Insert rows in one transaction; rows already there (by key) are kept. Returns how many were new."""
        return self._tx(lambda db: sum(db.execute(sql, row).rowcount for row in rows))

    def import_turns(self, turns: Sequence[TurnRow]) -> int:
        """Store turns verbatim, processing state included."""
        return self._insert_new(
            "INSERT OR IGNORE INTO turns (turn_id, user_id, agent_id, session_id, role, speaker_id, speaker_name,"
            " content, time_stamp, metadata, status, stage, compressed, topic_id, attempts, last_error, accepted_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    t.id,
                    t.user_id,
                    t.agent_id,
                    t.session_id,
                    t.role,
                    t.speaker_id,
                    t.speaker_name,
                    t.content,
                    _iso(t.time_stamp),
                    json.dumps(t.metadata, default=str),
                    t.status,
                    t.stage,
                    t.compressed,
                    t.topic_id,
                    t.attempts,
                    t.last_error,
                    _iso(t.accepted_at) or datetime.utcnow().isoformat(),
                )
                for t in turns
            ],
        )

    def import_history(self, records: Sequence[HistoryRecord]) -> int:
        """Store history records verbatim, as committed."""
        return self._insert_new(
            "INSERT OR IGNORE INTO history (change_id, memory_id, user_id, agent_id, session_id, event, version,"
            " old_memory, new_memory, reason, actor, created_at, source_ids, state)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?, 'committed')",
            [_history_values("import", r) for r in records],
        )

    def stats(self) -> dict[str, Any]:
        rows = self._rows("SELECT status, stage, COUNT(*) AS n FROM turns GROUP BY status, stage")
        return {f"{r['status']}:{r['stage']}" if r["status"] == "pending" else r["status"]: r["n"] for r in rows}
