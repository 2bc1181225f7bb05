"""The inspector's pages: what a key may read of a served memory, and the three corrections.

Every read and write goes through the server's own ``_Server.call`` with the operation of
``api.OPERATIONS``, exactly as a REST request would: the same scope checks, the same
defaults from the key, the same ``actor`` in history. A scope the key may not read is
answered like a memory that does not exist, with the same page byte for byte, so the
inspector cannot be used to learn which ids or users exist elsewhere.

No page loads a whole scope: listings are one cursor page, counts and the chart come
from the store's indexes (``counts.py``), and the pending list is cut at ``PENDING_ROWS``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator, MutableMapping, Optional
from urllib.parse import parse_qsl, quote, urlencode

from ...errors import AuthError, ConflictError, InvalidInputError, LightMemError, NotFoundError
from ...timeparse import format_time, from_epoch, to_epoch
from ...types import HistoryRecord, MemoryEntry, Scope
from .. import api
from ..keys import Key
from .auth import COOKIE_PATH, LOGIN_COOKIE, SESSION_COOKIE, Session, Sessions
from .counts import StoreReads, entry_filter
from .svg import Bin, chart

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
PAGE_SIZE = 50
PENDING_ROWS = 200
SCOPES_PAGE = 25
USERS_TTL = 10.0
CHART_TTL = 15.0
MAX_BINS = 62
MAX_CHAIN = 20
ENTRY_TYPES = ("fact", "relation", "summary")
STRATEGIES = ("hybrid", "embedding", "context")
DAY = 86400.0

# Content-Security-Policy: scripts and styles from this server only, never inline; no
# framing; forms post back here only. Sent with every response under /ui.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # "no-referrer" would make the browser send "Origin: null" on POST
    (b"cross-origin-opener-policy", b"same-origin"),
]
NOT_FOUND = "Nothing here: no such memory or scope among those this key can read."
CSRF_REFUSED = "This form is not from a page of this session (its CSRF token is missing or wrong). Reload and retry."
DONE = {
    "edited": "Saved. The earlier text is kept in the history below.",
    "deleted": "Deleted. Its history keeps a DELETE record.",
    "restored": "Restored as the current value. The history records it.",
}


class NotVisible(Exception):
    """A scope or memory the key may not read: answered exactly as one that does not exist."""


class Refused(Exception):
    """A request answered with an error page of its own status (403 read-only, 409 changed)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


@dataclass
class Viewer:
    key: Key
    session: Optional[Session]  # None: the request came with a Bearer header
    csrf: Optional[str]

    def can_write(self, user_id: str) -> bool:
        k = self.key
        return not k.read_only and (k.admin or user_id in k.users)

    @property
    def label(self) -> str:
        k = self.key
        what = "admin" if k.admin else "key"
        return f"{what} {k.name}" + (" (read-only)" if k.read_only else "")


# --- small helpers the templates use --------------------------------------------------------------
def url(path: str, **params: Any) -> str:
    """A link inside the inspector; empty parameters are left out. User data only ever
    lands in the query string, percent-encoded, so no stored value can become a scheme."""
    query = {k: v for k, v in params.items() if v not in (None, "", False)}
    return path + ("?" + urlencode(query, quote_via=quote) if query else "")


def memory_url(entry: MemoryEntry, action: str = "") -> str:
    """A memory's page (or one of its forms: ``action`` "edit", "delete", "restore")."""
    return url(f"/ui/memory/{quote(entry.id, safe='')}" + (f"/{action}" if action else ""), user=entry.user_id)


def show(value: Any) -> str:
    """A metadata value as plain text (escaped by the template like everything else)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def day_of(entry: MemoryEntry) -> str:
    return (entry.time_stamp or entry.recorded_at).strftime("%Y-%m-%d")


def word_diff(old: Optional[str], new: Optional[str]) -> list[tuple[str, str]]:
    """(same|del|ins, text) pieces between two versions. Word by word: a memory is a sentence or
    two, and a changed word read as a run of changed characters is noise."""
    a = re.findall(r"\S+|\s+", old or "")
    b = re.findall(r"\S+|\s+", new or "")
    out: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(("same", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("del", "".join(a[i1:i2])))
        if j2 > j1:
            out.append(("ins", "".join(b[j1:j2])))
    return out


def time_range(since: str, until: str) -> tuple[Optional[datetime], Optional[datetime]]:
    """The form's dates as [since, until) in UTC wall time: a date ``until`` covers its whole day."""

    def parse(value: str, name: str, end: bool) -> Optional[datetime]:
        value = value.strip()
        if not value:
            return None
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                day = datetime.fromisoformat(value)
                return day + timedelta(days=1) if end else day
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInputError(name, f"expected a date (YYYY-MM-DD), got {value!r}") from None
        return dt.astimezone(timezone.utc).replace(tzinfo=None) if dt.tzinfo else dt

    lo, hi = parse(since, "since", False), parse(until, "until", True)
    if lo is not None and hi is not None and hi <= lo:
        raise InvalidInputError("until", "must be after since")
    return lo, hi


