"""The inspector over real HTTP: log-in, scopes, CSRF, headers, escaping, read-only keys.

One server for the module (``conftest.site``), over a store written through the library.
Clients are httpx: logged in through the login form with a cookie, as a browser is, or
with ``Authorization: Bearer``, as a script is.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from lightmem_core.server import ui
from tests._served import Served
from tests.ui.conftest import XSS, Site, csrf_of, inert, turn

READ_PAGES = (
    "/ui/",
    "/ui/timeline?user=maya",
    "/ui/timeline?user=maya&superseded=1",
    "/ui/search?user=maya&q=passport+gym+bike+cat",
    "/ui/pending?user=maya",
)


def memory_page(site: Site, name: str, user: str = "maya") -> str:
    return f"/ui/memory/{site.ids[name]}?user={user}"


def every_page(site: Site) -> list[str]:
    return [
        *READ_PAGES,
        *(memory_page(site, n) for n in ("m1", "m8", "x1", "x2", "x3", "x4")),
        f"/ui/memory/{site.ids['x4']}/delete?user=maya",
    ]


def test_pages_need_a_key(site: Site) -> None:
    anonymous = site.browser_like()
    for path in every_page(site):
        answer = anonymous.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/login?next="), path
    target = memory_page(site, "m3")
    before = site.memory.get(site.ids["m3"], user_id="maya").version
    refused = anonymous.post(f"/ui/memory/{site.ids['m3']}/edit", data={"user": "maya", "memory": "x", "reason": "y"})
    assert refused.status_code == 401
    for bad in ("Bearer lmk_nope_nope", "Bearer nope", "Basic abc"):
        answer = httpx.get(site.url + target, headers={"Authorization": bad})
        assert answer.status_code == 401 and "4411" not in answer.text, bad
        assert answer.headers["www-authenticate"] == "Bearer"
    assert site.memory.get(site.ids["m3"], user_id="maya").version == before
    # a script reads a page with its key alone: no cookie, no session
    page = site.bearer("maya").get(target)
    assert page.status_code == 200 and "4411" in page.text and "set-cookie" not in page.headers


def test_login_cookie_is_httponly_strict_and_logout_ends_the_session(site: Site) -> None:
    c = site.browser_like()
    form = c.get("/ui/login")
    assert "httponly" in form.headers["set-cookie"].lower() and "samesite=strict" in form.headers["set-cookie"].lower()
    wrong = c.post("/ui/login", data={"csrf": csrf_of(form.text), "key": "lmk_abc_def"})
    assert wrong.status_code == 401 and "lm_session" not in c.cookies and "not accepted" in wrong.text
    no_token = c.post("/ui/login", data={"key": site.secrets["maya"]})
    assert no_token.status_code == 403 and "lm_session" not in c.cookies
    form = c.get("/ui/login?next=/ui/pending%3Fuser%3Dmaya")
    ok = c.post(
        "/ui/login", data={"csrf": csrf_of(form.text), "key": site.secrets["maya"], "next": "/ui/pending?user=maya"}
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/ui/pending?user=maya"
    cookie = next(v for k, v in ok.headers.multi_items() if k == "set-cookie" and v.startswith("lm_session="))
    attrs = {a.strip().lower() for a in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/ui"} <= attrs
    assert site.secrets["maya"] not in cookie  # the key stays on the server
    session = c.cookies["lm_session"]
    assert c.get("/ui/").status_code == 200
    # another site's page cannot send the browser elsewhere after logging in
    form = c.get("/ui/login")
    evil = site.browser_like().post("/ui/login", data={"csrf": "x"})
    assert evil.status_code == 403
    scopes = c.get("/ui/")
    out = c.post("/ui/logout", data={"csrf": csrf_of(scopes.text)})
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    replay = site.browser_like()
    replay.cookies.set("lm_session", session, domain="127.0.0.1", path="/ui")
    assert replay.get("/ui/").status_code == 303  # the old cookie opens nothing
    forged = site.browser_like()
    forged.cookies.set("lm_session", session.split(".")[0] + ".00", domain="127.0.0.1", path="/ui")
    assert forged.get("/ui/").status_code == 303


def test_login_redirects_only_inside_the_inspector(site: Site) -> None:
    for target in ("https://evil.example/", "//evil.example/ui/", "/v1/users", "/ui/\\\\evil"):
        c = site.browser_like()
        form = c.get("/ui/login")
        ok = c.post("/ui/login", data={"csrf": csrf_of(form.text), "key": site.secrets["maya"], "next": target})
        assert ok.status_code == 303 and ok.headers["location"] == "/ui/", target


def test_a_revoked_key_ends_its_sessions_at_once(site: Site) -> None:
    key, secret = site.keys.create(name="temp", users=["maya"])
    site.secrets["temp"] = secret
    c = site.login("temp")
    assert c.get("/ui/timeline?user=maya").status_code == 200
    site.keys.revoke(key.id)
    assert c.get("/ui/timeline?user=maya").status_code == 303


def test_a_key_sees_exactly_its_scopes(site: Site) -> None:
    c = site.login("maya")
    scopes = inert(c.get("/ui/").text)
    assert "maya" in scopes.text and "team:apollo" in scopes.text and "tom" not in scopes.text
    tom_id = site.ids["t1"]
    missing = "3c7f6a52-0000-4000-8000-000000000000"
    answers = [
        c.get(f"/ui/memory/{tom_id}?user=tom"),  # another user's memory, under its own user
        c.get(f"/ui/memory/{tom_id}?user=maya"),  # another user's memory id, under this key's user
        c.get(f"/ui/memory/{missing}?user=maya"),  # an id that does not exist
        c.get("/ui/memory/not-even-an-id?user=maya"),
        c.get(f"/ui/memory/{missing}?user=nobody"),
        c.get("/ui/timeline?user=tom"),
        c.get("/ui/search?user=tom&q=PIN"),
        c.get("/ui/pending?user=tom"),
        c.get("/ui/export?user=tom"),
        c.get(f"/ui/memory/{tom_id}/delete?user=tom"),
    ]
    assert {a.status_code for a in answers} == {404}
    assert len({a.content for a in answers}) == 1, "a 404 must not tell another scope from nothing"
    assert all("9921" not in a.text and "tom" not in a.text for a in answers)
    # writing there is not found either (not "refused"), and changes nothing
    token = csrf_of(c.get("/ui/").text)
    for action, data in (
        ("edit", {"memory": "hacked", "reason": "x"}),
        ("delete", {"confirm": "yes"}),
        ("restore", {}),
    ):
        for user in ("tom", "maya"):
            answer = c.post(f"/ui/memory/{tom_id}/{action}", data={"csrf": token, "user": user, **data})
            assert answer.status_code == 404 and answer.content == answers[0].content, (action, user)
    assert site.memory.get(tom_id, user_id="tom").memory.endswith("9921.")
    # search spans the key's own scope only
    hits = c.get("/ui/search?user=maya&q=Tom+PIN+number")
    assert hits.status_code == 200 and "9921" not in hits.text and "Tom" not in hits.text.replace("Tom PIN", "")


def test_every_change_needs_the_sessions_csrf_token(site: Site) -> None:
    c = site.login("maya")
    other = site.login("maya")  # another session of the same key: its token is not this one's
    mid = site.ids["m2"]
    page = inert(c.get(memory_page(site, "m2")).text)
    forms = page.post_forms()
    assert {f["attrs"]["action"].split("?")[0].rsplit("/", 1)[-1] for f in forms} >= {"edit", "logout"}
    token = csrf_of(c.get("/ui/").text)
    assert all(f["inputs"].get("csrf") == token for f in forms), "every POST form carries the session's token"
    other_token = csrf_of(other.get("/ui/").text)
    assert other_token != token
    change = {"user": "maya", "memory": "Maya: My favourite band is Portishead.", "reason": "typo"}
    for bad in ({}, {"csrf": ""}, {"csrf": "0" * 64}, {"csrf": other_token}):
        for action, data in (
            ("edit", change),
            ("delete", {"user": "maya", "confirm": "yes"}),
            ("restore", {"user": "maya"}),
        ):
            answer = c.post(f"/ui/memory/{mid}/{action}", data={**data, **bad})
            assert answer.status_code == 403 and "CSRF" in answer.text, (action, bad)
        assert c.post("/ui/logout", data=bad).status_code == 403
    assert site.memory.get(mid, user_id="maya").version == 1
    assert c.get("/ui/").status_code == 200  # logout without the token did not log out
    ok = c.post(f"/ui/memory/{mid}/edit", data={**change, "csrf": token, "expected_version": "1"})
    assert ok.status_code == 303
    entry = site.memory.get(mid, user_id="maya")
    assert entry.memory.endswith("Portishead.") and entry.version == 2
    record = site.memory.history(mid, user_id="maya")[-1]
    assert (record.event, record.reason, record.actor) == ("UPDATE", "typo", "key:maya-app")
    # a stale form (someone changed it first) is refused, not applied over the newer text
    stale = c.post(
        f"/ui/memory/{mid}/edit", data={**change, "memory": "old tab", "csrf": token, "expected_version": "1"}
    )
    assert stale.status_code == 409 and site.memory.get(mid, user_id="maya").version == 2


def test_bearer_writes_need_no_csrf_token(site: Site) -> None:
    """A script's key travels in a header no forged cross-site form can carry: no token needed."""
    mid = site.ids["m5"]
    answer = site.bearer("maya").post(
        f"/ui/memory/{mid}/edit",
        data={"user": "maya", "memory": "Maya: I had waffles for breakfast.", "reason": "script"},
    )
    assert answer.status_code == 303
    assert site.memory.get(mid, user_id="maya").memory.endswith("waffles for breakfast.")


