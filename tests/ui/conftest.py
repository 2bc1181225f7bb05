"""One real server per test module with the inspector mounted, over a seeded embedded store.

The store is a real ``LightMemory`` on a temp path with the session's MiniLM, written
through the library's own API (offline extraction, online update rules: Seattle is
superseded by Portland as it would be in use). Keys are real keys of a ``KeyStore``;
clients are httpx over loopback, logged in through the login form like a browser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator, Optional

import httpx
import pytest

from lightmem_core import LightMemory, MemoryConfig
from lightmem_core.server import ui
from lightmem_core.server.keys import KeyStore
from tests._served import Served

XSS = {
    "script": "<script>window.__xss = 'script'</script>I keep my passport in the blue drawer.",
    "img": "<img src=x onerror=\"window.__xss = 'img'\">My gym opens at six.",
    "link": "<a href=\"javascript:window.__xss='link'\">click me</a> My bike is a green Brompton.",
    "speaker": "<img src=y onerror=window.__xss='speaker'>",
    "meta": "javascript:window.__xss='meta'",
    "meta_html": "<script>window.__xss='meta-html'</script>",
}


def turn(tid: str, content: str, when: str, name: Optional[str] = "Maya", **extra: Any) -> dict[str, Any]:
    return {"id": tid, "role": "user", "content": content, "time_stamp": when, "name": name, **extra}


def seed(memory: LightMemory) -> dict[str, str]:
    """The demo scopes; returns memory ids by a short name."""
    m = memory
    m.add_memory(
        [
            turn("m1", "I live in Seattle with my dog.", "2025-01-12T09:00:00"),
            turn("m2", "My favourite band is Radiohead.", "2025-01-12T09:01:00"),
            turn("m3", "My locker code is 4411.", "2025-01-12T09:02:00"),
            turn("m4", "I practise the cello on Tuesdays.", "2025-01-12T09:03:00"),
        ],
        user_id="maya",
        session_id="s1",
    )
    m.add_memory(
        [
            turn("m5", "I had pancakes for breakfast.", "2025-02-03T18:30:00"),
            turn("m6", "I am allergic to hazelnuts.", "2025-02-03T18:31:00"),
            turn("m7", "My dentist appointment is on March 14.", "2025-02-03T18:32:00"),
        ],
        user_id="maya",
        session_id="s2",
    )
    m.add_memory(
        [turn("m8", "I moved to Portland last month.", "2025-05-04T10:00:00")], user_id="maya", session_id="s3"
    )
    m.add_memory(
        [
            turn("x1", XSS["script"], "2025-05-05T08:00:00"),
            turn("x2", XSS["img"], "2025-05-05T08:01:00"),
            turn("x3", XSS["link"], "2025-05-05T08:02:00"),
            turn(
                "x4",
                "My cat is called Miso.",
                "2025-05-05T08:03:00",
                name=XSS["speaker"],
                metadata={"homepage": XSS["meta"], "note": XSS["meta_html"]},
            ),
        ],
        user_id="maya",
        session_id="s4",
    )
    m.add_memory([turn("t1", "My PIN is 9921.", "2025-03-01T12:00:00", name="Tom")], user_id="tom", session_id="t")
    m.add_memory(
        [turn("a1", "The launch moved to March 3.", "2025-03-02T12:00:00", name="Planner")],
        user_id="team:apollo",
        session_id="plan",
    )
    ids: dict[str, str] = {}
    for user in ("maya", "tom", "team:apollo"):
        for e in m.get_all(user_id=user, include_superseded=True, limit=1000):
            tid = e.source_ids[0]
            ids[tid] = e.id
    return ids


@dataclass
class Site:
    served: Served
    memory: LightMemory
    keys: KeyStore
    secrets: dict[str, str]
    ids: dict[str, str]
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.served.url

    def bearer(self, who: str) -> httpx.Client:
        c = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.secrets[who]}"}, timeout=30)
        self.clients.append(c)
        return c

    def browser_like(self) -> httpx.Client:
        c = httpx.Client(base_url=self.url, timeout=30)
        self.clients.append(c)
        return c

    def login(self, who: str) -> httpx.Client:
        """A cookie client, logged in through the form as a browser is."""
        c = self.browser_like()
        form = c.get("/ui/login")
        answer = c.post("/ui/login", data={"csrf": csrf_of(form.text), "key": self.secrets[who], "next": "/ui/"})
        assert answer.status_code == 303 and "lm_session" in c.cookies, answer.text
        return c


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def build_site(root: Path, embedder: Any) -> Iterator[Site]:
    memory = LightMemory(
        MemoryConfig.from_dict({"store": {"path": str(root / "store")}, "update": "online"}), embedder=embedder
    )
    keys = KeyStore(str(root / "keys.sqlite"))
    ids = seed(memory)
    secrets = {
        "maya": keys.create(name="maya-app", users=["maya"], read_users=["team:apollo"])[1],
        "reader": keys.create(name="auditor", read_users=["maya"], read_only=True)[1],
        "admin": keys.create(name="ops", admin=True)[1],
        "tom": keys.create(name="tom-app", users=["tom"])[1],
    }
    with Served(memory, keys, extra_routes=ui.routes()) as served:
        # after start-up, so the worker leaves them waiting: two turns journaled, not extracted,
        # and one that failed twice (as an export of a store with a failing model carries it)
        memory.add_memory(
            [turn("p1", "Remind me to water the ferns.", "2025-05-06T07:00:00")],
            user_id="maya",
            session_id="s5",
            defer=True,
        )
        memory.import_records(
            [
                {
                    "kind": "turn",
                    "id": "p2",
                    "role": "user",
                    "content": "I start the new job in June.",
                    "time_stamp": "2025-05-06T07:05:00",
                    "user_id": "maya",
                    "session_id": "s5",
                    "status": "pending",
                    "attempts": 2,
                    "last_error": "LLM endpoint failed: 502 Bad Gateway <b>upstream</b>",
                }
            ]
        )
        site = Site(served, memory, keys, secrets, ids)
        try:
            yield site
        finally:
            for c in site.clients:
                c.close()
    keys.close()
    memory.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: Any, embedder: Any) -> Iterator[Site]:
    yield from build_site(tmp_path_factory.mktemp("inspector"), embedder)


# --- reading pages the way a browser does ---------------------------------------------------------------------
class Doc(HTMLParser):
    """A page parsed into its elements and its text, to tell markup from text that merely looks like markup."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.forms: list[dict[str, Any]] = []
        self.chunks: list[str] = []
        self.feed(html)
        self.close()
        self.text = " ".join(self.chunks)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Optional[str]]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag == "form":
            self.forms.append({"attrs": a, "inputs": {}})
        elif tag in ("input", "textarea", "select", "button") and self.forms and a.get("name"):
            self.forms[-1]["inputs"][a["name"]] = a.get("value", "")
        if tag in ("input", "textarea") and a.get("value"):
            self.chunks.append(a["value"])

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)

    def elements(self, tag: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag]

    def post_forms(self) -> list[dict[str, Any]]:
        return [f for f in self.forms if f["attrs"].get("method", "").lower() == "post"]


def inert(html: str) -> Doc:
    """The page, asserted to hold no live markup of its own or of its data: scripts only from
    /ui/static, no event-handler attributes, no javascript: URLs, no elements a payload could make."""
    doc = Doc(html)
    for tag, attrs in doc.tags:
        assert tag not in ("img", "iframe", "object", "embed"), (tag, attrs)
        if tag == "script":
            assert attrs.get("src", "").startswith("/ui/static/"), f"inline or foreign script: {attrs}"
        for name, value in attrs.items():
            assert not name.startswith("on"), f"event handler attribute on <{tag}>: {name}={value!r}"
            if name in ("href", "src", "action", "formaction"):
                assert not value.strip().lower().startswith(("javascript:", "data:text")), (tag, name, value)
    return doc
