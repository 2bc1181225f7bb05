"""The sentence splitter keeps every character of a turn: the pieces are what extraction stores."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from lightmem_core import textproc


def _kept(text: str) -> None:
    parts = textproc.split_sentences(text)
    assert " ".join(parts) == " ".join(text.split())
    assert "".join("".join(parts).split()) == "".join(text.split())


def test_a_closing_quote_or_bracket_stays_with_its_sentence() -> None:
    text = 'He said "Finding Freedom." Then he left. (It was late.) She read “Dune.” Next day [ok!] we met.'
    assert textproc.split_sentences(text) == [
        'He said "Finding Freedom."',
        "Then he left.",
        "(It was late.)",
        "She read “Dune.”",
        "Next day [ok!] we met.",
    ]
    _kept(text)


def test_an_abbreviation_inside_brackets_still_joins() -> None:
    assert textproc.split_sentences("Ask (Dr.) Reyes. Done.") == ["Ask (Dr.) Reyes.", "Done."]


def test_initials_do_not_end_a_sentence_unless_a_function_word_follows() -> None:
    assert textproc.split_sentences("I love J.K. Rowling. Her books are great.") == [
        "I love J.K. Rowling.",
        "Her books are great.",
    ]
    assert textproc.split_sentences("George R. R. Martin wrote it.") == ["George R. R. Martin wrote it."]
    assert textproc.split_sentences("I moved to the U.S. It was hard.") == ["I moved to the U.S.", "It was hard."]


_PIECES = st.sampled_from(
    [" ", "  ", "\n", "\t", ".", "!", "?", "…", '"', "'", "“", "”", "’", "(", ")", "[", "]", "J.", "K.", "Dr.", "U.S."]
)
_TEXT = st.lists(st.one_of(_PIECES, st.text(max_size=6)), max_size=30).map("".join)


@settings(max_examples=400, deadline=None)
@given(_TEXT)
@example('He said "Finding Freedom." Then')
@example("J.K. Rowling. It")
def test_any_text_keeps_every_character_in_order(text: str) -> None:
    _kept(text)
    chunks = textproc.chunk_sentences(text)
    assert "".join("".join(chunks).split()) == "".join(text.split())
