"""Hand-written code against well-kept libraries that do the same job (issue 19).

Four pairs, each run on the project's own cases (imported from the tests' parametrize
marks where they are data, copied here with the test they come from where they are not):

* JSON repair: ``llm.parse_json`` against ``json_repair.loads`` (default and
  ``strict=True``) on the unit tests' inputs, the integration / reliability tests' model
  answers, every recorded answer in ``tests/fixtures/llm_answers`` and, as a second set,
  the 78 real Qwen2.5 answers of the two ``llm_local.py`` runs (56 distinct and not in
  the fixtures). "Right" = the object the tests expect, or a refusal where they expect
  one; a recorded answer is expected as written when complete and refused when cut at
  max_tokens (json-repair's ``""``, its "no JSON here", counts as a refusal).
* Sentences: ``textproc.split_sentences`` against ``pysbd`` and ``blingfire`` on the
  textproc test, plus 200 LoCoMo dev turns (agreement, and whether every character survives).
* Time expressions: ``timeparse.parse_query_time`` / ``repairs.fact_time`` /
  ``timeparse.parse_time`` against ``dateparser`` on the timeparse and repairs tests.
  dateparser returns one datetime (plus, through ``DateDataParser``, its granularity:
  day / week / month / year); the adapter here widens it to that period, its best shot.
* Retries: behaviour, not speed. Scripted faults on the tests' loopback OpenAI server
  (``tests/fake_llm.py``) through our loop, the openai client's ``max_retries=2`` and a
  tenacity recipe, plus what reading the three sources shows.

Times are the median over ``--repeat`` passes of the mean time per call (one untimed
warm-up pass first; dateparser's cold first call is reported apart).

    python benchmarks/libraries.py [--repeat 7] [--sample 200] [--out benchmarks/results/libraries.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import datetime, timedelta  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Iterator, Optional, Sequence  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from _common import git_state  # noqa: E402
from _locomo import DEFAULT_DIR as LOCOMO_DIR  # noqa: E402

from lightmem_core import repairs, textproc, timeparse  # noqa: E402
from lightmem_core.llm import parse_json  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "llm_answers"
RUNS = [
    ROOT / "benchmarks" / "results" / "llm_local_calls.json",
    ROOT / "benchmarks" / "results" / "llm_local_run2_calls.json",
]
REFUSED = "<refused>"  # what a case expects when the text must not be read as JSON


def params(test: Callable[..., Any]) -> list[Any]:
    """The argument values of a test's ``@pytest.mark.parametrize`` (the tests' own data)."""
    for mark in getattr(test, "pytestmark", []):
        if mark.name == "parametrize":
            return list(mark.args[1])
    raise LookupError(f"{test.__name__} has no parametrize mark")


def per_call_us(fn: Callable[[Any], Any], inputs: Sequence[Any], repeat: int) -> float:
    """Median over ``repeat`` passes of the mean microseconds per call (after one warm-up pass)."""

    def one_pass() -> float:
        t0 = time.perf_counter()
        for x in inputs:
            try:
                fn(x)
            except Exception:  # noqa: BLE001 - a refusal is an answer too
                pass
        return (time.perf_counter() - t0) / max(1, len(inputs))

    one_pass()
    return round(statistics.median(one_pass() for _ in range(repeat)) * 1e6, 1)


def short(value: Any, n: int = 110) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= n else text[: n - 3] + "..."


# --- JSON repair -------------------------------------------------------------------------


@dataclass
class JSONCase:
    source: str
    text: str
    expected: Any  # REFUSED, or the parsed value


def json_cases() -> tuple[list[JSONCase], list[JSONCase]]:
    """(the tests' cases and the fixtures' recorded answers, the llm_local runs' real answers)."""
    from tests.integration import test_llm
    from tests.unit import test_jsonparse

    cases = [JSONCase("tests/unit/test_jsonparse.py::test_parses", t, e) for t, e in params(test_jsonparse.test_parses)]
    cases += [
        JSONCase("tests/unit/test_jsonparse.py::test_failures", t, REFUSED)
        for t in params(test_jsonparse.test_failures)
    ]
    copied = [
        # tests/unit/test_jsonparse.py::test_truncated_outer_does_not_yield_inner_fragment
        (
            "test_jsonparse.py::test_truncated_outer_does_not_yield_inner_fragment",
            '{"facts": [{"fact": "a", "source_ids": ["1"]}, {"fact": "b"',
        ),
        # tests/integration/test_llm.py::test_garbage_twice_raises
        ("test_llm.py::test_garbage_twice_raises", "I cannot help with that."),
        ("test_llm.py::test_garbage_twice_raises", "Still no JSON, sorry."),
        # tests/reliability/test_llm_faults.py::test_prose_instead_of_json
        ("test_llm_faults.py::test_prose_instead_of_json", "I'm sorry, I can't help with that."),
        ("test_llm_faults.py::test_prose_instead_of_json", "As an AI model I prefer prose."),
    ]
    # tests/reliability/test_llm_faults.py::test_truncated_answers_even_after_the_repair_call: answer and repair cut
    cut = json.dumps({"facts": [{"fact": "Maya's sister lives in Porto", "source_ids": ["f0"]}]})[:-9]
    copied += [("test_llm_faults.py::test_truncated_answers_even_after_the_repair_call", t) for t in (cut, cut[:20])]
    cases += [JSONCase(s, t, REFUSED) for s, t in copied]
    cases += [
        JSONCase("tests/integration/test_llm.py::test_complete_json_tolerates_wrapping", t, test_llm.EXPECTED_FACTS)
        for t in params(test_llm.test_complete_json_tolerates_wrapping)
    ]
    # the recorded answers: a complete answer is read as written; one cut at max_tokens is refused
    # (test_real_answers.py::test_an_answer_cut_at_max_tokens_halves_the_batch_without_a_repair_call)
    for path in sorted(FIXTURES.glob("*.json")):
        data = json.loads(path.read_text())
        for call in data.get("calls", []):
            cases.append(answer_case(f"fixtures/llm_answers/{path.name} ({call['stage']})", call))
    body = json.loads(json.loads((FIXTURES / "server_errors.json").read_text())["json_object"]["body"])
    choice = body["choices"][0]
    cases.append(
        answer_case(
            "fixtures/llm_answers/server_errors.json (json_object answer)",
            {"answer": choice["message"]["content"], "finish_reason": choice["finish_reason"]},
        )
    )
    cases = list({c.text: c for c in cases}.values())  # the same text twice is one case
    seen = {c.text for c in cases}
    runs: list[JSONCase] = []
    for path in RUNS:
        for call in json.loads(path.read_text()):
            if call["answer"] not in seen:
                seen.add(call["answer"])
                runs.append(answer_case(f"results/{path.name} ({call['stage']})", call))
    return cases, runs


def answer_case(source: str, call: dict[str, Any]) -> JSONCase:
    if call.get("finish_reason") == "length":
        return JSONCase(source + ", cut at max_tokens", call["answer"], REFUSED)
    return JSONCase(source, call["answer"], json.loads(call["answer"]))


def ours_json(text: str) -> Any:
    try:
        return parse_json(text)
    except ValueError:
        return REFUSED


def repair_json(strict: bool) -> Callable[[str], Any]:
    import json_repair

    def read(text: str) -> Any:
        try:
            value = json_repair.repair_json(text, return_objects=True, strict=strict)
        except ValueError:
            return REFUSED
        return REFUSED if value == "" and text.strip() not in ('""', "''") else value

    return read


def run_json(repeat: int) -> dict[str, Any]:
    tests, runs = json_cases()
    readers: dict[str, Callable[[str], Any]] = {
        "ours (llm.parse_json)": ours_json,
        "json-repair loads": repair_json(False),
        "json-repair strict=True": repair_json(True),
    }
    out: dict[str, Any] = {"cases": len(tests), "recorded_run_answers": len(runs), "readers": {}}
    for name, read in readers.items():
        row: dict[str, Any] = {}
        for label, cases in (("tests_and_fixtures", tests), ("llm_local_runs", runs)):
            got = [read(c.text) for c in cases]
            wrong = [
                {"source": c.source, "input": short(c.text), "expected": short(c.expected), "got": short(g)}
                for c, g in zip(cases, got)
                if g != c.expected or type(g) is not type(c.expected)
            ]
            row[label] = {"right": len(cases) - len(wrong), "total": len(cases), "wrong": wrong}
        row["us_per_call"] = per_call_us(read, [c.text for c in tests + runs], repeat)
        out["readers"][name] = row
    ours_got = [ours_json(c.text) for c in tests + runs]
    out["disagreements"] = {}
    for name, read in list(readers.items())[1:]:
        out["disagreements"][name] = [
            {"source": c.source, "input": short(c.text), "ours": short(a), "library": short(b)}
            for c, a, b in zip(tests + runs, ours_got, (read(c.text) for c in tests + runs))
            if a != b
        ]
    return out


# --- sentences -----------------------------------------------------------------------------


def splitters() -> dict[str, Callable[[str], list[str]]]:
    import blingfire
    import pysbd

    segmenter = pysbd.Segmenter(language="en", clean=False)

    def tidy(parts: Sequence[str]) -> list[str]:  # the same whitespace rule as ours
        return [" ".join(p.split()) for p in parts if p.strip()]

    return {
        "ours (textproc.split_sentences)": textproc.split_sentences,
        "pysbd": lambda text: tidy(segmenter.segment(text)),
        "blingfire": lambda text: tidy(blingfire.text_to_sentences(text).split("\n")) if text.strip() else [],
    }


@contextlib.contextmanager
def splitting_with(split: Callable[[str], list[str]]) -> Iterator[None]:
    """``textproc.chunk_sentences`` with another splitter under it."""
    saved = textproc.split_sentences
    textproc.split_sentences = split  # type: ignore[assignment]
    try:
        yield
    finally:
        textproc.split_sentences = saved  # type: ignore[assignment]


# tests/unit/test_textproc.py::test_sentences_and_chunks_keep_every_word
TEXTPROC_TEXT = "Wow! I moved to Portland on May 3. Dr. Reyes is my new manager. Thanks."
TEXTPROC_SENTENCES = ["Wow!", "I moved to Portland on May 3.", "Dr. Reyes is my new manager.", "Thanks."]
TEXTPROC_CHUNKS = ["Wow! I moved to Portland on May 3.", "Dr. Reyes is my new manager. Thanks."]


def locomo_turns() -> list[tuple[str, str]]:
    """Every LoCoMo dev turn: (as ingested, with the image caption; the spoken text only)."""
    turns: list[tuple[str, str]] = []
    for path in sorted(Path(os.environ.get("LOCOMO_DIR") or LOCOMO_DIR).glob("conv-*.json")):
        d = json.loads(path.read_text())
        k = 1
        while f"session_{k}" in d:
            for t in d[f"session_{k}"]:
                caption = f" (image: {t['blip_caption']})" if t.get("blip_caption") else ""
                turns.append((t["text"] + caption, t["text"]))
            k += 1
    return turns


LONGMEMEVAL = ROOT.parent / "shared" / "data" / "longmemeval-s53" / "longmemeval_s53.json"


def longmemeval_turns(n: int) -> list[str]:
    """``random.Random(19).sample`` of n LongMemEval-S turns (longer: chat-assistant answers of several paragraphs)."""
    if not LONGMEMEVAL.exists():
        return []
    data = json.loads(LONGMEMEVAL.read_text())
    turns = [t["content"] for q in data for session in q["haystack_sessions"] for t in session if t.get("content")]
    return random.Random(19).sample(turns, min(n, len(turns)))


def keeps_text(text: str, sentences: Sequence[str]) -> bool:
    """Every non-space character of the turn is in its sentences, in order (chunking must drop nothing)."""
    return "".join("".join(sentences).split()) == "".join(text.split())


def run_sentences(repeat: int, sample: int) -> dict[str, Any]:
    split = splitters()
    every = locomo_turns()
    turns = random.Random(19).sample(every, sample)
    long_turns = longmemeval_turns(sample)
    ingested = [a for a, _ in turns]
    spoken = [b for _, b in turns]
    out: dict[str, Any] = {
        "locomo_turns": len(turns),
        "locomo_all_turns": len(every),
        "longmemeval_turns": len(long_turns),
        "longmemeval_mean_chars": round(statistics.mean(map(len, long_turns))) if long_turns else None,
        "splitters": {},
    }
    results: dict[str, dict[str, list[list[str]]]] = {}
    for name, fn in split.items():
        with splitting_with(fn):
            chunks = textproc.chunk_sentences(TEXTPROC_TEXT)
        sentences = fn(TEXTPROC_TEXT)
        results[name] = {"ingested": [fn(t) for t in ingested], "spoken": [fn(t) for t in spoken]}
        lost = [
            {"turn": short(t, 160), "sentences": s}
            for t, s in zip(ingested, results[name]["ingested"])
            if not keeps_text(t, s)
        ]
        out["splitters"][name] = {
            "test_sentences": sentences,
            "test_sentences_right": sentences == TEXTPROC_SENTENCES,
            "test_chunks": chunks,
            "test_chunks_right": chunks == TEXTPROC_CHUNKS,
            "locomo_turns_keeping_every_character": len(turns) - len(lost),
            "locomo_turns_losing_text": lost[:10],
            "locomo_all_turns_losing_text": sum(not keeps_text(t, fn(t)) for t, _ in every),
            "sentences_per_turn": round(sum(map(len, results[name]["ingested"])) / len(turns), 2),
            "us_per_call": per_call_us(fn, ingested, repeat),
            "longmemeval_turns_losing_text": sum(not keeps_text(t, fn(t)) for t in long_turns),
            "longmemeval_us_per_call": per_call_us(fn, long_turns, repeat) if long_turns else None,
        }
    ours = "ours (textproc.split_sentences)"
    out["agreement"] = {}
    for name in list(split)[1:]:
        row: dict[str, Any] = {}
        for kind, texts in (("ingested", ingested), ("spoken", spoken)):
            a, b = results[ours][kind], results[name][kind]
            same = sum(x == y for x, y in zip(a, b))
            row[kind] = {"same": same, "total": len(texts), "rate": round(same / len(texts), 3)}
            row[f"{kind}_disagreements"] = [
                {"turn": short(t, 200), "ours": x, "library": y} for t, x, y in zip(texts, a, b) if x != y
            ][:10]
        out["agreement"][name] = row
    a, b = results["pysbd"]["ingested"], results["blingfire"]["ingested"]
    out["agreement"]["pysbd vs blingfire (ingested)"] = round(sum(x == y for x, y in zip(a, b)) / len(a), 3)
    return out


# --- time expressions ------------------------------------------------------------------------

Period = tuple[Optional[datetime], Optional[datetime]]
_TICK = timedelta(microseconds=1)


class Dateparser:
    """dateparser's best shot at a period: the first date ``search_dates`` finds, widened to
    the granularity ``DateDataParser`` reports for the words it matched."""

    def __init__(self) -> None:
        from dateparser.date import DateDataParser
        from dateparser.search import search_dates

        self._search = search_dates
        self._ddp = DateDataParser
        self._parsers: dict[tuple[datetime, str], Any] = {}

    def _settings(self, now: datetime, prefer: str) -> dict[str, Any]:
        return {"RELATIVE_BASE": now, "PREFER_DATES_FROM": prefer}

    def find(self, text: str, now: datetime, prefer: str) -> Optional[tuple[str, datetime, str]]:
        hits = self._search(text, languages=["en"], settings=self._settings(now, prefer)) if text.strip() else None
        if not hits:
            return None
        words, when = hits[0]
        key = (now, prefer)
        if key not in self._parsers:
            self._parsers[key] = self._ddp(languages=["en"], settings=self._settings(now, prefer))
        data = self._parsers[key].get_date_data(words)
        return words, data.date_obj or when, data.period or "day"

    @staticmethod
    def widen(when: datetime, period: str) -> tuple[datetime, datetime]:
        day = datetime(when.year, when.month, when.day)
        if period == "week":
            start = day - timedelta(days=day.weekday())
            return start, start + timedelta(days=7) - _TICK
        if period == "month":
            start = datetime(when.year, when.month, 1)
            nxt = datetime(when.year + (when.month == 12), when.month % 12 + 1, 1)
            return start, nxt - _TICK
        if period == "year":
            return datetime(when.year, 1, 1), datetime(when.year + 1, 1, 1) - _TICK
        return day, day + timedelta(days=1) - _TICK

    @staticmethod
    def iso(when: datetime, period: str) -> str:
        if period == "week":
            year, week, _ = when.isocalendar()
            return f"{year:04d}-W{week:02d}"
        if period == "month":
            return f"{when.year:04d}-{when.month:02d}"
        if period == "year":
            return f"{when.year:04d}"
        return when.date().isoformat()


@dataclass
class QueryCase:
    source: str
    query: str
    check: Callable[[Any], bool]  # applied to a TimeQuery-like answer (start, end, anchor, relation)
    expected: str
    expressible: bool = True  # can a single date stand for the answer at all?
    inside: Optional[Callable[[datetime], bool]] = None  # lenient: does one date fall in the expected period?


@dataclass
class Answer:
    start: Optional[datetime] = None
    end: Optional[datetime] = None
    anchor: Optional[str] = None
    relation: Optional[str] = None
    point: Optional[datetime] = None
    words: Optional[str] = None

    @property
    def has_range(self) -> bool:
        return self.start is not None or self.end is not None

    def show(self) -> str:
        if self.anchor:
            return f"anchor {self.relation} {self.anchor!r}"
        if not self.has_range:
            return "no period"
        fmt = "%Y-%m-%d %H:%M"
        lo = self.start.strftime(fmt) if self.start else "open"
        hi = self.end.strftime(fmt) if self.end else "open"
        return f"{lo} .. {hi}" + (f" (from {self.words!r})" if self.words else "")


def _close(got: Optional[datetime], want: Optional[datetime]) -> bool:
    if want is None:
        return got is None
    return got is not None and abs((got - want).total_seconds()) < 1


def query_cases() -> list[QueryCase]:
    from tests.unit import test_timeparse as tt

    cases: list[QueryCase] = []
    src = "tests/unit/test_timeparse.py"
    for query, start, end in params(tt.test_query_periods):
        cases.append(
            QueryCase(
                f"{src}::test_query_periods",
                query,
                lambda a, s=start, e=end: _close(a.start, s) and _close(a.end, e),
                f"{start or 'open'} .. {end or 'open'}",
                expressible=start is not None and end is not None and not (end == tt.NOW),
                inside=lambda d, s=start, e=end: (s or datetime.min) <= d <= (e or datetime.max),
            )
        )
    now = tt.NOW
    cases.append(  # test_ago_is_a_window_around_the_point
        QueryCase(
            f"{src}::test_ago_is_a_window_around_the_point",
            "What did I do 2 weeks ago?",
            lambda a: a.start is not None and a.end is not None and a.start < datetime(2023, 6, 1) < a.end < now,
            "a window around 2023-06-01, ending before now",
            inside=lambda d: d.date() == datetime(2023, 6, 1).date(),
        )
    )
    for query, anchor, relation in (  # test_event_anchors_and_recency
        ("Where did we eat before the trip to Paris?", "the trip to Paris", "before"),
        ("What did she do after the race?", None, "after"),
    ):
        cases.append(
            QueryCase(
                f"{src}::test_event_anchors_and_recency",
                query,
                lambda a, an=anchor, r=relation: a.relation == r and not a.has_range and (an is None or a.anchor == an),
                f"anchor {relation} {anchor or '(the race)'}",
                expressible=False,
            )
        )
    for query in params(tt.test_no_period_where_none_is_named):
        cases.append(
            QueryCase(
                f"{src}::test_no_period_where_none_is_named",
                query,
                lambda a: not a.has_range and a.anchor is None,
                "no period",
            )
        )
    return cases


def ours_query(query: str, now: datetime) -> Answer:
    tq = timeparse.parse_query_time(query, now)
    return Answer(tq.start, tq.end, tq.anchor, tq.relation, words=tq.expression)


def dp_query(dp: Dateparser, query: str, now: datetime) -> Answer:
    found = dp.find(query, now, "past")
    if found is None:
        return Answer()
    words, when, period = found
    start, end = dp.widen(when, period)
    return Answer(start, end, point=when, words=words)


def _inside(a: Answer, c: QueryCase) -> bool:
    """Lenient: dateparser's single date lies in the period the test expects."""
    if c.inside is None or a.point is None:
        return c.check(a)
    return c.inside(a.point)


def run_time(repeat: int) -> dict[str, Any]:
    from tests.unit import test_repairs as tr
    from tests.unit import test_timeparse as tt

    dp = Dateparser()
    t0 = time.perf_counter()
    dp.find("What did I cook last week?", tt.NOW, "past")
    cold_ms = round((time.perf_counter() - t0) * 1000, 1)
    now = tt.NOW
    out: dict[str, Any] = {"dateparser_cold_first_call_ms": cold_ms}

    # 1. periods named in questions
    cases = query_cases()
    rows = []
    for c in cases:
        a, b = ours_query(c.query, now), dp_query(dp, c.query, now)
        rows.append(
            {
                "source": c.source,
                "query": c.query,
                "expected": c.expected,
                "ours": a.show(),
                "ours_right": c.check(a),
                "dateparser": b.show(),
                "dateparser_right": c.check(b),
                "dateparser_date_inside_expected": _inside(b, c),
                "expressible_as_one_date": c.expressible,
            }
        )
    queries = [c.query for c in cases]
    out["queries"] = {
        "total": len(rows),
        "ours_right": sum(r["ours_right"] for r in rows),
        "dateparser_right": sum(r["dateparser_right"] for r in rows),
        "dateparser_date_inside_expected": sum(r["dateparser_date_inside_expected"] for r in rows),
        "not_expressible_as_one_date": [r["query"] for r in rows if not r["expressible_as_one_date"]],
        "disagreements": [r for r in rows if r["ours"] != r["dateparser"] or r["ours_right"] != r["dateparser_right"]],
        "us_per_call": {
            "ours": per_call_us(lambda q: ours_query(q, now), queries, repeat),
            "dateparser": per_call_us(lambda q: dp_query(dp, q, now), queries, repeat),
        },
    }

    # 2. relative times in statements (the repairs resolve them against the turn's time)
    facts = [(f, s, iso) for f, s, iso in params(tr.test_relative_times_in_facts)]
    facts.append(("Maya's dog is called Pixel.", datetime(2023, 5, 8), None))  # test_a_fact_without_a_relative_time...
    frows = []
    for fact, said, iso in facts:
        mine = repairs.fact_time(fact, said)
        found = dp.find(fact, said, "current_period")
        theirs = dp.iso(found[1], found[2]) if found else None
        frows.append(
            {
                "source": "tests/unit/test_repairs.py::test_relative_times_in_facts"
                if iso
                else "tests/unit/test_repairs.py::test_a_fact_without_a_relative_time_is_left_alone",
                "fact": fact,
                "said": said.date().isoformat(),
                "expected": iso,
                "ours": mine[0] if mine else None,
                "dateparser": theirs,
                "dateparser_words": found[0] if found else None,
            }
        )
    out["facts"] = {
        "total": len(frows),
        "ours_right": sum(r["ours"] == r["expected"] for r in frows),
        "dateparser_right": sum(r["dateparser"] == r["expected"] for r in frows),
        "disagreements": [r for r in frows if r["ours"] != r["dateparser"]],
        "us_per_call": {
            "ours": per_call_us(lambda x: repairs.fact_time(x[0], x[1]), facts, repeat),
            "dateparser": per_call_us(lambda x: dp.find(x[0], x[1], "current_period"), facts, repeat),
        },
    }

    # 3. time stamps (parse_time): dateparser takes strings only
    import dateparser

    stamps = [(v, e) for v, e in params(tt.test_formats) if isinstance(v, str)]
    stamps += [(v, None) for v in params(tt.test_rejects) if isinstance(v, str)]
    not_strings = [repr(v) for v, _ in params(tt.test_formats) if not isinstance(v, str)]
    not_strings += [repr(v)[:30] for v in params(tt.test_rejects) if not isinstance(v, str)]
    settings = {"TO_TIMEZONE": "UTC", "RETURN_AS_TIMEZONE_AWARE": False}

    def ours_stamp(v: str) -> Optional[datetime]:
        try:
            return timeparse.parse_time(v)
        except ValueError:
            return None

    def dp_stamp(v: str) -> Optional[datetime]:
        return dateparser.parse(v, languages=["en"], settings=settings) if v.strip() else None  # type: ignore[arg-type]

    srows = [
        {
            "input": short(v, 40),
            "expected": str(e) if e else "rejected",
            "ours": str(ours_stamp(v)),
            "dateparser": str(dp_stamp(v)),
        }
        for v, e in stamps
    ]
    for r, (v, e) in zip(srows, stamps):
        r["ours_right"] = ours_stamp(v) == e
        r["dateparser_right"] = dp_stamp(v) == e
    out["stamps"] = {
        "total": len(srows),
        "ours_right": sum(r["ours_right"] for r in srows),
        "dateparser_right": sum(r["dateparser_right"] for r in srows),
        "not_strings_out_of_dateparser_scope": not_strings,
        "disagreements": [r for r in srows if r["ours"] != r["dateparser"]],
        "us_per_call": {
            "ours": per_call_us(ours_stamp, [v for v, _ in stamps], repeat),
            "dateparser": per_call_us(dp_stamp, [v for v, _ in stamps], repeat),
        },
    }
    return out


# --- retries -------------------------------------------------------------------------------


def retry_behaviour() -> dict[str, Any]:
    """Scripted faults through three clients; counts what the loopback server received."""
    import openai
    import tenacity

    from lightmem_core.config import LLMConfig
    from lightmem_core.errors import ContextWindowError
    from lightmem_core.llm import OpenAICompatibleLLM
    from tests.fake_llm import FakeLLMServer, FaultSpec

    class RuleServer(FakeLLMServer):
        """The tests' loopback server, plus a fault chosen from each request (a server that refuses every time)."""

        rule: Optional[Callable[[dict[str, Any]], Optional[FaultSpec]]] = None

        def _record(self, endpoint: str, body: Any) -> Optional[FaultSpec]:
            fault = super()._record(endpoint, body)
            if fault is None and self.rule is not None and endpoint == "chat" and isinstance(body, dict):
                fault = self.rule(body)
            return fault

    recorded = json.loads((FIXTURES / "server_errors.json").read_text())
    messages = [{"role": "user", "content": "Give the facts as JSON."}]
    schema = {"type": "object", "properties": {"facts": {"type": "array"}}}

    def schema_refused(body: dict[str, Any]) -> Optional[FaultSpec]:
        kind = (body.get("response_format") or {}).get("type")
        return FaultSpec(status=500, raw_body=recorded["json_schema"]["body"]) if kind == "json_schema" else None

    def max_tokens_refused(body: dict[str, Any]) -> Optional[FaultSpec]:
        text = (
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."
        )
        return FaultSpec(status=400, message=text) if "max_tokens" in body else None

    scenarios: list[tuple[str, list[FaultSpec], Any, Any]] = [
        ("429 with Retry-After: 0.3 s, then an answer", [FaultSpec(status=429, retry_after=0.3)], None, None),
        ("503, then an answer", [FaultSpec(status=503)], None, None),
        ("425 Too Early, then an answer", [FaultSpec(status=425)], None, None),
        ("connection dropped, then an answer", [FaultSpec(drop=True)], None, None),
        (
            "200 with an HTML proxy page, then an answer",
            [FaultSpec(raw_body="<html><body>502 Bad Gateway</body></html>")],
            None,
            None,
        ),
        ("json_schema refused with the recorded llama-cpp-python 500 (every time)", [], schema_refused, "json_schema"),
        (
            "the recorded 400 context overflow of a 512-token server (every time)",
            [],
            lambda b: FaultSpec(status=400, raw_body=recorded["context_overflow"]["body"]),
            None,
        ),
        (
            "the recorded overflow body sent as a 500 (synthetic; _context_overflow reads 400, 413 and 500)",
            [],
            lambda b: FaultSpec(status=500, raw_body=recorded["context_overflow"]["body"]),
            None,
        ),
        ("400 'max_tokens' unsupported, OpenAI's wording (synthetic, whenever sent)", [], max_tokens_refused, None),
    ]

    def outcome(exc: BaseException) -> str:
        if isinstance(exc, ContextWindowError):
            return f"ContextWindowError(limit={exc.limit})"
        cause = exc.__cause__ if exc.__cause__ is not None and not isinstance(exc, openai.OpenAIError) else exc
        return type(cause).__name__

    rows = []
    with RuleServer() as server:
        for k, (name, faults, rule, mode) in enumerate(scenarios):
            row: dict[str, Any] = {"scenario": name}
            for client in ("ours", "openai max_retries=2", "tenacity 3 attempts"):
                server.reset()
                server.rule = rule
                server.script(*faults, endpoint="chat")
                cfg = LLMConfig(
                    base_url=server.base_url,
                    model=f"s{k}-{client.split()[0]}",
                    api_key="k",
                    timeout=5,
                    max_retries=2,
                    json_mode=mode or True,
                )
                ours = OpenAICompatibleLLM(cfg, backoff_base=0.05, max_backoff=0.2)
                kwargs = ours._request(messages, schema)  # the very request our loop sends first
                t0 = time.perf_counter()
                try:
                    if client == "ours":
                        done = ours.complete(messages, json_schema=schema)
                        result = f"answer (attempts={done.attempts})"
                    elif client.startswith("openai"):
                        raw = openai.OpenAI(base_url=server.base_url, api_key="k", timeout=5, max_retries=2)
                        reply = raw.chat.completions.create(**kwargs)
                        result = "answer" if getattr(reply, "choices", None) else f"returned {type(reply).__name__}"
                    else:
                        bare = openai.OpenAI(base_url=server.base_url, api_key="k", timeout=5, max_retries=0)
                        retrying = tenacity.Retrying(
                            stop=tenacity.stop_after_attempt(3),
                            wait=tenacity.wait_random_exponential(multiplier=0.05, max=0.2),
                            retry=tenacity.retry_if_exception_type(
                                (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError)
                            ),
                            reraise=True,
                        )
                        reply = retrying(bare.chat.completions.create, **kwargs)
                        ok = getattr(reply, "choices", None)
                        result = "answer" if ok else f"returned {type(reply).__name__}"
                except Exception as exc:  # noqa: BLE001 - the outcome is the measurement
                    result = outcome(exc)
                row[client] = {
                    "requests": server.calls["chat"],
                    "outcome": result,
                    "seconds": round(time.perf_counter() - t0, 2),
                }
                ours.close()
            rows.append(row)
    return {"scenarios": rows, "read_from_the_code": RETRY_READING}


RETRY_READING = [
    {
        "aspect": "statuses retried",
        "ours": "408, 409, 425, 429, >= 500, timeouts, connection errors; not a 500 that is a context overflow "
        "or a response_format refusal (llm._classify, _context_overflow, _refused_format)",
        "openai max_retries": "408, 409, 429, >= 500, timeouts, connection errors; obeys x-should-retry "
        "(openai/_base_client.py _should_retry)",
        "tenacity": "whatever predicate is written (retry_if_exception_type / retry_if_exception)",
    },
    {
        "aspect": "Retry-After",
        "ours": "retry-after-ms, retry-after seconds or HTTP date; capped at max_retry_after (10 s) and still retried",
        "openai max_retries": "the same headers, honoured when 0 < wait <= 120 s; above 120 s it does not retry at all",
        "tenacity": "not read; needs a wait_exception callable that parses the header",
    },
    {
        "aspect": "backoff",
        "ours": "backoff_base (0.5 s) x 2^n, cap max_backoff (10 s), x U(0.5, 1); per client (tests use 1-10 ms)",
        "openai max_retries": "0.5 s x 2^n, cap 8 s, minus 0-25 %; module constants, not per client",
        "tenacity": "configurable (wait_random_exponential, wait_exponential_jitter)",
    },
    {
        "aspect": "200 with an unusable body (proxy HTML, no choices)",
        "ours": "retried (APIResponseValidationError / JSONDecodeError / no choices -> _Retry)",
        "openai max_retries": "not retried: the body is parsed after the retry loop",
        "tenacity": "only if the predicate names the error (and a 200 whose body parses to a str raises nothing)",
    },
    {
        "aspect": "context window",
        "ours": "400/413/500 overflow -> ContextWindowError(limit) at once; the window is remembered per endpoint "
        "and the caller halves the batch",
        "openai max_retries": "400 raised as BadRequestError (window not read); a 500 overflow is retried",
        "tenacity": "as its predicate says; nothing reads the window",
    },
    {
        "aspect": "request adaptation",
        "ours": "response_format json_schema -> json_object -> prompt-only on refusal, remembered per endpoint; "
        "max_tokens -> max_completion_tokens; unsupported temperature / top_p dropped",
        "openai max_retries": "none: the same request is resent",
        "tenacity": "none: the same call is repeated",
    },
    {
        "aspect": "attempts visible to the accounting",
        "ours": "Completion.attempts / LLMError.attempts -> TokenStats 'attempts'",
        "openai max_retries": "hidden on parsed responses (retries_taken only on .with_raw_response); none on errors",
        "tenacity": "Retrying.statistics['attempt_number']",
    },
    {
        "aspect": "sync and async",
        "ours": "one generator (llm._op) driven blocking or on the event loop (drive)",
        "openai max_retries": "built into both clients",
        "tenacity": "Retrying and AsyncRetrying: the loop sleeps itself, so the generator design needs two copies",
    },
    {
        "aspect": "remote.py (RemoteMemory over httpx)",
        "ours": "connect errors always, 503, and mid-request failures only for operations safe to repeat; "
        "backoff x 2^n",
        "openai max_retries": "n/a; httpx's own HTTPTransport(retries=n) retries connect errors / connect "
        "timeouts only (httpcore, 0 / 0.5 / 1 s ...), never a 503 or a read error",
        "tenacity": "could express the rule with a predicate; the safe/unsafe split stays ours",
    },
]


# --- report --------------------------------------------------------------------------------


def main(argv: Optional[list[str]] = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--sample", type=int, default=200, help="LoCoMo turns for the sentence comparison")
    ap.add_argument("--out", default=str(HERE / "results" / "libraries.json"))
    ap.add_argument("--skip-retries", action="store_true", help="no loopback HTTP scenarios")
    args = ap.parse_args(argv)
    logging.getLogger("lightmem_core").setLevel(logging.ERROR)
    report: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "note": "2 cores shared with other long jobs",
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "versions": {p: version(p) for p in ("json-repair", "pysbd", "blingfire", "dateparser", "tenacity", "openai")},
        "repeat": args.repeat,
        "git": git_state(),
    }
    report["json"] = run_json(args.repeat)
    report["sentences"] = run_sentences(args.repeat, args.sample)
    report["time"] = run_time(args.repeat)
    if not args.skip_retries:
        report["retries"] = retry_behaviour()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, default=str) + "\n")
    summary(report)
    return report


