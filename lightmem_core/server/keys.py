"""API keys: who may read and write which scopes of a served memory.

A key is shown once, when it is made; only a salted scrypt hash of its secret is kept
(``keys.sqlite`` beside the store), and a presented key is checked in constant time.
A key names the users it may write (and read), the users it may only read (shared
scopes such as ``team:apollo``), the agents it acts as, whether it is read-only, or that
it is an admin (every scope). A request's scope outside its key is refused; a memory id
of another scope is simply not found, as the store enforces scope on every read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional, Sequence

from ..errors import AuthError, InvalidInputError

KEY_PREFIX = "lmk"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}  # ~40 ms a check here; a verified key is then remembered


@dataclass(frozen=True)
class Key:
    """What one key may do. ``users``: read and write; ``read_users``: read only;
    ``agents``: the agent ids it acts as (None: any); ``admin``: every scope."""

    id: str
    name: str
    users: tuple[str, ...] = ()
    read_users: tuple[str, ...] = ()
    agents: Optional[tuple[str, ...]] = None
    read_only: bool = False
    admin: bool = False
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    revoked_at: Optional[str] = None

    def readable(self) -> Optional[tuple[str, ...]]:
        """The users it may read (None: all)."""
        return None if self.admin else tuple(dict.fromkeys([*self.users, *self.read_users]))

    def check(self, user_id: str, agent_id: Optional[str], *, write: bool) -> None:
        if self.admin:
            if write and self.read_only:
                raise AuthError(403, f"key {self.name!r} is read-only")
            return
        if write and (self.read_only or user_id not in self.users):
            what = "is read-only" if self.read_only else f"may not write the scope of user {user_id!r}"
            raise AuthError(403, f"key {self.name!r} {what}")
        if user_id not in self.users and user_id not in self.read_users:
            raise AuthError(403, f"key {self.name!r} may not read the scope of user {user_id!r}")
        if self.agents is not None and agent_id is not None and agent_id not in self.agents:
            raise AuthError(403, f"key {self.name!r} does not act as agent {agent_id!r}")

    def default_agent(self, agent_id: Optional[str]) -> Optional[str]:
        """The agent a request acts as: the one it names, or the key's only agent."""
        if agent_id is None and self.agents is not None and len(self.agents) == 1:
            return self.agents[0]
        return agent_id

    def actor(self, agent_id: Optional[str]) -> str:
        return f"key:{self.name}" + (f"/{agent_id}" if agent_id else "")

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "users": list(self.users),
            "read_users": list(self.read_users),
            "agents": None if self.agents is None else list(self.agents),
            "read_only": self.read_only,
            "admin": self.admin,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


ADMIN = Key(id="local", name="local-admin", admin=True)  # the single-user token (LIGHTMEM_MCP_TOKEN), and no-key stdio


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, **_SCRYPT)


def _ids(values: Optional[Sequence[str]], what: str) -> tuple[str, ...]:
    out = []
    for v in values or ():
        v = str(v).strip()
        if not v or "," in v or any(ord(c) < 32 for c in v):
            raise InvalidInputError(what, f"bad id {v!r}")
        out.append(v)
    return tuple(dict.fromkeys(out))


class KeyStore:
    """Keys of one served memory, in a small SQLite file of their own (several processes
    may read it: the CLI makes keys while the server runs)."""

    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, salt BLOB NOT NULL,"
            " hash BLOB NOT NULL, grants TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT)"
        )
        self._verified: dict[bytes, str] = {}  # digest of a presented key -> key id, after one scrypt check

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def create(
        self,
        *,
        name: Optional[str] = None,
        users: Sequence[str] = (),
        read_users: Sequence[str] = (),
        agents: Optional[Sequence[str]] = None,
        read_only: bool = False,
        admin: bool = False,
    ) -> tuple[Key, str]:
        """A new key and its secret, shown this once."""
        users_t, read_t = _ids(users, "users"), _ids(read_users, "read_users")
        if not admin and not users_t and not read_t:
            raise InvalidInputError("users", "a key needs --users, --read-users or --admin")
        key_id = secrets.token_hex(6)
        secret = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        key = Key(
            id=key_id,
            name=name or key_id,
            users=users_t,
            read_users=read_t,
            agents=None if agents is None else _ids(agents, "agents"),
            read_only=read_only,
            admin=admin,
        )
        salt = secrets.token_bytes(16)
        grants = {k: v for k, v in key.public().items() if k in ("users", "read_users", "agents", "read_only", "admin")}
        with self._lock:
            self._db.execute(
                "INSERT INTO keys VALUES (?,?,?,?,?,?,NULL)",
                (key.id, key.name, salt, _hash(secret, salt), json.dumps(grants), key.created_at),
            )
        return key, secret

    def _key(self, row: sqlite3.Row) -> Key:
        g = json.loads(row["grants"])
        return Key(
            id=row["id"],
            name=row["name"],
            users=tuple(g.get("users", ())),
            read_users=tuple(g.get("read_users", ())),
            agents=None if g.get("agents") is None else tuple(g["agents"]),
            read_only=bool(g.get("read_only")),
            admin=bool(g.get("admin")),
            created_at=row["created_at"],
            revoked_at=row["revoked_at"],
        )

    def list(self) -> list[Key]:
        with self._lock:
            return [self._key(r) for r in self._db.execute("SELECT * FROM keys ORDER BY created_at")]

    def any_active(self) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM keys WHERE revoked_at IS NULL LIMIT 1").fetchone() is not None

    def revoke(self, key_id: str) -> Key:
        with self._lock:
            cur = self._db.execute(
                "UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (datetime.now(timezone.utc).isoformat(), key_id),
            )
            if cur.rowcount == 0:
                raise InvalidInputError("id", f"no active key {key_id!r}")
            row = self._db.execute("SELECT * FROM keys WHERE id = ?", (key_id,)).fetchone()
        return self._key(row)

    def verify(self, presented: Optional[str]) -> Key:
        """The key a request presents, or ``AuthError(401)``. Revocation is read on every
        call (one indexed row), so a revoked key stops at once, also in a running server."""
        if not presented:
            raise AuthError(401, "an API key is required (Authorization: Bearer <key>)")
        parts = presented.split("_")
        if len(parts) < 3 or parts[0] != KEY_PREFIX:
            raise AuthError(401, "unknown API key")
        key_id = parts[1]
        with self._lock:
            row = self._db.execute("SELECT * FROM keys WHERE id = ?", (key_id,)).fetchone()
        if row is None or row["revoked_at"] is not None:
            raise AuthError(401, "unknown or revoked API key")
        digest = hashlib.sha256(presented.encode("utf-8", "replace")).digest()
        if self._verified.get(digest) != key_id:
            if not hmac.compare_digest(_hash(presented, row["salt"]), row["hash"]):
                raise AuthError(401, "unknown API key")
            self._verified[digest] = key_id
        return self._key(row)


def keys_path(store_path: Optional[str]) -> str:
    return os.path.join(os.path.abspath(os.path.expanduser(store_path or "./lightmem_data")), "keys.sqlite")
