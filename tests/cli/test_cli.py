"""The ``lightmem`` CLI through typer's runner, on real stores with the real MiniLM.

The session's loaded model is handed to the CLI through Click's ``obj`` (the CLI's
documented hook for reusing a model); everything else is the command line as typed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lightmem_core.cli import app

# LoCoMo's shape (speaker_a/b, session_N lists of {speaker, dia_id, text}, session_N_date_time,
# blip_caption), with made-up content so the test needs no data set.
LOCOMO = {
    "speaker_a": "Caroline",
    "speaker_b": "Melanie",
    "session_1_date_time": "1:56 pm on 8 May, 2023",
    "session_1": [
        {
            "speaker": "Caroline",
            "dia_id": "D1:1",
            "text": "I went to a LGBTQ support group yesterday and it was so powerful.",
        },
        {
            "speaker": "Melanie",
            "dia_id": "D1:2",
            "text": "Wow, that's cool! I painted a lake sunrise last year.",
            "blip_caption": "a painting of a sunrise over a lake",
        },
        {"speaker": "Caroline", "dia_id": "D1:3", "text": "I'm researching adoption agencies to start a family."},
    ],
    "session_2_date_time": "1:14 pm on 25 May, 2023",
    "session_2": [
        {
            "speaker": "Melanie",
            "dia_id": "D2:1",
            "text": "We're going camping in the mountains next month with the kids.",
        },
        {"speaker": "Caroline", "dia_id": "D2:2", "text": "I ran a charity race for mental health last Saturday."},
    ],
    "session_3_date_time": "7:55 pm on 9 June, 2023",
    "qa": [
        {"question": "What did Caroline research?", "answer": "Adoption agencies", "evidence": ["D1:3"], "category": 4}
    ],
}
PLAIN = [
    {
        "id": "t1",
        "role": "user",
        "content": "My dog Biscuit is a corgi.",
        "time_stamp": "2025/01/12 (Sun) 09:14",
        "session_id": "jan",
    },
    {
        "id": "t2",
        "role": "assistant",
        "content": "Biscuit sounds adorable!",
        "time_stamp": "2025-01-12T09:15:00",
        "session_id": "jan",
    },
    {
        "id": "t3",
        "role": "user",
        "content": "I start at Brightline Health on April 28.",
        "time_stamp": "2025-04-06T10:05:00",
        "session_id": "apr",
    },
]


class Cli:
    """Runs ``lightmem --path <store> ...`` and parses ``--json`` output."""

    def __init__(self, embedder: Any, store: Path) -> None:
        self.runner = CliRunner()
        self.embedder = embedder
        self.store = store

    def __call__(self, *args: str, code: int = 0, store: Path | None = None) -> Any:
        result = self.runner.invoke(app, ["--path", str(store or self.store), *args], obj={"embedder": self.embedder})
        assert result.exit_code == code, (args, result.exit_code, result.output, result.exception)
        return result

    def json(self, *args: str, store: Path | None = None) -> Any:
        return json.loads(self(*args, "--json", store=store).stdout)


@pytest.fixture
def cli(embedder: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    for var in ("LIGHTMEM_CONFIG", "LIGHTMEM_CONFIG_JSON", "LIGHTMEM_PATH"):
        monkeypatch.delenv(var, raising=False)
    return Cli(embedder, tmp_path / "store")


# LongMemEval's shape: questions, each with its own haystack; an empty assistant turn as real
# exports have; has_answer on the evidence turn.
LONGMEMEVAL = [
    {
        "question_id": "q1",
        "question": "What is my cat's name?",
        "question_date": "2023/06/06 (Tue) 08:19",
        "haystack_session_ids": ["s-a", "s-b"],
        "haystack_dates": ["2023/04/25 (Tue) 04:07", "2023/05/02 (Tue) 10:00"],
        "haystack_sessions": [
            [{"role": "user", "content": "Can you recommend a travel backpack?"}, {"role": "assistant", "content": ""}],
            [
                {"role": "user", "content": "My cat Juniper knocked over my coffee again.", "has_answer": True},
                {"role": "assistant", "content": "Cats love knocking things over!"},
            ],
        ],
    },
    {
        "question_id": "q2",
        "question": "Where did I go hiking?",
        "question_date": "2023/06/07 (Wed) 09:00",
        "haystack_session_ids": ["s-c"],
        "haystack_dates": ["2023/05/20 (Sat) 18:30"],
        "haystack_sessions": [
            [{"role": "user", "content": "I hiked Mount Tam last weekend."}, {"role": "assistant", "content": "   "}]
        ],
    },
]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    locomo = tmp_path / "conv-99.json"
    locomo.write_text(json.dumps(LOCOMO))
    plain = tmp_path / "chat.json"
    plain.write_text(json.dumps(PLAIN))
    lines = tmp_path / "chat.jsonl"
    lines.write_text("\n".join(json.dumps({**m, "id": m["id"] + "-l"}) for m in PLAIN) + "\n")
    longmemeval = tmp_path / "longmemeval_tiny.json"
    longmemeval.write_text(json.dumps(LONGMEMEVAL))
    return {"locomo": locomo, "plain": plain, "jsonl": lines, "longmemeval": longmemeval}


def test_ingest_longmemeval_puts_each_haystack_in_its_own_scope(cli: Cli, files: dict[str, Path]) -> None:
    got = cli.json("ingest", str(files["longmemeval"]), "--format", "longmemeval")
    assert got["users"] == ["q1", "q2"] and got["turns"] == 4 and got["skipped"] == 2 and got["errors"] == []
    assert got["skipped_turns"] == ["[0].haystack_sessions[0][1]", "[1].haystack_sessions[0][1]"]
    (hit,) = [h for h in cli.json("search", "my cat and the coffee", "--user", "q1") if "Juniper" in h["memory"]]
    assert hit["source_ids"] == ["s-b:0"] and hit["metadata"]["has_answer"] is True and hit["session_id"] == "s-b"
    assert all("Juniper" not in h["memory"] for h in cli.json("search", "cat name", "--user", "q2"))
    # auto-detected, and a second run stores nothing twice
    again = cli.json("ingest", str(files["longmemeval"]))
    assert again["turns"] == 0 and again["duplicates"] == 4
    human = cli("ingest", str(files["longmemeval"])).stdout
    assert "2 users (one per question)" in human and "2 empty turns skipped" in human


def test_ingest_search_show_fix(cli: Cli, files: dict[str, Path]) -> None:
    got = cli.json("ingest", str(files["locomo"]))
    assert got["user_id"] == "conv-99" and got["turns"] == 5 and got["entries"] >= 5 and got["errors"] == []
    got = cli.json("ingest", str(files["plain"]), "--user", "maya")
    assert got["turns"] == 3 and got["user_id"] == "maya"
    again = cli.json("ingest", str(files["plain"]), "--user", "maya")
    assert again["turns"] == 0 and again["duplicates"] == 3

    hits = cli.json("search", "What did Caroline research?", "--user", "conv-99", "--limit", "3")
    top = hits[0]
    assert "adoption agencies" in top["memory"] and top["source_ids"] == ["D1:3"]
    assert top["time_stamp"] == "2023-05-08T13:56:00" and top["session_id"] == "session_1"
    assert all(h["user_id"] == "conv-99" for h in hits)
    assert all("Biscuit" not in h["memory"] for h in cli.json("search", "dog corgi", "--user", "conv-99"))
    caption = cli.json("search", "painting of a sunrise", "--user", "conv-99", "--limit", "1")[0]
    assert caption["source_ids"] == ["D1:2"]
    human = cli("search", "What did Caroline research?", "--user", "conv-99").stdout
    assert top["id"] in human and "adoption agencies" in human

    listed = cli.json("list", "--user", "maya")
    assert [e["session_id"] for e in listed] == ["jan", "jan", "apr"]
    assert [e["id"] for e in cli.json("list", "--user", "maya", "--session", "apr")] == [listed[-1]["id"]]

    job = listed[-1]
    cli("update", job["id"], "Maya works at Brightline Health.", "--reason", "user correction", "--user", "maya")
    shown = cli.json("show", job["id"], "--user", "maya")
    assert shown["entry"]["memory"] == "Maya works at Brightline Health." and shown["entry"]["version"] == 2
    assert [(h["event"], h["reason"]) for h in shown["history"]][1] == ("UPDATE", "user correction")
    assert [t["content"] for t in shown["sources"]] == ["I start at Brightline Health on April 28."]
    text = cli("show", job["id"], "--user", "maya").stdout
    assert "UPDATE" in text and "user correction" in text and "April 28" in text

    cli("delete", listed[0]["id"], "--user", "maya", "--reason", "test")
    err = cli("show", listed[0]["id"], "--user", "maya", code=1)
    assert "not found" in err.stderr
    cli("show", job["id"], "--user", "conv-99", code=1)  # another user's id is not found either

    stats = cli.json("stats")
    per_scope = {(s["user_id"], s["session_id"]): s["entries"] for s in stats["scopes"]}
    assert set(per_scope) == {("conv-99", "session_1"), ("conv-99", "session_2"), ("maya", "jan"), ("maya", "apr")}
    assert per_scope[("maya", "jan")] == 1 and per_scope[("maya", "apr")] == 1
    assert stats["turns"]["total"] == 8 and stats["turns"]["tokens"] > 0 and stats["entries"]["tokens"] > 0
    assert stats["history"] == {"ADD": stats["entries"]["total"] + 1, "DELETE": 1, "UPDATE": 1}
    assert "entries per scope" in cli("stats").stdout


def test_export_import_round_trip(cli: Cli, files: dict[str, Path], tmp_path: Path) -> None:
    cli("ingest", str(files["locomo"]))
    cli("ingest", str(files["jsonl"]), "--user", "maya", "--agent", "coach")
    first = cli.json("list", "--user", "maya")[0]
    cli("update", first["id"], "Maya's dog Biscuit is a corgi.", "--user", "maya")
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    cli("export", str(a))
    fresh = tmp_path / "fresh"
    counts = cli.json("import", str(a), store=fresh)
    assert counts["turns"] == 8 and counts["entries"] >= 8 and counts["history"] == counts["entries"] + 1
    cli("export", str(b), store=fresh)
    assert a.read_text() == b.read_text()  # entries, history and turns identical
    kinds = [json.loads(line)["kind"] for line in a.read_text().splitlines()]
    assert kinds[0] == "header" and {"turn", "entry", "history"} <= set(kinds)

    for user, query in (("conv-99", "What did Caroline research?"), ("maya", "What breed is the dog?")):
        before = cli.json("search", query, "--user", user)
        after = cli.json("search", query, "--user", user, store=fresh)
        assert [h["id"] for h in after] == [h["id"] for h in before]
        assert [round(h["score"], 6) for h in after] == [round(h["score"], 6) for h in before]
    shown = cli.json("show", first["id"], "--user", "maya", store=fresh)
    assert [h["event"] for h in shown["history"]] == ["ADD", "UPDATE"] and shown["entry"]["agent_id"] == "coach"
    assert shown["sources"][0]["id"] == "t1-l"
    # importing twice changes nothing
    cli("import", str(a), store=fresh)
    cli("export", str(b), store=fresh)
    assert a.read_text() == b.read_text()


def test_bad_input_names_the_place_and_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"role": "user", "content": "fine"}\n\n{"role": "user", "content": "also fine"}\n'
        '{"role": "robot", "content": "no"}\n'
    )
    result = cli("ingest", str(bad), code=2)
    assert "line 4.role" in result.stderr
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps([{"role": "user", "content": "hi", "mood": "happy"}]))
    assert "messages[0].mood: unknown field" in cli("ingest", str(unknown), code=2).stderr
    assert cli.json("stats")["turns"]["total"] == 0
    assert "--filter" in cli("list", "--filter", "{not json", code=2).stderr
    assert "filters.time_stamp.gt" in cli("search", "x", "--filter", '{"time_stamp": {"gt": "soon"}}', code=2).stderr
    broken = tmp_path / "broken.jsonl"
    broken.write_text(
        '{"kind": "header", "format": "lightmem-export", "version": 1}\n{"kind": "entry", "memory": ""}\n'
    )
    assert "records[1]" in cli("import", str(broken), code=2).stderr


def test_search_shows_a_sentence_with_its_window(cli: Cli, tmp_path: Path) -> None:
    chat = tmp_path / "matcha.json"
    chat.write_text(
        json.dumps(
            [
                {
                    "id": "m1",
                    "role": "user",
                    "time_stamp": "2025-06-18T08:05:00",
                    "content": "Is ceremonial grade matcha worth the price? I whisk up a bowl every "
                    "single morning now and want to upgrade.",
                }
            ]
        )
    )
    cli("ingest", str(chat), "--user", "zoe")
    top = next(
        h for h in cli.json("search", "What does Zoe whisk every morning?", "--user", "zoe") if "whisk" in h["memory"]
    )
    assert "matcha" not in top["memory"] and "matcha" in top["window"]
    human = cli("search", "What does Zoe whisk every morning?", "--user", "zoe").stdout
    assert "in context:" in human and "ceremonial grade matcha" in " ".join(human.split())


def test_keys_and_a_remote_memory_from_the_command_line(cli: Cli, make_memory: Any, tmp_path: Path) -> None:
    """``lightmem keys create/list/revoke`` on the store's key file, and every reading
    command against a running server with ``--url`` / ``--api-key``."""
    from lightmem_core.server.keys import KeyStore
    from tests._served import Served

    made = json.loads(cli("--json", "keys", "create", "--users", "maya", "--name", "maya-app").stdout)
    assert made["key"].startswith("lmk_") and made["users"] == ["maya"]
    admin = cli.json("keys", "create", "--admin")
    listed = cli.json("keys", "list")
    assert {k["id"] for k in listed} == {made["id"], admin["id"]} and all("key" not in k for k in listed)
    assert "users" in cli("keys", "create", code=2).stderr  # a key must reach something
    memory = make_memory(path=tmp_path / "served")
    memory.add_memory("My dog Biscuit is a corgi.", user_id="maya")
    memory.add_memory("Tom's cat is called Miso.", user_id="tom")
    keys = KeyStore(str(cli.store / "keys.sqlite"))
    with Served(memory, keys) as served:
        remote = ["--url", served.url, "--api-key", made["key"]]
        hits = json.loads(cli(*remote, "search", "dog breed", "--user", "maya", "--json").stdout)
        assert "corgi" in hits[0]["memory"]
        assert "may not read" in cli(*remote, "search", "cat", "--user", "tom", code=1).stderr
        assert [e["user_id"] for e in json.loads(cli(*remote, "--json", "list", "--user", "maya").stdout)] == ["maya"]
        cli("keys", "revoke", made["id"])
        assert "revoked" in cli(*remote, "search", "dog", "--user", "maya", code=1).stderr
    keys.close()
