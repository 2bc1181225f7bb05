"""The inspector in a real browser: headless Chromium (Debian's) driven by Playwright.

One server and one browser for the module; each test gets a fresh browser context (its
own cookies) and logs in through the form. Flows: log in and out; search and open a
hit; edit with a reason and see both versions; delete and see it gone from search;
restore a superseded value; stored XSS payloads stay inert; another user's data is
unreachable; all of it from the keyboard alone; the layout at 1280 and 390 px.
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterator

import pytest

from tests.ui.conftest import XSS, Site

CHROMIUM = os.environ.get("LIGHTMEM_CHROMIUM", "/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"no Chromium at {CHROMIUM}: `make install-dev` installs Debian's (apt-get install chromium)",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def _watched(context: Any) -> Any:
    """The context's page; any script error or dialog on it fails the test."""
    pg = context.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    pg.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    pg.problems = problems
    return pg


def log_in(pg: Any, site: Site, who: str = "maya") -> None:
    pg.goto("/ui/")
    assert "/ui/login" in pg.url
    pg.fill("#key", site.secrets[who])
    pg.click("button:has-text('Log in')")
    pg.wait_for_selector("h1:has-text('Scopes')")


@pytest.fixture(scope="module")
def maya_session(browser: Any, site: Site) -> dict[str, Any]:
    """Cookies of one log-in through the form, shared by the tests that start logged in."""
    context = browser.new_context(base_url=site.url)
    log_in(context.new_page(), site)
    state = context.storage_state()
    context.close()
    return state


@pytest.fixture
def fresh(browser: Any, site: Site) -> Iterator[Any]:
    """A page in a new context with no cookies: not logged in."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=site.url)
    context.set_default_timeout(10_000)
    pg = _watched(context)
    yield pg
    context.close()
    assert not pg.problems, pg.problems


@pytest.fixture
def page(browser: Any, site: Site, maya_session: dict[str, Any]) -> Iterator[Any]:
    """A page logged in as maya's key (read and write maya, read team:apollo)."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, base_url=site.url, storage_state=maya_session
    )
    context.set_default_timeout(10_000)
    pg = _watched(context)
    yield pg
    context.close()
    assert not pg.problems, pg.problems


