"""Bad input is refused with the field named, and nothing is written."""

from __future__ import annotations

import pytest

from lightmem_core import ConfigError, InvalidInputError, LightMemory
from lightmem_core.lexical import SparseVec
from lightmem_core.store.base import PointIn
from lightmem_core.types import Scope


@pytest.mark.parametrize(
    "messages, field",
    [
        ([{"role": "user"}], "messages[0].content"),
        ([{"role": "user", "content": 42}], "messages[0].content"),
        ([{"role": "user", "content": "   \n "}], "messages[0].content"),
        ([{"role": "wizard", "content": "hi"}], "messages[0].role"),
        ([{"role": "user", "content": "ok fine", "time_stamp": "yesterday-ish"}], "messages[0].time_stamp"),
        ([{"role": "user", "content": "ok fine", "colour": "red"}], "messages[0].colour"),
        ([{"role": "user", "content": "good"}, {"role": "user", "content": "bad \udcff"}], "messages[1].content"),
        ([{"role": "user", "content": "a", "id": "x"}, {"role": "user", "content": "b", "id": "x"}], "messages[1].id"),
        ([], "messages"),
        (["just a string in a list"], "messages[0]"),
    ],
)
def test_bad_messages(make_memory, messages, field) -> None:
    m = make_memory()
    with pytest.raises(InvalidInputError) as err:
        m.add_memory(messages, user_id="u")
    assert err.value.field == field
    assert m.get_all(user_id="u") == [] and m.pending(user_id="u") == []


def test_bad_scope_and_query(make_memory) -> None:
    m = make_memory()
    m.add_memory("Remember that my locker number is 4411.", user_id="u")
    for kwargs, field in [
        ({"user_id": ""}, "scope.user_id"),
        ({"user_id": "a\nb"}, "scope.user_id"),
        ({"user_id": "u", "session_id": "x" * 300}, "scope.session_id"),
    ]:
        with pytest.raises(InvalidInputError) as err:
            m.retrieve("locker", **kwargs)
        assert err.value.field == field
    for query in ["", "   ", None, 5]:
        with pytest.raises(InvalidInputError) as err:
            m.retrieve(query, user_id="u")  # type: ignore[arg-type]
        assert err.value.field == "query"
    for limit in [0, -1, "3", 10_001]:
        with pytest.raises(InvalidInputError) as err:
            m.retrieve("locker", limit=limit, user_id="u")  # type: ignore[arg-type]
        assert err.value.field == "limit"
    with pytest.raises(InvalidInputError) as err:
        m.retrieve("locker", strategy="telepathy", user_id="u")
    assert err.value.field == "strategy"
    with pytest.raises(InvalidInputError) as err:
        m.update(m.get_all(user_id="u")[0].id, "  ", user_id="u")
    assert err.value.field == "update.memory"
    assert len(m.get_all(user_id="u")) == 1


def test_wrong_vector_size_and_bad_sparse_never_reach_engine(make_memory) -> None:
    m = make_memory()
    m.add_memory("My favourite colour is teal.", user_id="u")
    store = m._store  # the storage boundary itself: callers of the store protocol get the same checks
    payload = {"user_id": "u", "agent_id": None, "session_id": None}
    with pytest.raises(InvalidInputError, match="dimensions"):
        store.upsert(
            Scope(user_id="u"), [PointIn(id="00000000-0000-0000-0000-000000000001", payload=payload, dense=[0.1] * 17)]
        )
    with pytest.raises(InvalidInputError, match="indices"):
        store.upsert(
            Scope(user_id="u"),
            [
                PointIn(
                    id="00000000-0000-0000-0000-000000000002",
                    payload=payload,
                    dense=[0.1] * 384,
                    sparse=SparseVec([1, 2], [0.5]),
                )
            ],
        )
    with pytest.raises(InvalidInputError, match="scope"):
        store.upsert(
            Scope(user_id="u"),
            [
                PointIn(
                    id="00000000-0000-0000-0000-000000000003", payload={**payload, "user_id": "v"}, dense=[0.1] * 384
                )
            ],
        )
    assert len(m.get_all(user_id="u")) == 1
    assert m.retrieve("teal", user_id="u")[0].entry.memory.endswith("teal.")


@pytest.mark.parametrize(
    "config, field",
    [
        ({"colour": "red"}, "colour"),
        ({"retrieve_strategy": "psychic"}, "retrieval.strategy"),
        ({"index_strategy": "both"}, "index_strategy"),
        ({"text_embedder": {"model_name": "word2vec", "configs": {}}}, "text_embedder.model_name"),
        (
            {"embedding_retriever": {"model_name": "qdrant", "configs": {"colour": 1}}},
            "embedding_retriever.configs.colour",
        ),
        ({"memory_manager": {"model_name": "openai", "configs": {"temperature": 9}}}, "llm.temperature"),
        ({"retrieval": {"limit": 0}}, "retrieval.limit"),
        ({"update": "sometimes"}, "update"),
        ({"store": {"provider": "redis"}}, "store.provider"),
    ],
)
def test_bad_config_names_the_field(config, field) -> None:
    with pytest.raises(ConfigError) as err:
        LightMemory.from_config(config)
    assert err.value.field == field


def test_empty_turns_are_skipped_and_reported(make_memory) -> None:
    """Real logs (LongMemEval_S among them) carry assistant turns with empty content; one
    of them made the whole batch fail (``messages[8].content: content is empty``)."""
    m = make_memory()
    r = m.add_memory(
        [
            {"id": "a", "role": "user", "content": "I adopted a beagle named Pickle."},
            {"id": "b", "role": "assistant", "content": ""},
            {"role": "assistant", "content": "  \n\t "},
            {"id": "d", "role": "user", "content": "\x00\x01"},
            {"id": "e", "role": "user", "content": "Pickle is two years old."},
        ],
        user_id="u",
    )
    assert r.turn_ids == ["a", "e"]
    assert [(s.index, s.id, s.reason) for s in r.skipped] == [
        (1, "b", "content is empty"),
        (2, None, "content is empty"),
        (3, "d", "content is empty"),
    ]
    assert {t.id for t in m.source_turns(m.get_all(user_id="u")[0].id, user_id="u")} <= {"a", "e"}
    assert len(m.get_all(user_id="u")) == 2
    # a batch of nothing but empty turns is still an error, and writes nothing
    with pytest.raises(InvalidInputError) as err:
        m.add_memory([{"role": "user", "content": ""}, {"role": "assistant", "content": " "}], user_id="u")
    assert err.value.field == "messages"
    assert len(m.get_all(user_id="u")) == 2 and m.pending(user_id="u") == []
