from __future__ import annotations

from lightmem_core import textproc
from lightmem_core.drive import call, parallel, run_async, run_sync


def test_sentences_and_chunks_keep_every_word() -> None:
    text = "Wow! I moved to Portland on May 3. Dr. Reyes is my new manager. Thanks."
    assert textproc.split_sentences(text) == [
        "Wow!",
        "I moved to Portland on May 3.",
        "Dr. Reyes is my new manager.",
        "Thanks.",
    ]
    chunks = textproc.chunk_sentences(text)
    assert chunks == ["Wow! I moved to Portland on May 3.", "Dr. Reyes is my new manager. Thanks."]
    assert " ".join(chunks).split() == text.split()


def test_entities_and_keywords() -> None:
    ents = textproc.entities("Yesterday I met Priya Desai at Brightline Health and we ran 10 km.")
    assert "Priya Desai" in ents and "Brightline Health" in ents and "10" in ents and "Yesterday" in ents
    assert "I" not in ents
    # a possessive loses its 's, a name ending in s keeps it
    assert textproc.entities("Jonas moved to Paris; James' car and Lena's cat stayed in Texas.") == [
        "Jonas",
        "Paris",
        "James",
        "Lena",
        "Texas",
    ]
    assert textproc.keywords("I really love hiking with my dog Biscuit") == ["love", "hiking", "dog", "biscuit"]


def test_drive_sync_and_async_share_logic_and_errors() -> None:
    class Target:
        def double(self, x: int) -> int:
            return 2 * x

        def boom(self) -> None:
            raise KeyError("x")

    def op(t: Target):
        a = yield call(t.double, 2)
        try:
            yield call(t.boom)
        except KeyError:
            a += 1
        return a

    import asyncio

    assert run_sync(op(Target())) == 5
    assert asyncio.run(run_async(op(Target()))) == 5

    class Network(Target):
        """A component with a native async twin: run_async must await it, not thread the blocking one."""

        async def adouble(self, x: int) -> int:
            return 20 * x

    assert run_sync(op(Network())) == 5
    assert asyncio.run(run_async(op(Network()))) == 41


def test_drive_parallel_returns_results_and_errors_in_order_both_ways() -> None:
    import asyncio

    class Target:
        def double(self, x: int) -> int:
            if x < 0:
                raise ValueError(x)
            return 2 * x

    def one(t: Target, x: int):
        return (yield call(t.double, x))

    def fan_out(t: Target, workers: int):
        got = yield parallel([one(t, x) for x in (1, -1, 3)], workers)
        return [r if isinstance(r, int) else type(r).__name__ for r in got]

    for workers in (1, 3):
        assert run_sync(fan_out(Target(), workers)) == [2, "ValueError", 6]
        assert asyncio.run(run_async(fan_out(Target(), workers))) == [2, "ValueError", 6]