def test_an_edit_needs_a_reason(site: Site) -> None:
    c = site.bearer("maya")
    mid = site.ids["m4"]
    for reason in ("", "   "):
        answer = c.post(f"/ui/memory/{mid}/edit", data={"user": "maya", "memory": "changed", "reason": reason})
        assert answer.status_code == 400 and "reason" in answer.text
    blank = c.post(f"/ui/memory/{mid}/edit", data={"user": "maya", "memory": " ", "reason": "why"})
    assert blank.status_code == 400
    assert site.memory.get(mid, user_id="maya").version == 1


def test_security_headers_on_every_response(site: Site) -> None:
    c = site.login("maya")
    answers = [c.get(p) for p in every_page(site)]
    answers += [
        site.browser_like().get("/ui/login"),
        c.get("/ui/memory/nothing?user=maya"),
        c.get("/ui/static/ui.css"),
        c.get("/ui/static/ui.js"),
        c.get("/ui/export?user=maya"),
        site.browser_like().get("/ui/"),
    ]
    for a in answers:
        csp = a.headers["content-security-policy"]
        directives = {d.strip().split(" ")[0]: d.strip() for d in csp.split(";")}
        assert directives["script-src"] == "script-src 'self'", a.url
        assert directives["frame-ancestors"] == "frame-ancestors 'none'"
        assert directives["default-src"] == "default-src 'none'"
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert a.headers["x-frame-options"] == "DENY" and a.headers["x-content-type-options"] == "nosniff"
    for a in answers[: len(every_page(site))]:
        assert a.headers["cache-control"] == "no-store"
        inert(a.text)  # no inline script, no handler attribute in our own markup either