def summary(r: dict[str, Any]) -> None:
    print("JSON repair (right / total: tests + fixtures | llm_local runs | us per call)")
    for name, row in r["json"]["readers"].items():
        a, b = row["tests_and_fixtures"], row["llm_local_runs"]
        print(f"  {name:26s} {a['right']:3d}/{a['total']}  {b['right']:3d}/{b['total']}  {row['us_per_call']:8.1f}")
        for w in a["wrong"] + b["wrong"]:
            print(f"      wrong: {w['source']}: {w['input']!r} -> {w['got']}")
    print("Sentences")
    for name, row in r["sentences"]["splitters"].items():
        print(
            f"  {name:32s} test split {row['test_sentences_right']!s:5s} chunks {row['test_chunks_right']!s:5s} "
            f"text kept {row['locomo_turns_keeping_every_character']}/{r['sentences']['locomo_turns']} "
            f"(all turns losing text: {row['locomo_all_turns_losing_text']}/{r['sentences']['locomo_all_turns']}) "
            f"{row['us_per_call']:8.1f} us; LongMemEval: losing text {row['longmemeval_turns_losing_text']}/"
            f"{r['sentences']['longmemeval_turns']}, {row['longmemeval_us_per_call']} us"
        )
    for name, row in r["sentences"]["agreement"].items():
        if isinstance(row, dict):
            print(f"  agreement ours vs {name}: ingested {row['ingested']['rate']}, spoken {row['spoken']['rate']}")
    t = r["time"]
    for part in ("queries", "facts", "stamps"):
        p = t[part]
        print(
            f"Time {part}: ours {p['ours_right']}/{p['total']}, dateparser {p['dateparser_right']}/{p['total']}, "
            f"us per call {p['us_per_call']}"
        )
    print(f"  dateparser date inside the expected period: {t['queries']['dateparser_date_inside_expected']}")
    print(f"  dateparser cold first call: {t['dateparser_cold_first_call_ms']} ms")
    for row in r.get("retries", {}).get("scenarios", []):
        cells = "; ".join(
            f"{k}: {v['requests']} req, {v['outcome']}, {v['seconds']} s" for k, v in row.items() if k != "scenario"
        )
        print(f"Retry {row['scenario']}: {cells}")


if __name__ == "__main__":
    main()