def test_log_in_and_out(fresh: Any, site: Site) -> None:
    page = fresh
    page.goto("/ui/")
    page.fill("#key", "lmk_wrong_key")
    page.click("button:has-text('Log in')")
    assert "That key was not accepted." in page.inner_text("main")
    log_in(page, site)
    assert "maya" in page.inner_text("table") and "team:apollo" in page.inner_text("table")
    cookie = next(c for c in page.context.cookies() if c["name"] == "lm_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    assert page.evaluate("document.cookie") == ""  # no script can read it
    page.click("button:has-text('Log out')")
    page.wait_for_selector("h1:has-text('Log in')")
    page.goto("/ui/timeline?user=maya")
    assert "/ui/login" in page.url


def test_search_and_open_a_hit(page: Any, site: Site) -> None:
    page.goto("/ui/")
    page.click("a:has-text('search') >> nth=0")
    page.fill("#q", "moved to Portland")
    page.select_option("#strategy", "hybrid")
    page.click("button:has-text('Search')")
    hit = page.locator("li.hit", has_text="Portland").first
    assert re.search(r"score \d\.\d{4}", hit.inner_text())
    assert "2025-05-04 10:00 Sun" in hit.inner_text() and "found by" in hit.inner_text()
    hit.locator("a.text").click()
    page.wait_for_selector("h1:has-text('Memory')")
    assert "I moved to Portland last month." in page.inner_text("#memory-text")
    assert "2025-05-04 10:00 (Sun)" in page.inner_text("dl.facts")
    sources = page.inner_text("ol.turns")
    assert "I moved to Portland last month." in sources and "session s3" in sources
    assert "Seattle" in page.inner_text("ol.chain")  # the value it superseded


def test_edit_with_a_reason_and_see_both_versions(page: Any, site: Site) -> None:
    page.goto(f"/ui/memory/{site.ids['m4']}?user=maya")
    page.fill("#e-text", "Maya: I practise the cello on Thursdays.")
    page.click("button:has-text('Save the change')")  # no reason yet: the browser keeps the form
    assert page.evaluate("document.querySelector('#e-reason').validity.valueMissing")
    page.fill("#e-reason", "she moved the lesson")
    page.click("button:has-text('Save the change')")
    page.wait_for_selector("p.notice.ok")
    assert "Thursdays" in page.inner_text("#memory-text")
    history = page.locator("ol.history li")
    assert history.count() == 2
    update = history.nth(1).inner_text()
    assert "UPDATE" in update and "she moved the lesson" in update and "key:maya-app" in update
    assert page.locator("ol.history del").first.inner_text().strip() == "Tuesdays."
    assert page.locator("ol.history ins").last.inner_text().strip() == "Thursdays."
    assert "Tuesdays" in history.nth(0).inner_text()  # the first version, as added
    assert site.memory.history(site.ids["m4"], user_id="maya")[-1].reason == "she moved the lesson"


def test_delete_and_it_is_gone_from_search(page: Any, site: Site) -> None:
    page.goto("/ui/search?user=maya&q=dentist+appointment")
    assert "dentist appointment" in page.locator("li.hit").first.inner_text()
    page.locator("li.hit a.text").first.click()
    page.click("a:has-text('Delete…')")
    page.wait_for_selector("h1:has-text('Delete this memory?')")
    page.click("a:has-text('Cancel')")  # changing one's mind changes nothing
    page.click("a:has-text('Delete…')")
    page.fill("#d-reason", "appointment cancelled")
    page.click("button:has-text('Delete it')")
    page.wait_for_selector("p.notice.ok")
    assert "Deleted" in page.inner_text("p.notice.ok")
    page.goto("/ui/search?user=maya&q=dentist+appointment")
    assert "dentist" not in page.inner_text("main").replace("dentist appointment", "", 1).lower()
    record = site.memory.history(site.ids["m7"], user_id="maya")[-1]
    assert (record.event, record.reason) == ("DELETE", "appointment cancelled")


def test_restore_a_superseded_value(page: Any, site: Site) -> None:
    page.goto(f"/ui/memory/{site.ids['m1']}?user=maya")  # Seattle, superseded by Portland
    assert "superseded" in page.inner_text("h1")
    assert "Portland" in page.inner_text("ol.chain")
    page.click("ol.chain button:has-text('Restore as current')")
    page.wait_for_selector("p.notice.ok")
    head = site.ids["m8"]
    assert f"/ui/memory/{head}" in page.url
    assert "Seattle" in page.inner_text("#memory-text") and "current" in page.inner_text("h1")
    last = page.locator("ol.history li").last.inner_text()
    assert "UPDATE" in last and f"restored superseded value {site.ids['m1']}" in last
    removed = " ".join(page.locator("ol.history li").last.locator("del").all_inner_texts())
    assert "Portland" in removed and "Seattle" not in removed
    current = {e.memory for e in site.memory.get_all(user_id="maya", limit=1000)}
    assert "Maya: I live in Seattle with my dog." in current
    # the superseded entry itself is left as it was: the record of what was believed, and when
    assert not site.memory.get(site.ids["m1"], user_id="maya").is_current


def test_stored_payloads_stay_inert(page: Any, site: Site) -> None:
    paths = [
        "/ui/",
        "/ui/timeline?user=maya",
        "/ui/search?user=maya&q=passport+gym+bike+cat",
        "/ui/search?user=maya&q=%3Cimg%20src%3Dx%20onerror%3Dwindow.__xss%3D1%3E",
        "/ui/pending?user=maya",
        *(f"/ui/memory/{site.ids[n]}?user=maya" for n in ("x1", "x2", "x3", "x4")),
        f"/ui/memory/{site.ids['x4']}/delete?user=maya",
    ]
    shown = ""
    for path in paths:
        page.goto(path)
        assert page.evaluate("typeof window.__xss") == "undefined", path
        made = page.evaluate(
            """() => ({
                img: document.querySelectorAll('img, iframe, object, embed').length,
                js: [...document.querySelectorAll('[href],[src],[action]')]
                      .filter(e => /^\\s*javascript:/i.test(e.getAttribute('href') || e.getAttribute('src')
                                                        || e.getAttribute('action') || '')).length,
                handlers: [...document.querySelectorAll('*')]
                      .filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length,
                inline: [...document.scripts].filter(s => !s.src).length,
            })"""
        )
        assert made == {"img": 0, "js": 0, "handlers": 0, "inline": 0}, (path, made)
        shown += page.inner_text("body")
    for payload in (XSS["script"], XSS["img"], XSS["link"], XSS["speaker"], XSS["meta"], XSS["meta_html"]):
        assert payload in shown, payload  # shown as the text it is


def test_another_users_data_is_unreachable(page: Any, site: Site) -> None:
    page.goto("/ui/")
    assert "tom" not in page.inner_text("main")
    tom = site.ids["t1"]
    texts = []
    for path in (
        f"/ui/memory/{tom}?user=tom",
        f"/ui/memory/{tom}?user=maya",
        "/ui/memory/3c7f6a52-0000-4000-8000-000000000000?user=maya",
        "/ui/timeline?user=tom",
        "/ui/search?user=tom&q=PIN",
    ):
        answer = page.goto(path)
        assert answer.status == 404, path
        texts.append(page.inner_text("main"))
    assert len(set(texts)) == 1 and "9921" not in texts[0]
    page.goto("/ui/search?user=maya&q=Tom%27s+PIN")
    assert "9921" not in page.inner_text("main")


def tab_to(pg: Any, selector: str, text: str = "", limit: int = 60) -> None:
    """Press Tab until an element matching ``selector`` (and holding ``text``) has the focus."""
    for _ in range(limit):
        pg.keyboard.press("Tab")
        if pg.evaluate(
            "([s, t]) => { const e = document.activeElement; return !!e && e.matches(s) && e.textContent.includes(t) }",
            [selector, text],
        ):
            return
    raise AssertionError(f"{selector} {text!r} cannot be reached with Tab")


def test_everything_works_from_the_keyboard(fresh: Any, site: Site) -> None:
    page = fresh
    page.goto("/ui/")
    assert page.evaluate("document.activeElement.id") == "key"  # the login field has the focus
    page.keyboard.type(site.secrets["maya"])
    page.keyboard.press("Enter")
    page.wait_for_selector("h1:has-text('Scopes')")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    tab_to(page, "a[href='/ui/search?user=maya']")
    page.keyboard.press("Enter")
    page.wait_for_selector("h1:has-text('Search')")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("allergic to hazelnuts")
    page.keyboard.press("Enter")
    page.wait_for_selector("li.hit")
    tab_to(page, "li.hit a.text", "hazelnuts")
    page.keyboard.press("Enter")
    page.wait_for_selector("#memory-text")
    tab_to(page, "#e-text")
    page.keyboard.press("Control+A")
    page.keyboard.type("Maya: I am allergic to hazelnuts and peanuts.")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "e-reason"
    page.keyboard.type("she added peanuts")
    page.keyboard.press("Enter")
    page.wait_for_selector("p.notice.ok")
    assert "peanuts" in page.inner_text("#memory-text")
    assert "she added peanuts" in page.inner_text("ol.history")
    # back to the first version, then delete it: each a button the Tab key reaches
    tab_to(page, "button", "Restore this version")
    page.keyboard.press("Enter")
    page.wait_for_selector("p.notice.ok")
    assert page.inner_text("#memory-text") == "Maya: I am allergic to hazelnuts."
    tab_to(page, "a", "Delete…")
    page.keyboard.press("Enter")
    page.wait_for_selector("h1:has-text('Delete this memory?')")
    tab_to(page, "button", "Delete it")
    page.keyboard.press("Enter")
    page.wait_for_selector("p.notice.ok")
    assert [r.event for r in site.memory.history(site.ids["m6"], user_id="maya")] == [
        "ADD",
        "UPDATE",
        "UPDATE",
        "DELETE",
    ]
    # the timeline's chart bars are links the keyboard reaches too
    page.goto("/ui/timeline?user=maya")
    tab_to(page, "svg.chart a")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*since=.*"))
    tab_to(page, "form[action='/ui/logout'] button", limit=10)
    page.keyboard.press("Enter")
    page.wait_for_selector("h1:has-text('Log in')")


@pytest.mark.parametrize("width", [1280, 390])
def test_the_layout_holds(page: Any, site: Site, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    for path in (
        "/ui/",
        "/ui/timeline?user=maya&superseded=1",
        "/ui/search?user=maya&q=where+do+I+live",
        f"/ui/memory/{site.ids['m8']}?user=maya",
        f"/ui/memory/{site.ids['x3']}?user=maya",
        "/ui/pending?user=maya",
        "/ui/login",
    ):
        page.goto(path)
        layout = page.evaluate(
            """() => {
                const w = window.innerWidth;
                const out = [...document.querySelectorAll('body *')].filter(e => {
                    if (e.closest('.scroll, .chart-box') && e !== e.closest('.scroll, .chart-box')) return false;
                    const r = e.getBoundingClientRect();
                    return r.width > 0 && (r.right > w + 1 || r.left < -1) && !e.classList.contains('skip');
                }).map(e => e.tagName + '.' + e.className);
                return {scroll: document.documentElement.scrollWidth, width: w, out};
            }"""
        )
        assert layout["scroll"] <= width and not layout["out"], (path, layout)
        assert page.locator("h1").first.is_visible()