def test_stored_payloads_render_as_inert_text_on_every_page(site: Site) -> None:
    c = site.login("maya")
    payload_texts = [XSS["script"], XSS["img"], XSS["link"], XSS["speaker"]]
    seen: dict[str, int] = {p: 0 for p in payload_texts}
    for path in every_page(site) + ["/ui/search?user=maya&q=" + XSS["script"]]:
        doc = inert(c.get(path).text)
        for p in payload_texts:
            seen[p] += p in doc.text  # there, as the text it is
    assert all(seen.values()), seen
    meta = inert(c.get(memory_page(site, "x4")).text)
    assert XSS["meta"] in meta.text and XSS["meta_html"] in meta.text
    pending = inert(c.get("/ui/pending?user=maya").text)
    assert "502 Bad Gateway <b>upstream</b>" in pending.text
    # a query is echoed into the form as a value, escaped
    echoed = c.get('/ui/search?user=maya&q="><script>alert(1)</script>')
    assert '"><script>alert(1)</script>' in inert(echoed.text).text
    assert "<script>alert(1)" not in echoed.text


def test_read_only_keys_see_no_edit_controls_and_cannot_write(site: Site) -> None:
    mid = site.ids["m6"]
    for who, user, target in (("reader", "maya", mid), ("maya", "team:apollo", site.ids["a1"])):
        c = site.login(who)
        token = csrf_of(c.get("/ui/").text)
        for path in (f"/ui/memory/{target}?user={user}", f"/ui/timeline?user={user}", f"/ui/search?user={user}&q=x"):
            doc = inert(c.get(path).text)
            actions = [f["attrs"]["action"] for f in doc.post_forms()]
            assert actions == ["/ui/logout"], (who, path, actions)
            assert not [a for a in doc.elements("a") if "/delete" in a.get("href", "")]
        assert c.get(f"/ui/memory/{target}/delete?user={user}").status_code == 403
        before = site.memory.get(target, user_id=user).version
        for client, extra in ((c, {"csrf": token}), (site.bearer(who), {})):
            for action, data in (
                ("edit", {"memory": "changed", "reason": "x"}),
                ("delete", {"confirm": "yes"}),
                ("restore", {}),
            ):
                answer = client.post(f"/ui/memory/{target}/{action}", data={"user": user, **data, **extra})
                assert answer.status_code == 403, (who, action, answer.text[:200])
        assert site.memory.get(target, user_id=user).version == before


