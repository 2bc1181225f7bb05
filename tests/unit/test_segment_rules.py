"""Boundary rules of the topic segmenters on synthetic matrices (numpy only, no model)."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pytest

from lightmem_core.config import SegmenterConfig
from lightmem_core.errors import InvalidInputError
from lightmem_core.segment import (
    AttentionSegmenter,
    Segment,
    SimilaritySegmenter,
    TopicSegmenter,
    as_turns,
    backward_share,
    local_minima,
    pick_boundaries,
    segments_from_boundaries,
    time_gap_boundaries,
    turn_attention,
    window_similarity,
)


def block_attention(topics: list[int], within: float = 1.0, across: float = 0.1, decay: float = 0.7) -> np.ndarray:
    """Turn-level attention of turns labelled by topic: strong inside a topic, weak
    across, decaying with distance (as real attention does)."""
    n = len(topics)
    M = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                M[i, j] = (within if topics[i] == topics[j] else across) * decay ** (abs(i - j) - 1)
            else:
                M[i, j] = 2.0
    return M


def topic_embeddings(topics: list[int], dim: int = 16, noise: float = 0.15, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = {t: rng.normal(size=dim) for t in set(topics)}
    return np.stack([centers[t] + noise * rng.normal(size=dim) * np.linalg.norm(centers[t]) for t in topics])


class FakeEmbedder:
    """Embeds by a keyword -> topic table; counts calls."""

    def __init__(self, table: dict[str, int], dim: int = 8) -> None:
        self.table = table
        self.calls = 0
        self.dim = dim

    @property
    def dims(self) -> int:
        return self.dim

    def embed(self, texts):
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i, self.table[t.split()[0]] % self.dim] = 1.0
            out[i, (i * 3) % self.dim] += 0.2
        return out


# --- turn-level attention ------------------------------------------------------------------


def test_turn_attention_aggregates_token_blocks_and_ignores_special_tokens():
    # [CLS] a a [SEP] b b b [SEP]
    T = 8
    att = np.zeros((T, T))
    att[1, 4] = 0.5  # token 1 (turn 0) -> token 4 (turn 1)
    att[2, 5] = 0.3
    att[2, 6] = 0.1
    att[1, 0] = 0.5  # mass on [CLS] is ignored
    att[5, 1] = 0.2  # turn 1 -> turn 0
    M = turn_attention(att, [(0, 1, 3), (1, 4, 7)])
    assert M.shape == (2, 2)
    assert M[0, 1] == pytest.approx((0.5 + 0.3 + 0.1) / 2)  # mean over turn 0's two tokens
    assert M[1, 0] == pytest.approx(0.2 / 3)


def test_turn_attention_merges_split_spans_of_one_turn():
    att = np.ones((6, 6)) / 6
    M = turn_attention(att, [(0, 1, 2), (1, 2, 4), (0, 4, 5)])
    assert M.shape == (2, 2)
    assert M[0, 0] == pytest.approx(2 / 6)
    assert M[0, 1] == pytest.approx(2 / 6)


# --- backward share and local minima -------------------------------------------------------


def test_backward_share_is_low_at_the_first_turn_of_a_topic():
    topics = [0] * 6 + [1] * 6
    a = backward_share(block_attention(topics), context=3)
    assert np.isnan(a[0]) and np.isnan(a[-1])
    assert int(np.nanargmin(a)) == 6
    assert a[6] < 0.4
    # inside a topic, far from its edges, attention is balanced
    assert a[2] == pytest.approx(0.5)
    assert a[9] == pytest.approx(0.5)


def test_backward_share_is_symmetric_at_buffer_edges():
    # uniform attention: every turn balanced, including next to the buffer edges
    M = np.ones((7, 7))
    a = backward_share(M, context=3)
    assert np.allclose(a[1:-1], 0.5)


def test_local_minima_radius_ties_and_nans():
    s = np.array([np.nan, 0.5, 0.2, 0.4, 0.1, 0.6, 0.3, 0.3, np.nan])
    assert local_minima(s, radius=1) == [2, 4, 6]
    assert local_minima(s, radius=2) == [4]  # 6 sees the 0.1 at 4
    assert local_minima(np.array([np.nan, np.nan])) == []


def test_window_similarity_drops_between_topics():
    topics = [0] * 5 + [1] * 5
    s = window_similarity(topic_embeddings(topics), window=2)
    assert np.isnan(s[0])
    assert int(np.nanargmin(s)) == 5
    assert s[5] < 0.5 < np.nanmin(np.delete(s[1:], 4))


# --- the two-level rule ------------------------------------------------------------------


def test_pick_boundaries_needs_both_levels():
    a = np.array([np.nan, 0.5, 0.5, 0.3, 0.5, 0.5, 0.3, 0.5, 0.5, np.nan])
    s = np.array([np.nan, 0.9, 0.9, 0.2, 0.9, 0.9, 0.8, 0.9, 0.9, 0.9])
    # gap 3: attention minimum and low similarity; gap 6: attention minimum, similar sides
    assert pick_boundaries(a, s, attention_cutoff=0.4, threshold=0.5) == [3]
    assert pick_boundaries(a, None, attention_cutoff=0.4) == [3, 6]
    # a shallow attention dip is not a candidate
    assert pick_boundaries(a, s, attention_cutoff=0.25, threshold=0.5) == []


def test_pick_boundaries_falls_back_to_similarity_where_attention_is_missing():
    a = np.array([np.nan, 0.5, 0.5, 0.5, np.nan, np.nan, 0.5, 0.5, 0.5, np.nan])
    s = np.array([np.nan, 0.9, 0.9, 0.9, 0.9, 0.1, 0.9, 0.9, 0.9, 0.9])
    assert pick_boundaries(a, s, threshold=0.5) == [5]
    assert pick_boundaries(a, s, threshold=0.5, sharp_drop=2.5) == [5]
    assert pick_boundaries(None, s, threshold=0.5) == [5]


def test_attention_segmenter_decides_from_precomputed_tensors():
    """segment_from_attention: token attention built from a topic layout, no model."""
    topics = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    tok_per_turn = 4
    spans, pos = [], 1
    for _ in topics:
        spans.append((pos, pos + tok_per_turn))
        pos += tok_per_turn + 1  # + [SEP]
    T = pos
    Mt = block_attention(topics)
    att = np.zeros((T, T))
    for i, (si, ei) in enumerate(spans):
        for j, (sj, ej) in enumerate(spans):
            att[si:ei, sj:ej] = Mt[i, j] / tok_per_turn
    seg = AttentionSegmenter(model=object.__new__(_NoModel), tokenizer=None)
    out = seg.segment_from_attention(spans, att, embeddings=topic_embeddings(topics))
    assert [list(s) for s in out] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    # per-layer tuple of [1, H, T, T] tensors is accepted too
    layers = tuple(np.broadcast_to(att, (1, 2, T, T)) for _ in range(4))
    out2 = seg.segment_from_attention(spans, layers, embeddings=topic_embeddings(topics))
    assert [list(s) for s in out2] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


class _NoModel:
    """Stands in for a loaded model in tests that never run a forward pass."""

    training = False


def test_segment_with_precomputed_windows_uses_no_model():
    """The shared-pass entry point: windows from someone else's forward (e.g. the
    LLMLingua-2 compressor's SharedPass), turns with irregular speakers."""
    topics = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    tok = 3
    spans, pos = [], 1
    for i in range(len(topics)):
        spans.append((i, pos, pos + tok))
        pos += tok
    Mt = block_attention(topics)
    att = np.zeros((pos, pos))
    for i, _, _ in spans:
        for j, _, _ in spans:
            att[spans[i][1] : spans[i][2], spans[j][1] : spans[j][2]] = Mt[i, j] / tok
    window = SimpleNamespace(attention=att, spans=spans, hidden=None)
    words = ["vet"] * 5 + ["lisbon"] * 5
    speakers = ["a", "a", "b", "c", "c", "b", "a", "a", "a", "c"]
    turns = [
        {"speaker": sp, "content": f"{w} talk {i}", "id": f"t{i}"} for i, (sp, w) in enumerate(zip(speakers, words))
    ]
    emb = FakeEmbedder({"vet": 0, "lisbon": 1})
    seg = AttentionSegmenter(model=object.__new__(_NoModel), tokenizer=None, embedder=emb, embeddings="embedder")
    out = seg.segment(turns, windows=[window])
    assert [s.ids for s in out] == [tuple(f"t{i}" for i in range(5)), tuple(f"t{i}" for i in range(5, 10))]
    assert emb.calls == 1


