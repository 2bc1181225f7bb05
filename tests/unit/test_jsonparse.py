"""parse_json: the tolerant reader of model answers."""

from __future__ import annotations

import pytest

from lightmem_core.llm import JSONParseError, parse_json


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"a": 1}', {"a": 1}),
        ("  [1, 2, 3]\n", [1, 2, 3]),
        ('```json\n{"a": [1, 2]}\n```', {"a": [1, 2]}),
        ('```JSON\n{"a": 1}\n```', {"a": 1}),
        ('```\n{"a": 1}\n```', {"a": 1}),
        ('```json{"a": 1}```', {"a": 1}),
        ('Here you go:\n```json\n{"a": 1}\n```\nAnything else?', {"a": 1}),
        ('```json\n{"a": 1}\n', {"a": 1}),  # fence never closed
        (
            'Sure. {"facts": [{"fact": "x", "source_ids": ["1"]}]} Done.',
            {"facts": [{"fact": "x", "source_ids": ["1"]}]},
        ),
        ('The list: ["a", "b"] is it.', ["a", "b"]),
        ('{"text": "braces } and { and ] inside", "n": 2}', {"text": "braces } and { and ] inside", "n": 2}),
        (
            'prefix {"q": "she said \\"hi {there}\\"", "k": [1, {"z": null}]} suffix',
            {"q": 'she said "hi {there}"', "k": [1, {"z": None}]},
        ),
        ('{"a": 1, "b": [1, 2,],}', {"a": 1, "b": [1, 2]}),
        ("{'a': 'b', 'c': [1, 2]}", {"a": "b", "c": [1, 2]}),
        ("{'say': 'it\\'s \"quoted\"'}", {"say": 'it\'s "quoted"'}),
        ('{"ok": True, "none": None, "no": False}', {"ok": True, "none": None, "no": False}),
        ('{"trailing": "comma, in string ,}",}', {"trailing": "comma, in string ,}"}),
        ('Note {see below}. Answer: {"a": 1}', {"a": 1}),
        ('\ufeff{"bom": 1}', {"bom": 1}),
        ('"just a string"', "just a string"),
        ("42", 42),
        ('I don\'t know. {"a": 1}', {"a": 1}),
        ('First ```json\n{"a": 1}\n``` then ```json\n{"b": 2}\n```', {"a": 1}),
    ],
)
def test_parses(text: str, expected: object) -> None:
    assert parse_json(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "no json here at all",
        "None",  # prose is not relaxed into a null
        '{"facts": [ {"fact": "x"',  # truncated: never guessed at
        '```json\n{"facts": [{"fact": "x"}, {"fact": "y"\n```',  # truncated inside a fence
        "{not: json, at all}",
        "[1, 2",
    ],
)
def test_failures(text: str) -> None:
    with pytest.raises(JSONParseError):
        parse_json(text)


def test_truncated_outer_does_not_yield_inner_fragment() -> None:
    # The inner object is complete, but returning it would silently drop the rest.
    with pytest.raises(JSONParseError):
        parse_json('{"facts": [{"fact": "a", "source_ids": ["1"]}, {"fact": "b"')


def test_non_text_rejected() -> None:
    with pytest.raises(JSONParseError):
        parse_json(None)  # type: ignore[arg-type]


def test_error_is_a_value_error_with_context() -> None:
    with pytest.raises(ValueError, match="no JSON object or array"):
        parse_json("plain prose")


@pytest.mark.parametrize(
    ("text", "whole"),
    [
        ('{"facts": [{"fact": "a", "source_ids": ["1"]}, {"fact": "b"', [{"fact": "a", "source_ids": ["1"]}]),
        ('Sure!\n```json\n{"facts": [\n  {"fact": "a"},\n  {"fact": "b"},\n  {"fa', [{"fact": "a"}, {"fact": "b"}]),
        ('{"facts": [{"fact": "a"}]}', [{"fact": "a"}]),  # not cut at all
        ('{"facts": [{"fact": "a, with a } in it"}, ', [{"fact": "a, with a } in it"}]),
        ('{"events": [{"event": "x"}', []),  # no "facts" array
        ('{"facts": [{"fact": "cut in the first', []),
    ],
)
def test_complete_items_of_a_cut_answer(text: str, whole: list) -> None:
    from lightmem_core.llm.jsonparse import complete_items

    assert complete_items(text, "facts") == whole
