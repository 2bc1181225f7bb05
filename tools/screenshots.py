"""Screenshots of every memory-inspector page for docs/ui.md (``make screenshots``).

Seeds a demo store in a temporary directory through the library (offline extraction,
online update rules, one edit, two waiting turns), serves it with the inspector on
loopback, logs in with an admin key through the login form in headless Chromium
(Debian's, driven by Playwright) and saves one PNG per page into docs/ui/.

    .venv/bin/python tools/screenshots.py [--out docs/ui] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def turn(tid: str, content: str, when: str, name: str = "Maya") -> dict[str, Any]:
    return {"id": tid, "role": "user", "content": content, "time_stamp": when, "name": name}


def seed(memory: Any) -> dict[str, str]:
    """Maya's memory over four months, a shared team scope, one correction, two waiting turns."""
    sessions = [
        (
            "2025-01-12T09:00:00",
            "kitchen-chat",
            [
                "I live in Seattle with my dog Biscuit.",
                "Biscuit is a three-year-old corgi.",
                "My favourite band is Radiohead.",
                "I practise the cello on Tuesdays.",
            ],
        ),
        (
            "2025-02-03T18:30:00",
            "trip-planning",
            [
                "I am allergic to hazelnuts.",
                "We are planning a trip to Lisbon in April.",
                "My sister Ana plays the violin.",
            ],
        ),
        (
            "2025-03-14T12:15:00",
            "work",
            [
                "I started a new job as a data engineer at Tidewater.",
                "My manager is called Priya.",
                "I bike to work when it is not raining.",
            ],
        ),
        (
            "2025-05-04T10:00:00",
            "moving",
            ["I moved to Portland last month.", "The new flat has a balcony for plants."],
        ),
    ]
    n = 0
    for start, session, lines in sessions:
        turns = []
        for i, line in enumerate(lines):
            n += 1
            stamp = start[:-5] + f"{i:02d}:00"
            turns.append(turn(f"t{n}", line, stamp))
        memory.add_memory(turns, user_id="maya", session_id=session)
    memory.add_memory(
        [turn("a1", "The launch moved to March 3.", "2025-02-20T16:00:00", name="Planner")],
        user_id="team:apollo",
        agent_id="planner",
        session_id="launch",
    )
    memory.add_memory(
        [turn("a2", "The design review is on Fridays.", "2025-02-21T10:00:00", name="Reviewer")],
        user_id="team:apollo",
        agent_id="reviewer",
        session_id="reviews",
    )
    ids = {e.source_ids[0]: e.id for e in memory.get_all(user_id="maya", include_superseded=True, limit=1000)}
    memory.update(
        ids["t4"], "Maya: I practise the cello on Thursdays.", user_id="maya", reason="lesson moved", actor="key:maya"
    )
    memory.import_records(
        [
            {
                "kind": "turn",
                "id": "w1",
                "role": "user",
                "content": "Remind me to water the ferns on Sunday.",
                "time_stamp": "2025-05-06T07:00:00",
                "user_id": "maya",
                "session_id": "moving",
                "status": "pending",
                "attempts": 2,
                "last_error": "LLM endpoint failed: 502 Bad Gateway",
            },
            {
                "kind": "turn",
                "id": "w2",
                "role": "user",
                "content": "My new dentist is Dr. Okafor.",
                "time_stamp": "2025-05-06T07:02:00",
                "user_id": "maya",
                "session_id": "moving",
                "status": "pending",
            },
        ]
    )
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "ui"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    import socket

    import uvicorn
    from playwright.sync_api import sync_playwright

    from lightmem_core import LightMemory, MemoryConfig
    from lightmem_core.server import ui
    from lightmem_core.server.app import ServerSettings, create_app
    from lightmem_core.server.keys import KeyStore

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        memory = LightMemory(MemoryConfig.from_dict({"store": {"path": f"{tmp}/store"}, "update": "online"}))
        keys = KeyStore(f"{tmp}/keys.sqlite")
        _, secret = keys.create(name="maya-app", users=["maya"], read_users=["team:apollo"])
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        app = create_app(memory, keys=keys, settings=ServerSettings(port=port, extra_routes=ui.routes()))
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        ids = seed(memory)  # after start-up: the two imported turns stay waiting
        base = f"http://127.0.0.1:{port}"
        shots = [
            ("login", "/ui/login", 1280, None),
            ("scopes", "/ui/", 1280, None),
            ("timeline", "/ui/timeline?user=maya&superseded=1", 1280, None),
            ("search", "/ui/search?user=maya&q=where+does+Maya+live%3F", 1280, None),
            ("memory", f"/ui/memory/{ids['t11']}?user=maya", 1280, None),
            ("memory-history", f"/ui/memory/{ids['t4']}?user=maya", 1280, "#h-history"),
            ("delete", f"/ui/memory/{ids['t9']}/delete?user=maya", 1280, None),
            ("pending", "/ui/pending?user=maya", 1280, None),
            ("timeline-390", "/ui/timeline?user=maya", 390, None),
            ("memory-390", f"/ui/memory/{ids['t11']}?user=maya", 390, None),
        ]
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium, headless=True, args=["--no-sandbox"])
                context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 800})
                page = context.new_page()
                page.goto("/ui/login")
                page.screenshot(path=str(out / "login.png"))
                page.fill("#key", secret)
                page.click("button:has-text('Log in')")
                page.wait_for_selector("h1:has-text('Scopes')")
                for name, path, width, anchor in shots[1:]:
                    page.set_viewport_size({"width": width, "height": 800 if width > 500 else 844})
                    page.goto(path)
                    if anchor:
                        page.locator(anchor).scroll_into_view_if_needed()
                        page.screenshot(path=str(out / f"{name}.png"))
                    else:
                        page.screenshot(path=str(out / f"{name}.png"), full_page=width > 500)
                    print(f"{out / name}.png")
                browser.close()
        finally:
            server.should_exit = True
            thread.join(30)
            keys.close()
            memory.close()


if __name__ == "__main__":
    main()
