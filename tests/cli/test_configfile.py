"""Config from a file or the environment: the keys of ``from_config``, merged in a fixed order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lightmem_core import LightMemory
from lightmem_core.cli import app
from lightmem_core.configfile import load_config
from lightmem_core.errors import ConfigError


def test_file_then_inline_json_then_path(tmp_path: Path) -> None:
    f = tmp_path / "lightmem.json"
    f.write_text(
        json.dumps(
            {
                "retrieve_strategy": "context",
                "store": {"collection_name": "a", "path": "/x"},
                "retrieval": {"limit": 5, "rrf_k": 10},
            }
        )
    )
    env = {"LIGHTMEM_CONFIG": str(f), "LIGHTMEM_CONFIG_JSON": '{"retrieval": {"rrf_k": 20}, "update": "online"}'}
    got = load_config(environ=env, store_path=tmp_path / "s")
    assert got == {
        "retrieve_strategy": "context",
        "update": "online",
        "store": {"collection_name": "a", "path": str(tmp_path / "s")},
        "retrieval": {"limit": 5, "rrf_k": 20},
    }
    assert load_config(environ={}) == {}
    # an explicit file wins over the environment's
    other = tmp_path / "other.toml"
    other.write_text('index_strategy = "hybrid"\n[store]\ncollection_name = "t"\n')
    assert load_config(other, environ=env)["store"] == {"collection_name": "t"}


def test_upstream_keys_with_a_path_override(tmp_path: Path) -> None:
    f = tmp_path / "upstream.json"
    f.write_text(
        json.dumps(
            {
                "embedding_retriever": {
                    "model_name": "qdrant",
                    "configs": {"collection_name": "up", "path": "/elsewhere"},
                }
            }
        )
    )
    from lightmem_core import MemoryConfig

    cfg = MemoryConfig.from_dict(load_config(f, store_path=tmp_path / "here", environ={}))
    assert cfg.store.collection_name == "up" and cfg.store.path == str(tmp_path / "here")


@pytest.mark.parametrize(
    "name,text,needle",
    [
        ("missing.json", None, "cannot read"),
        ("bad.json", "{nope", "not valid json"),
        ("bad.toml", "= 1", "not valid toml"),
        ("list.json", "[1, 2]", "must hold an object"),
    ],
)
def test_bad_files_are_config_errors(tmp_path: Path, name: str, text: str | None, needle: str) -> None:
    f = tmp_path / name
    if text is not None:
        f.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(f, environ={})
    assert exc.value.field == "config_file" and needle in str(exc.value).lower()
    with pytest.raises(ConfigError) as exc:
        load_config(environ={"LIGHTMEM_CONFIG_JSON": "[]"})
    assert exc.value.field == "LIGHTMEM_CONFIG_JSON"


def test_cli_uses_the_config_file(tmp_path: Path, embedder: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LIGHTMEM_CONFIG", "LIGHTMEM_CONFIG_JSON", "LIGHTMEM_PATH"):
        monkeypatch.delenv(var, raising=False)
    store = tmp_path / "store"
    cfg = tmp_path / "lightmem.toml"
    cfg.write_text(f'default_user_id = "maya"\n[store]\ncollection_name = "notes"\npath = "{store}"\n')
    chat = tmp_path / "chat.json"
    chat.write_text(json.dumps([{"role": "user", "content": "I keep bees in Leeds."}]))
    runner = CliRunner()
    result = runner.invoke(app, ["--config", str(cfg), "ingest", str(chat), "--json"], obj={"embedder": embedder})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["user_id"] == "maya"
    assert (store / "notes_journal.sqlite").exists()
    with LightMemory.from_config({"store": {"path": str(store), "collection_name": "notes"}}, embedder=embedder) as m:
        assert [e.memory for e in m.get_all(user_id="maya")] == ["user: I keep bees in Leeds."]
    bad = runner.invoke(app, ["--config", str(tmp_path / "nope.toml"), "list"], obj={"embedder": embedder})
    assert bad.exit_code == 2 and "config_file" in bad.stderr
