"""Browser sessions of the inspector, and the CSRF tokens of their forms.

A browser logs in once with an API key and then carries a session cookie: a random id
signed with a secret drawn when the server starts (HMAC-SHA256), ``HttpOnly`` (no script
reads it), ``SameSite=Strict`` (no other site's page sends it) and ``Path=/ui`` (the REST
API never sees it). The session lives in this process only, so a restart logs everyone
out, and it keeps the key as presented: every request checks that key again, so a
revoked key ends its sessions at once instead of when they expire.

Every form that changes something carries a token derived from the session id with the
same secret, checked on every POST. The login form has no session yet: it is tied to a
short-lived signed nonce cookie instead (double submit), so another site cannot log a
browser into a key of its choosing either.

A request with ``Authorization: Bearer <key>`` needs no cookie and no token: the header
is not an ambient credential (a browser never adds it to a cross-site request by
itself), so there is nothing for a forged form to ride on.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

SESSION_COOKIE = "lm_session"
LOGIN_COOKIE = "lm_login"
COOKIE_PATH = "/ui"


@dataclass
class Session:
    id: str
    presented: Optional[str]  # the key given at login (None: the server has no keys); memory only, never sent back
    created: float = field(default_factory=time.monotonic)
    seen: float = field(default_factory=time.monotonic)


class Sessions:
    """The sessions of one server. Bounded: past ``max_sessions`` the least recently used goes."""

    def __init__(self, *, idle: float = 8 * 3600, lifetime: float = 24 * 3600, max_sessions: int = 10_000) -> None:
        self.idle = idle
        self.lifetime = lifetime
        self.max_sessions = max_sessions
        self._secret = secrets.token_bytes(32)
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def _sign(self, purpose: str, value: str) -> str:
        return hmac.new(self._secret, f"{purpose}\x00{value}".encode(), hashlib.sha256).hexdigest()

    def _signed(self, purpose: str, cookie: Optional[str]) -> Optional[str]:
        """The value of a ``value.signature`` cookie whose signature holds, else None."""
        value, _, signature = (cookie or "").partition(".")
        if not value or not signature or not hmac.compare_digest(signature, self._sign(purpose, value)):
            return None
        return value

    # --- sessions -----------------------------------------------------------------------------
    def create(self, presented: Optional[str]) -> tuple[Session, str]:
        """A new session and its cookie value."""
        session = Session(id=secrets.token_urlsafe(24), presented=presented)
        with self._lock:
            if len(self._sessions) >= self.max_sessions:
                oldest = min(self._sessions.values(), key=lambda s: s.seen)
                self._sessions.pop(oldest.id, None)
            self._sessions[session.id] = session
        return session, f"{session.id}.{self._sign('session', session.id)}"

    def find(self, cookie: Optional[str]) -> Optional[Session]:
        """The live session a cookie names; expired ones are dropped on the way."""
        sid = self._signed("session", cookie)
        if sid is None:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return None
            if now - session.seen > self.idle or now - session.created > self.lifetime:
                self._sessions.pop(sid, None)
                return None
            session.seen = now
        return session

    def drop(self, session: Session) -> None:
        with self._lock:
            self._sessions.pop(session.id, None)

    # --- CSRF -----------------------------------------------------------------------------------
    def csrf(self, session: Session) -> str:
        return self._sign("csrf", session.id)

    def csrf_ok(self, session: Session, token: Optional[str]) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf(session))

    def login_nonce(self) -> tuple[str, str]:
        """(cookie value, form token) of one login form."""
        nonce = secrets.token_urlsafe(16)
        return f"{nonce}.{self._sign('login-cookie', nonce)}", self._sign("login-form", nonce)

    def login_ok(self, cookie: Optional[str], token: Optional[str]) -> bool:
        nonce = self._signed("login-cookie", cookie)
        return nonce is not None and bool(token) and hmac.compare_digest(str(token), self._sign("login-form", nonce))
