from __future__ import annotations

from lightmem_core import textproc
from lightmem_core.drive import call, run_async, run_sync


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
