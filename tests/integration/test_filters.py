"""Every filter operator, on the real engine."""

from __future__ import annotations

import numpy as np
import pytest

from lightmem_core import InvalidInputError

TURNS = [
    {
        "id": f"t{i}",
        "role": "user",
        "content": f"Day {i} note: I planted {i} tulip bulbs in the garden.",
        "time_stamp": f"2025-05-0{i}T12:00:00",
        "speaker_name": "Ann" if i % 2 else "Ben",
        "metadata": {"kind": "odd" if i % 2 else "even"},
    }
    for i in range(1, 6)
]


@pytest.fixture(scope="module")
def mem(tmp_path_factory, embedder):
    from lightmem_core import LightMemory, MemoryConfig

    m = LightMemory(MemoryConfig.from_dict({"store": {"path": str(tmp_path_factory.mktemp("f"))}}), embedder=embedder)
    m.add_memory(TURNS, user_id="u")
    yield m
    m.close()


def days(hits_or_entries):
    out = set()
    for h in hits_or_entries:
        e = getattr(h, "entry", h)
        out.add(int(e.source_ids[0][1:]))
    return out


@pytest.mark.parametrize(
    "flt, expected",
    [
        ({"time_stamp": {"gt": "2025-05-02T12:00:00"}}, {3, 4, 5}),
        ({"time_stamp": {"gte": "2025-05-02T12:00:00"}}, {2, 3, 4, 5}),
        ({"time_stamp": {"lt": "2025-05-02T12:00:00"}}, {1}),
        ({"time_stamp": {"lte": "2025-05-02T12:00:00"}}, {1, 2}),
        ({"time_stamp": {"gt": "2025-05-01T12:00:00", "lt": "2025-05-04T12:00:00"}}, {2, 3}),
        ({"time_stamp": "2025-05-03T12:00:00"}, {3}),
        ({"time_stamp": {"ne": "2025-05-03T12:00:00"}}, {1, 2, 4, 5}),
        ({"speaker_name": "Ann"}, {1, 3, 5}),
        ({"speaker_name": {"in": ["Ben"]}}, {2, 4}),
        ({"speaker_name": {"nin": ["Ben"]}}, {1, 3, 5}),
        ({"speaker_name": ["Ann", "Ben"]}, {1, 2, 3, 4, 5}),
        ({"entry_type": "fact"}, {1, 2, 3, 4, 5}),
        ({"entry_type": "summary"}, set()),
        ({"metadata": {"kind": "even"}}, {2, 4}),
        ({"metadata.kind": "odd", "time_stamp": {"gte": 1746187200}}, {3, 5}),  # epoch seconds work too
        ({"source_ids": "t4"}, {4}),
    ],
)
def test_filter_operators(mem, flt, expected) -> None:
    assert days(mem.get_all(user_id="u", filters=flt)) == expected
    for strategy in ("embedding", "context", "hybrid"):
        assert (
            days(mem.retrieve("tulip bulbs garden", limit=20, filters=flt, user_id="u", strategy=strategy)) == expected
        )


@pytest.mark.parametrize(
    "flt, field",
    [
        ({"colour": "red"}, "filters.colour"),
        ({"time_stamp": {"after": "2025"}}, "filters.time_stamp.after"),
        ({"time_stamp": {"gt": "not a date"}}, "filters.time_stamp.gt"),
        ({"speaker_name": {"gt": "A"}}, "filters.speaker_name.gt"),
        ({"user_id": "someone-else"}, "filters.user_id"),
        ({"speaker_name": {"in": []}}, "filters.speaker_name.in"),
        ({"metadata": "x"}, "filters.metadata"),
        ("speaker=Ann", "filters"),
    ],
)
def test_bad_filters_name_the_field(mem, flt, field) -> None:
    with pytest.raises(InvalidInputError) as err:
        mem.retrieve("tulips", filters=flt, user_id="u")
    assert err.value.field == field


def test_logical_filters_and_numeric_metadata(make_memory) -> None:
    m = make_memory()
    m.add_memory(
        [
            {
                "id": f"t{i}",
                "role": "user",
                "content": f"Receipt {i} for the bakery.",
                "metadata": {"amount": i * 1.5, "shop": "bakery" if i % 2 else "cafe", "n": i},
            }
            for i in range(6)
        ],
        user_id="u",
        infer=False,
    )

    def ids(flt):
        return sorted(e.source_ids[0] for e in m.get_all(user_id="u", filters=flt))

    assert ids({"metadata.amount": {"gte": 3.0, "lt": 6.0}}) == ["t2", "t3"]
    assert ids({"metadata": {"n": {"in": [1, 4]}}}) == ["t1", "t4"]
    assert ids({"metadata.amount": 4.5}) == ["t3"]  # a fractional number matches as a one-point range
    assert ids({"OR": [{"metadata.n": 0}, {"metadata.n": 5}]}) == ["t0", "t5"]
    assert ids({"NOT": [{"metadata.shop": "bakery"}]}) == ["t0", "t2", "t4"]
    assert ids({"AND": [{"metadata.shop": "cafe"}, {"metadata.n": {"gt": 1}}]}) == ["t2", "t4"]
    hits = m.retrieve("bakery receipt", user_id="u", filters={"NOT": [{"metadata.n": {"lte": 3}}]})
    assert sorted(h.entry.source_ids[0] for h in hits) == ["t4", "t5"]
    for bad, field in [
        ({"metadata.shop": {"gt": "a"}}, "filters.metadata.shop.gt"),
        ({"OR": []}, "filters.OR"),
        ({"NOT": [{"colour": 1}]}, "filters.NOT[0].colour"),
    ]:
        with pytest.raises(InvalidInputError) as err:
            m.get_all(user_id="u", filters=bad)
        assert err.value.field == field


def test_metadata_only_update_versions_and_similarity(make_memory) -> None:
    from lightmem_core import ConflictError

    m = make_memory()
    m.add_memory("I keep my passport in the blue drawer.", user_id="u")
    (entry,) = m.get_all(user_id="u")
    before = m._store.vectors(m._scope("u", None, None), [entry.id])[entry.id]
    tagged = m.update(entry.id, metadata={"checked": 1}, user_id="u", reason="tagged", actor="key:ops")
    assert tagged.memory == entry.memory and tagged.version == 2 and tagged.metadata["checked"] == 1
    assert m._store.vectors(m._scope("u", None, None), [entry.id])[entry.id] == before  # no new vector
    assert m.history(entry.id, user_id="u")[-1].actor == "key:ops"
    with pytest.raises(ConflictError):
        m.update(entry.id, "It is in the red drawer now.", user_id="u", expected_version=1)
    assert m.update(entry.id, "It is in the red drawer now.", user_id="u", expected_version=2).version == 3
    with pytest.raises(InvalidInputError) as err:
        m.update(entry.id, user_id="u")
    assert err.value.field == "update.memory"
    (hit,) = m.retrieve("where is the passport", user_id="u", limit=1)
    assert 0.2 < hit.similarity <= 1.0 and hit.similarity != hit.score
    (again,) = m.retrieve("passport drawer location", user_id="u", limit=1)
    assert (
        abs(
            again.similarity
            - float(
                np.dot(
                    m.embedder.embed(["passport drawer location"])[0],
                    m._store.vectors(m._scope("u", None, None), [entry.id])[entry.id],
                )
            )
        )
        < 1e-4
    )