def test_export_is_the_scope_as_jsonl(site: Site) -> None:
    answer = site.login("maya").get("/ui/export?user=maya")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/x-ndjson")
    assert answer.headers["content-disposition"] == 'attachment; filename="lightmem-maya.jsonl"'
    records = [json.loads(line) for line in answer.text.splitlines()]
    assert records[0]["kind"] == "header"
    assert {r["user_id"] for r in records[1:]} == {"maya"}
    assert len(records) == len(list(site.memory.export_records(user_id="maya")))
    shared = site.login("maya").get("/ui/export?user=team%3Aapollo")
    assert shared.headers["content-disposition"] == 'attachment; filename="lightmem-team_apollo.jsonl"'


def test_scopes_timeline_pending_show_the_store(site: Site) -> None:
    admin = site.bearer("admin")
    scopes = inert(admin.get("/ui/").text)
    for user in ("maya", "tom", "team:apollo"):
        assert user in scopes.text
    rows = re.findall(r"<tr>\s*<th scope=\"row\">.*?</tr>", admin.get("/ui/").text, re.S)
    maya = next(r for r in rows if "user=maya" in r)
    numbers = [int(n) for n in re.findall(r'class="num"[^>]*>(\d+)<', maya)]
    current = len(site.memory.get_all(user_id="maya", limit=1000))
    superseded = len(site.memory.get_all(user_id="maya", include_superseded=True, limit=1000)) - current
    pending = len(site.memory.pending(user_id="maya"))
    assert numbers == [current, superseded, 0, pending] and pending == 2 and superseded >= 1
    c = site.bearer("maya")
    # the chart: one bar per day (Jan 12 to May 6 is > 62 days: two days a bar), current over superseded
    chart = c.get("/ui/timeline?user=maya").text
    label = re.search(r'<svg class="chart"[^>]*aria-label="([^"]+)"', chart)
    assert label and f"{current} current and {superseded} superseded" in label.group(1)
    bars = re.findall(r'<a href="(/ui/timeline\?[^"]+)" aria-label="([^"]+)"', chart)
    assert len(bars) <= 62 and any("2025-01-12" in tip and "1 superseded" in tip for _, tip in bars)
    # filters: session, type, time range, speaker; a bar's link opens its days
    s2 = Doc_text(c.get("/ui/timeline?user=maya&session=s2"))
    assert "hazelnuts" in s2 and "cello" not in s2
    assert "No memories match" in Doc_text(c.get("/ui/timeline?user=maya&type=relation"))
    may = Doc_text(c.get("/ui/timeline?user=maya&since=2025-05-01&until=2025-05-31"))
    assert "Portland" in may and "cello" not in may
    assert "No memories match" in Doc_text(c.get("/ui/timeline?user=maya&speaker=Tom"))
    said_by_maya = Doc_text(c.get("/ui/timeline?user=maya&speaker=Maya"))
    assert "Portland" in said_by_maya and "Miso" not in said_by_maya  # the cat was told by the payload speaker
    jan = next(href for href, tip in bars if tip.startswith("2025-01-12"))
    day = Doc_text(c.get(jan.replace("&amp;", "&")))
    assert "Seattle" in day and "Portland" not in day
    assert "Seattle" not in Doc_text(c.get("/ui/timeline?user=maya"))  # superseded: shown only when asked
    bad = c.get("/ui/timeline?user=maya&since=soon")
    assert bad.status_code == 400 and "since" in bad.text
    turns = Doc_text(c.get("/ui/pending?user=maya"))
    assert "Remind me to water the ferns." in turns and "I start the new job in June." in turns
    assert "Turns waiting for extraction: 2" in turns and "LLM calls and tokens per stage" in turns