def time_filters(lo: Optional[datetime], hi: Optional[datetime]) -> dict[str, Any]:
    bounds = {k: v.isoformat() for k, v in (("gte", lo), ("lt", hi)) if v is not None}
    return {"time_stamp": bounds} if bounds else {}


def safe_next(target: Optional[str]) -> str:
    """Where to go after logging in: a page of the inspector, never another site."""
    if target and target.startswith("/ui/") and "//" not in target and "\\" not in target:
        return target
    return "/ui/"


# --- the ASGI wrapper: headers on every response under /ui --------------------------------------------
class Secured:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/ui/static/")

        async def secured(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"cache-control"]
                headers += SECURITY_HEADERS
                headers.append((b"cache-control", b"public, max-age=3600" if static else b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, secured)


Handler = Callable[[Any, Viewer, dict[str, str]], Awaitable[Any]]


class Inspector:
    """The pages of one server: its sessions (and their secret) and its templates."""

    def __init__(self) -> None:
        from jinja2 import Environment, FileSystemLoader, StrictUndefined

        self.sessions = Sessions()
        self._users: tuple[float, list[str]] = (0.0, [])
        self._charts: dict[Any, tuple[float, Optional[tuple[list[Bin], str]]]] = {}
        self.env = Environment(
            loader=FileSystemLoader(str(HERE / "templates")),
            autoescape=True,  # every value, in every template; the chart escapes its own text (svg.py)
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(
            url=url, when=format_time, memory_url=memory_url, show=show, quote=lambda v: quote(str(v), safe="")
        )

    def routes(self) -> list[Any]:
        from starlette.responses import RedirectResponse
        from starlette.routing import Mount, Route, Router
        from starlette.staticfiles import StaticFiles

        async def to_index(request: Any) -> Any:
            response = RedirectResponse("/ui/", status_code=307)
            for name, value in SECURITY_HEADERS:
                response.headers[name.decode()] = value.decode()
            return response

        page = self.page
        inner = Router(
            routes=[
                Route("/", page(self.scopes)),
                Route("/login", self.login_form, methods=["GET"]),
                Route("/login", self.login, methods=["POST"]),
                Route("/logout", page(self.logout), methods=["POST"]),
                Route("/timeline", page(self.timeline)),
                Route("/search", page(self.search)),
                Route("/pending", page(self.pending)),
                Route("/export", page(self.export)),
                Route("/memory/{memory_id}", page(self.memory)),
                Route("/memory/{memory_id}/edit", page(self.edit), methods=["POST"]),
                Route("/memory/{memory_id}/delete", page(self.confirm_delete), methods=["GET"]),
                Route("/memory/{memory_id}/delete", page(self.delete), methods=["POST"]),
                Route("/memory/{memory_id}/restore", page(self.restore), methods=["POST"]),
                Mount("/static", app=StaticFiles(directory=str(HERE / "static"))),
                # anything else under /ui: the inspector's own 404, with its headers (the router's would skip them)
                Route("/{rest:path}", page(self.nowhere), methods=["GET", "POST"]),
            ]
        )
        return [Route("/ui", to_index), Mount("/ui", app=Secured(inner))]

    # --- plumbing ------------------------------------------------------------------------------------------
    @staticmethod
    def server(request: Any) -> Any:
        return request.app.state.server

    def render(self, request: Any, viewer: Optional[Viewer], template: str, status: int = 200, **ctx: Any) -> Any:
        from starlette.responses import HTMLResponse

        ctx.setdefault("user", None)
        ctx.setdefault("title", "")
        html = self.env.get_template(template).render(viewer=viewer, path=request.url.path, **ctx)
        return HTMLResponse(html, status_code=status)

    def error(self, request: Any, viewer: Optional[Viewer], status: int, message: str) -> Any:
        titles = {400: "Not accepted", 401: "Log in", 403: "Refused", 404: "Not found", 409: "Changed meanwhile"}
        response = self.render(
            request, viewer, "error.html", status, title=titles.get(status, "Error"), message=message
        )
        if status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    async def viewer(self, request: Any) -> Optional[Viewer]:
        """Who asks: a Bearer key (no cookie needed), a live session, or nobody (None).
        Raises ``AuthError`` for a Bearer key the server refuses."""
        server = self.server(request)
        header = request.headers.get("authorization")
        if header:
            return Viewer(await asyncio.to_thread(server.key_for, header), None, None)
        session = self.sessions.find(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return None
        try:  # the key again, every time: a revoked key ends its sessions now
            presented = f"Bearer {session.presented}" if session.presented else None
            key = await asyncio.to_thread(server.key_for, presented)
        except AuthError:
            self.sessions.drop(session)
            return None
        return Viewer(key, session, self.sessions.csrf(session))

    async def form(self, request: Any) -> dict[str, str]:
        """An urlencoded form body. Size is the server guard's limit; time is the server's body
        timeout, as for a REST call (a client that stalls holds nothing, but should not linger)."""
        try:
            raw = await asyncio.wait_for(request.body(), timeout=self.server(request).settings.body_timeout)
        except asyncio.TimeoutError:
            raise Refused(408, "The form did not arrive in time.") from None
        try:
            return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise InvalidInputError("body", "not UTF-8") from None

    def page(self, fn: Handler) -> Callable[[Any], Awaitable[Any]]:
        """A handler behind the login, the CSRF check and the error pages."""
        from starlette.responses import RedirectResponse

        async def endpoint(request: Any) -> Any:
            try:
                viewer = await self.viewer(request)
            except AuthError as exc:
                return self.error(request, None, exc.status, "This key is not accepted here.")
            if viewer is None:
                if request.method == "GET":
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return RedirectResponse(url("/ui/login", next=target), status_code=303)
                return self.error(request, None, 401, "Log in first.")
            form: dict[str, str] = {}
            try:
                if request.method == "POST":
                    form = await self.form(request)
                    if viewer.session is not None and not self.sessions.csrf_ok(viewer.session, form.get("csrf")):
                        return self.error(request, viewer, 403, CSRF_REFUSED)
                response = await fn(request, viewer, form)
                if request.method == "POST":
                    self._charts.clear()  # a correction: the next timeline counts again
                return response
            except (NotVisible, NotFoundError):
                return self.error(request, viewer, 404, NOT_FOUND)
            except Refused as exc:
                return self.error(request, viewer, exc.status, exc.message)
            except AuthError as exc:  # a write this key may not make (reads it may not make are NotVisible)
                return self.error(request, viewer, exc.status, f"Refused: {exc}")
            except ConflictError as exc:
                return self.error(request, viewer, 409, f"{exc} Reload the page to see the current version.")
            except InvalidInputError as exc:
                return self.error(request, viewer, 400, f"{exc.field}: {exc.reason}")
            except LightMemError as exc:
                log.exception("inspector page %s failed", request.url.path)
                return self.error(request, viewer, api.status_of(exc), f"The memory failed: {exc}")

        return endpoint

    def where(self, request: Any, viewer: Viewer, params: Any) -> dict[str, Any]:
        """The scope a page reads, checked against the key (NotVisible when it may not)."""
        user = (params.get("user") or "").strip() or self.default_user(viewer)
        if not user:
            raise Refused(400, "Choose a scope on the Scopes page first.")
        args = {
            "user_id": user,
            "agent_id": (params.get("agent") or "").strip() or None,
            "session_id": (params.get("session") or "").strip() or None,
        }
        try:
            where = self.server(request).scoped(viewer.key, args, write=False)
            Scope(**where)  # an id the memory cannot hold names nothing it holds
        except (AuthError, InvalidInputError, ValueError):
            raise NotVisible() from None
        return dict(where)

    @staticmethod
    def default_user(viewer: Viewer) -> Optional[str]:
        readable = viewer.key.readable()
        return readable[0] if readable is not None and len(readable) == 1 else None

    async def call(self, request: Any, viewer: Viewer, name: str, args: dict[str, Any]) -> Any:
        """One operation as the REST API runs it; a read outside the key is NotVisible."""
        op = api.BY_NAME[name]
        try:
            return await self.server(request).call(op, viewer.key, dict(args))
        except AuthError:
            if op.access == "read":
                raise NotVisible() from None
            raise

    async def nowhere(self, request: Any, viewer: Viewer, form: dict[str, str]) -> Any:
        raise NotVisible()

    # --- log in and out ----------------------------------------------------------------------------
    def _login_page(self, request: Any, status: int = 200, message: str = "") -> Any:
        cookie, token = self.sessions.login_nonce()
        server = self.server(request)
        open_mode = not server.settings.token and not (server.keys is not None and server.keys.any_active())
        response = self.render(
            request,
            None,
            "login.html",
            status,
            title="Log in",
            token=token,
            message=message,
            next=safe_next(request.query_params.get("next")),
            open_mode=open_mode,
        )
        self._cookie(request, response, LOGIN_COOKIE, cookie, max_age=900)
        return response

    @staticmethod
    def _cookie(request: Any, response: Any, name: str, value: str, max_age: Optional[int] = None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    async def login_form(self, request: Any) -> Any:
        from starlette.responses import RedirectResponse

        if self.sessions.find(request.cookies.get(SESSION_COOKIE)) is not None:
            return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
        return self._login_page(request)

    async def login(self, request: Any) -> Any:
        from starlette.responses import RedirectResponse

        try:
            form = await self.form(request)
        except (InvalidInputError, Refused):
            form = {}
        if not self.sessions.login_ok(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
            return self._login_page(request, 403, "The login form expired or did not come from this page; try again.")
        presented = form.get("key", "").strip() or None
        try:
            await asyncio.to_thread(self.server(request).key_for, f"Bearer {presented}" if presented else None)
        except AuthError:
            return self._login_page(request, 401, "That key was not accepted.")
        _, cookie = self.sessions.create(presented)
        response = RedirectResponse(safe_next(form.get("next")), status_code=303)
        self._cookie(request, response, SESSION_COOKIE, cookie)
        response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
        return response

    async def logout(self, request: Any, viewer: Viewer, form: dict[str, str]) -> Any:
        from starlette.responses import RedirectResponse

        if viewer.session is not None:
            self.sessions.drop(viewer.session)
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
        return response

    # --- scopes ------------------------------------------------------------------------------------------
    async def scopes(self, request: Any, viewer: Viewer, form: dict[str, str]) -> Any:
        memory = self.server(request).memory
        key = viewer.key
        users = await self._all_users(memory) if key.admin else list(key.readable() or ())
        try:
            number = max(int(request.query_params.get("page") or 1), 1)
        except ValueError:
            raise InvalidInputError("page", "expected a page number") from None
        start = (number - 1) * SCOPES_PAGE
        rows = await asyncio.to_thread(self._scope_rows, memory, viewer, users[start : start + SCOPES_PAGE])
        return self.render(
            request,
            viewer,
            "scopes.html",
            title="Scopes",
            rows=rows,
            number=number,
            more=len(users) > start + SCOPES_PAGE,
            total=len(users),
        )

    async def _all_users(self, memory: Any) -> list[str]:
        """Every user, for an admin key. The journal finds them with a pass over every turn
        (~50 ms at 100k): kept for ``USERS_TTL`` seconds, so a new user shows up that much later."""
        stamp, users = self._users
        if time.monotonic() - stamp > USERS_TTL:
            users = await asyncio.to_thread(memory.users)
            self._users = (time.monotonic(), users)
        return users

    @staticmethod
    def _scope_rows(memory: Any, viewer: Viewer, users: list[str]) -> list[dict[str, Any]]:
        reads = StoreReads(memory)
        streams = memory.pending_streams()
        rows = []
        for user in users:
            viewer.key.check(user, None, write=False)  # the listing is the key's own; checked all the same
            try:
                scope = Scope(user_id=user)
            except ValueError:
                continue
            pending = memory.pending(user_id=user)
            row: dict[str, Any] = {
                "user": user,
                "access": "read & write" if viewer.can_write(user) else "read only",
                "pending": len(pending),
                "current": None,
                "superseded": None,
                "summaries": None,
                "last": max((t.accepted_at for t in pending if t.accepted_at), default=None),
                "agents": [],
            }
            if reads.available:
                # every entry is current or not: the few superseded ones are counted, the rest derived
                # (an exact count costs a pass over what it matches: once over the scope, not twice)
                row["superseded"] = reads.count(scope, entry_filter(current=0))
                row["current"] = reads.count(scope) - row["superseded"]
                row["summaries"] = reads.count(scope, collection="summaries")
                newest = reads.newest(scope)
                if newest is not None:
                    recorded = from_epoch(newest)
                    row["last"] = max(recorded, row["last"]) if row["last"] else recorded
                if viewer.key.agents is not None:
                    agents = list(viewer.key.agents)
                else:  # no index lists a user's agents: the ones of recent memories and of waiting turns
                    seen = reads.recent_agents(scope, 50)
                    seen |= {s.agent_id for s in streams if s.user_id == user and s.agent_id}
                    agents = sorted(seen)
                for agent in agents[:20]:
                    sub = Scope(user_id=user, agent_id=agent)
                    row["agents"].append(
                        {
                            "agent": agent,
                            "current": reads.count(sub, entry_filter(current=1)),
                            "pending": sum(1 for t in pending if t.agent_id == agent),  # the user's, read above
                        }
                    )
            rows.append(row)
        return rows

    # --- timeline ----------------------------------------------------------------------------------------
    async def timeline(self, request: Any, viewer: Viewer, form: dict[str, str]) -> Any:
        p = request.query_params
        if not p.get("user") and not self.default_user(viewer):
            return _to_scopes()
        where = self.where(request, viewer, p)
        speaker = (p.get("speaker") or "").strip() or None
        entry_type = (p.get("type") or "").strip() or None
        if entry_type is not None and entry_type not in ENTRY_TYPES:
            raise InvalidInputError("type", f"expected one of {', '.join(ENTRY_TYPES)}")
        lo, hi = time_range(p.get("since", ""), p.get("until", ""))
        superseded = p.get("superseded") == "1"
        filters: dict[str, Any] = time_filters(lo, hi)
        if speaker:
            filters["OR"] = [{"speaker_name": speaker}, {"speaker_id": speaker}]
        if entry_type:
            filters["entry_type"] = entry_type
        args = {
            **where,
            "filters": filters or None,
            "limit": PAGE_SIZE,
            "after": p.get("after") or None,
            "include_superseded": superseded,
        }
        page = await self.call(request, viewer, "get_page", args)
        choice = {
            "user": where["user_id"],
            "agent": where["agent_id"],
            "session": where["session_id"],
            "speaker": speaker,
            "type": entry_type,
            "since": p.get("since", "").strip(),
            "until": p.get("until", "").strip(),
            "superseded": "1" if superseded else None,
        }
        bins = await self._chart(self.server(request).memory, where, speaker, entry_type, lo, hi, choice)
        groups: list[tuple[str, list[tuple[Optional[str], list[MemoryEntry]]]]] = []
        for entry in page.entries:
            day = day_of(entry)
            if not groups or groups[-1][0] != day:
                groups.append((day, []))
            sessions = groups[-1][1]
            if not sessions or sessions[-1][0] != entry.session_id:
                sessions.append((entry.session_id, []))
            sessions[-1][1].append(entry)
        return self.render(
            request,
            viewer,
            "timeline.html",
            title="Timeline",
            user=where["user_id"],
            choice=choice,
            groups=groups,
            count=len(page.entries),
            next_cursor=page.next_cursor,
            first_page=not p.get("after"),
            chart=chart(bins[0], title=bins[1]) if bins else None,
            speakers=sorted({e.speaker_name or e.speaker_id for e in page.entries if e.speaker_name or e.speaker_id}),
            sessions=sorted({e.session_id for e in page.entries if e.session_id}),
            types=ENTRY_TYPES,
            flash=DONE.get(p.get("done") or ""),
        )

    async def _chart(
        self,
        memory: Any,
        where: dict[str, Any],
        speaker: Optional[str],
        entry_type: Optional[str],
        lo: Optional[datetime],
        hi: Optional[datetime],
        choice: dict[str, Any],
    ) -> Optional[tuple[list[Bin], str]]:
        """The chart's bars, kept ``CHART_TTL`` seconds: paging through a timeline draws the same
        chart on every page, and at 100k entries its counts are most of a page's time. A
        correction made here drops them at once; one made elsewhere shows within the TTL."""
        key = (tuple(sorted(where.items())), speaker, entry_type, lo, hi)
        stamp, bins = self._charts.get(key, (0.0, None))
        if time.monotonic() - stamp > CHART_TTL:
            bins = await asyncio.to_thread(self._bins, memory, where, speaker, entry_type, lo, hi, choice)
            if len(self._charts) >= 256:
                self._charts.clear()
            self._charts[key] = (time.monotonic(), bins)
        return bins

    @staticmethod
    def _bins(
        memory: Any,
        where: dict[str, Any],
        speaker: Optional[str],
        entry_type: Optional[str],
        lo: Optional[datetime],
        hi: Optional[datetime],
        choice: dict[str, Any],
    ) -> Optional[tuple[list[Bin], str]]:
        """Per-day (or per-N-days, past ``MAX_BINS`` days) counts of current and superseded memories,
        two indexed counts per bar: the chart costs the same for 100 memories or 100k."""
        reads = StoreReads(memory)
        if not reads.available:
            return None
        scope = Scope(**where)
        collection = "summaries" if entry_type == "summary" else "entries"
        since, until = (to_epoch(lo) if lo else None), (to_epoch(hi) if hi else None)
        extent = reads.extent(
            scope, entry_filter(speaker=speaker, entry_type=entry_type, since=since, until=until), collection=collection
        )
        if extent is None:
            return None
        first = math.floor(extent[0] / DAY) * DAY
        days = int((math.floor(extent[1] / DAY) * DAY - first) // DAY) + 1
        per = max(1, math.ceil(days / MAX_BINS))
        bins = []
        for start in [first + i * per * DAY for i in range(math.ceil(days / per))]:
            end = start + per * DAY
            lo_b, hi_b = max(start, since) if since else start, min(end, until) if until else end

            def counted(current: int, lo_b: float = lo_b, hi_b: float = hi_b) -> int:
                flt = entry_filter(speaker=speaker, entry_type=entry_type, since=lo_b, until=hi_b, current=current)
                return reads.count(scope, flt, collection=collection)

            a, b = from_epoch(start).strftime("%Y-%m-%d"), from_epoch(end - DAY).strftime("%Y-%m-%d")
            label = a if per == 1 else f"{a} – {b}"
            href = url("/ui/timeline", **{**choice, "since": a, "until": b, "superseded": "1"})
            bins.append(Bin(label, counted(1), counted(0), href))
        return bins, "Memories per day" if per == 1 else f"Memories per {per} days"

    # --- search ------------------------------------------------------------------------------------------
    async def search(self, request: Any, viewer: Viewer, form: dict[str, str]) -> Any:
        p = request.query_params
        if not p.get("user") and not self.default_user(viewer):
            return _to_scopes()
        where = self.where(request, viewer, p)
        query = (p.get("q") or "").strip()
        strategy = (p.get("strategy") or "").strip()
        if strategy and strategy not in STRATEGIES:
            raise InvalidInputError("strategy", f"expected one of {', '.join(STRATEGIES)}")
        try:
            limit = min(max(int(p.get("limit") or 10), 1), 50)
        except ValueError:
            raise InvalidInputError("limit", "expected a number") from None
        lo, hi = time_range(p.get("since", ""), p.get("until", ""))
        superseded = p.get("superseded") == "1"
        hits: list[Any] = []
        if query:
            args = {
                **where,
                "query": query,
                "limit": limit,
                "strategy": strategy or None,
                "filters": time_filters(lo, hi) or None,
                "include_superseded": superseded,
            }
            hits = await self.call(request, viewer, "retrieve", args)
        default = self.server(request).memory.config.retrieval.strategy
        return self.render(
            request,
            viewer,
            "search.html",
            title="Search",
            user=where["user_id"],
            where=where,
            query=query,
            strategy=strategy,
            strategies=STRATEGIES,
            default_strategy=default,
            limit=limit,
            since=p.get("since", "").strip(),
            until=p.get("until", "").strip(),
            superseded=superseded,
            hits=hits,
        )

    # --- one memory ------------------------------------------------------------------------------------
    async def _chain(
        self, request: Any, viewer: Viewer, where: dict[str, Any], entry: MemoryEntry
    ) -> tuple[list[MemoryEntry], list[Optional[MemoryEntry]]]:
        """(older, newer): what this entry superseded, oldest first, and what superseded it, in
        order (None at the end: the chain leads to a memory that was deleted)."""
        newer: list[Optional[MemoryEntry]] = []
        nxt, seen = entry.superseded_by, {entry.id}
        while nxt and nxt not in seen and len(newer) < MAX_CHAIN:
            seen.add(nxt)
            try:
                found = await self.call(request, viewer, "get", {**where, "memory_id": nxt})
            except NotFoundError:
                newer.append(None)
                break
            newer.append(found)
            nxt = found.superseded_by
        reads = StoreReads(self.server(request).memory)
        older: list[MemoryEntry] = []
        if reads.available:
            scope = Scope(user_id=where["user_id"], agent_id=where["agent_id"])

            def walk() -> list[MemoryEntry]:
                out: list[MemoryEntry] = []
                todo = [entry.id]
                while todo and len(out) < MAX_CHAIN:
                    for e in reads.superseded_into(scope, todo.pop()):
                        if e.id not in seen:
                            seen.add(e.id)
                            out.append(e)
                            todo.append(e.id)
                return sorted(out, key=lambda e: (e.time_stamp or e.recorded_at, e.id))

            older = await asyncio.to_thread(walk)
        return older, newer

    async def _load(self, request: Any, viewer: Viewer, where: dict[str, Any], memory_id: str) -> dict[str, Any]:
        entry = await self.call(request, viewer, "get", {**where, "memory_id": memory_id})
        try:
            history: list[HistoryRecord] = await self.call(request, viewer, "history", {**where, "memory_id": entry.id})
        except NotFoundError:  # imported without its history
            history = []
        older, newer = await self._chain(request, viewer, where, entry)
        head: Optional[MemoryEntry] = entry if entry.is_current else None
        if newer:
            last = newer[-1]
            head = last if last is not None and last.is_current else None
        return {"entry": entry, "history": history, "older": older, "newer": newer, "head": head}

    async def memory(self, request: Any, viewer: Viewer, form: dict[str, str]) -> Any:
        where = self.where(request, viewer, request.query_params)
        loaded = await self._load(request, viewer, where, request.path_params["memory_id"])
        entry: MemoryEntry = loaded["entry"]
        sources = await self.call(request, viewer, "source_turns", {**where, "memory_id": entry.id})
        versions = []
        for record in loaded["history"]:
            text = record.new_memory if record.event in ("ADD", "UPDATE") else None
            versions.append(
                {
                    "record": record,
                    "diff": word_diff(record.old_memory, record.new_memory) if record.event == "UPDATE" else None,
                    "restorable": bool(text) and loaded["head"] is not None and text != loaded["head"].memory,
                }
            )
        done = request.query_params.get("done")
        return self.render(
            request,
            viewer,
            "memory.html",
            title="Memory",
            user=entry.user_id,
            sources=sources,
            versions=versions,
            can_write=viewer.can_write(entry.user_id),
            flash=DONE.get(done or ""),
            **loaded,
        )

    # --- the corrections ------------------------------------------------------------------------------
    def _writable(self, request: Any, viewer: Viewer, source: dict[str, str]) -> dict[str, Any]:
        where = self.where(request, viewer, source)  # first: another scope is not found, not "refused"
        if not viewer.can_write(where["user_id"]):
            raise Refused(403, "This key cannot change memories of this scope (it is read-only here).")
        return where

    @staticmethod
    def _version(form: dict[str, str]) -> Optional[int]:
        raw = form.get("expected_version", "").strip()
        if not raw:
            return None
        if not raw.isdigit():
            raise InvalidInputError("expected_version", "expected a number")
        return int(raw)

    async def edit(self, request: Any, viewer: Viewer, form: dict[str, str]) -> Any:
        where = self._writable(request, viewer, form)
        memory_id = request.path_params["memory_id"]
        text, reason = form.get("memory", "").strip(), form.get("reason", "").strip()
        if not reason:
            raise InvalidInputError("reason", "say why the memory changes; the history keeps it")
        if not text:
            raise InvalidInputError("memory", "the text is empty (to remove a memory, delete it)")
        args = {
            **where,
            "memory_id": memory_id,
            "memory": text,
            "reason": reason,
            "expected_version": self._version(form),
        }
        entry = await self.call(request, viewer, "update", args)
        return _see_other(url(f"/ui/memory/{quote(entry.id)}", user=entry.user_id, done="edited"))

    async def confirm_delete(self, request: Any, viewer: Viewer, form: dict[str, str]) -> Any:
        where = self.where(request, viewer, request.query_params)
        entry = await self.call(request, viewer, "get", {**where, "memory_id": request.path_params["memory_id"]})
        if not viewer.can_write(entry.user_id):
            raise Refused(403, "This key cannot change memories of this scope (it is read-only here).")
        return self.render(request, viewer, "delete.html", title="Delete a memory", user=entry.user_id, entry=entry)

    async def delete(self, request: Any, viewer: Viewer, form: dict[str, str]) -> Any:
        where = self._writable(request, viewer, form)
        if form.get("confirm") != "yes":
            raise InvalidInputError("confirm", "confirm the deletion on the confirmation page")
        reason = form.get("reason", "").strip() or "deleted in the inspector"
        args = {**where, "memory_id": request.path_params["memory_id"], "reason": reason}
        await self.call(request, viewer, "delete", args)
        return _see_other(url("/ui/timeline", user=where["user_id"], done="deleted"))

    async def restore(self, request: Any, viewer: Viewer, form: dict[str, str]) -> Any:
        """An older value made current again, as an edit of the chain's current memory: the
        superseded entry stays as it was (it is the record of what was believed, and when),
        and the current one's history says what was restored and from where."""
        where = self._writable(request, viewer, form)
        loaded = await self._load(request, viewer, where, request.path_params["memory_id"])
        entry, head = loaded["entry"], loaded["head"]
        if head is None:
            raise Refused(
                409, "No current memory holds this one's place any more (it was deleted): nothing to restore."
            )
        if form.get("target") and form["target"] != head.id:
            raise Refused(409, "The memory changed since this page was loaded. Reload it and retry.")
        raw_version = form.get("version", "").strip()
        if raw_version:
            record = next((r for r in loaded["history"] if str(r.version) == raw_version), None)
            if record is None or record.event not in ("ADD", "UPDATE") or not record.new_memory:
                raise InvalidInputError("version", "no version with that number and text in this memory's history")
            text, origin = record.new_memory, f"version {record.version} of {entry.id}"
        else:
            text, origin = entry.memory, f"superseded value {entry.id} (version {entry.version})"
        if text == head.memory:
            raise InvalidInputError("version", "that text is already the current value")
        note = form.get("reason", "").strip()
        args = {
            **where,
            "memory_id": head.id,
            "memory": text,
            "reason": f"restored {origin}" + (f": {note}" if note else ""),
            "expected_version": self._version(form) or head.version,
        }
        updated = await self.call(request, viewer, "update", args)
        return _see_other(url(f"/ui/memory/{quote(updated.id)}", user=updated.user_id, done="restored"))

    # --- pending, costs, export ----------------------------------------------------------------------------
    async def pending(self, request: Any, viewer: Viewer, form: dict[str, str]) -> Any:
        p = request.query_params
        if not p.get("user") and not self.default_user(viewer):
            return _to_scopes()
        where = self.where(request, viewer, p)
        turns = await self.call(request, viewer, "pending", where)
        tokens = await self.call(request, viewer, "get_token_statistics", {})
        stages = [(k, v) for k, v in tokens.items() if k != "total" and isinstance(v, dict)]
        memory = self.server(request).memory
        return self.render(
            request,
            viewer,
            "pending.html",
            title="Pending and costs",
            user=where["user_id"],
            where=where,
            turns=turns[:PENDING_ROWS],
            total=len(turns),
            stages=stages,
            tokens_total=tokens.get("total", {}),
            llm=type(memory.llm).__name__ if memory.llm is not None else None,
        )

    async def export(self, request: Any, viewer: Viewer, form: dict[str, str]) -> Any:
        from starlette.responses import StreamingResponse

        where = self.where(request, viewer, request.query_params)
        user = where["user_id"]
        memory = self.server(request).memory

        def lines() -> Iterator[str]:  # a thousand records a chunk: one thread hop each, not one per record
            chunk: list[str] = []
            for record in memory.export_records(user_id=user):
                chunk.append(json.dumps(record, ensure_ascii=False) + "\n")
                if len(chunk) >= 1000:
                    yield "".join(chunk)
                    chunk = []
            yield "".join(chunk)

        name = re.sub(r"[^A-Za-z0-9._-]+", "_", user)[:64] or "scope"
        return StreamingResponse(
            lines(),
            media_type="application/x-ndjson",
            headers={"Content-Disposition": f'attachment; filename="lightmem-{name}.jsonl"'},
        )


def _see_other(target: str) -> Any:
    from starlette.responses import RedirectResponse

    return RedirectResponse(target, status_code=303)


def _to_scopes() -> Any:
    return _see_other("/ui/")
