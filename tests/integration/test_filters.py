"""Every filter operator, on the real engine."""

from __future__ import annotations

import pytest

from lightmem_core import InvalidInputError

TURNS = [
    {"id": f"t{i}", "role": "user", "content": f"Day {i} note: I planted {i} tulip bulbs in the garden.",
     "time_stamp": f"2025-05-0{i}T12:00:00", "speaker_name": "Ann" if i % 2 else "Ben", "metadata": {"kind": "odd" if i % 2 else "even"}}
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
        assert days(mem.retrieve("tulip bulbs garden", limit=20, filters=flt, user_id="u", strategy=strategy)) == expected


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