def test_search_shows_window_score_lists_and_time(site: Site) -> None:
    c = site.bearer("maya")
    page = c.get("/ui/search?user=maya&q=moved+to+Portland")
    hits = re.findall(r'<li class="hit">(.*?)</li>', page.text, re.S)
    hit = next(h for h in hits if "Portland" in h)
    assert re.search(r"score \d\.\d{4}", hit) and "found by" in hit and "2025-05-04 10:00 Sun" in hit
    assert "window" in hit
    lists = set(re.findall(r'<span class="tag">([\w:]+)</span>', hit))
    assert "embedding" in lists
    keyword = c.get("/ui/search?user=maya&q=hazelnuts&strategy=context").text
    found = next(h for h in re.findall(r'<li class="hit">(.*?)</li>', keyword, re.S) if "hazelnuts" in h)
    assert '<span class="tag">context</span>' in found and '<span class="tag">embedding</span>' not in found
    ranged = Doc_text(c.get("/ui/search?user=maya&q=dog&since=2025-05-01"))
    assert "Seattle" not in ranged and "Portland" in ranged
    assert "Seattle" in Doc_text(c.get("/ui/search?user=maya&q=Seattle+dog&superseded=1"))
    assert c.get("/ui/search?user=maya&q=x&strategy=magic").status_code == 400


def Doc_text(answer: Any) -> str:  # noqa: N802 - reads as the page's text
    assert answer.status_code == 200, answer.text[:300]
    return inert(answer.text).text


def test_other_paths_under_ui(site: Site) -> None:
    c = site.bearer("maya")
    bare = c.get("/ui")
    assert bare.status_code == 307 and bare.headers["location"] == "/ui/" and bare.headers["x-frame-options"] == "DENY"
    nowhere = c.get("/ui/nothing-here")
    assert nowhere.status_code == 404 and nowhere.headers["x-frame-options"] == "DENY"
    assert nowhere.content == c.get("/ui/memory/nothing?user=maya").content


def test_restore_an_earlier_version(site: Site) -> None:
    c = site.bearer("maya")
    mid = site.ids["m3"]
    first = site.memory.get(mid, user_id="maya").memory
    edited = c.post(
        f"/ui/memory/{mid}/edit", data={"user": "maya", "memory": "Maya: My locker code is 9000.", "reason": "new lock"}
    )
    assert edited.status_code == 303
    page = inert(c.get(memory_page(site, "m3")).text)
    restores = [f for f in page.post_forms() if f["attrs"]["action"].startswith(f"/ui/memory/{mid}/restore")]
    assert [f["inputs"].get("version") for f in restores] == ["1"]  # the current version is not offered
    answer = c.post(
        restores[0]["attrs"]["action"], data={k: v for k, v in restores[0]["inputs"].items() if k != "csrf"}
    )
    assert answer.status_code == 303 and "done=restored" in answer.headers["location"]
    entry = site.memory.get(mid, user_id="maya")
    assert entry.memory == first and entry.version == 3
    record = site.memory.history(mid, user_id="maya")[-1]
    assert (
        record.event == "UPDATE" and record.reason == f"restored version 1 of {mid}" and record.actor == "key:maya-app"
    )
    again = c.post(restores[0]["attrs"]["action"], data={"user": "maya", "version": "1"})
    assert again.status_code == 400  # already the current text: nothing to restore


def test_a_correction_redraws_the_chart_at_once(site: Site) -> None:
    c = site.bearer("maya")

    def label() -> str:
        found = re.search(r'<svg class="chart"[^>]*aria-label="([^"]+)"', c.get("/ui/timeline?user=maya").text)
        assert found
        return found.group(1)

    added = site.memory.add_memory([turn("c1", "I collect old maps.", "2025-04-01T10:00:00")], user_id="maya").added
    before = label()  # counted now (the chart is kept 15 s between requests)
    assert label() == before
    answer = c.post(f"/ui/memory/{added[0].id}/delete", data={"user": "maya", "confirm": "yes"})
    assert answer.status_code == 303
    current = len(site.memory.get_all(user_id="maya", limit=1000))
    assert f"{current} current" in label() and label() != before


def test_a_server_without_keys_lets_loopback_in_as_admin(site: Site) -> None:
    """No keys and no token: the loopback-only open mode, where REST needs no key either."""
    with Served(site.memory, None, extra_routes=ui.routes()) as open_server:
        with httpx.Client(base_url=open_server.url, timeout=30) as c:
            form = c.get("/ui/login")
            key_field = next(a for a in inert(form.text).elements("input") if a.get("name") == "key")
            assert "This server has no keys" in form.text and "required" not in key_field
            assert c.post("/ui/login", data={"csrf": csrf_of(form.text), "key": ""}).status_code == 303
            scopes = Doc_text(c.get("/ui/"))
            assert "admin" in scopes and "tom" in scopes and "maya" in scopes