# --- time gaps ---------------------------------------------------------------------------


def test_time_gap_rule():
    t0 = datetime(2023, 5, 8, 13, 0)
    times = [
        t0,
        t0 + timedelta(minutes=5),
        t0 + timedelta(hours=7),
        None,
        t0 + timedelta(days=3),
        t0 + timedelta(days=3, hours=1),
    ]
    assert time_gap_boundaries(times) == [2]  # the None hides the gap around it
    assert time_gap_boundaries(times, hours=0.05) == [1, 2, 5]
    assert time_gap_boundaries(times, hours=None) == []


def test_time_gap_cuts_even_without_other_evidence():
    emb = FakeEmbedder({"same": 0})
    turns = [
        {"speaker": "Ana", "content": "same topic a", "time_stamp": "1:56 pm on 8 May, 2023"},
        {"speaker": "Ben", "content": "same topic b", "time_stamp": "2:01 pm on 8 May, 2023"},
        {"speaker": "Ana", "content": "same topic c", "time_stamp": "10:00 am on 25 May, 2023"},
        {"speaker": "Ana", "content": "same topic d", "time_stamp": "10:05 am on 25 May, 2023"},
    ]
    seg = SimilaritySegmenter(emb, threshold=0.0)
    assert [list(s) for s in seg.segment(turns)] == [[0, 1], [2, 3]]
    assert [list(s) for s in SimilaritySegmenter(emb, threshold=0.0, gap_hours=None).segment(turns)] == [[0, 1, 2, 3]]


