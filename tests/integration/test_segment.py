"""Topic segmentation with the real packaged all-MiniLM-L6-v2 (no download)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from lightmem_core.segment import AttentionSegmenter, Segment, SimilaritySegmenter

# Two clearly different topics; speakers irregular (three people, runs of the same one).
VET = [
    ("Ana", "My dog Biscuit has been limping since Sunday, so I took him to the vet this morning."),
    ("Ben", "Oh no, poor Biscuit! What did the vet say about his leg?"),
    ("Ana", "She thinks it's a sprained ligament in his back paw, nothing broken, thankfully."),
    ("Ana", "We got anti-inflammatory pills and he has to rest for two weeks, no running at the park."),
    ("Carl", "Keeping a young dog calm for two weeks is hard. Maybe a puzzle feeder would help him."),
    ("Ben", "Did the vet want an X-ray or a follow-up appointment for the paw?"),
]
LISBON = [
    ("Carl", "By the way, I finally booked flights to Lisbon for the second week of May!"),
    ("Ana", "Lisbon is lovely. Are you staying in Alfama or near Bairro Alto?"),
    ("Carl", "We found an apartment in Alfama, close to the castle and the tram 28 line."),
    ("Ben", "You have to take a day trip to Sintra and see the Pena Palace."),
    ("Carl", "Yes, and my wife wants pasteis de nata from the bakery in Belem."),
    ("Carl", "I still need to book the Sintra train early, the palaces sell out in spring."),
]
# One coherent topic: a kitchen renovation, twelve turns.
KITCHEN = [
    ("Dana", "We're finally renovating the kitchen, the old cabinets are falling apart."),
    ("Eli", "Nice! Are you keeping the same layout or moving the sink?"),
    ("Dana", "Same layout, but the sink goes under the window so I can see the garden."),
    ("Dana", "The contractor says new cabinets take six weeks to arrive."),
    ("Fay", "Six weeks for cabinets? Did you pick wood or painted ones?"),
    ("Dana", "Painted oak, sage green, with brass handles."),
    ("Eli", "Sage green cabinets with brass handles will look great. What about the countertop?"),
    ("Dana", "Quartz countertop, white with grey veins, it's easier to clean than marble."),
    ("Fay", "Quartz is a good choice for a kitchen. Are you replacing the floor tiles too?"),
    ("Dana", "Yes, the floor tiles too, large grey porcelain ones to match the countertop."),
    ("Eli", "How long will you be without a kitchen during the renovation?"),
    ("Dana", "About a month without a kitchen, so we'll cook on a camping stove in the garage."),
]


def as_dicts(rows: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [{"speaker": s, "content": t, "id": f"t{i}"} for i, (s, t) in enumerate(rows)]


@pytest.fixture(scope="module")
def segmenter() -> AttentionSegmenter:
    seg = AttentionSegmenter()
    seg.segment(["warm up", "the model"])
    return seg


def cuts(segments: list[Segment]) -> list[int]:
    return [s.start for s in segments[1:]]


def assert_partition(segments: list[Segment], n: int) -> None:
    assert [i for s in segments for i in s] == list(range(n))


def test_two_topics_are_cut_between_them(segmenter: AttentionSegmenter) -> None:
    turns = as_dicts(VET + LISBON)
    segs = segmenter.segment(turns)
    assert_partition(segs, 12)
    got = cuts(segs)
    assert any(abs(c - 6) <= 1 for c in got), got
    # no extra cut deep inside either topic
    assert all(abs(c - 6) <= 1 for c in got), got
    assert segs[0].ids[0] == "t0"


def test_one_topic_is_not_shredded(segmenter: AttentionSegmenter) -> None:
    segs = segmenter.segment(as_dicts(KITCHEN))
    assert_partition(segs, 12)
    assert len(segs) <= 2, cuts(segs)


def test_shared_pass_embeddings_cut_the_same_place(segmenter: AttentionSegmenter) -> None:
    """One forward pass for attention and embeddings (contextual similarity)."""
    shared = AttentionSegmenter.from_model(
        segmenter._model, segmenter._tokenizer, sentence_model=True, embeddings="shared", threshold=0.8
    )
    got = cuts(shared.segment(as_dicts(VET + LISBON)))
    assert got and all(abs(c - 6) <= 1 for c in got), got


def test_similarity_segmenter_with_the_packaged_embedder(embedder: Any) -> None:
    segs = SimilaritySegmenter(embedder).segment(as_dicts(VET + LISBON))
    assert any(abs(c - 6) <= 1 for c in cuts(segs))


def test_long_buffer_spans_several_windows(segmenter: AttentionSegmenter) -> None:
    """More tokens than a window: overlapping windows; every inner gap gets an
    attention score; a turn longer than a window is truncated for the attention
    pass, not dropped."""
    from lightmem_core.segment import as_turns

    long_turn = ("Ana", "The vet explained every treatment option for the paw in detail. " * 60)
    rows = VET[:3] + [long_turn] + VET[3:] + LISBON
    turns = as_dicts(rows)
    small = AttentionSegmenter.from_model(
        segmenter._model, segmenter._tokenizer, sentence_model=True, max_tokens=128, max_turn_tokens=40
    )
    windows = small._encode(as_turns(turns))
    assert len(windows) >= 4
    assert all(w.attention.shape[0] <= 128 for w in windows)
    sc = small.scores(turns)
    assert np.isfinite(sc["backward_share"][1:-1]).all()
    assert int(np.nanargmin(sc["similarity"])) == 7  # the vet -> Lisbon gap stands out
    segs = small.segment(turns)
    assert_partition(segs, len(rows))
    assert all(abs(c - 7) <= 1 for c in cuts(segs)), cuts(segs)
    # the default 512-token windows on a 25-turn, three-topic buffer
    rows = VET + [long_turn] + LISBON + KITCHEN
    sc = segmenter.scores(as_dicts(rows))
    assert np.isfinite(sc["backward_share"][1:-1]).all()
    segs = segmenter.segment(as_dicts(rows))
    assert_partition(segs, len(rows))
    assert len(segs) <= 6


def test_time_gap_and_shared_entry_point(segmenter: AttentionSegmenter) -> None:
    turns = as_dicts(KITCHEN)
    for i, t in enumerate(turns):
        t["time_stamp"] = f"2024-03-0{1 if i < 8 else 4}T10:{i:02d}:00"
    assert 8 in cuts(segmenter.segment(turns))
    # segment_from_attention on tensors from a forward pass made elsewhere
    import torch

    tok, model = segmenter._tokenizer, segmenter._model
    texts = [t for _, t in VET + LISBON]
    ids, spans = [tok.cls_token_id], []
    for t in texts:
        piece = tok(t, add_special_tokens=False)["input_ids"]
        spans.append((len(ids), len(ids) + len(piece)))
        ids += piece + [tok.sep_token_id]
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([ids]), output_attentions=True)
    segs = segmenter.segment_from_attention(
        spans, out.attentions, hidden_states=out.last_hidden_state[0].numpy(), turns=as_dicts(VET + LISBON)
    )
    assert_partition(segs, 12)


def test_speed(segmenter: AttentionSegmenter) -> None:
    turns = as_dicts((VET + LISBON + KITCHEN) * 2)
    t0 = time.perf_counter()
    segmenter.segment(turns)
    dt = time.perf_counter() - t0
    # generous bound for a loaded 2-core CI box; benchmarks/segmentation.py measures it properly
    assert len(turns) / dt > 5, f"{len(turns) / dt:.1f} turns/s"