# --- no alternation assumption -------------------------------------------------------------


def test_three_speakers_and_repeated_speaker_need_no_pairing():
    words = ["vet", "vet", "vet", "vet", "lisbon", "lisbon", "lisbon", "lisbon"]
    speakers = ["Ana", "Ana", "Ben", "Carl", "Carl", "Carl", "Ana", "Ben"]  # odd count of a speaker, runs of 2-3
    turns = [
        SimpleNamespace(content=f"{w} {i}", speaker=s, id=str(i), time_stamp=None)
        for i, (w, s) in enumerate(zip(words, speakers))
    ]
    seg = SimilaritySegmenter(FakeEmbedder({"vet": 0, "lisbon": 1}), threshold=0.5)
    out = seg.segment(turns)
    assert [list(s) for s in out] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    # odd number of turns, every one by the same speaker
    out = seg.segment(turns[:7])
    assert sum(len(s) for s in out) == 7


def test_attention_rule_is_speaker_blind():
    """The same attention with speakers permuted gives the same cuts."""
    topics = [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    a = backward_share(block_attention(topics), 2)
    assert pick_boundaries(a, None, attention_cutoff=0.4, radius=2) == [3, 7]


# --- plumbing ------------------------------------------------------------------------------


def test_as_turns_reads_objects_mappings_and_strings():
    row = SimpleNamespace(
        content="hi", speaker_name="Ana", speaker_id="ana", role="user", id="x1", time_stamp=datetime(2024, 1, 1)
    )
    ts = as_turns(
        [row, {"text": "yo", "speaker": "Ben", "dia_id": "D1:2", "time_stamp": "2024-01-02T10:00:00"}, "plain"]
    )
    assert [t.text for t in ts] == ["hi", "yo", "plain"]
    assert [t.speaker for t in ts] == ["Ana", "Ben", None]
    assert [t.id for t in ts] == ["x1", "D1:2", None]
    assert ts[1].time == datetime(2024, 1, 2, 10)
    compressed = SimpleNamespace(content="long original text", compressed="short", id="c")
    assert as_turns([compressed], use_compressed=True)[0].text == "short"
    assert as_turns([compressed])[0].text == "long original text"
    with pytest.raises(InvalidInputError):
        as_turns("not a list")
    with pytest.raises(InvalidInputError):
        as_turns([{"content": 5}])


def test_segments_cover_every_turn_once():
    segs = segments_from_boundaries(7, [3, 0, 7, 3, 5], ids=list("abcdefg"))
    assert [list(s) for s in segs] == [[0, 1, 2], [3, 4], [5, 6]]
    assert [(s.start, s.end) for s in segs] == [(0, 3), (3, 5), (5, 7)]
    assert segs[1].ids == ("d", "e")
    assert segments_from_boundaries(0, []) == []
    assert isinstance(segs[0], Segment)


def test_short_buffers():
    seg = SimilaritySegmenter(FakeEmbedder({"x": 0}))
    assert seg.segment([]) == []
    assert [list(s) for s in seg.segment(["x one"])] == [[0]]
    assert isinstance(seg, TopicSegmenter)


def test_create_segmenter_by_provider():
    from lightmem_core.segment import create_segmenter

    emb = FakeEmbedder({"x": 0})
    s = create_segmenter(SegmenterConfig(provider="similarity", threshold=0.3), embedder=emb)
    assert isinstance(s, SimilaritySegmenter) and s.threshold == 0.3 and s.embedder is emb
    a = create_segmenter(SegmenterConfig(), embedder=emb)
    assert isinstance(a, AttentionSegmenter) and a._model is None  # loaded lazily
    fake_compressor = SimpleNamespace(
        model=SimpleNamespace(config=SimpleNamespace(_attn_implementation="eager"), training=False), tokenizer=object()
    )
    shared = create_segmenter(SegmenterConfig(), embedder=emb, compressor=fake_compressor)
    assert shared._model is fake_compressor.model and shared.embeddings == "embedder"


def test_sharp_similarity_drop_adds_a_boundary_without_attention_dip():
    a = np.array([np.nan, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, np.nan])
    s = np.array([np.nan, 0.55, 0.5, 0.6, 0.45, 0.05, 0.5, 0.55, 0.6, 0.5, 0.45])
    assert pick_boundaries(a, s, threshold=0.5) == [5]
    assert pick_boundaries(a, s, threshold=0.5, sharp_drop=2.5) == [5]
    assert pick_boundaries(a, s, threshold=0.5, sharp_drop=None) == []
    # an ordinary dip is not sharp
    s2 = s.copy()
    s2[5] = 0.38
    assert pick_boundaries(a, s2, threshold=0.5) == []
    # no extra cut right next to an attention boundary
    a2 = a.copy()
    a2[4] = 0.2
    assert pick_boundaries(a2, s, threshold=0.5) == [4]


def test_backward_share_uses_fewer_neighbours_where_windows_did_not_overlap():
    topics = [0] * 5 + [1] * 5
    M = block_attention(topics)
    # two non-overlapping windows [0, 6) and [6, 10): cross-window entries unknown
    M[:6, 6:] = np.nan
    M[6:, :6] = np.nan
    a = backward_share(M, context=3)
    assert np.isnan(a[5]) and np.isnan(a[6])  # no neighbour on one side inside its window
    assert np.isfinite(a[[1, 2, 3, 4, 7, 8]]).all()
    assert a[4] > 0.5  # k shrank to 1 (turn 3 behind, turn 5 ahead) but is still scored


def test_window_plan_overlaps_and_always_advances():
    from lightmem_core.segment import _plan_windows

    plan = _plan_windows([30] * 40, budget=300, overlap=6)
    assert plan[0] == (0, 10)
    assert all(b - a <= 10 for a, b in plan)
    assert all(a2 == b1 - 5 for (_, b1), (a2, _) in zip(plan, plan[1:-1]))  # overlap capped at half a window
    assert plan[-1][1] == 40
    covered = set()
    for a, b in plan:
        covered.update(range(a, b))
    assert covered == set(range(40))
    # long turns: few per window, still no one-turn crawl
    plan = _plan_windows([97] * 30, budget=511, overlap=6)
    assert len(plan) <= 15
    # a turn longer than the budget still gets a window
    assert _plan_windows([900, 10], budget=511, overlap=6) == [(0, 1), (1, 2)]


def test_segmenter_config_options_reach_the_segmenter() -> None:
    from lightmem_core import ConfigError
    from lightmem_core.config import SegmenterConfig
    from lightmem_core.segment import create_segmenter

    seg = create_segmenter(SegmenterConfig(gap_hours=2, options={"attention_cutoff": 0.4, "include_speaker": True}))
    assert (seg.gap_hours, seg.attention_cutoff, seg.include_speaker) == (2, 0.4, True)
    assert create_segmenter(SegmenterConfig(gap_hours=None)).gap_hours is None
    with pytest.raises(ConfigError) as err:
        create_segmenter(SegmenterConfig(options={"no_such_option": 1}))
    assert err.value.field == "segmenter.options" and "no_such_option" in str(err.value)
